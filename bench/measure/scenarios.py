"""The Locust scenarios: one user class per scenario of ``bench.measure.profiles.SCENARIOS``.

This is the only module of the suite that imports Locust: Locust monkey-patches the standard
library with gevent, so the runner starts it as a separate process, naming the user class:

    locust -f bench/measure/scenarios.py --headless -H http://127.0.0.1:8000 -u 16 -t 4s \
        PlaintextUser

Users are closed loops with no wait: each sends its next request as soon as the last one answered,
so requests/s measures the server, not a think time. Every response is checked for its status and
the scenario's body marker, so a server that answers errors fast does not look fast.

Timing: statistics are reset ``BENCH_WARMUP_S`` seconds after the test starts, so connection
set-up and first-request costs stay out of the numbers; the test then ends itself after
``BENCH_DURATION_S`` measured seconds. With ``BENCH_RESULT_FILE`` set, the measured window, the
request count of every second and Locust's final totals are written there as JSON when the test
stops (the ``--csv`` files, kept for people, are rewritten only once a second and miss the end).
"""

from __future__ import annotations

import json
import math
import os
import re
import time

import gevent
import locust.runners
from locust import FastHttpUser, constant, events, task
from locust.runners import WorkerRunner

from bench.measure.profiles import IO_WAIT_MS, SCENARIOS

#: the percentiles written to the result file, as Locust's fractions
PERCENTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99}


class CheckedUser(FastHttpUser):
    """A closed-loop user whose every request must answer 200 with the expected marker."""

    abstract = True
    wait_time = constant(0)

    def fetch(self, path: str, marker: str) -> str | None:
        """GET ``path``: a failure unless it answers 200 with ``marker`` in the body."""
        with self.client.get(path, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
            elif marker not in (response.text or ""):
                response.failure(f"body lacks {marker!r}")
            else:
                return response.text
        return None

    def fetch_scenario(self, name: str) -> str | None:
        scenario = SCENARIOS[name]
        return self.fetch(scenario.probe_path, scenario.marker)


class PlaintextUser(CheckedUser):
    @task
    def plaintext(self) -> None:
        self.fetch_scenario("plaintext")


class JsonUser(CheckedUser):
    @task
    def json(self) -> None:
        self.fetch_scenario("json")


class FortunesUser(CheckedUser):
    @task
    def fortunes(self) -> None:
        self.fetch_scenario("fortunes")


class IoUser(CheckedUser):
    @task
    def io(self) -> None:
        self.fetch_scenario("io")


class CpuUser(CheckedUser):
    @task
    def cpu(self) -> None:
        self.fetch_scenario("cpu")


class BytesUser(CheckedUser):
    @task
    def bytes(self) -> None:
        self.fetch_scenario("bytes")


class StreamUser(CheckedUser):
    @task
    def stream(self) -> None:
        self.fetch_scenario("stream")


class SessionUser(CheckedUser):
    """Round trips through the signed session cookie: the counter must go up by one each time."""

    #: the counter the server returned last time; None before the first answer
    last_count: int | None = None

    @task
    def session(self) -> None:
        self.session_round_trip()

    def session_round_trip(self) -> None:
        scenario = SCENARIOS["session"]
        with self.client.get(scenario.probe_path, catch_response=True) as response:
            count = first_integer(response.text or "") if response.status_code == 200 else None
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
            elif count is None:
                response.failure("no counter in the body")
            elif self.last_count is not None and count != self.last_count + 1:
                response.failure(f"counter went from {self.last_count} to {count}")
            if count is not None:
                self.last_count = count


class MixedUser(SessionUser):
    """A visitor: mostly pages, some session round trips, now and then a slow downstream call."""

    @task(5)
    def fortunes(self) -> None:
        self.fetch_scenario("fortunes")

    @task(3)
    def session(self) -> None:
        self.session_round_trip()

    @task(1)
    def io(self) -> None:
        self.fetch(f"/io?ms={IO_WAIT_MS}", SCENARIOS["io"].marker)


def first_integer(text: str) -> int | None:
    match = re.search(r"\d+", text)
    return int(match.group()) if match else None


# The measured window, kept by the process that owns the statistics (never a worker).
window: dict = {"counts": []}

# With --processes, workers report to the master every 3 s by default: the master's counts would
# lag the window by that much. Four reports a second keep the lag below the counts' resolution.
locust.runners.WORKER_REPORT_INTERVAL = 0.25


def owns_statistics(environment) -> bool:
    return not isinstance(environment.runner, WorkerRunner)


@events.test_start.add_listener
def start_measuring(environment, **_kwargs) -> None:
    warmup_s = float(os.environ.get("BENCH_WARMUP_S", "0"))
    duration_s = float(os.environ.get("BENCH_DURATION_S", "0"))
    if owns_statistics(environment):
        gevent.spawn(measure, environment, warmup_s, duration_s)
    else:  # drop the warm-up a worker has not reported yet, as the master drops what it has
        gevent.spawn_later(warmup_s, environment.runner.stats.reset_all)


def measure(environment, warmup_s: float, duration_s: float) -> None:
    """Reset the statistics after warm-up, count requests once a second, quit after duration.

    Ending the test here rather than with --run-time makes the window exactly ``duration_s``
    long, whatever Locust's start-up took.
    """
    gevent.sleep(warmup_s)
    environment.runner.stats.reset_all()
    start = window["measure_start"] = time.time()
    if duration_s <= 0:
        return
    for tick in range(1, math.ceil(duration_s) + 1):
        gevent.sleep(max(start + min(tick, duration_s) - time.time(), 0))
        window["counts"].append((time.time(), environment.runner.stats.total.num_requests))
    # stop first: a master then waits for its workers' last reports before test_stop
    environment.runner.stop()
    environment.runner.quit()


@events.test_stopping.add_listener
def mark_end_of_window(environment, **_kwargs) -> None:
    if owns_statistics(environment):
        window["measure_stop"] = time.time()


@events.test_stop.add_listener
def write_result(environment, **_kwargs) -> None:
    """Write the window and totals once the last worker has reported (test_stop comes after)."""
    path = os.environ.get("BENCH_RESULT_FILE")
    if not path or not owns_statistics(environment):
        return
    total = environment.runner.stats.total
    result = {
        **window,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "max_ms": total.max_response_time if total.num_requests else None,
        **{
            key: total.get_response_time_percentile(fraction) if total.num_requests else None
            for key, fraction in PERCENTILES.items()
        },
        "errors": {
            str(error.error): error.occurrences
            for error in environment.runner.stats.errors.values()
        },
    }
    with open(path, "w") as file:
        json.dump(result, file)
