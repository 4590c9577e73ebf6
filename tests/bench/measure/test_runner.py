"""The load runner: flags and summaries from numbers, the matrix from profiles, and real cells.

The slow tests run real servers (``python -m servers``) under real Locust for 2-second cells, a
server that dies at start and one that dies under load, and a runner interrupted mid-cell.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.measure import (
    budget,
    calibration,
    cellrun,
    latency,
    locustrun,
    matrix,
    processes,
    progress,
    records,
    runner,
)
from bench.measure.budget import CgroupReading
from bench.measure.profiles import PROFILES, SCENARIOS
from bench.measure.settings import LoadRequest, Settings, choose_pinning
from bench.serving.registry import ServerSpec, all_servers

REPO_ROOT = Path(__file__).resolve().parents[3]

CELL_KEYS = {
    "cell", "server", "model", "kind", "app", "app_target", "scenario", "users", "status",
    "error", "flags", "pinning", "warmup_s", "duration_s", "repeats", "summary", "server_measured",
    "budget", "mode", "offered_fraction", "offered_rps",
}  # fmt: skip
REPEAT_KEYS = {
    "rps", "requests", "failures", "fail_ratio", "p50_ms", "p90_ms", "p99_ms", "max_ms",
    "rps_series", "server_cpu_pct", "server_cpu_s", "server_rss_mb", "server_procs",
    "server_threads", "generator_cpu_pct", "samples", "server_cpu_source", "throttled_s",
    "throttled_share", "p99_ms_series", "endpoints", "failure_messages", "workers_cpu_pct",
    "setup_s",
}  # fmt: skip
SUMMARY_KEYS = {
    "rps", "rps_min", "rps_max", "p50_ms", "p90_ms", "p99_ms", "max_ms", "fail_ratio",
    "server_cpu_pct", "server_rss_mb", "server_procs", "server_threads", "generator_cpu_pct",
    "cpu_s_per_1k", "budget_cpus", "rps_per_cpu", "throttled_s", "throttled_share", "requests",
    "seconds", "workers_cpu_pct",
}  # fmt: skip


# --- summaries and series ---------------------------------------------------------------------


def repeat(rps: float, requests: int, failures: int = 0, cpu_s: float = 1.0, **extra) -> dict:
    base = {
        "rps": rps, "requests": requests, "failures": failures, "p50_ms": 1, "p90_ms": 2,
        "p99_ms": 3, "max_ms": 4.0, "server_cpu_pct": 50.0, "server_cpu_s": cpu_s,
        "server_rss_mb": 30.0, "server_procs": 1, "server_threads": 2, "generator_cpu_pct": 40.0,
    }  # fmt: skip
    return {**base, **extra}


def test_summary_is_the_median_with_min_max_and_totals():
    repeats = [
        repeat(100.0, 1000, failures=10, cpu_s=1.0, max_ms=9.0),
        repeat(300.0, 3000, cpu_s=2.0, server_rss_mb=80.0),
        repeat(200.0, 2000, cpu_s=3.0, server_procs=5),
    ]
    result = records.summarise(repeats)
    assert set(result) == SUMMARY_KEYS
    assert (result["rps"], result["rps_min"], result["rps_max"]) == (200.0, 100.0, 300.0)
    assert result["fail_ratio"] == pytest.approx(10 / 6000)
    assert result["cpu_s_per_1k"] == pytest.approx(6.0 / 6000 * 1000)
    assert (result["server_rss_mb"], result["server_procs"], result["max_ms"]) == (80.0, 5, 9.0)
    assert (result["requests"], result["seconds"], result["workers_cpu_pct"]) == (6000, 0, None)


def test_summary_counts_seconds_and_the_workers_cpu_over_repeats():
    repeats = [
        repeat(100.0, 300, rps_series=[99.0, 101.0, 100.0], workers_cpu_pct=[80.0, 90.0]),
        repeat(90.0, 270, rps_series=[90.0, 90.0, 90.0], workers_cpu_pct=[70.0, 70.0]),
    ]
    result = records.summarise(repeats)
    assert (result["requests"], result["seconds"]) == (570, 6)
    assert result["workers_cpu_pct"] == pytest.approx((85.0 + 70.0) / 2)


def test_summary_under_a_budget_gives_requests_per_cpu():
    repeats = [repeat(300.0, 900, throttled_share=0.9), repeat(330.0, 990, throttled_share=1.0)]
    result = records.summarise(repeats, budget_cpus=0.3)
    assert result["budget_cpus"] == 0.3 and result["rps_per_cpu"] == pytest.approx(315.0 / 0.3)
    assert result["throttled_share"] == pytest.approx(0.95)
    assert records.summarise(repeats)["rps_per_cpu"] is None


def test_cgroup_window_reads_the_counters_inside_the_measured_window():
    def at(t: float, usage_s: float, throttled_s: float, periods: int, throttled: int):
        return t, CgroupReading(usage_s, throttled_s, periods, throttled)

    readings = [at(99.5, 0.0, 0.0, 0, 0), at(100.5, 1.0, 0.1, 50, 10),
                at(101.0, 1.15, 0.2, 100, 40), at(102.5, 1.6, 0.5, 250, 160),
                at(103.5, 9.0, 9.0, 900, 900)]  # fmt: skip
    window = records.cgroup_window(readings, 100.0, 103.0)
    assert window["cgroup_cpu_pct"] == pytest.approx(0.6 / 2.0 * 100)
    assert window["throttled_s"] == pytest.approx(0.4 / 2.0 * 3.0)
    assert window["throttled_share"] == pytest.approx(150 / 200)
    assert records.cgroup_window(readings[:2], 100.0, 103.0) == {}
    # v1 without a cpuacct hierarchy counts throttling but not usage
    no_usage = [(t, CgroupReading(None, r.throttled_s, r.periods, r.throttled_periods))
                for t, r in readings]  # fmt: skip
    assert records.cgroup_window(no_usage, 100.0, 103.0)["cgroup_cpu_pct"] is None


def test_repeat_cpu_comes_from_the_cgroup_when_there_is_one():
    result = {"measure_start": 100.0, "measure_stop": 103.0, "requests": 300, "failures": 0,
              "p50_ms": 1, "p90_ms": 2, "p99_ms": 3, "max_ms": 4.0}  # fmt: skip
    samples = [{"t": 101.0, "server_cpu_pct": 10.0}, {"t": 102.0, "server_cpu_pct": 12.0}]
    sampled = records.repeat_record(result, samples)
    assert sampled["server_cpu_source"] == "psutil" and sampled["server_cpu_pct"] == 11.0
    readings = [(100.5, CgroupReading(0.0, 0.0, 0, 0)), (102.5, CgroupReading(0.5, 0.0, 10, 0))]
    counted = records.repeat_record(result, samples, readings)
    assert counted["server_cpu_source"] == "cgroup" and counted["server_cpu_pct"] == 25.0
    assert counted["server_cpu_s"] == pytest.approx(0.75) and counted["throttled_share"] == 0.0


def settings_for_budget() -> Settings:
    return Settings("smoke", 1.0, 2.0, 1, locust_workers=0, pinning=None)


def test_no_budget_when_switched_off():
    assert calibration.choose_budget("off", settings_for_budget(), [], Path()) == (
        None, {"cpus": None, "source": "off"}
    )  # fmt: skip


def test_without_writable_cgroups_the_run_says_so_once_and_goes_on(tmp_path, monkeypatch, capsys):
    # the real locate(), pointed at a /proc/self without cgroup files
    monkeypatch.setattr(calibration, "locate", lambda: budget.locate(tmp_path))
    for server_cpus in (None, 0.3):
        chosen, meta = calibration.choose_budget(server_cpus, settings_for_budget(), [], tmp_path)
        assert chosen is None and meta["source"] == "unavailable"
        assert "no cgroups here" in meta["reason"]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("no CPU budget: no cgroups") for line in lines)


def test_a_given_budget_is_used_as_given():
    try:
        budget.Budget(None, budget.locate()).check()
    except budget.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    chosen, meta = calibration.choose_budget(0.35, settings_for_budget(), [], Path())
    # 0.35 × 10 ms would be under the 5 ms CFS slice: the period grows to 15 ms
    assert chosen.cpus == 0.35 and chosen.quota_us == round(0.35 * budget.period_for(0.35))
    assert meta == {**chosen.describe(), "source": "--server-cpus"}


def test_a_server_starts_unthrottled_and_is_held_to_the_budget_once_it_answers(tmp_path):
    """Start-up (imports) is not measured: under 0.15 CPU it stretched every cell's start."""
    try:
        layout = budget.locate()
        budget.Budget(None, layout).check()
    except budget.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    given = budget.Budget(0.15, layout)
    cell = matrix.Cell(all_servers()["epoll"], "app", SCENARIOS["plaintext"], 1)
    settings = dataclasses.replace(settings_for_budget(), budget=given)
    server, port = processes.start_server(cell, settings, tmp_path)
    try:
        started = server.cgroup.read()
        hierarchy, directory = server.cgroup.directories[0]
        if hierarchy.version == 2:
            limit = (directory / "cpu.max").read_text().split()
        else:
            limit = [(directory / f"cpu.cfs_{name}_us").read_text().strip()
                     for name in ("quota", "period")]  # fmt: skip
        processes.probe(port, SCENARIOS["plaintext"])
    finally:
        server.stop()
    assert limit == [str(given.quota_us), str(given.period_us)]
    # the interpreter's start and the app's imports ran before the quota and were not throttled
    assert started.usage_s > 0 and started.throttled_periods == 0


