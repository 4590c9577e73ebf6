"""The measured window of a Locust run, loaded beside any locustfile (ours or a user's).

The runner starts Locust with ``-f bench/measure/instrument.py,<scenario file>``: the scenario file
says what users do, this module says when the numbers count. Like every locustfile it runs only
inside Locust's process (Locust monkey-patches the standard library with gevent).

Timing: statistics are reset ``BENCH_WARMUP_S`` seconds after the test starts, or later, once
every user has finished its ``on_start`` (a login, say: set-up, not load), whichever comes last
(with workers, the master's reset also resets theirs, and workers report each finished
``on_start`` to the master), so connection set-up and first-request costs stay out of the
numbers; the test then ends itself after ``BENCH_DURATION_S`` measured seconds. With
``BENCH_RESULT_FILE`` set, the measured window, the request count and p99 of every second, each
endpoint's requests, failures and p50/p99, the failures' messages and Locust's final totals are
written there as JSON when the test stops (the ``--csv`` files, kept for people, are rewritten
only once a second and miss the end).

Unanswered requests: each process hands over, with its latencies, the requests it still waits
for (``inflight.py``); the window counts those waiting far longer than any answered one as
failures, "no answer".

Latency: every request's latency after warm-up goes into a microsecond HdrHistogram
(``bench.measure.latency``) in the process that made it, counted from its intended send time
when it carries one (open loop, ``openloop.py``); the process also counts its requests, failures
and late open-loop requests. A worker sends all that to the master when the master ends a window
and when it stops (before it reports itself stopped, so the master has it by its ``test_stop``),
with the CPU time the worker process used in the window; the result file holds the merged
histogram, its percentiles, the exact counts and each worker's CPU share (``workers_cpu_pct``,
percent of the one core a Locust process can use), which is how a run with workers on other
machines knows whether they were the bottleneck. With
``BENCH_RAW_LATENCY_FILE`` set (tests only) every recorded value is also written there. With
``BENCH_WINDOW_MARKS`` set, a line ``start`` is appended to that file when a window opens and
``stop`` when it closes: the runner samples the server's stacks in between.

Steps: with ``BENCH_STEPS`` = N, the run is N windows in a row, each after its own warm-up, and
the result file holds ``{"steps": [...]}``, one result per window. An open-loop sweep runs its
offered loads this way, against one server and one Locust start; at each step after the first the
master sends ``STEP_MESSAGE`` to every process with users, and ``openloop.py`` changes the rate.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time

import gevent
import locust.runners
from locust import events
from locust.runners import LocalRunner, MasterRunner, WorkerRunner
from locust.stats import calculate_response_time_percentile, diff_response_time_dicts

from bench.flags import LATE_GRACE_MS
from bench.measure import inflight, latency

#: the percentiles written to the result file, as Locust's fractions
PERCENTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99}
#: custom messages: a worker's latencies of one window (to the master); the master's end of a
#: warm-up and of a window (to workers); the start of a step after the first (to ``openloop.py``)
LATENCY_MESSAGE = "bench_latency"
RESET_MESSAGE = "bench_reset"
#: a worker's users that finished their on_start since its last report (to the master)
STARTED_MESSAGE = "bench_started"
WINDOW_END_MESSAGE = "bench_window_end"
STEP_MESSAGE = latency.STEP_MESSAGE

# The owner of the statistics (never a worker): the measured windows, one per step, each with
# Locust's errors, and the latencies of every process merged per window.
windows: list[dict] = []
merged: dict[int, dict] = {}

# Every process with users: its latencies and counts since the last warm-up ended, and how many
# windows it has handed over (the index of the window its requests belong to).
histogram = latency.new_histogram()
counts = {"requests": 0, "failures": 0, "scheduled": 0, "late": 0}
handed_over = [0]
# Every recorded value, kept only when a test asks for them (BENCH_RAW_LATENCY_FILE).
raw_latencies: list[int] | None = [] if os.environ.get("BENCH_RAW_LATENCY_FILE") else None

# Every process with users: the CPU time and clock at the start of its current window.
window_mark = {"cpu_s": time.process_time(), "wall_s": time.time()}
# The owner of the statistics: users, over all processes, that have finished their on_start.
users_started = [0]

inflight.install()

# With --processes, workers report to the master every 3 s by default: the master's counts would
# lag the window by that much. Four reports a second keep the lag below the counts' resolution.
locust.runners.WORKER_REPORT_INTERVAL = 0.25


def owns_statistics(environment) -> bool:
    return not isinstance(environment.runner, WorkerRunner)


@events.test_start.add_listener
def start_measuring(environment, **_kwargs) -> None:
    if owns_statistics(environment):
        warmup_s = float(os.environ.get("BENCH_WARMUP_S", "0"))
        duration_s = float(os.environ.get("BENCH_DURATION_S", "0"))
        steps = int(os.environ.get("BENCH_STEPS", "1"))
        gevent.spawn(measure, environment, warmup_s, duration_s, steps)


def measure(environment, warmup_s: float, duration_s: float, steps: int) -> None:
    """Per step: warm up, reset the statistics, count requests once a second for ``duration_s``;
    then quit. Ending the test here rather than with --run-time makes every window exactly
    ``duration_s`` long, whatever Locust's start-up took."""
    test_start = time.time()
    for step in range(steps):
        if step:
            environment.runner.send_message(STEP_MESSAGE, {"step": step})
        gevent.sleep(warmup_s)
        if not step:
            wait_for_on_start(environment)
        end_warmup(environment)
        # how many processes generate the load: a master's workers (they leave it at stop), else 1
        windows.append({"counts": [], "measure_start": time.time(),
                        "workers": environment.runner.worker_count,
                        "setup_s": time.time() - test_start,
                        "users_started": users_started[0]})  # fmt: skip
        mark_window("start")
        if duration_s <= 0:  # no length given: the window lasts until Locust stops the test
            return
        count_requests(environment, duration_s)
        close_window(environment)
        if step < steps - 1:
            end_window(environment)
    # stop first: a master then waits for its workers' last reports before test_stop
    environment.runner.stop()
    environment.runner.quit()


