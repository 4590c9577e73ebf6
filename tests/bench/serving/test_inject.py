"""The server-side injection: off by default, a slower request-head parse when asked, started by
the runner for our servers only, and seen by `compare` in a real (short) load run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.analysis.compare import REGRESS_THRESHOLD, compare_runs
from bench.catalogue import SCENARIOS
from bench.measure import cellrun, matrix, processes, records
from bench.measure.childenv import child_env
from bench.measure.settings import Settings, choose_pinning
from bench.rundir import load_run, write_json
from bench.serving import inject
from bench.serving.registry import all_servers

ROOT = Path(__file__).resolve().parents[3]

#: parses one browser head and prints what it saw: event, whether the method is wrapped, µs taken
PROBE = """
import sys, time
from bench.micro.workloads import BROWSER_HEAD
from servers.http import ServerConnection
conn = ServerConnection()
conn.receive_data(BROWSER_HEAD)
start = time.perf_counter()
event = conn.next_event()
took_us = (time.perf_counter() - start) * 1e6
print(type(event).__name__, hasattr(ServerConnection.next_event, "__wrapped__"), took_us,
      " ".join(sys.argv[1:]))
"""


def run_probe(tmp_path: Path, delay: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "inject_probe.py").write_text(PROBE)
    env = child_env(PYTHONPATH=f"{tmp_path}:{ROOT}")
    env.pop(inject.DELAY_ENV, None)
    if delay is not None:
        env[inject.DELAY_ENV] = delay
    command = [sys.executable, "-m", "bench.serving.inject", "-m", "inject_probe", "a", "--b"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_without_the_variable_the_module_runs_untouched(tmp_path):
    finished = run_probe(tmp_path, None)
    assert finished.returncode == 0, finished.stderr
    event, wrapped, _, args = finished.stdout.split(maxsplit=3)
    assert (event, wrapped, args.strip()) == ("Request", "False", "a --b")
    assert run_probe(tmp_path, "0").stdout.split()[1] == "False"


def test_with_the_variable_every_parsed_head_costs_that_much_more(tmp_path):
    finished = run_probe(tmp_path, "20000")
    assert finished.returncode == 0, finished.stderr
    event, wrapped, took_us, args = finished.stdout.split(maxsplit=3)
    assert (event, wrapped, args.strip()) == ("Request", "True", "a --b")
    assert float(took_us) >= 20000  # the busy-wait ends only at its deadline


def test_a_bad_value_is_one_line_naming_it(tmp_path):
    finished = run_probe(tmp_path, "fast")
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [
        "bench.serving.inject: error: BENCH_INJECT_SERVER_DELAY_US must be a whole number of µs, "
        "not 'fast'"
    ]


def test_the_launcher_needs_a_module():
    command = [sys.executable, "-m", "bench.serving.inject", "servers"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2 and "usage:" in finished.stderr


def test_only_our_servers_are_wrapped(monkeypatch):
    ours = all_servers()["epoll"].argv("bench.apps.app:app", "127.0.0.1", 0)
    assert inject.wrap_argv(ours)[:5] == [
        sys.executable,
        "-m",
        "bench.serving.inject",
        "-m",
        "servers",
    ]
    assert inject.wrap_argv(ours)[5:] == ours[3:]
    monkeypatch.delenv(inject.DELAY_ENV, raising=False)
    assert not inject.injecting()
    monkeypatch.setenv(inject.DELAY_ENV, "50")
    assert inject.injecting() and inject.delay_us() == 50


def settings(duration_s: float) -> Settings:
    return Settings("smoke", 0.5, duration_s, 1, 0, choose_pinning())


def run_cells(run_dir: Path, cells: list[matrix.Cell], duration_s: float) -> dict[str, dict]:
    records = {}
    for cell in cells:
        record = cellrun.run_cell(cell, settings(duration_s), run_dir / "logs")
        write_json(run_dir / "cells" / f"{cell.name}.json", record)
        records[cell.name] = record
    return records


@pytest.mark.slow
def test_the_runner_starts_our_server_through_the_launcher(tmp_path, monkeypatch):
    monkeypatch.setenv(inject.DELAY_ENV, "1")
    cell = matrix.Cell(all_servers()["poll"], "raw", SCENARIOS["plaintext"], 1)
    server, port = processes.start_server(cell, settings(1.0), tmp_path)
    try:
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:5] == [b"-m", b"bench.serving.inject", b"-m", b"servers"]
        processes.probe(port, SCENARIOS["plaintext"])  # answers 200 with the marker
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert records.cell_header(cell, settings(1.0))["inject_server_delay_us"] == "1"


@pytest.mark.slow
def test_an_injected_delay_raises_the_server_rows_of_a_real_run(tmp_path, monkeypatch):
    """Two short real runs of epoll (raw app) beside the null server, without and with 300 µs
    per request head: compare's CPU-per-request row ÷ the null server regresses."""
    servers = all_servers()
    cells = [
        matrix.Cell(servers["epoll"], "raw", SCENARIOS["plaintext"], 8),
        matrix.Cell(servers["null"], "app", SCENARIOS["plaintext"], 8),
    ]
    monkeypatch.delenv(inject.DELAY_ENV, raising=False)
    run_cells(tmp_path / "before", cells, duration_s=6)
    monkeypatch.setenv(inject.DELAY_ENV, "300")
    after = run_cells(tmp_path / "after", cells, duration_s=6)
    assert after["epoll--raw--plaintext--u8"]["inject_server_delay_us"] == "300"
    assert "inject_server_delay_us" not in after["null--app--plaintext--u8"]
    rows = {
        row.name: row
        for row in compare_runs(
            load_run(tmp_path / "before"), load_run(tmp_path / "after"), REGRESS_THRESHOLD
        )
    }
    assert not any(name.startswith("load null") for name in rows)  # it never calls the app
    row = rows["load epoll plaintext u8 raw cpu-per-request/null"]
    assert row.verdict == "REGRESSED", row
    assert row.change > 1.0  # 300 µs on a request that costs well under 300 µs of CPU
