"""The verdict table: ranking by requests/s per CPU at each server's best level, the gap against
the measured spread, the reason per model, and the fallback basis without a budget."""

from __future__ import annotations

import pytest

from bench.analysis import verdict
from bench.analysis.pairs import NATIVE_PEERS
from bench.serving.peers import PEER_SERVERS


def cell(server: str, users: int, rps: float, **extra) -> dict:
    """A summary record as report.summary_record makes it, under a 0.25-CPU budget."""
    model = {"tornado": "epoll", "bjoern": "epoll", "granian": "threaded", "null": "null"}
    model = model.get(server, server)
    kind = "ours" if server in ("poll", "threaded", "fork", "epoll") else "peer"
    base = {"server": server, "model": model, "kind": "reference" if server == "null" else kind,
            "app": "app", "scenario": "plaintext", "users": users, "rps": rps,
            "rps_low": rps * 0.95, "rps_high": rps * 1.05, "budget_cpus": 0.25,
            "budget_period_us": 10_000, "rps_per_cpu": rps / 0.25, "cpu_s_per_1k": 0.1,
            "flags": []}  # fmt: skip
    return {**base, **extra}


def test_each_server_is_ranked_at_its_best_level_by_requests_per_cpu():
    records = [
        cell("epoll", 16, 2600), cell("epoll", 64, 2800), cell("threaded", 16, 2400),
        cell("threaded", 64, 2300), cell("fork", 64, 700), cell("bjoern", 64, 5600),
        cell("null", 64, 9000), cell("epoll", 64, 9999, app="raw"),
    ]  # fmt: skip
    rows = verdict.verdict_rows(records, "plaintext")
    # the null reference and the raw app are not ranked
    ranking = [("bjoern", 64), ("epoll", 64), ("threaded", 16), ("fork", 64)]
    assert [(row["server"], row["users"]) for row in rows] == ranking
    assert [row["rank"] for row in rows] == [1, 2, 3, 4]
    assert rows[0]["ratio"] == 1.0 and rows[1]["ratio"] == pytest.approx(2800 / 5600)
    assert rows[1]["rps_per_cpu"] == pytest.approx(2800 / 0.25)


def test_a_gap_counts_only_beyond_both_cells_measured_spread():
    leader = cell("epoll", 64, 1000, rps_low=950, rps_high=1050)
    clear = cell("threaded", 64, 900, rps_low=880, rps_high=940)
    overlapping = cell("poll", 64, 930, rps_low=900, rps_high=960)
    unknown = cell("fork", 64, 500, rps_low=None, rps_high=None)
    rows = verdict.verdict_rows([leader, clear, overlapping, unknown], "plaintext")
    assert {row["server"]: row["beyond_spread"] for row in rows} == {
        "epoll": None, "poll": False, "threaded": True, "fork": None
    }  # fmt: skip
    table = verdict.table_rows(rows)
    assert [line[6] for line in table] == ["best", "no, within spread", "yes", "spread unknown"]


def test_failed_and_erroring_cells_are_left_out_but_generator_bound_stays_flagged():
    records = [
        cell("epoll", 64, 2800, flags=["generator-bound"]),
        cell("threaded", 64, 2400, flags=["errors"]),
        {**cell("fork", 64, 0.0), "rps": None, "flags": ["failed"]},
    ]
    rows = verdict.verdict_rows(records, "plaintext")
    assert [(row["server"], row["flags"]) for row in rows] == [("epoll", ["generator-bound"])]


def test_without_a_budget_the_ranking_is_by_cpu_per_request():
    records = [
        cell("epoll", 64, 6000, budget_cpus=None, rps_per_cpu=None, cpu_s_per_1k=0.1),
        cell("threaded", 64, 6000, budget_cpus=None, rps_per_cpu=None, cpu_s_per_1k=0.125),
    ]
    rows = verdict.verdict_rows(records, "plaintext")
    assert [row["server"] for row in rows] == ["epoll", "threaded"]
    assert rows[0]["rps_per_cpu"] == pytest.approx(10_000) and rows[1]["ratio"] == 0.8
    assert "CPU per request" in verdict.basis(records)
    assert "0.25 CPU" in verdict.basis([cell("epoll", 64, 1000)])


@pytest.mark.parametrize(
    ("server", "scenario", "words"),
    [
        ("poll", "io", "every wait blocks every other connection"),
        ("epoll", "mixed", "stalls the loop"),
        ("threaded", "io", "a waiting thread does not hold up the others"),
        ("fork", "plaintext", "a fork and a process per connection"),
        ("poll", "fortunes", "new connection"),
        ("epoll", "cpu", "the work itself sets the limit"),
        ("tornado", "io", "WSGIContainer calls the app on the loop thread"),
        ("bjoern", "plaintext", "only the app itself runs in Python"),
        ("bjoern", "io", "stalls every connection"),
        ("granian", "plaintext", "hands every request to a Python thread"),
        # a peer is not described by its model's sentence: gunicorn-sync is prefork, not
        # a fork per connection, and closes every connection
        ("gunicorn-sync", "plaintext", "closes it after each response"),
        ("werkzeug-forking", "plaintext", "forks a process for every request"),
        ("waitress", "io", "at most 4 waits"),
    ],
)
def test_every_row_says_why_in_one_sentence(server: str, scenario: str, words: str):
    assert words in verdict.reason(cell(server, 16, 100, scenario=scenario))


def test_tables_follow_the_scenario_order_and_skip_empty_ones():
    records = [cell("epoll", 16, 900, scenario="io"), cell("epoll", 16, 2000),
               cell("null", 16, 9000, scenario="json")]  # fmt: skip
    tables = verdict.verdict_tables(records, ["plaintext", "json", "io"])
    assert [table["scenario"] for table in tables] == ["plaintext", "io"]
    assert tables[0]["header"][4] == "req/s per CPU" and len(tables[0]["rows"]) == 1


def test_measured_range_uses_repeats_or_else_the_per_second_series():
    repeats = [{"rps": 90.0, "rps_series": [1.0]}, {"rps": 110.0}, {"rps": 100.0}]
    assert verdict.measured_range({"repeats": repeats}) == (90.0, 110.0)
    one = [{"rps": 100.0, "rps_series": [96.0, 104.0, 99.0]}]
    assert verdict.measured_range({"repeats": one}) == (96.0, 104.0)
    assert verdict.measured_range({"repeats": []}) == (None, None)


def test_latency_note_only_under_a_budget():
    assert "up to 10 ms" in verdict.latency_note([cell("epoll", 16, 100)])
    assert verdict.latency_note([cell("epoll", 16, 100, budget_period_us=None)]) == ""


def test_every_peer_has_its_own_reasons():
    names = {spec.name for spec in PEER_SERVERS if spec.name != "null"}
    assert set(verdict.PEERS) == names and set(NATIVE_PEERS) <= names
    for server in names:
        computing, waiting = (verdict.reason(cell(server, 16, 100, scenario=scenario))
                              for scenario in ("plaintext", "io"))  # fmt: skip
        assert computing and waiting and computing != waiting