def wait_for_on_start(environment) -> None:
    """Until every user has finished its on_start, for at most ``BENCH_ON_START_TIMEOUT_S``
    seconds (unset: until Locust's own --run-time ends the test): a window that began earlier
    would measure logins, not load."""
    deadline = time.time() + float(os.environ.get("BENCH_ON_START_TIMEOUT_S", "inf"))
    while users_started[0] < environment.runner.target_user_count and time.time() < deadline:
        gevent.sleep(0.05)


def end_warmup(environment) -> None:
    reset_statistics(environment)
    if isinstance(environment.runner, MasterRunner):
        # workers start up to half a second after the master: their own clocks would cut their
        # warm-up short of the master's window (measured with --processes 2)
        environment.runner.send_message(RESET_MESSAGE)


def reset_statistics(environment) -> None:
    """Forget the warm-up: Locust's statistics and our latencies."""
    environment.runner.stats.reset_all()
    window_mark.update(cpu_s=time.process_time(), wall_s=time.time())
    histogram.reset()
    counts.update(dict.fromkeys(counts, 0))
    inflight.forget_abandoned()
    if raw_latencies is not None:
        raw_latencies.clear()


def count_requests(environment, duration_s: float) -> None:
    """Locust's request count once a second until the current window is ``duration_s`` long,
    and the p99 of each second's requests (from the difference of Locust's whole-millisecond
    response-time counts, which a master merges from its workers' reports)."""
    window = windows[-1]
    start = window["measure_start"]
    window["p99_ms_series"] = []
    before = dict(environment.runner.stats.total.response_times)
    for tick in range(1, math.ceil(duration_s) + 1):
        gevent.sleep(max(start + min(tick, duration_s) - time.time(), 0))
        total = environment.runner.stats.total
        now, latest = time.time(), dict(total.response_times)
        window["counts"].append((now, total.num_requests))
        window["p99_ms_series"].append((now, second_percentile(latest, before, 0.99)))
        before = latest


