"""Sample the server's and the load generator's process trees with psutil, twice a second.

CPU is counted as CPU-seconds of the whole tree, so a process that appears between two samples is
included and a child that exits is not lost: once reaped, its time moves into its parent's
``children_user``/``children_system``, which are counted too. That matters for the fork model,
whose per-connection children may live shorter than one sampling interval. 100% = one core.
RSS is summed over the tree (pages shared after fork are counted once per process, so the fork
model's figure is an upper bound).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

#: seconds between samples
INTERVAL_S = 0.5
#: the keys of a sample that describe the server: None throughout when it is not measured
SERVER_KEYS = ("server_cpu_pct", "server_rss_mb", "server_procs", "server_threads")


@dataclass
class TreeReading:
    """One look at a process tree."""

    cpu_s: float
    rss_bytes: int
    procs: int
    threads: int


def read_tree(root_pid: int) -> TreeReading | None:
    """CPU-seconds, RSS, process and thread counts of ``root_pid`` and all its descendants."""
    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    reading = TreeReading(0.0, 0, 0, 0)
    for process in processes:
        try:
            with process.oneshot():
                times = process.cpu_times()
                reading.cpu_s += times.user + times.system + times.children_user
                reading.cpu_s += times.children_system
                reading.rss_bytes += process.memory_info().rss
                reading.threads += process.num_threads()
        except psutil.Error:  # exited between listing and reading: its time is in its parent now
            continue
        reading.procs += 1
    return reading


class Sampler:
    """Samples two process trees in a background thread until stopped.

    Each sample is a dict with the wall time ``t`` and the server's and generator's CPU% over the
    interval before it, plus the server's RSS (MB), process and thread counts.
    """

    def __init__(
        self,
        server_pid: int | None,
        generator_pid: int,
        interval_s: float = INTERVAL_S,
        counters: Callable[[], object] | None = None,
    ):
        #: root of the server's process tree; None: a server elsewhere, not measured
        self.server_pid = server_pid
        #: root of the load generator's process tree (Locust master and its workers)
        self.generator_pid = generator_pid
        #: seconds between samples
        self.interval_s = interval_s
        #: the samples taken so far, oldest first
        self.samples: list[dict] = []
        #: reads cumulative counters kept elsewhere (the server's cgroup) at every sample
        self.counters = counters
        #: (wall time, what ``counters`` returned) at every sample, oldest first
        self.counter_readings: list[tuple[float, object]] = []
        #: set to end the sampling thread
        self.stopping = threading.Event()
        #: the background thread
        self.thread = threading.Thread(target=self.run, name="sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        self.thread.join()

    def run(self) -> None:
        previous = self.read()
        while not self.stopping.wait(self.interval_s):
            current = self.read()
            sample = sample_between(previous, current)
            if self.server_pid is None:  # not "0 processes": nothing was looked at
                sample.update(dict.fromkeys(SERVER_KEYS))
            counted = counted_cpu_pct(*self.counter_readings[-2:])
            if counted is not None:
                # the cgroup's count misses no short-lived process and has nanosecond resolution,
                # where psutil's has the kernel's 10 ms tick: at 0.1 CPU a second's sample is
                # only ten ticks, ±10%
                sample["server_cpu_pct"] = counted
            self.samples.append(sample)
            previous = current

    def read(self) -> tuple[float, TreeReading | None, TreeReading | None]:
        now = time.time()
        if self.counters is not None:
            self.counter_readings.append((now, self.counters()))
        server = read_tree(self.server_pid) if self.server_pid is not None else None
        return now, server, read_tree(self.generator_pid)


def sample_between(previous: tuple, current: tuple) -> dict:
    """The sample dict for the interval between two readings (None where a tree was gone)."""
    t0, server0, generator0 = previous
    t1, server1, generator1 = current
    elapsed = max(t1 - t0, 1e-9)
    return {
        "t": t1,
        "server_cpu_pct": cpu_percent(server0, server1, elapsed),
        "server_rss_mb": server1.rss_bytes / 2**20 if server1 else None,
        "server_procs": server1.procs if server1 else 0,
        "server_threads": server1.threads if server1 else 0,
        "generator_cpu_pct": cpu_percent(generator0, generator1, elapsed),
    }


def counted_cpu_pct(*readings: tuple[float, object]) -> float | None:
    """CPU% between two (wall time, counters) readings whose counters carry ``usage_s``
    (cumulative CPU-seconds, a cgroup's); None without two such readings."""
    if len(readings) < 2:
        return None
    (t0, before), (t1, after) = readings
    used = [getattr(reading, "usage_s", None) for reading in (before, after)]
    if None in used or t1 <= t0:
        return None
    return max(used[1] - used[0], 0.0) / (t1 - t0) * 100


def cpu_percent(
    before: TreeReading | None, after: TreeReading | None, elapsed: float
) -> float | None:
    if before is None or after is None:
        return None
    return max(after.cpu_s - before.cpu_s, 0.0) / elapsed * 100
