"""The load runner: flags and summaries from numbers, the matrix from profiles, and real cells.

The slow tests run real servers (``python -m servers``) under real Locust for 2-second cells, a
server that dies at start and one that dies under load, and a runner interrupted mid-cell.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

import bench.measure.runner as runner
from bench.measure.profiles import PROFILES, SCENARIOS
from bench.serving.registry import ServerSpec, all_servers

REPO_ROOT = Path(__file__).resolve().parents[3]

CELL_KEYS = {
    "cell", "server", "model", "kind", "app", "app_target", "scenario", "users", "status",
    "error", "flags", "pinning", "warmup_s", "duration_s", "repeats", "summary",
}  # fmt: skip
REPEAT_KEYS = {
    "rps", "requests", "failures", "fail_ratio", "p50_ms", "p90_ms", "p99_ms", "max_ms",
    "rps_series", "server_cpu_pct", "server_cpu_s", "server_rss_mb", "server_procs",
    "server_threads", "generator_cpu_pct", "samples",
}  # fmt: skip
SUMMARY_KEYS = {
    "rps", "rps_min", "rps_max", "p50_ms", "p90_ms", "p99_ms", "max_ms", "fail_ratio",
    "server_cpu_pct", "server_rss_mb", "server_procs", "server_threads", "generator_cpu_pct",
    "cpu_s_per_1k",
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
    result = runner.summarise(repeats)
    assert set(result) == SUMMARY_KEYS
    assert (result["rps"], result["rps_min"], result["rps_max"]) == (200.0, 100.0, 300.0)
    assert result["fail_ratio"] == pytest.approx(10 / 6000)
    assert result["cpu_s_per_1k"] == pytest.approx(6.0 / 6000 * 1000)
    assert (result["server_rss_mb"], result["server_procs"], result["max_ms"]) == (80.0, 5, 9.0)


def test_summary_of_no_repeats_is_all_none():
    assert set(runner.summarise([]).values()) == {None}


def test_rps_series_per_second_of_the_window():
    counts = [(101.0, 500), (102.0, 1100), (103.0, 1500)]
    assert runner.rps_series(counts, 100.0, 103.02, 1510) == [500.0, 600.0, 400.0]
    # a count from outside the window is ignored; a longer last interval is per second too
    assert runner.rps_series([(99.0, 5), (101.0, 100)], 100.0, 103.0, 400) == [100.0, 150.0]


def test_window_samples_keep_the_measured_ones_relative_to_start():
    samples = [{"t": t} for t in (99.5, 100.5, 101.0, 103.0, 103.5)]
    kept = runner.window_samples(samples, 100.0, 103.0)
    assert [s["t"] for s in kept] == [0.5, 1.0, 3.0]


# --- the matrix -------------------------------------------------------------------------------


def test_smoke_matrix_has_app_and_raw_cells_for_each_model():
    cells = runner.build_matrix(PROFILES["smoke"], [])
    names = [cell.name for cell in cells]
    assert len(names) == len(set(names)) == 12
    assert "epoll--raw--plaintext--u8" in names
    assert "poll--app--fortunes--u8" in names


def test_overrides_narrow_the_matrix_and_reference_apps_keep_their_endpoints():
    cells = runner.build_matrix(
        PROFILES["smoke"], [], servers=["epoll"], scenarios=["fortunes", "plaintext"], users=[2, 4]
    )
    names = {cell.name for cell in cells}
    assert "epoll--app--fortunes--u2" in names
    assert "epoll--raw--plaintext--u4" in names
    assert not any(name.startswith("epoll--raw--fortunes") for name in names)
    assert len(names) == 2 * 2 + 2


def test_unknown_names_are_a_usage_error_that_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"--servers: unknown pol \(valid: poll, threaded"):
        runner.build_matrix(PROFILES["smoke"], [], servers=["pol"])
    with pytest.raises(ValueError, match=r"--scenarios: unknown nosuch \(valid: plaintext, json"):
        runner.build_matrix(PROFILES["smoke"], [], scenarios=["nosuch"])


def test_peers_run_by_default_only_on_profiles_with_a_peers_part():
    quick, _ = runner.plan("quick")
    smoke, _ = runner.plan("smoke")
    assert any(cell.server.kind != "ours" for cell in quick)
    assert not any(cell.server.kind != "ours" for cell in smoke)
    assert runner.select_peers("none", PROFILES["quick"]) == ([], {})


def test_named_peers_on_a_profile_without_a_peers_part_run_on_its_scenarios_and_users():
    cells, _ = runner.plan("smoke", peers="null,werkzeug-base")  # was: silently no peer at all
    peer_cells = sorted(cell.name for cell in cells if cell.server.kind != "ours")
    assert peer_cells == [
        "null--app--plaintext--u8",
        "werkzeug-base--app--fortunes--u8",
        "werkzeug-base--app--plaintext--u8",
    ]


def test_a_named_peer_with_no_scenario_in_the_run_is_refused_with_why():
    with pytest.raises(ValueError, match="null serves only plaintext"):
        runner.plan("smoke", scenarios=["fortunes"], peers="null")
    cells, _ = runner.plan("smoke", scenarios=["fortunes"], peers="all")  # all: null just sits out
    assert not any(cell.server.name == "null" for cell in cells)


def test_pinning_splits_the_cores_we_may_use():
    pinning = runner.choose_pinning()
    if pinning is None:
        pytest.skip("one core: nothing to pin")
    server, generator = set(pinning["server_cpus"]), set(pinning["generator_cpus"])
    assert server and generator and not server & generator


def test_locust_argv_names_the_user_class_and_the_workers():
    cell = runner.Cell(all_servers()["poll"], "app", SCENARIOS["io"], 16)
    settings = runner.Settings("smoke", 1.0, 2.0, 1, locust_workers=3, pinning=None)
    argv = runner.locust_argv(cell, 8000, settings, Path("/tmp/x"))
    assert argv[-1] == "IoUser"
    assert argv[argv.index("--users") + 1] == "16"
    assert argv[argv.index("--processes") + 1] == "3"
    assert argv[argv.index("--host") + 1] == "http://127.0.0.1:8000"


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
    monkeypatch.setattr(runner, "all_servers", lambda: specs)


def read_cell(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / "cells" / f"{name}.json").read_text())


@pytest.mark.slow
def test_a_real_two_second_cell_has_sane_numbers(tmp_path):
    records = runner.run_load(
        tmp_path, "smoke", servers=["threaded"], scenarios=["fortunes"], users=[4],
        duration=2, warmup=1, peers="none", progress=False,
    )  # fmt: skip
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
    assert measured["window_s"] == pytest.approx(2.0, abs=0.3)
    assert measured["rps_series"] and all(value > 0 for value in measured["rps_series"])
    assert measured["samples"] and measured["server_procs"] >= 1
    assert measured["server_cpu_pct"] > 0 and measured["server_rss_mb"] > 0
    assert cell["summary"]["rps"] == measured["rps"]
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["profile"] == "smoke"
    assert meta["pinning"] == cell["pinning"]
    assert "threaded" in meta["servers"] and meta["packages"]


@pytest.mark.slow
def test_servers_that_die_are_failed_cells_and_the_run_goes_on(tmp_path, with_test_servers):
    records = runner.run_load(
        tmp_path, "smoke", servers=["dies-at-start", "dies-under-load"], scenarios=["fortunes"],
        users=[2], duration=2, warmup=1, peers="none", progress=False,
    )  # fmt: skip
    at_start, under_load = records
    assert at_start["status"] == "failed" and at_start["flags"] == ["failed"]
    assert "exited with code 3" in at_start["error"] and "boom" in at_start["error"]
    assert under_load["status"] == "failed" and "failed" in under_load["flags"]
    assert "died under load" in under_load["error"] and "going away" in under_load["error"]
    assert read_cell(tmp_path, "dies-under-load--app--fortunes--u2")["status"] == "failed"


def test_a_server_limited_to_some_scenarios_gets_only_those(monkeypatch):
    canned = ServerSpec("canned", "null", "reference", lambda a, h, p: [], scenarios=("plaintext",))
    monkeypatch.setattr(runner, "all_servers", lambda: {**all_servers(), "canned": canned})
    cells = runner.build_matrix(PROFILES["quick"], ["canned"], scenarios=["plaintext", "io"])
    assert {cell.name for cell in cells if cell.server is canned} == {"canned--app--plaintext--u16"}


def test_an_explicit_server_list_runs_no_peers_unless_asked():
    cells, _ = runner.plan("quick", servers=["epoll"], scenarios=["plaintext"])
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
    monkeypatch.setattr(runner, "STOP_TIMEOUT_S", 0.5)
    cpus = sorted(os.sched_getaffinity(0))[-1:]
    group = runner.ProcessGroup(
        [sys.executable, "-c", STUBBORN_TREE], tmp_path / "tree", cpus, runner.child_env()
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


# --- the console ------------------------------------------------------------------------------


def test_the_console_shows_flags_and_why_a_cell_failed_as_the_report_does(capsys):
    from bench.analysis.report import format_value

    cells = [runner.Cell(all_servers()["poll"], "app", SCENARIOS["plaintext"], 8)]
    settings = runner.Settings("smoke", 1.0, 2.0, 1, locust_workers=0, pinning=None)
    bound = {"cell": "threaded--app--plaintext--u8", "summary": {"rps": 8024.0},
             "flags": ["generator-bound", "noisy"], "status": "ok", "error": None}  # fmt: skip
    error = "server exited with code 3 at start\n--- server stderr (tail) ---"
    failed = {"cell": "fork--app--plaintext--u8", "summary": {"rps": None}, "flags": ["failed"],
              "status": "failed", "error": error}  # fmt: skip
    with runner.CellProgress(cells, settings, enabled=False) as bar:
        bar.finished(bound)  # rich markup used to eat "[generator-bound]"
        bar.finished(failed)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"8024 req/s [{format_value('flags', bound['flags'])}]")
    assert lines[0].endswith("[generator-bound, noisy]")
    assert lines[1].endswith("- req/s [failed] server exited with code 3 at start")