def second_percentile(latest: dict, before: dict, fraction: float) -> float | None:
    """The ``fraction`` percentile (ms) of the requests between two response-time counts."""
    second = diff_response_time_dicts(latest, before)
    count = sum(second.values())
    return calculate_response_time_percentile(second, count, fraction) if count else None


def close_window(environment) -> None:
    """The end of the current window, with Locust's errors and its per-endpoint statistics so far
    (reset with the next warm-up)."""
    window = windows[-1]
    if "measure_stop" not in window:  # called again as the test stops: the first call ends it
        window["measure_stop"] = time.time()
        mark_window("stop")
    stats = environment.runner.stats
    window["errors"] = {str(error.error): error.occurrences for error in stats.errors.values()}
    window["failure_messages"] = [
        {"method": error.method, "name": error.name, "error": str(error.error),
         "occurrences": error.occurrences}
        for error in stats.errors.values()
    ]  # fmt: skip
    window["endpoints"] = [endpoint_stats(entry) for entry in stats.entries.values()]


def endpoint_stats(entry) -> dict:
    """One endpoint's requests, failures and p50/p99 (Locust's whole milliseconds) in a window."""
    answered = entry.num_requests > 0
    return {
        "method": entry.method,
        "name": entry.name,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "p50_ms": entry.get_response_time_percentile(0.5) if answered else None,
        "p99_ms": entry.get_response_time_percentile(0.99) if answered else None,
    }


def mark_window(event: str) -> None:
    """Tell whoever watches the run (the server's profiler) that a window opened or closed."""
    marks = os.environ.get("BENCH_WINDOW_MARKS")
    if marks:
        with open(marks, "a") as file:
            file.write(event + "\n")


def end_window(environment) -> None:
    """Collect this window's latencies: our own, or the workers' (their answers come later)."""
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(WINDOW_END_MESSAGE)
    else:
        hand_over(environment)


@events.request.add_listener
def record_latency(response_time, start_time=None, context=None, exception=None, **_kw) -> None:
    """Every request of this process, from its intended send time when it has one."""
    intended = (context or {}).get(latency.INTENDED_SEND)
    recorded = latency.record(histogram, latency.corrected_us(response_time, start_time, intended))
    counts["requests"] += 1
    counts["failures"] += exception is not None
    if intended is not None:
        counts["scheduled"] += 1
        counts["late"] += (start_time - intended) * 1000 > LATE_GRACE_MS
    if raw_latencies is not None:
        raw_latencies.append(recorded)


def hand_over(environment) -> None:
    """This process's latencies of its current window to the owner of the statistics."""
    data = {"window": handed_over[0], "histogram": latency.encode(histogram),
            "raw": raw_latencies, "waiting": inflight.hand_over(), **counts}  # fmt: skip
    handed_over[0] += 1
    if isinstance(environment.runner, WorkerRunner):
        wall_s = time.time() - window_mark["wall_s"]
        cpu_s = time.process_time() - window_mark["cpu_s"]
        data["cpu_pct"] = cpu_s / wall_s * 100 if wall_s > 0 else None
        environment.runner.send_message(LATENCY_MESSAGE, data)
    else:
        absorb(data)


def absorb(data: dict) -> None:
    """Add one process's latencies of a window to that window's."""
    into = merged.setdefault(data["window"], {"histogram": latency.new_histogram(), "raw": [],
                                              "workers_cpu_pct": [], "waiting": [],
                                              **dict.fromkeys(counts, 0)})  # fmt: skip
    into["waiting"] += [tuple(request) for request in data.get("waiting") or []]
    into["histogram"].add(latency.decode(data["histogram"]))
    if data.get("cpu_pct") is not None:
        into["workers_cpu_pct"].append(round(data["cpu_pct"], 1))
    for key in counts:
        into[key] += data[key]
    into["raw"] += data["raw"] or []