def test_a_failed_calibration_runs_unbudgeted_and_says_why(tmp_path, monkeypatch, capsys):
    try:
        budget.Budget(None, budget.locate()).check()
    except budget.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    monkeypatch.setattr(calibration, "NULL_SERVER", script_server("null", DIES_AT_START))
    cells, _ = matrix.plan("smoke", servers=["epoll"], scenarios=["plaintext"], users=[4])
    chosen, meta = calibration.choose_budget(None, settings_for_budget(), cells, tmp_path)
    assert chosen is None and meta["source"] == "unavailable"
    assert meta["reason"].startswith("calibration failed: server exited with code 3")
    assert "no CPU budget: calibration failed" in capsys.readouterr().err


def encoded(*values_us: int) -> str:
    histogram = latency.new_histogram()
    for value in values_us:
        latency.record(histogram, value)
    return latency.encode(histogram)


def test_summary_latencies_are_of_every_request_of_the_cell():
    repeats = [
        repeat(100.0, 3, latency_histogram=encoded(100, 200, 300), scheduled=3, late=0),
        repeat(100.0, 2, latency_histogram=encoded(50_000, 60_000), scheduled=2, late=1),
    ]
    result = records.summarise(repeats)
    assert result["max_us"] == pytest.approx(60_000, rel=1e-3)
    assert result["p50_us"] == pytest.approx(300, rel=1e-3)  # the 3rd of 5, across both repeats
    assert result["p99_ms"] == result["p99_us"] / 1000  # one truth: the histogram
    assert result["late_ratio"] == pytest.approx(1 / 5)
    assert latency.decode(result["latency_histogram"]).get_total_count() == 5


