"""The psutil sampler against real process trees: children counted, reaped children's CPU kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bench.measure.sampler import (
    SERVER_KEYS,
    Sampler,
    TreeReading,
    counted_cpu_pct,
    cpu_percent,
    read_tree,
    sample_between,
)

#: a parent with two sleeping children, all alive until killed
PARENT_WITH_CHILDREN = """
import subprocess, sys, time
sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
children = [subprocess.Popen(sleeper) for _ in range(2)]
print("ready", flush=True)
time.sleep(60)
"""

#: a parent that forks a child burning 0.3 s of CPU, reaps it, then idles
PARENT_REAPING_A_BUSY_CHILD = """
import os, sys, time
pid = os.fork()
if pid == 0:
    while time.process_time() < 0.3:
        pass
    os._exit(0)
os.waitpid(pid, 0)
print("reaped", flush=True)
time.sleep(60)
"""


@pytest.fixture
def spawn():
    started = []

    def start(code: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        started.append(process)
        process.stdout.readline()  # wait for the script's ready line
        return process

    yield start
    for process in started:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_tree_counts_the_root_and_its_children(spawn):
    parent = spawn(PARENT_WITH_CHILDREN)
    reading = read_tree(parent.pid)
    assert reading.procs == 3
    assert reading.threads >= 3
    assert reading.rss_bytes > 3 * 1024 * 1024  # three interpreters


def test_cpu_of_a_reaped_child_stays_in_the_tree(spawn):
    parent = spawn(PARENT_REAPING_A_BUSY_CHILD)
    reading = read_tree(parent.pid)
    assert reading.procs == 1  # the child is gone...
    assert reading.cpu_s >= 0.25  # ...but its CPU time is counted through the parent


def test_a_gone_process_reads_as_none():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert read_tree(process.pid) is None


def test_cpu_percent_is_cpu_seconds_over_wall_seconds():
    before, after = TreeReading(1.0, 0, 1, 1), TreeReading(1.5, 0, 1, 1)
    assert cpu_percent(before, after, 0.5) == pytest.approx(100.0)
    assert cpu_percent(before, None, 0.5) is None
    # a tree whose CPU total went down (a child vanished unreaped) never reads negative
    assert cpu_percent(after, before, 0.5) == 0.0


def test_sample_between_reports_server_and_generator():
    reading = TreeReading(2.0, 50 * 2**20, 4, 9)
    sample = sample_between((10.0, TreeReading(1.0, 0, 1, 1), None), (10.5, reading, None))
    assert sample == {
        "t": 10.5,
        "server_cpu_pct": pytest.approx(200.0),
        "server_rss_mb": pytest.approx(50.0),
        "server_procs": 4,
        "server_threads": 9,
        "generator_cpu_pct": None,
    }


def test_sampler_samples_both_trees_until_stopped(spawn):
    server = spawn(PARENT_WITH_CHILDREN)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        with Sampler(server.pid, busy.pid, interval_s=0.1) as sampler:
            deadline = time.monotonic() + 30  # turns a hang into a failure; the wait is for samples
            while len(sampler.samples) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert not sampler.thread.is_alive()  # stopped means stopped: no sample can follow
        count = len(sampler.samples)
    finally:
        busy.kill()
        busy.wait()
    assert count >= 2
    assert all(sample["server_procs"] == 3 for sample in sampler.samples)
    assert sum(sample["generator_cpu_pct"] for sample in sampler.samples) > 0


def test_a_server_elsewhere_is_not_measured_rather_than_zero():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        with Sampler(None, busy.pid, interval_s=0.1) as sampler:
            while len(sampler.samples) < 2:
                time.sleep(0.05)
    finally:
        busy.kill()
        busy.wait()
    for sample in sampler.samples:
        assert {key: sample[key] for key in SERVER_KEYS} == dict.fromkeys(SERVER_KEYS)
        assert sample["generator_cpu_pct"] is not None


def test_sampler_reads_the_counters_it_is_given_at_every_sample(spawn):
    server = spawn(PARENT_WITH_CHILDREN)
    calls = iter(range(1000))
    with Sampler(server.pid, server.pid, interval_s=0.05, counters=lambda: next(calls)) as sampler:
        while len(sampler.samples) < 3:
            time.sleep(0.01)
    readings = sampler.counter_readings
    # one reading before the first interval, then one per sample, in time order
    assert [value for _, value in readings] == list(range(len(readings)))
    assert len(readings) >= len(sampler.samples) + 1
    assert [t for t, _ in readings] == sorted(t for t, _ in readings)


def test_a_cgroup_count_replaces_psutils_sampled_server_cpu(spawn):
    """With counters that carry usage_s, each sample's server CPU% is the counters' difference
    over its interval: here a fake cgroup that says 0.25 CPU whatever psutil sees."""
    server = spawn(PARENT_WITH_CHILDREN)
    started = time.time()

    class Counted:
        def __init__(self) -> None:
            self.usage_s = (time.time() - started) * 0.25

    with Sampler(server.pid, server.pid, interval_s=0.05, counters=Counted) as sampler:
        while len(sampler.samples) < 3:
            time.sleep(0.01)
    assert all(sample["server_cpu_pct"] == pytest.approx(25.0, abs=2.0)
               for sample in sampler.samples)  # fmt: skip
    assert counted_cpu_pct((1.0, Counted())) is None
    assert counted_cpu_pct((1.0, object()), (2.0, object())) is None
