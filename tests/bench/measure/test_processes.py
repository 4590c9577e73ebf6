"""Process groups and server start: a pinned tree is killed whole, a server joins its cgroup at
once and is held to the budget only once it answers.
"""

from __future__ import annotations

import os
import sys
import time

import psutil
import pytest

from bench.catalogue import SCENARIOS
from bench.measure import (
    budget,
    cgroups,
    matrix,
    processes,
)
from bench.measure.childenv import child_env
from bench.measure.settings import Settings
from bench.serving.registry import all_servers


def test_a_server_starts_unthrottled_and_is_held_to_the_budget_once_it_answers(tmp_path):
    """Start-up (imports) is not measured: under 0.15 CPU it stretched every cell's start."""
    try:
        layout = cgroups.locate()
        budget.Budget(None, layout).check()
    except cgroups.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    given = budget.Budget(0.15, layout)
    cell = matrix.Cell(all_servers()["epoll"], "app", SCENARIOS["plaintext"], 1)
    settings = Settings("smoke", 1.0, 2.0, 1, locust_workers=0, pinning=None, budget=given)
    server, port = processes.start_server(cell, settings, tmp_path)
    try:
        started = server.cgroup.read()
        hierarchy, directory = server.cgroup.directories[0]
        if hierarchy.version == 2:
            limit = (directory / "cpu.max").read_text().split()
        else:
            limit = [(directory / f"cpu.cfs_{name}_us").read_text().strip()
                     for name in ("quota", "period")]  # fmt: skip
        processes.probe(port, SCENARIOS["plaintext"])
    finally:
        server.stop()
    assert limit == [str(given.quota_us), str(given.period_us)]
    # the interpreter's start and the app's imports ran before the quota and were not throttled
    assert started.usage_s > 0 and started.throttled_periods == 0


#: a leader that starts a grandchild in its group, then ignores SIGTERM
STUBBORN_TREE = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("ready", flush=True)
time.sleep(60)
"""


def test_process_group_pins_its_tree_and_stop_kills_all_of_it(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "STOP_TIMEOUT_S", 0.5)
    cpus = sorted(os.sched_getaffinity(0))[-1:]
    group = processes.ProcessGroup(
        [sys.executable, "-c", STUBBORN_TREE], tmp_path / "tree", cpus, child_env()
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


def test_a_server_that_cannot_join_its_cgroup_is_stopped_and_fails(tmp_path):
    try:
        cgroup = budget.Budget(0.5, cgroups.locate()).cgroup("gone")
    except cgroups.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    for _, directory in cgroup.directories:
        directory.rmdir()  # gone before the server could join it
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(processes.CellFailed, match="could not join its cgroup") as failed:
        processes.ProcessGroup(argv, tmp_path / "server", None, child_env(), cgroup)
    assert isinstance(failed.value.__cause__, OSError)
    left = [child for child in psutil.Process().children() if child.cmdline()[1:] == argv[1:]]
    assert left == [], "the server was left running"


#: a leader that, on SIGTERM, writes the CPU quota of the cgroup file named in argv[1] and exits
QUOTA_ON_SIGTERM = """
import signal, sys, time
def report(*_):
    with open(sys.argv[2], "w") as out:
        out.write(open(sys.argv[1]).read())
    sys.exit(0)
signal.signal(signal.SIGTERM, report)
print("ready", flush=True)
time.sleep(60)
"""


def test_stop_lifts_the_budget_before_the_server_is_told_to_stop(tmp_path):
    """A shutdown is not measured: under the quota, finishing requests and the interpreter's
    teardown would wait for CPU period after period, every cell."""
    try:
        cgroup = budget.Budget(0.05, cgroups.locate()).cgroup("stop")
    except cgroups.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    hierarchy, directory = cgroup.directories[0]
    quota_file = directory / ("cpu.max" if hierarchy.version == 2 else "cpu.cfs_quota_us")
    held = quota_file.read_text().split()[0]
    seen = tmp_path / "quota-at-sigterm"
    argv = [sys.executable, "-c", QUOTA_ON_SIGTERM, str(quota_file), str(seen)]
    group = processes.ProcessGroup(argv, tmp_path / "server", None, child_env(), cgroup)
    deadline = time.monotonic() + 20
    while b"ready" not in group.stdout_path.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    group.stop()
    assert held not in ("max", "-1")  # it was held to the budget while it ran
    assert seen.read_text().split()[0] in ("max", "-1")  # and free by the time it heard SIGTERM
    assert group.exit_code() == 0