@events.init.add_listener
def connect_master_and_workers(environment, **_kwargs) -> None:
    runner = environment.runner
    for user_class in environment.user_classes:
        count_on_start(user_class, environment)
    if isinstance(runner, MasterRunner):
        runner.register_message(LATENCY_MESSAGE, lambda msg, **_kw: absorb(msg.data))
        runner.register_message(STARTED_MESSAGE, lambda msg, **_kw: add_started(msg.data))
    elif isinstance(runner, WorkerRunner):
        runner.register_message(RESET_MESSAGE, lambda **_kw: reset_statistics(environment))
        runner.register_message(WINDOW_END_MESSAGE, lambda **_kw: hand_over(environment))


def count_on_start(user_class, environment) -> None:
    """Wrap the class's on_start so each user's first finished one is counted (raised or not: a
    user whose on_start failed will never finish it). Once per user, though a subclass's
    on_start may call its wrapped parent's, and a forked worker inherits the wrapping."""
    original = user_class.on_start
    if getattr(original, "counts_on_start", False):
        return

    @functools.wraps(original)
    def on_start(user) -> None:
        try:
            original(user)
        finally:
            if not getattr(user, "on_start_counted", False):
                user.on_start_counted = True
                report_started(environment)

    on_start.counts_on_start = True
    user_class.on_start = on_start


def report_started(environment) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message(STARTED_MESSAGE, 1)
    else:
        add_started(1)


def add_started(count: int) -> None:
    users_started[0] += count


@events.test_stop.add_listener
def hand_over_last_window(environment, **_kwargs) -> None:
    """A worker's last window, before its ``client_stopped`` (which follows test_stop)."""
    if isinstance(environment.runner, WorkerRunner):
        hand_over(environment)


@events.test_stopping.add_listener
def mark_end_of_window(environment, **_kwargs) -> None:
    if owns_statistics(environment) and windows:
        close_window(environment)


@events.test_stop.add_listener
def write_result(environment, **_kwargs) -> None:
    """Write the windows once the last worker has reported (test_stop comes after)."""
    path = os.environ.get("BENCH_RESULT_FILE")
    if not path or not owns_statistics(environment):
        return
    if isinstance(environment.runner, LocalRunner):
        hand_over(environment)
    if windows:  # the workers' last errors have arrived by now
        close_window(environment)
    results = [window_result(window, merged.get(index)) for index, window in enumerate(windows)]
    with open(path, "w") as file:
        json.dump(results[0] if len(results) == 1 else {"steps": results}, file)
    raw_path = os.environ.get("BENCH_RAW_LATENCY_FILE")
    if raw_path:
        raws = [(merged.get(index) or {}).get("raw", []) for index in range(len(windows))]
        with open(raw_path, "w") as file:
            json.dump(raws[0] if len(raws) == 1 else raws, file)


def window_result(window: dict, latencies: dict | None) -> dict:
    """One window: its times and per-second counts, exact request and failure counts (requests
    left unanswered among the failures), Locust's errors, the merged histogram with its
    percentiles, and the open-loop schedule counts."""
    latencies = latencies or {"histogram": latency.new_histogram(), **dict.fromkeys(counts, 0)}
    whole = latencies["histogram"]
    return {
        **window,
        **{key: latencies[key] for key in counts},
        **inflight.unanswered_failures(window, latencies, whole),
        "workers_cpu_pct": latencies.get("workers_cpu_pct") or [],
        **{key: ms_percentile(whole, fraction) for key, fraction in PERCENTILES.items()},
        "max_ms": whole.get_max_value() / 1000 if whole.get_total_count() else None,
        **latency.percentiles(whole),
        "latency_histogram": latency.encode(whole),
    }


def ms_percentile(histogram, fraction: float) -> float | None:
    if histogram.get_total_count() == 0:
        return None
    return histogram.get_value_at_percentile(fraction * 100) / 1000
