"""Cgroups: finding them, the fallback, and a real quota on a whole process tree (a forked child
is throttled too), read from the cgroup's own counters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure import budget, cgroups
from bench.measure.budget import Budget
from bench.measure.cgroups import BudgetUnavailable, Hierarchy, Layout

# --- finding the hierarchies ------------------------------------------------------------------

HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_SELF = "4:memory:/box/1\n2:cpuacct:/\n1:cpu:/\n0::/\n"
COMOUNTED_MOUNTS = (
    "25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
)
#: a container: the hierarchy's root is the container's cgroup
CONTAINER_MOUNTS = "25 20 0:22 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"


def test_hybrid_layout_limits_in_cpu_and_counts_in_cpuacct() -> None:
    found = cgroups.parse_hierarchies(HYBRID_MOUNTS, HYBRID_SELF)
    v1 = {(h.controllers, h.parent) for h in found if h.version == 1}
    assert v1 == {
        (frozenset({"cpu"}), Path("/sys/fs/cgroup/cpu")),
        (frozenset({"cpuacct"}), Path("/sys/fs/cgroup/cpuacct")),
        (frozenset({"memory"}), Path("/sys/fs/cgroup/memory/box/1")),
    }
    layout = cgroups.choose_layout(found)
    assert layout.name == "cgroup v1"
    assert layout.limit.controllers == {"cpu"} and layout.usage.controllers == {"cpuacct"}


def test_comounted_v1_limits_and_counts_in_one_hierarchy() -> None:
    found = cgroups.parse_hierarchies(COMOUNTED_MOUNTS, "3:cpu,cpuacct:/user.slice\n")
    layout = cgroups.choose_layout(found)
    assert layout.limit == layout.usage
    assert layout.limit.parent == Path("/sys/fs/cgroup/cpu,cpuacct/user.slice")


def test_v2_with_the_cpu_controller_is_preferred(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    mounts = HYBRID_MOUNTS.replace("/sys/fs/cgroup/unified", str(tmp_path))
    layout = cgroups.choose_layout(cgroups.parse_hierarchies(mounts, HYBRID_SELF))
    assert layout.name == "cgroup v2" and layout.limit.parent == tmp_path
    assert layout.usage == layout.limit


def test_v2_without_the_cpu_controller_for_children_says_so(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    mounts = f"25 20 0:22 / {tmp_path} rw - cgroup2 cgroup2 rw\n"
    with pytest.raises(BudgetUnavailable, match="does not give its children the cpu controller"):
        cgroups.choose_layout(cgroups.parse_hierarchies(mounts, "0::/\n"))


def test_a_container_mount_shows_only_the_cgroups_below_its_root() -> None:
    inside = cgroups.parse_hierarchies(CONTAINER_MOUNTS, "0::/docker/abc/app\n")
    assert [h.parent for h in inside] == [Path("/sys/fs/cgroup/app")]
    assert cgroups.parse_hierarchies(CONTAINER_MOUNTS, "0::/elsewhere\n") == []


# --- the fallback: nothing here is writable ---------------------------------------------------


def test_no_cgroup_filesystem_is_unavailable_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(BudgetUnavailable, match="no cgroups here"):
        cgroups.locate(tmp_path / "no-such-proc")
    (tmp_path / "mountinfo").write_text("1 0 0:1 / / rw - ext4 /dev/sda1 rw\n")
    (tmp_path / "cgroup").write_text("0::/\n")
    with pytest.raises(BudgetUnavailable, match="no cgroup hierarchy with the cpu controller"):
        cgroups.locate(tmp_path)


@pytest.mark.parametrize("version", [1, 2])
def test_a_directory_that_is_no_cgroup_is_unavailable_and_left_clean(
    tmp_path: Path, version: int
) -> None:
    plain = Hierarchy(version, frozenset({"cpu", "cpuacct"}), tmp_path)
    with pytest.raises(BudgetUnavailable, match="cannot make a cgroup"):
        Budget(0.3, Layout(plain, plain)).check()
    assert list(tmp_path.iterdir()) == []  # the directory it made is gone again


def test_a_missing_or_read_only_root_is_unavailable(tmp_path: Path) -> None:
    for root in (tmp_path / "missing", Path("/proc/self")):
        hierarchy = Hierarchy(1, frozenset({"cpu"}), root)
        with pytest.raises(BudgetUnavailable, match=f"cannot make a cgroup under {root}"):
            Budget(0.3, Layout(hierarchy, None)).check()


# --- a real quota on a real process tree ------------------------------------------------------


@pytest.fixture
def real_layout() -> Layout:
    try:
        layout = cgroups.locate()
        Budget(0.5, layout).check()
    except BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    return layout


#: waits for a line on stdin, then forks a child that spins while the parent only waits
FORK_AND_SPIN = """
import os, sys
sys.stdin.readline()
child = os.fork()
if child == 0:
    print(os.getpid(), flush=True)
    while True:
        pass
os.waitpid(child, 0)
"""


def test_a_forked_child_is_held_to_the_budget(real_layout: Layout) -> None:
    cpus = 0.2
    cgroup = Budget(cpus, real_layout).cgroup("test")
    process = subprocess.Popen(
        [sys.executable, "-c", FORK_AND_SPIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        cgroup.add(process.pid)
        process.stdin.write(b"fork now\n")
        process.stdin.flush()
        child = int(process.stdout.readline())
        assert cgroup.directories[0][1].name in Path(f"/proc/{child}/cgroup").read_text()
        start = cgroup.read()
        while (end := cgroup.read()).periods < start.periods + 40:  # a second of periods
            pass
    finally:
        cgroup.remove()  # kills the spinning child and its parent: both are in the cgroup
        process.wait()
    periods = end.periods - start.periods
    assert end.throttled_periods - start.throttled_periods > periods / 2
    assert end.throttled_s > start.throttled_s
    period_s = Budget(cpus, real_layout).period_us / 1e6
    cpu_per_period = (end.usage_s - start.usage_s) / (periods * period_s)
    assert cpu_per_period < cpus * 1.3  # a spinning process would use a whole CPU unbudgeted
    assert process.returncode == -9 and not cgroup.directories


def test_an_unlimited_cgroup_counts_without_throttling(real_layout: Layout) -> None:
    cgroup = Budget(None, real_layout).cgroup("test")
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline(); sum(range(10**7))"],
        stdin=subprocess.PIPE,
    )
    try:
        cgroup.add(process.pid)
        process.stdin.close()
        process.wait()
        reading = cgroup.read()
    finally:
        cgroup.remove()
    assert reading.usage_s > 0 and reading.throttled_periods == 0


def test_a_quota_the_kernel_refuses_names_the_file_and_leaves_nothing(real_layout: Layout) -> None:
    with pytest.raises(BudgetUnavailable, match=r"cpu\.(cfs_quota_us|max): Invalid argument"):
        Budget(0.05, real_layout, period_us=budget.PERIOD_US).check()  # 0.5 ms: under 1 ms
    assert not list(real_layout.limit.parent.glob(f"bench-{os.getpid()}-*"))
