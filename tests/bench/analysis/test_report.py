"""The report, built from a small committed run directory (tests/bench/fixtures/run-small: real
cells of a short run) and from hand-made records for the paragraphs' reasoning."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench import rundir
from bench.analysis import report, report_tables

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "run-small"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUMMARY_KEYS = {
    "server", "scenario", "users", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "fail_ratio",
    "server_cpu_pct", "server_rss_mb", "server_procs", "server_threads", "generator_cpu_pct",
    "flags", "repeats",
}  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The fixture run reported as a run of results/ (a stand-in results/ in a temp dir)."""
    results = tmp_path_factory.mktemp("results")
    run_dir = results / FIXTURE.name
    shutil.copytree(FIXTURE, run_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rundir, "RESULTS_ROOT", results)
        assert report.build_report(run_dir) == run_dir / "report.html"
    return run_dir


@pytest.fixture()
def results(tmp_path, monkeypatch) -> Path:
    """A stand-in for results/: what the commands treat as the home of runs."""
    root = tmp_path / "results"
    root.mkdir()
    monkeypatch.setattr(rundir, "RESULTS_ROOT", root)
    return root


def copied_run(where: Path, **meta) -> Path:
    run_dir = where / "run1"
    shutil.copytree(FIXTURE, run_dir)
    stored = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({**stored, **meta}))
    return run_dir


def fixture_cells() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((FIXTURE / "cells").glob("*.json"))]


def test_every_output_is_written(built):
    scenarios = {cell["scenario"] for cell in fixture_cells()}
    pngs = [f"load-{scenario}.png" for scenario in scenarios] + ["costs.png"]
    for name in [*pngs, "report.html", "summary.md", "summary.json"]:
        assert (built / name).stat().st_size > 0, name
    for name in pngs:
        assert (built / name).read_bytes().startswith(PNG_SIGNATURE), name
    assert (built.parent / "index.html").exists()


def test_summary_json_has_one_consistent_record_per_cell(built):
    records = json.loads((built / "summary.json").read_text())
    cells = {cell["cell"]: cell for cell in fixture_cells()}
    assert sorted(record["cell"] for record in records) == sorted(cells)
    for record in records:
        cell = cells[record["cell"]]
        assert set(record) >= SUMMARY_KEYS
        assert record["rps"] == cell["summary"]["rps"]
        assert record["p99_ms"] == cell["summary"]["p99_ms"]
        assert record["repeats"] == len(cell["repeats"])
        # the null-server bound may add generator-bound; it never drops a runner flag
        assert set(cell["flags"]) <= set(record["flags"])


def test_report_html_is_self_contained_and_links_every_plot(built):
    page = (built / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert {"costs.png"} | {f"load-{c['scenario']}.png" for c in fixture_cells()} <= set(sources)
    assert all((built / source).exists() for source in sources)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no external assets
    assert "<script" not in page


def test_report_shows_every_cell_with_its_flags(built):
    page = (built / "report.html").read_text()
    markdown = (built / "summary.md").read_text()
    records = json.loads((built / "summary.json").read_text())
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table_rows) >= len(records) + 1  # header + one row per cell (+ pairs table)
    for flag in {flag for record in records for flag in record["flags"]}:
        assert flag in page and flag in markdown
    for scenario in {record["scenario"] for record in records}:
        assert f"<h2>{scenario}</h2>" in page and f"## {scenario}" in markdown


def test_the_runs_index_links_the_report(built):
    index = (built.parent / "index.html").read_text()
    assert f'href="{built.name}/report.html"' in index


def test_a_run_without_cells_still_gets_a_report(tmp_path):
    run_dir = tmp_path / "empty-run"
    (run_dir / "cells").mkdir(parents=True)
    (run_dir / "meta.json").write_text(json.dumps({"profile": "smoke", "status": "interrupted"}))
    page = report.build_report(run_dir).read_text()
    assert "interrupted" in page
    assert json.loads((run_dir / "summary.json").read_text()) == []