def test_a_repeat_takes_its_percentiles_from_the_histogram_when_there_is_one():
    result = {"p50_us": 870, "p90_us": 1200, "p99_us": 4100, "p999_us": 9000, "max_us": 20_000,
              "latency_histogram": encoded(870), "scheduled": 200, "late": 3}  # fmt: skip
    fields = records.histogram_latencies(result)
    assert (fields["p50_ms"], fields["max_ms"]) == (0.87, 20.0)
    assert fields["late_ratio"] == pytest.approx(0.015)
    assert records.histogram_latencies({"p50_ms": 1}) == {}  # a result from before histograms


def test_summary_of_no_repeats_is_all_none():
    assert set(records.summarise([]).values()) == {None}


def test_rps_series_per_second_of_the_window():
    counts = [(101.0, 500), (102.0, 1100), (103.0, 1500)]
    assert records.rps_series(counts, 100.0, 103.02, 1510) == [500.0, 600.0, 400.0]
    # a count from outside the window is ignored; a longer last interval is per second too
    assert records.rps_series([(99.0, 5), (101.0, 100)], 100.0, 103.0, 400) == [100.0, 150.0]


def test_p99_series_follows_the_seconds_of_the_window():
    result = {"measure_start": 100.0, "measure_stop": 103.02,
              "counts": [(101.0, 500), (102.0, 1100), (103.0, 1500)],
              "p99_ms_series": [(101.0, 4.0), (102.0, None), (103.0, 9.0)]}  # fmt: skip
    assert records.p99_series(result, 1510) == [4.0, None, 9.0]
    assert records.p99_series({**result, "p99_ms_series": []}, 1510) == [None] * 3


