"""The measured window's latencies: the histogram in the result file holds every request after
warm-up, its percentiles match the raw latencies within its precision, and workers' histograms
reach the master (whose warm-up also ends the workers', though they start up to 0.5 s later).

Locust runs as a subprocess (it monkey-patches the standard library with gevent), loading
``instrument.py`` beside the scenario file as the runner does; ``BENCH_RAW_LATENCY_FILE`` makes it
write every recorded latency too, which only tests ask for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bench.measure import latency

REPO_ROOT = Path(__file__).resolve().parents[3]
MEASURE = REPO_ROOT / "bench" / "measure"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]


@pytest.fixture
def host():
    server = make_server("127.0.0.1", 0, hello, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def run_measured(
    host: str,
    tmp_path: Path,
    workers: int,
    scenario_file: Path = MEASURE / "scenarios.py",
    user_class: str = "PlaintextUser",
    warmup_s: float = 0.5,
) -> tuple[dict, list[int]]:
    """A 1.5 s measured window after the warm-up: the result file and the raw latencies."""
    result_file, raw_file = tmp_path / "result.json", tmp_path / "raw.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "BENCH_WARMUP_S": str(warmup_s),
           "BENCH_DURATION_S": "1.5", "BENCH_RESULT_FILE": str(result_file),
           "BENCH_RAW_LATENCY_FILE": str(raw_file),
           "BENCH_WINDOW_MARKS": str(tmp_path / "window.marks")}  # fmt: skip
    argv = [
        sys.executable, "-m", "locust", "-f", f"{MEASURE / 'instrument.py'},{scenario_file}",
        "--headless", "--host", host, "--users", "4",
        "--spawn-rate", "16", "--run-time", "20s", "--only-summary", "--loglevel", "WARNING",
        "--exit-code-on-error", "0", user_class,
    ]  # fmt: skip
    if workers:
        argv[-1:-1] = ["--processes", str(workers)]
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(result_file.read_text()), json.loads(raw_file.read_text())


def exact_percentile(values: list[int], percentile: float) -> int:
    """The value at rank round(percentile % of the count) of the sorted values (at least the
    first): HdrHistogram's definition, so only its bucket precision can tell the two apart."""
    rank = max(1, int(percentile * len(values) / 100 + 0.5))
    return sorted(values)[rank - 1]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "two-workers"])
def test_histogram_percentiles_match_the_raw_latencies_of_a_short_cell(host, tmp_path, workers):
    result, raw = run_measured(host, tmp_path, workers)
    histogram = latency.decode(result["latency_histogram"])
    assert len(raw) >= 100 and histogram.get_total_count() == len(raw)
    # every request of the window is in it; Locust's own count may miss a worker's last report
    assert len(raw) >= result["requests"] > 0
    for key, percentile in latency.PERCENTILES.items():
        exact = exact_percentile(raw, percentile)
        assert abs(result[key] - exact) <= exact / 1024 + 1, (key, result[key], exact)
    assert abs(result["max_us"] - max(raw)) <= max(raw) / 1024 + 1
    assert result["scheduled"] == result["late"] == 0  # closed loop: no schedule
    # each user had a request in flight when it was stopped: answered soon enough, not a failure
    assert result["unanswered"] == 0 and result["failures"] == 0
    # the window was marked open and closed once, by the master alone
    assert (tmp_path / "window.marks").read_text() == "start\nstop\n"
    # per endpoint and per second, as Locust counts them (with workers, a report sent just before
    # a worker heard of the reset may land in the window, or its last one miss it)
    (endpoint,) = result["endpoints"]
    assert (endpoint["method"], endpoint["name"]) == ("GET", "/plaintext")
    assert endpoint["requests"] > 0 and endpoint["failures"] == 0
    assert 0 <= endpoint["p50_ms"] <= endpoint["p99_ms"] and result["failure_messages"] == []
    assert len(result["p99_ms_series"]) == len(result["counts"]) == 2


#: a user whose on_start takes a second (a login, say) before its first task
SLOW_START = """
import gevent
from locust import FastHttpUser, constant, task


class SlowStartUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self):
        gevent.sleep(1.0)

    @task
    def hello(self):
        self.client.get("/")
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "two-workers"])
def test_the_window_starts_once_every_user_has_finished_its_on_start(host, tmp_path, workers):
    scenario_file = tmp_path / "slowstart.py"
    scenario_file.write_text(SLOW_START)
    result, raw = run_measured(host, tmp_path, workers, scenario_file, "SlowStartUser", 0.2)
    # the warm-up alone would have ended at 0.2 s, in the middle of every user's on_start
    assert result["users_started"] == 4 and result["setup_s"] >= 1.0
    assert len(raw) == result["requests"] > 0
    # each worker process reports its own CPU share of the window; one process reports none
    assert len(result["workers_cpu_pct"]) == workers
    assert all(0 < share <= 110 for share in result["workers_cpu_pct"])


#: a user that asks for /hang on its third request: a server that never answers it strands the user
HANG_ON_THIRD = """
from locust import FastHttpUser, HttpUser, constant, task


class HangingFast(FastHttpUser):
    wait_time = constant(0)
    sent = 0

    @task
    def ask(self):
        self.sent += 1
        self.client.get("/hang" if self.sent == 3 else "/")


class HangingRequests(HttpUser):
    wait_time = constant(0)
    sent = 0

    @task
    def ask(self):
        self.sent += 1
        self.client.get("/hang" if self.sent == 3 else "/", name="hang" if self.sent == 3 else None)
"""


@pytest.fixture
def hanging_host():
    """A server that answers / at once and holds /hang until the test ends."""
    release = threading.Event()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/hang":
            release.wait()
        return hello(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "workers, user_class, endpoint",
    [(0, "HangingFast", "/hang"), (2, "HangingFast", "/hang"), (0, "HangingRequests", "hang")],
    ids=["fasthttp-one-process", "fasthttp-two-workers", "requests-one-process"],
)
def test_requests_left_unanswered_are_failures_not_lost(
    hanging_host, tmp_path, workers, user_class, endpoint
):
    scenario_file = tmp_path / "hanging.py"
    scenario_file.write_text(HANG_ON_THIRD)
    result, _raw = run_measured(hanging_host, tmp_path, workers, scenario_file, user_class)
    # every user was stranded during the warm-up: its request waited through the whole window,
    # which without the count would read as 0 requests and 0 failures
    assert result["unanswered"] == result["failures"] == 4 and result["requests"] == 0
    (message,) = result["failure_messages"]
    assert (message["name"], message["occurrences"]) == (endpoint, 4)
    assert message["error"].startswith("no answer within")
    assert result["errors"] == {message["error"]: 4}
    hung = {e["name"]: (e["requests"], e["failures"]) for e in result["endpoints"] if e["requests"]}
    assert hung == {endpoint: (4, 4)}
