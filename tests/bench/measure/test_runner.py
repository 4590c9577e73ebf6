"""The load runner: flags and summaries from numbers, the matrix from profiles, and real cells.

The slow tests run real servers (``python -m servers``) under real Locust for 2-second cells, a
server that dies at start and one that dies under load, and a runner interrupted mid-cell.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from bench.measure import (
    budget,
    cgroups,
    latency,
    matrix,
    runner,
)
from bench.measure.profiles import PROFILES
from bench.measure.settings import LoadRequest
from bench.serving.registry import all_servers
from tests.bench.measure.testservers import DIES_AT_START, script_server

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
        budget.Budget(None, cgroups.locate()).check()
    except cgroups.BudgetUnavailable as why:
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
    assert not list(Path(cgroups.locate().limit.parent).glob(f"bench-{os.getpid()}-*"))


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