def test_window_samples_keep_the_measured_ones_relative_to_start():
    samples = [{"t": t} for t in (99.5, 100.5, 101.0, 103.0, 103.5)]
    kept = records.window_samples(samples, 100.0, 103.0)
    assert [s["t"] for s in kept] == [0.5, 1.0, 3.0]


# --- the matrix -------------------------------------------------------------------------------


def test_smoke_matrix_has_app_and_raw_cells_for_each_model():
    cells = matrix.build_matrix(PROFILES["smoke"], [])
    names = [cell.name for cell in cells]
    assert len(names) == len(set(names)) == 12
    assert "epoll--raw--plaintext--u8" in names
    assert "poll--app--fortunes--u8" in names


def test_overrides_narrow_the_matrix_and_reference_apps_keep_their_endpoints():
    cells = matrix.build_matrix(
        PROFILES["smoke"], [], servers=["epoll"], scenarios=["fortunes", "plaintext"], users=[2, 4]
    )
    names = {cell.name for cell in cells}
    assert "epoll--app--fortunes--u2" in names
    assert "epoll--raw--plaintext--u4" in names
    assert not any(name.startswith("epoll--raw--fortunes") for name in names)
    assert len(names) == 2 * 2 + 2


def test_unknown_names_are_a_usage_error_that_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"--servers: unknown pol \(valid: poll, threaded"):
        matrix.build_matrix(PROFILES["smoke"], [], servers=["pol"])
    with pytest.raises(ValueError, match=r"--scenarios: unknown nosuch \(valid: plaintext, json"):
        matrix.build_matrix(PROFILES["smoke"], [], scenarios=["nosuch"])


def test_peers_join_only_profiles_with_a_peers_part():
    peers = [name for name, spec in all_servers().items() if spec.kind != "ours"][:1]
    if not peers:
        pytest.skip("bench.serving.peers is not available")
    quick = matrix.build_matrix(PROFILES["quick"], peers)
    assert any(cell.server.name == peers[0] for cell in quick)
    assert matrix.select_peers("none", PROFILES["quick"]) == ([], {})


def test_smoke_runs_only_the_null_reference_beside_our_models_by_default():
    if "null" not in all_servers():
        pytest.skip("bench.serving.peers is not available")
    peer_names, _ = matrix.select_peers(None, PROFILES["smoke"])
    assert peer_names == ["null"]
    cells = matrix.build_matrix(PROFILES["smoke"], peer_names)
    assert [cell.name for cell in cells if cell.server.kind != "ours"] == [
        "null--app--plaintext--u8"
    ]


def test_named_peers_on_a_profile_without_a_peers_part_run_on_its_scenarios_and_users(
    monkeypatch,
):
    bare = dataclasses.replace(PROFILES["smoke"], peers=None)
    monkeypatch.setitem(PROFILES, "smoke", bare)
    cells, _ = matrix.plan("smoke", peers="null,werkzeug-base")  # was: silently no peer at all
    peer_cells = sorted(cell.name for cell in cells if cell.server.kind != "ours")
    assert peer_cells == [
        "null--app--plaintext--u8",
        "werkzeug-base--app--fortunes--u8",
        "werkzeug-base--app--plaintext--u8",
    ]


def test_a_named_peer_with_no_scenario_in_the_run_is_refused_with_why():
    with pytest.raises(ValueError, match="null serves only plaintext"):
        matrix.plan("smoke", scenarios=["fortunes"], peers="null")
    cells, _ = matrix.plan("smoke", scenarios=["fortunes"], peers="all")  # all: null just sits out
    assert not any(cell.server.name == "null" for cell in cells)


def test_pinning_splits_the_cores_we_may_use():
    pinning = choose_pinning()
    if pinning is None:
        pytest.skip("one core: nothing to pin")
    server, generator = set(pinning["server_cpus"]), set(pinning["generator_cpus"])
    assert server and generator and not server & generator