def open_cell(server: str, fraction: float, p99_us: float) -> dict:
    """An open-loop cell as the runner writes it (its summary only: the report reads no more)."""
    summary = {"rps": 1000 * fraction, "p50_us": p99_us / 4, "p90_us": p99_us / 2,
               "p99_us": p99_us, "p999_us": 2 * p99_us, "max_us": 3 * p99_us,
               "p50_ms": p99_us / 4000, "p99_ms": p99_us / 1000, "late_ratio": 0.0,
               "fail_ratio": 0.0}  # fmt: skip
    return {"cell": f"{server}--app--plaintext--o{fraction:.0%}".rstrip("%"), "server": server,
            "model": server, "kind": "ours", "app": "app", "scenario": "plaintext", "users": 32,
            "mode": "open", "offered_fraction": fraction, "offered_rps": 1000 * fraction,
            "status": "ok", "error": None, "flags": [], "repeats": [{}],
            "summary": summary}  # fmt: skip


def test_open_loop_cells_get_their_own_section_and_stay_out_of_the_closed_loop_ones(tmp_path):
    run_dir = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, run_dir)
    for fraction, p99_us in ((0.25, 900), (0.5, 1200), (1.1, 95_000)):
        cell = open_cell("epoll", fraction, p99_us)
        (run_dir / "cells" / f"{cell['cell']}.json").write_text(json.dumps(cell))
    page = report.build_report(run_dir).read_text()
    markdown = (run_dir / "summary.md").read_text()
    assert "latency against offered load (open loop)" in page
    assert '<img src="latency-plaintext.png"' in page
    assert (run_dir / "latency-plaintext.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "epoll from 110% of its capacity" in markdown and "95.0 ms" in markdown
    every_cell = markdown.split("## Every cell")[1].split("## ")[0]
    assert "| open |" not in every_cell and "| closed |" in every_cell
    records = json.loads((run_dir / "summary.json").read_text())
    assert sum(r["mode"] == "open" for r in records) == 3
    assert "closed loop" in page.lower()  # the closed-loop plots and table say which mode they show


def test_main_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_failed_cells_show_why(built):
    page = (built / "report.html").read_text()
    failed = [cell for cell in fixture_cells() if cell["status"] == "failed"]
    assert failed, "the fixture should hold a failed cell"
    for cell in failed:
        assert f"<h4>{cell['cell']}</h4>" in page
        assert cell["error"].splitlines()[0].replace("'", "&#39;") in page


def test_flagged_rows_are_marked_and_clean_rows_are_not(built):
    page = (built / "report.html").read_text()
    records = json.loads((built / "summary.json").read_text())
    rows = re.findall(r'<tr class="([^"]*)">', page)
    expected = [
        "failed" if "failed" in r["flags"] else "flagged" if r["flags"] else "" for r in records
    ]
    assert rows[: len(records)] == expected


def test_a_damaged_micro_json_leaves_only_the_micro_table_out(tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    (run_dir / "micro.json").write_text("")  # a micro run still writing, or killed mid-write
    page = report.build_report(run_dir).read_text()
    assert "<h2>Every cell</h2>" in page
    err = capsys.readouterr().err
    assert "micro.json: not valid JSON" in err and "leaves the micro table out" in err


def test_a_half_written_cell_file_is_left_out_with_a_warning(tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    (run_dir / "cells" / "poll--app--plaintext--u99.json").write_text('{"cell": "poll--')
    report.build_report(run_dir)
    records = json.loads((run_dir / "summary.json").read_text())
    assert len(records) == len(fixture_cells())
    assert "poll--app--plaintext--u99.json: not valid JSON" in capsys.readouterr().err


def test_scenarios_of_a_users_locustfile_are_described_from_the_run(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    for path in (run_dir / "cells").glob("*--io--*.json"):
        cell = json.loads(path.read_text())
        cell.update(scenario="checkout", cell=cell["cell"].replace("--io--", "--checkout--"))
        path.with_name(f"{cell['cell']}.json").write_text(json.dumps(cell))
        path.unlink()
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["scenarios"] = {"checkout": "a basket, paid for"}
    (run_dir / "meta.json").write_text(json.dumps(meta))
    page = report.build_report(run_dir).read_text()
    assert "a basket, paid for" in page and (run_dir / "load-checkout.png").exists()
    assert "## checkout\n" in (run_dir / "summary.md").read_text()


def test_the_report_opens_with_the_verdict(built):
    html = (built / "report.html").read_text()
    verdict = html.index("<h2>Verdict</h2>")
    assert verdict < html.index("How to read the flags") < html.index("<h2>plaintext</h2>")
    # the fixture ran without a CPU budget: the verdict ranks by CPU per request
    assert "requests per CPU-second the server used" in html
    summary = (built / "summary.md").read_text()
    assert summary.index("## Verdict") < summary.index("## plaintext")


def test_a_budgeted_run_says_how_and_warns_about_latency(tmp_path):
    run_dir = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, run_dir)
    budget = {"cpus": 0.25, "period_us": 10_000, "cgroup": "cgroup v1"}
    for path in (run_dir / "cells").glob("*.json"):
        cell = json.loads(path.read_text())
        rps = cell["summary"]["rps"]
        cell["budget"] = budget
        cell["summary"].update(budget_cpus=0.25, rps_per_cpu=rps and rps / 0.25)
        path.write_text(json.dumps(cell))
    meta = json.loads((run_dir / "meta.json").read_text())
    calibration = {"users": 8, "generator_rps": 6000.0, "generator_cpu_pct": 75.0,
                   "generator_capacity": 8000.0, "fastest": "epoll",
                   "fastest_rps_per_cpu": 11000, "rule": "cpus = …", "margin": 0.5}  # fmt: skip
    meta["budget"] = {**budget, "source": "calibrated", "calibration": calibration}
    (run_dir / "meta.json").write_text(json.dumps(meta))
    html = report.build_report(run_dir).read_text()
    assert "CPU budget of 0.25 CPU (10 ms period, cgroup v1, calibrated)" in html
    assert "Locust sent 6,000 req/s at 75% CPU, so generator_capacity = 8,000 req/s" in html
    assert "÷ the CPU budget (0.25 CPU)" in html
    assert "includes throttling stalls" in html and "Under a CPU budget the null server" in html
    records = json.loads((run_dir / "summary.json").read_text())
    assert all(r["budget_cpus"] == 0.25 for r in records)


# --- a report reads and writes only its run directory -------------------------------------------


def history_line(run: str, ratio: float) -> str:
    ratios = {"micro test_full_cycle_plaintext[framework] / werkzeug": ratio}
    return json.dumps({"run": run, "commit": "abc", "date": "2026-11-21", "ratios": ratios})


def test_a_run_outside_results_touches_nothing_beside_it(tmp_path, results):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("my own page")
    (site / "history.jsonl").write_text(history_line("a", 1.0) + "\n" + history_line("b", 2.0))
    run_dir = copied_run(site)
    report.build_report(run_dir)
    assert (site / "index.html").read_text() == "my own page"
    assert sorted(p.name for p in site.iterdir()) == ["history.jsonl", "index.html", "run1"]
    assert list(results.iterdir()) == []
    assert not (run_dir / "trend.png").exists()  # a trend of other runs is not this run's


def test_the_report_of_a_run_in_results_does_not_draw_later_runs(results):
    (results / "history.jsonl").write_text(history_line("a", 1.0) + "\n" + history_line("b", 2))
    run_dir = copied_run(results)
    page = report.build_report(run_dir).read_text()
    assert "Trend" not in page and not (run_dir / "trend.png").exists()
    index = (results / "index.html").read_text()
    assert "data:image/png;base64," in index  # the trend lives on the index, inline
    assert sorted(p.name for p in results.iterdir()) == ["history.jsonl", "index.html", "run1"]


def test_report_refuses_the_committed_baseline_and_writes_nothing_there(results, capsys):
    baseline = results / "baseline"
    shutil.copytree(FIXTURE, baseline)
    before = sorted(p.relative_to(baseline) for p in baseline.rglob("*"))
    assert report.main([str(baseline)]) == 2
    err = capsys.readouterr().err
    assert "committed baseline" in err and "report on a copy" in err
    assert sorted(p.relative_to(baseline) for p in baseline.rglob("*")) == before
    assert not (results / "index.html").exists()


# --- banners: what a reader must know before any number ----------------------------------------


def banner_texts(page: str) -> list[str]:
    return re.findall(r'<p class="banner (?:alarm|note)">(.*?)</p>', page, re.S)


def test_an_injected_slowdown_is_a_banner_and_on_the_index(results):
    run_dir = copied_run(results, injections={"BENCH_INJECT_DELAY_US": "30"})
    banners = banner_texts(report.build_report(run_dir).read_text())
    assert any("BENCH_INJECT_DELAY_US=30" in text for text in banners)
    assert "BENCH_INJECT_DELAY_US=30" in (results / "index.html").read_text()


def test_a_regress_verdict_tops_the_report_and_the_index(results):
    verdict = {"baseline": "results/baseline", "verdict": "REGRESSED", "threshold": 0.25,
               "alpha": 0.01, "regressed": 6, "judged": 40, "not_judged": 20}  # fmt: skip
    run_dir = copied_run(results, regress=verdict, status="finished")
    page = report.build_report(run_dir).read_text()
    first = banner_texts(page)[0]
    assert "REGRESSED (6 regressed, 40 judged, 20 not judged" in first
    assert page.index("REGRESSED") < page.index("<h2>")
    assert "<strong>REGRESSED</strong>" in (results / "index.html").read_text()


def test_an_interrupted_run_lists_what_was_not_measured_and_ranks_nothing_incomplete(tmp_path):
    cells = [cell["cell"] for cell in fixture_cells()]
    scenario = fixture_cells()[0]["scenario"]
    never = f"epoll--app--{scenario}--u999"
    run_dir = copied_run(tmp_path, status="interrupted", cells_planned=[*cells, never])
    page = report.build_report(run_dir).read_text()
    banner = banner_texts(page)[0]
    assert "1 of" in banner and never in banner and "interrupted" in banner
    assert "Not ranked: the run ended before measuring " + never in page
    assert " led with " not in page.split(f"<h2>{scenario}</h2>")[1].split("<h2>")[0]


def test_a_failed_run_says_so_at_the_top(tmp_path):
    run_dir = copied_run(tmp_path, status="failed")
    assert (
        "Failed: no cell of the framework app"
        in banner_texts(report.build_report(run_dir).read_text())[0]
    )


def test_a_complete_run_has_no_banner(tmp_path):
    planned = [cell["cell"] for cell in fixture_cells()]
    run_dir = copied_run(tmp_path, status="finished", cells_planned=planned, injections={})
    assert banner_texts(report.build_report(run_dir).read_text()) == []


def test_every_scenario_gets_its_answer_and_a_starved_cell_says_how_long_to_run(tmp_path):
    run_dir = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, run_dir)
    path = run_dir / "cells" / "fork--app--plaintext--u8.json"
    cell = json.loads(path.read_text())
    cell["flags"] = ["too-few"]
    cell["summary"].update(rps=9.3, requests=28, seconds=3)
    path.write_text(json.dumps(cell))
    page = report.build_report(run_dir).read_text()
    summary = (run_dir / "summary.md").read_text()
    verdict = summary.split("## Verdict")[1].split("\n## ")[0]
    assert "- plaintext: " in verdict and "- io: " in verdict
    # two repeats each: 100 requests at 9.3 req/s need 6 s a repeat
    assert "| fork | 8 | too-few | 28 requests in 3 s: run with --duration 6 or more |" in verdict
    assert page.index('<ul class="answers">') < page.index("How to read the flags")
    assert any(line.startswith("plaintext: ") for line in report.console_verdict(run_dir))


def test_settings_and_pinning_read_as_prose_not_literals():
    settings = {"threads": 4, "keep_alive": True, "options": [], "native": None}
    assert report_tables.settings_text(settings) == (
        "keep_alive: yes; native: –; options: none; threads: 4"
    )
    rows = dict(report_tables.meta_rows({"pinning": {"server_cpus": [0], "generator_cpus": [1]}}))
    assert rows["pinning"] == "server CPUs 0, Locust CPUs 1"
