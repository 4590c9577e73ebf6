"""Open loop against a known truth: a server that stalls for 200 ms every 2 s.

The poll model runs one request at a time, so a stall in the app (``stallapp.py``) stalls every
connection. A closed-loop user waits out the stall with one request and sends nothing meanwhile, so
the stall is a handful of requests and its p99 does not show it (coordinated omission). The open
loop keeps the schedule: every request meant to leave during the stall counts from its intended
send time, about a tenth of them are slow, and the corrected p99 shows the stall. With only a few
requests allowed in flight, the requests held back leave after the stall and answer fast: only the
correction (latency from the intended send time) shows the stall, not their response times.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure import latency
from tests.bench.measure.stallapp import PERIOD_S, STALL_S

REPO_ROOT = Path(__file__).resolve().parents[3]
MEASURE = REPO_ROOT / "bench" / "measure"
#: the measured window: it holds two stalls (the first starts PERIOD_S after the first request)
WARMUP_S, DURATION_S = 0.5, 2 * PERIOD_S + 0.5
#: the open loop's offered rate, and a bound on requests in flight far below rate × stall (80)
RATE, IN_FLIGHT = 400, 2


@pytest.fixture
def stalling_server():
    """``python -m servers --model poll`` serving the stalling app; its URL once it listens."""
    server = subprocess.Popen(
        [sys.executable, "-m", "servers", "--model", "poll", "--port", "0",
         "tests.bench.measure.stallapp:app"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    try:
        match = re.search(r"listening on (http://\S+)", server.stdout.readline())
        assert match, "the server printed no 'listening on' line"
        yield match.group(1)
    finally:
        server.terminate()
        server.wait(10)


def run_locust(
    host: str, tmp_path: Path, open_loop: bool, users: int, workers: int = 0, rates=(RATE,)
) -> dict:
    """A measured window of PlaintextUser per rate, open or closed loop; the result file."""
    result_file = tmp_path / f"result-{open_loop}.json"
    files = [MEASURE / "instrument.py", *([MEASURE / "openloop.py"] if open_loop else []),
             MEASURE / "scenarios.py"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "BENCH_WARMUP_S": str(WARMUP_S),
           "BENCH_DURATION_S": str(DURATION_S), "BENCH_RESULT_FILE": str(result_file),
           "BENCH_OPEN_RATES": ",".join(map(str, rates)),
           "BENCH_STEPS": str(len(rates))}  # fmt: skip
    argv = [
        sys.executable, "-m", "locust", "-f", ",".join(map(str, files)), "--headless",
        "--host", host, "--users", str(users), "--spawn-rate", str(users * 4), "--run-time",
        "30s", "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
        "--csv", str(tmp_path / f"stats-{open_loop}"),
        *(["--processes", str(workers)] if workers else []), "PlaintextUser",
    ]  # fmt: skip
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(result_file.read_text())


def response_time_p99_ms(tmp_path: Path, open_loop: bool) -> float:
    """Locust's own p99: response times only, from when each request actually left."""
    with open(tmp_path / f"stats-{open_loop}_stats.csv", newline="") as file:
        (total,) = [row for row in csv.DictReader(file) if row["Name"] == "Aggregated"]
    return float(total["99%"])


@pytest.mark.slow
def test_the_corrected_open_loop_p99_shows_the_stall_and_the_closed_loop_p99_does_not(
    stalling_server, tmp_path
):
    stall_us = STALL_S * 1_000_000
    closed = run_locust(stalling_server, tmp_path, open_loop=False, users=1)
    opened = run_locust(stalling_server, tmp_path, open_loop=True, users=IN_FLIGHT)
    # both saw the stalls: their slowest request waited one out
    assert closed["max_us"] >= 0.9 * stall_us and opened["max_us"] >= 0.9 * stall_us
    # closed loop: one request per stall, lost among thousands
    assert closed["p99_us"] < stall_us / 2, closed["p99_us"]
    # open loop: ~STALL_S / PERIOD_S of the requests were meant to leave during a stall, and
    # their latency runs from 0 to STALL_S, so the 99th percentile sits near the stall's length
    assert opened["p99_us"] >= stall_us / 2, opened["p99_us"]
    # ... because latency counts from the intended send time: most of them were held back at
    # the generator, left late, and their own response times (Locust's p99) hide the stall
    assert opened["late"] >= 0.5 * RATE * STALL_S * 2
    assert response_time_p99_ms(tmp_path, open_loop=True) * 1000 < stall_us / 2
    assert opened["scheduled"] == opened["requests"]  # every measured request had a send time


@pytest.mark.slow
def test_each_step_offers_its_rate_shared_by_workers(stalling_server, tmp_path):
    rates = (RATE / 4, RATE)
    result = run_locust(stalling_server, tmp_path, open_loop=True, users=8 * IN_FLIGHT,
                        workers=2, rates=rates)  # fmt: skip
    assert len(result["steps"]) == len(rates)
    for step, rate in zip(result["steps"], rates, strict=True):
        window_s = step["measure_stop"] - step["measure_start"]
        assert step["scheduled"] == pytest.approx(rate * window_s, rel=0.2)
        assert step["requests"] == step["scheduled"] >= step["late"]
        histogram = latency.decode(step["latency_histogram"])
        assert histogram.get_total_count() == step["requests"]