def test_locust_argv_names_the_user_class_and_the_workers():
    cell = matrix.Cell(all_servers()["poll"], "app", SCENARIOS["io"], 16)
    settings = Settings("smoke", 1.0, 2.0, 1, locust_workers=3, pinning=None)
    argv = locustrun.locust_argv(cell, 8000, settings, Path("/tmp/x"))
    assert argv[-1] == "IoUser"
    assert argv[argv.index("--users") + 1] == "16"
    assert argv[argv.index("--processes") + 1] == "3"
    assert argv[argv.index("--host") + 1] == "http://127.0.0.1:8000"


def test_the_sweep_follows_the_closed_loop_cells_at_each_fraction():
    cells = matrix.build_matrix(PROFILES["quick"], [])
    sweep = PROFILES["quick"].sweep
    open_cells = [cell for cell in cells if cell.mode == "open"]
    assert cells[len(cells) - len(open_cells) :] == open_cells
    assert len(open_cells) == len(sweep.servers) * len(sweep.scenarios) * len(sweep.fractions)
    names = {cell.name for cell in open_cells}
    assert {"epoll--app--io--o25", "poll--app--plaintext--o110"} <= names
    assert {cell.users for cell in open_cells} == {sweep.users}
    narrowed = matrix.build_matrix(PROFILES["quick"], [], servers=["epoll"], scenarios=["json"])
    assert {c.name for c in narrowed if c.mode == "open"} == {
        f"epoll--app--json--o{fraction:.0%}".rstrip("%") for fraction in sweep.fractions
    }


def finished(server: str, scenario: str, rps: float, flags=(), mode="closed") -> dict:
    return {"server": server, "app": "app", "scenario": scenario, "mode": mode,
            "summary": {"rps": rps}, "flags": list(flags)}  # fmt: skip


def test_an_open_cell_offers_its_fraction_of_the_best_trusted_closed_loop_rate():
    cell = matrix.Cell(all_servers()["poll"], "app", SCENARIOS["io"], 32, offered_fraction=0.5)
    records = [
        finished("poll", "io", 40.0),
        finished("poll", "io", 48.0, flags=["generator-bound"]),  # a lower bound still counts
        finished("poll", "io", 900.0, flags=["errors"]),  # fast errors are no capacity
        finished("poll", "io", 5000.0, mode="open"),
        finished("epoll", "io", 700.0),
        finished("poll", "plaintext", 1500.0),
    ]
    assert matrix.offering(cell, records).offered_rps == 24.0
    assert matrix.offering(cell, records[2:]).offered_rps is None


def test_an_open_cell_loads_the_schedule_before_the_scenarios():
    cell = matrix.Cell(all_servers()["poll"], "app", SCENARIOS["io"], 32, offered_fraction=0.5)
    settings = Settings("quick", 0.5, 1.0, 1, locust_workers=0, pinning=None)
    files = locustrun.locust_argv(cell, 8000, settings, Path("/tmp/x"))
    files = files[files.index("-f") + 1].split(",")
    assert [Path(f).name for f in files] == ["instrument.py", "openloop.py", "scenarios.py"]
    closed_cell = matrix.Cell(cell.server, "app", cell.scenario, 1)
    closed = locustrun.locust_argv(closed_cell, 8000, settings, Path("/tmp/x"))
    assert "openloop.py" not in closed[closed.index("-f") + 1]


def test_a_sweep_runs_as_one_batch_per_server_and_scenario():
    cells = matrix.build_matrix(PROFILES["quick"], [], servers=["poll", "epoll"])
    batches = matrix.batches(cells)
    closed = [batch for batch in batches if batch[0].mode == "closed"]
    swept = [batch for batch in batches if batch[0].mode == "open"]
    assert all(len(batch) == 1 for batch in closed)
    assert len(swept) == 2 * len(PROFILES["quick"].sweep.scenarios)
    assert all(len({matrix.sweep_key(c) for c in batch}) == 1 for batch in swept)
    assert [len(batch) for batch in swept] == [len(PROFILES["quick"].sweep.fractions)] * len(swept)


