"""The report's profile section from cells as the runner writes them: one card per sampled
server, grouped per scenario in the report's order, the cost of sampling, and a line where a
profile is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.analysis.cpu_profiles import profile_sections, sampling_cost, side_by_side

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "speedscope"
SERVERS = ["poll", "threaded", "fork", "epoll"]
SCENARIOS = ["plaintext", "fortunes"]


def cell(server: str, scenario: str, app: str = "app", **cpu_profile) -> dict:
    cpu_profile = cpu_profile or {"problem": "not sampled"}
    return {"server": server, "app": app, "scenario": scenario, "users": 64,
            "summary": {"rps": 1000.0}, "cpu_profile": cpu_profile}  # fmt: skip


def sections_of(run_dir: Path, cells: list[dict]) -> list[dict]:
    return profile_sections(run_dir, cells, SERVERS.index, SCENARIOS.index)


def test_cards_rank_each_servers_functions_and_link_its_files(tmp_path):
    (tmp_path / "profiles").mkdir()
    shutil.copy(FIXTURE / "spin.speedscope.json", tmp_path / "profiles" / "epoll.speedscope.json")
    recorded = cell("epoll", "plaintext", svg="profiles/epoll.svg",
                    speedscope="profiles/epoll.speedscope.json", window={"rps": 900.0},
                    recorder_cpu_pct=4.2)  # fmt: skip
    (section,) = sections_of(tmp_path, [recorded, {"server": "poll", "app": "app"}])
    (card,) = section["cards"]
    assert section["title"] == "plaintext"
    assert card["samples"] == 66 and [f.function for f in card["functions"]] == ["leaf", "branch"]
    assert card["svg"] == "profiles/epoll.svg" and card["problem"] is None
    assert (
        card["cost"]
        == "sampled window 900 req/s, cell 1,000 req/s (-10%); py-spy took 4% of a core"
    )


def test_sections_follow_the_reports_order_of_scenarios_apps_and_servers(tmp_path):
    cells = [cell("epoll", "fortunes"), cell("poll", "plaintext", app="raw"),
             cell("epoll", "plaintext"), cell("poll", "plaintext")]  # fmt: skip
    sections = sections_of(tmp_path, cells)
    assert [s["title"] for s in sections] == ["plaintext", "fortunes", "plaintext (raw app)"]
    assert [card["server"] for card in sections[0]["cards"]] == ["poll", "epoll"]


def test_a_card_without_files_says_why(tmp_path):
    line = "py-spy cannot read process 7: permission denied"
    cells = [cell("poll", "plaintext", problem=line),
             cell("fork", "plaintext", speedscope="profiles/gone.speedscope.json")]  # fmt: skip
    (section,) = sections_of(tmp_path, cells)
    assert [card["problem"] for card in section["cards"]] == [
        line,
        "the profile's files are missing from the run directory",
    ]
    assert all(card["functions"] == [] for card in section["cards"])


def test_sampling_cost_compares_rates_only_under_the_same_budget():
    same = {"window": {"rps": 1050.0, "server_cpu_pct": 40.0}, "recorder_cpu_pct": 3.4}
    assert sampling_cost(same, 1000.0) == (
        "sampled window 1,050 req/s, cell 1,000 req/s (+5%); py-spy took 3% of a core"
    )
    lifted = {**same, "budget_lifted": True}
    assert sampling_cost(lifted, 1000.0) == (
        "sampled window 1,050 req/s at 40% CPU, without the CPU budget; py-spy took 3% of a core"
    )
    assert sampling_cost({"recorder_cpu_pct": 2.0}, 1000.0) == "py-spy took 2% of a core"
    assert sampling_cost({}, None) == ""


def test_side_by_side_puts_each_servers_functions_in_its_column_by_rank(tmp_path):
    (tmp_path / "profiles").mkdir()
    shutil.copy(FIXTURE / "spin.speedscope.json", tmp_path / "profiles" / "spin.speedscope.json")
    cells = [cell("poll", "plaintext", problem="py-spy cannot read process 7"),
             cell("epoll", "plaintext", speedscope="profiles/spin.speedscope.json")]  # fmt: skip
    (section,) = sections_of(tmp_path, cells)
    assert side_by_side(section) == (
        ["rank", "poll", "epoll"],
        [["1", "", "`leaf` 68.2%"], ["2", "", "`branch` 31.8%"]],
    )
