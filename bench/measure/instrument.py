"""The measured window of a Locust run, loaded beside any locustfile (ours or a user's).

The runner starts Locust with ``-f bench/measure/instrument.py,<scenario file>``: the scenario file
says what users do, this module says when the numbers count. Like every locustfile it runs only
inside Locust's process (Locust monkey-patches the standard library with gevent).

Timing: statistics are reset ``BENCH_WARMUP_S`` seconds after the test starts (with workers,
the master's reset also resets theirs), so connection set-up and first-request costs stay out of
the numbers; the test then ends itself after
``BENCH_DURATION_S`` measured seconds. With ``BENCH_RESULT_FILE`` set, the measured window, the
request count of every second and Locust's final totals are written there as JSON when the test
stops (the ``--csv`` files, kept for people, are rewritten only once a second and miss the end).

Latency: every request's latency after warm-up goes into a microsecond HdrHistogram
(``bench.measure.latency``) in the process that made it, counted from its intended send time
when it carries one (open loop, ``openloop.py``). Each worker sends its histogram to the master
once, when it stops and before it reports itself stopped, so the master has merged them all by
its ``test_stop``; the result file holds the merged histogram and its percentiles. With
``BENCH_RAW_LATENCY_FILE`` set (tests only) every recorded value is also written there.
"""

from __future__ import annotations

import json
import math
import os
import time

import gevent
import locust.runners
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from bench.flags import LATE_GRACE_MS
from bench.measure import latency

#: the percentiles written to the result file, as Locust's fractions
PERCENTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99}

# The measured window, kept by the process that owns the statistics (never a worker).
window: dict = {"counts": []}

# This process's latencies since warm-up: its own requests', or on a master its workers'.
histogram = latency.new_histogram()
# Open-loop requests since warm-up: those with an intended send time, and those that left late.
schedule = {"scheduled": 0, "late": 0}
# Every recorded value, kept only when a test asks for them (BENCH_RAW_LATENCY_FILE).
raw_latencies: list[int] | None = [] if os.environ.get("BENCH_RAW_LATENCY_FILE") else None
#: the custom message a worker's latencies travel in
LATENCY_MESSAGE = "bench_latency"
#: the custom message that ends a worker's warm-up when the master's ends
RESET_MESSAGE = "bench_reset"

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


def reset_statistics(environment) -> None:
    """Forget the warm-up: Locust's statistics and our latencies."""
    environment.runner.stats.reset_all()
    histogram.reset()
    schedule.update(scheduled=0, late=0)
    if raw_latencies is not None:
        raw_latencies.clear()


def measure(environment, warmup_s: float, duration_s: float) -> None:
    """Reset the statistics after warm-up, count requests once a second, quit after duration.

    Ending the test here rather than with --run-time makes the window exactly ``duration_s``
    long, whatever Locust's start-up took.
    """
    gevent.sleep(warmup_s)
    reset_statistics(environment)
    if isinstance(environment.runner, MasterRunner):
        # workers start up to half a second after the master: their own clocks would cut their
        # warm-up short of the master's window (measured with --processes 2)
        environment.runner.send_message(RESET_MESSAGE)
    start = window["measure_start"] = time.time()
    if duration_s <= 0:
        return
    for tick in range(1, math.ceil(duration_s) + 1):
        gevent.sleep(max(start + min(tick, duration_s) - time.time(), 0))
        window["counts"].append((time.time(), environment.runner.stats.total.num_requests))
    # stop first: a master then waits for its workers' last reports before test_stop
    environment.runner.stop()
    environment.runner.quit()


@events.request.add_listener
def record_latency(response_time, start_time=None, context=None, **_kwargs) -> None:
    """Every request of this process, from its intended send time when it has one."""
    intended = (context or {}).get(latency.INTENDED_SEND)
    recorded = latency.record(histogram, latency.corrected_us(response_time, start_time, intended))
    if intended is not None:
        schedule["scheduled"] += 1
        schedule["late"] += (start_time - intended) * 1000 > LATE_GRACE_MS
    if raw_latencies is not None:
        raw_latencies.append(recorded)


@events.init.add_listener
def connect_master_and_workers(environment, **_kwargs) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(LATENCY_MESSAGE, merge_worker_latencies)
    elif isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(RESET_MESSAGE, end_worker_warmup)


def end_worker_warmup(environment, **_kwargs) -> None:
    """Drop what this worker has not reported yet, as the master drops what it has."""
    reset_statistics(environment)


def merge_worker_latencies(environment, msg, **_kwargs) -> None:
    histogram.add(latency.decode(msg.data["histogram"]))
    for key in schedule:
        schedule[key] += msg.data[key]
    if raw_latencies is not None:
        raw_latencies.extend(msg.data["raw"] or [])


@events.test_stop.add_listener
def send_worker_latencies(environment, **_kwargs) -> None:
    """A worker's latencies to the master, before its ``client_stopped`` (it follows test_stop)."""
    if isinstance(environment.runner, WorkerRunner):
        data = {"histogram": latency.encode(histogram), "raw": raw_latencies, **schedule}
        environment.runner.send_message(LATENCY_MESSAGE, data)


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
        **latency.percentiles(histogram),
        "latency_histogram": latency.encode(histogram),
        **schedule,
    }
    with open(path, "w") as file:
        json.dump(result, file)
    raw_path = os.environ.get("BENCH_RAW_LATENCY_FILE")
    if raw_path:
        with open(raw_path, "w") as file:
            json.dump(raw_latencies, file)