def test_an_open_cell_without_a_capacity_fails_without_starting_a_server(tmp_path):
    cells = [matrix.Cell(all_servers()["poll"], "app", SCENARIOS["io"], 32, offered_fraction=f)
             for f in (0.5, 1.0)]  # fmt: skip
    settings = Settings("quick", 0.5, 1.0, 1, locust_workers=0, pinning=None)
    records = cellrun.run_batch(cells, settings, tmp_path)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all(r["mode"] == "open" for r in records)
    assert "no trusted closed-loop cell" in records[0]["error"]
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_real_sweep_steps_through_its_rates_against_one_server(tmp_path):
    records = runner.run_load(
        tmp_path,
        LoadRequest(
            "quick",
            servers=["threaded"],
            scenarios=["plaintext"],
            users=[4],
            # three seconds: a shorter closed-loop cell is too-few, no capacity to offer from
            duration=3,
            warmup=0.5,
            peers="none",
        ),
        progress=False,
    )
    swept = [r for r in records if r["mode"] == "open"]
    capacity = next(r for r in records if r["cell"] == "threaded--app--plaintext--u4")
    assert [r["offered_fraction"] for r in swept] == list(PROFILES["quick"].sweep.fractions)
    assert len(list((tmp_path / "logs").glob("threaded--app--plaintext--o*.server.out"))) == 1
    for record in swept:
        assert record["status"] == "ok", record["error"]
        assert record["offered_rps"] == pytest.approx(
            record["offered_fraction"] * capacity["summary"]["rps"]
        )
        (step,) = record["repeats"]
        assert step["scheduled"] == step["requests"] > 0 and step["p99_us"] > 0
    light = swept[0]["repeats"][0]  # a quarter of capacity is offered, not taken
    assert light["rps"] == pytest.approx(swept[0]["offered_rps"], rel=0.3)


# --- real cells -------------------------------------------------------------------------------


def script_server(name: str, code: str) -> ServerSpec:
    """A test server: a Python snippet that gets HOST and PORT as argv."""
    return ServerSpec(name, "poll", "ours", lambda app, host, port: [sys.executable, "-c", code,
                      host, str(port)], prints_listening=True)  # fmt: skip


DIES_AT_START = "import sys; sys.stderr.write('cannot bind: boom\\n'); sys.exit(3)"

#: serves correctly, then exits in the middle of the measured window
DIES_UNDER_LOAD = """
import os, sys, threading, time
from werkzeug.serving import make_server
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World! <table>"]
server = make_server(sys.argv[1], int(sys.argv[2]), app, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"listening on http://{sys.argv[1]}:{server.server_port}", flush=True)
time.sleep(2.0)
sys.stderr.write("going away\\n")
os._exit(1)
"""


@pytest.fixture
def with_test_servers(monkeypatch):
    specs = {
        **all_servers(),
        "dies-at-start": script_server("dies-at-start", DIES_AT_START),
        "dies-under-load": script_server("dies-under-load", DIES_UNDER_LOAD),
    }
    monkeypatch.setattr(matrix, "all_servers", lambda: specs)


def read_cell(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / "cells" / f"{name}.json").read_text())


@pytest.mark.slow
def test_a_real_three_second_cell_has_sane_numbers(tmp_path):
    records = runner.run_load(
        tmp_path,
        LoadRequest(
            "smoke",
            servers=["threaded"],
            scenarios=["fortunes"],
            users=[4],
            duration=3,  # flags.MIN_SECONDS: a shorter window is too-few
            warmup=1,
            peers="none",
        ),
        progress=False,
    )
    assert [record["cell"] for record in records] == ["threaded--app--fortunes--u4"]
    cell = read_cell(tmp_path, "threaded--app--fortunes--u4")
    assert set(cell) == CELL_KEYS
    assert cell["status"] == "ok" and cell["error"] is None
    assert set(cell["flags"]) <= {"generator-bound"}  # a busy machine may starve Locust
    assert cell["kind"] == "ours" and cell["model"] == "threaded" and cell["app"] == "app"
    (measured,) = cell["repeats"]
    assert set(measured) >= REPEAT_KEYS
    assert measured["rps"] > 0 and measured["requests"] > 0 and measured["failures"] == 0
    assert measured["p50_ms"] <= measured["p90_ms"] <= measured["p99_ms"] <= measured["max_ms"]
    assert 0 < measured["p50_us"] <= measured["p99_us"] <= measured["p999_us"] <= measured["max_us"]
    histogram = latency.decode(cell["summary"]["latency_histogram"])
    assert histogram.get_total_count() >= measured["requests"]  # the tail after the last report
    assert cell["mode"] == "closed" and cell["summary"]["late_ratio"] is None
    assert measured["window_s"] == pytest.approx(3.0, abs=0.3)
    assert measured["rps_series"] and all(value > 0 for value in measured["rps_series"])
    assert measured["samples"] and measured["server_procs"] >= 1
    assert measured["server_cpu_pct"] > 0 and measured["server_rss_mb"] > 0
    assert cell["summary"]["rps"] == measured["rps"]
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["profile"] == "smoke"
    assert meta["pinning"] == cell["pinning"]
    assert "threaded" in meta["servers"] and meta["packages"]
    assert measured["locust_workers"] == 1 and cell["server_measured"] is True
    assert meta["app"] == "bench.apps.app:app" and meta["scenario_file"].endswith("scenarios.py")
    assert meta["budget"]["source"] in ("calibrated", "unavailable")
    if meta["budget"]["source"] == "calibrated":  # the null server measured Locust's capacity
        calibration = meta["budget"]["calibration"]
        assert calibration["generator_rps"] > 0
        assert calibration["cell"] == "null--app--plaintext--u4"
        assert cell["budget"] == {key: meta["budget"][key] for key in cell["budget"]}
        assert cell["summary"]["rps_per_cpu"] == measured["rps"] / cell["budget"]["cpus"]
        assert measured["server_cpu_source"] == "cgroup"


@pytest.mark.slow
def test_a_budgeted_fork_cell_holds_every_child_to_the_budget(tmp_path):
    try:
        budget.Budget(None, budget.locate()).check()
    except budget.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    record, _raw_app = runner.run_load(
        tmp_path,
        LoadRequest(
            "smoke",
            servers=["fork"],
            scenarios=["plaintext"],
            users=[8],
            duration=2,
            warmup=1,
            peers="none",
            server_cpus=0.2,
        ),
        progress=False,
    )
    (measured,) = record["repeats"]
    assert record["budget"]["cpus"] == 0.2 and measured["server_cpu_source"] == "cgroup"
    assert measured["server_procs"] > 1  # the per-connection children ran, inside the budget
    assert 0 < measured["server_cpu_pct"] < 20 * 1.3
    assert measured["throttled_share"] > 0
    assert not list(Path(budget.locate().limit.parent).glob(f"bench-{os.getpid()}-*"))


@pytest.mark.slow
def test_servers_that_die_are_failed_cells_and_the_run_goes_on(tmp_path, with_test_servers):
    records = runner.run_load(
        tmp_path,
        LoadRequest(
            "smoke",
            servers=["dies-at-start", "dies-under-load"],
            scenarios=["fortunes"],
            users=[2],
            duration=2,
            warmup=1,
            peers="none",
        ),
        progress=False,
    )
    at_start, under_load = records
    assert at_start["status"] == "failed" and at_start["flags"] == ["failed"]
    assert "exited with code 3" in at_start["error"] and "boom" in at_start["error"]
    assert under_load["status"] == "failed" and "failed" in under_load["flags"]
    assert "died under load" in under_load["error"] and "going away" in under_load["error"]
    assert read_cell(tmp_path, "dies-under-load--app--fortunes--u2")["status"] == "failed"


def test_a_server_limited_to_some_scenarios_gets_only_those(monkeypatch):
    canned = ServerSpec("canned", "null", "reference", lambda a, h, p: [], scenarios=("plaintext",))
    monkeypatch.setattr(matrix, "all_servers", lambda: {**all_servers(), "canned": canned})
    cells = matrix.build_matrix(PROFILES["quick"], ["canned"], scenarios=["plaintext", "io"])
    assert {cell.name for cell in cells if cell.server is canned} == {"canned--app--plaintext--u16"}


def test_an_explicit_server_list_runs_no_peers_unless_asked():
    cells, _ = matrix.plan("quick", servers=["epoll"], scenarios=["plaintext"])
    assert {cell.server.name for cell in cells} == {"epoll"}


#: a leader that starts a grandchild in its group, then ignores SIGTERM
STUBBORN_TREE = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("ready", flush=True)
time.sleep(60)
"""


def test_process_group_pins_its_tree_and_stop_kills_all_of_it(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "STOP_TIMEOUT_S", 0.5)
    cpus = sorted(os.sched_getaffinity(0))[-1:]
    group = processes.ProcessGroup(
        [sys.executable, "-c", STUBBORN_TREE], tmp_path / "tree", cpus, processes.child_env()
    )
    deadline = time.monotonic() + 20
    while b"ready" not in group.stdout_path.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = [psutil.Process(group.pid), *psutil.Process(group.pid).children(recursive=True)]
    assert len(tree) == 2
    assert all(process.cpu_affinity() == cpus for process in tree)
    group.stop()
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []


def settings_for(**fields) -> Settings:
    return Settings("smoke", 1.0, 2.0, 1, 0, None, **fields)


@pytest.mark.parametrize(
    ("server_host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://[::1]:8000"),
        ("10.1.2.3", "http://10.1.2.3:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_servers_bound_elsewhere_are_reached_where_they_listen(server_host, url):
    assert settings_for(server_host=server_host).base_url(8000) == url


def test_a_master_for_remote_workers_binds_where_asked_and_waits_for_them():
    settings = settings_for(master_bind=("0.0.0.0", 6000), expect_workers=3)
    cell = matrix.Cell(all_servers()["epoll"], "app", SCENARIOS["plaintext"], 8)
    argv = locustrun.locust_argv(cell, 8000, settings, Path("/tmp/x"))
    assert argv[argv.index("--master-bind-host") + 1] == "0.0.0.0"
    assert argv[argv.index("--master-bind-port") + 1] == "6000"
    assert argv[argv.index("--expect-workers") + 1] == "3"
    assert "--master" in argv and "--processes" not in argv
    assert argv[-1] == "PlaintextUser"


@pytest.mark.slow
def test_server_host_is_where_the_servers_bind(tmp_path, monkeypatch):
    threaded, hosts = all_servers()["threaded"], []

    def recording_argv(app: str, host: str, port: int) -> list[str]:
        hosts.append(host)
        return threaded.argv(app, host, port)

    spec = dataclasses.replace(threaded, argv=recording_argv)
    monkeypatch.setattr(matrix, "all_servers", lambda: {"threaded": spec})
    records = runner.run_load(
        tmp_path,
        LoadRequest(
            "smoke",
            servers=["threaded"],
            scenarios=["fortunes"],
            users=[2],
            duration=1,
            warmup=0.5,
            peers="none",
            server_host="localhost",
        ),
        progress=False,
    )
    assert [record["status"] for record in records] == ["ok"], records[0]["error"]
    assert hosts == ["localhost"]
    assert json.loads((tmp_path / "meta.json").read_text())["server_host"] == "localhost"


def test_a_server_that_cannot_join_its_cgroup_is_stopped_and_fails(tmp_path):
    try:
        cgroup = budget.Budget(0.5, budget.locate()).cgroup("gone")
    except budget.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    for _, directory in cgroup.directories:
        directory.rmdir()  # gone before the server could join it
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(processes.CellFailed, match="could not join its cgroup") as failed:
        processes.ProcessGroup(argv, tmp_path / "server", None, processes.child_env(), cgroup)
    assert isinstance(failed.value.__cause__, OSError)
    left = [child for child in psutil.Process().children() if child.cmdline()[1:] == argv[1:]]
    assert left == [], "the server was left running"


# --- the console ------------------------------------------------------------------------------


def test_the_console_shows_flags_and_why_a_cell_failed_as_the_report_does(capsys):
    from bench.analysis.report_tables import format_value

    cells = [matrix.Cell(all_servers()["poll"], "app", SCENARIOS["plaintext"], 8)]
    settings = Settings("smoke", 1.0, 2.0, 1, locust_workers=0, pinning=None)
    bound = {"cell": "threaded--app--plaintext--u8", "summary": {"rps": 8024.0},
             "flags": ["generator-bound", "noisy"], "status": "ok", "error": None}  # fmt: skip
    error = "server exited with code 3 at start\n--- server stderr (tail) ---"
    failed = {"cell": "fork--app--plaintext--u8", "summary": {"rps": None}, "flags": ["failed"],
              "status": "failed", "error": error}  # fmt: skip
    with progress.CellProgress(cells, settings, enabled=False) as bar:
        bar.finished(bound)  # rich markup used to eat "[generator-bound]"
        bar.finished(failed)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"8024 req/s [{format_value('flags', bound['flags'])}]")
    assert lines[0].endswith("[generator-bound, noisy]")
    assert lines[1].endswith("- req/s [failed] server exited with code 3 at start")
