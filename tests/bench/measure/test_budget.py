"""The CPU budget: the calibration rule, finding cgroups, the fallback, and a real quota on a
whole process tree (a forked child is throttled too), read from the cgroup's own counters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure import budget
from bench.measure.budget import Budget, BudgetUnavailable, Hierarchy, Layout

# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generator_rps", "rps_per_cpu", "cpus"),
    [
        (6_700, 11_000, 0.3),  # 0.305 rounds down to a whole step
        (13_000, 23_800, 0.25),  # 0.273
        (6_700, 23_800, 0.1),  # 0.141
        (1_000, 23_800, 0.1),  # 0.021: the kernel's 1 ms per 10 ms period is the floor
        (60_000, 10_000, 1.0),  # 3.0: never more than one CPU
        (4_000, 10_000, 0.2),  # exactly on a step stays there
    ],
)
def test_calibrated_budget_keeps_the_fastest_server_under_half_the_generator(
    generator_rps: float, rps_per_cpu: float, cpus: float
) -> None:
    assert budget.calibrated_cpus(generator_rps, rps_per_cpu) == cpus


def test_calibrated_budget_never_asks_more_than_the_margin_above_the_floor() -> None:
    for generator_rps in range(2_500, 30_000, 250):
        cpus = budget.calibrated_cpus(generator_rps, 23_800)
        assert cpus * 23_800 <= budget.CAPACITY_MARGIN * generator_rps or cpus == budget.BUDGET_MIN


@pytest.mark.parametrize(
    ("rps", "cpu_pct", "cores", "capacity"),
    [
        (6_000, 100.0, 1, 6_000),  # saturated: what it sent is its capacity
        (2_400, 37.5, 1, 6_400),  # a busy machine gave Locust a third of its core
        (9_000, 150.0, 2, 12_000),  # master and workers on two cores, three quarters busy
        (6_000, 104.0, 1, 6_000),  # sampling overshoot never lowers the capacity
        (6_000, None, 1, 6_000),  # no CPU reading: what it sent
    ],
)
def test_generator_capacity_scales_what_it_sent_to_busy_cores(
    rps: float, cpu_pct: float | None, cores: int, capacity: float
) -> None:
    assert budget.generator_capacity(rps, cpu_pct, cores) == pytest.approx(capacity)


def test_remote_workers_capacity_comes_from_their_own_cpu():
    # the master on this machine idles at 0.3% while its one remote worker is nearly saturated:
    # the master's CPU would have extrapolated almost a million requests/s
    summary = {"rps": 2_900.0, "generator_cpu_pct": 0.3, "workers_cpu_pct": 96.0}
    assert budget.measured_capacity(summary, cores=1, remote_workers=1) == pytest.approx(
        3020.8, 0.01
    )
    assert budget.measured_capacity(summary, cores=1) == pytest.approx(2_900 * 100 / 0.3)
    with pytest.raises(budget.BudgetUnavailable, match="reported no CPU use.*--server-cpus"):
        budget.measured_capacity({**summary, "workers_cpu_pct": None}, 1, remote_workers=1)


@pytest.mark.parametrize(
    ("cells", "fastest", "key"),
    [
        ([("poll", "app"), ("epoll", "app"), ("bjoern", "app"), ("granian", "app"),
          ("null", "app")], "bjoern", ("bjoern", "app")),
        ([("poll", "app"), ("threaded", "app"), ("granian", "app")], "granian", ("granian", "app")),
        ([("fork", "app"), ("waitress", "app"), ("null", "app")], "fork", ("fork", "app")),
        ([("waitress", "app"), ("null", "app")], "epoll", budget.DEFAULT_FASTEST),
        # the raw-app reference cells are faster than any framework-app cell, bjoern's included
        ([("epoll", "app"), ("epoll", "raw"), ("bjoern", "app")], "epoll (raw app)",
         ("epoll", "raw")),
        ([("poll", "app"), ("poll", "raw"), ("granian", "app")], "granian", ("granian", "app")),
    ],
)  # fmt: skip
def test_the_fastest_known_cell_of_the_run_sets_the_rate(cells: list, fastest: str, key) -> None:
    assert budget.fastest_rps_per_cpu(cells) == (fastest, budget.KNOWN_RPS_PER_CPU[key])


def test_a_run_with_raw_cells_gets_a_budget_those_cells_cannot_exhaust_the_generator_with() -> None:
    """The quick run's shape: Locust sent 8.8k req/s to the null server; the raw-app cells of
    epoll would ask for 0.3 × 29k = 8.7k at the framework's budget, so the budget halves."""
    label, rate = budget.fastest_rps_per_cpu([("epoll", "app"), ("epoll", "raw")])
    cpus = budget.calibrated_cpus(8_800, rate)
    assert cpus == 0.15
    assert cpus * rate <= budget.CAPACITY_MARGIN * 8_800


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
    found = budget.parse_hierarchies(HYBRID_MOUNTS, HYBRID_SELF)
    v1 = {(h.controllers, h.parent) for h in found if h.version == 1}
    assert v1 == {
        (frozenset({"cpu"}), Path("/sys/fs/cgroup/cpu")),
        (frozenset({"cpuacct"}), Path("/sys/fs/cgroup/cpuacct")),
        (frozenset({"memory"}), Path("/sys/fs/cgroup/memory/box/1")),
    }
    layout = budget.choose_layout(found)
    assert layout.name == "cgroup v1"
    assert layout.limit.controllers == {"cpu"} and layout.usage.controllers == {"cpuacct"}


def test_comounted_v1_limits_and_counts_in_one_hierarchy() -> None:
    found = budget.parse_hierarchies(COMOUNTED_MOUNTS, "3:cpu,cpuacct:/user.slice\n")
    layout = budget.choose_layout(found)
    assert layout.limit == layout.usage
    assert layout.limit.parent == Path("/sys/fs/cgroup/cpu,cpuacct/user.slice")


def test_v2_with_the_cpu_controller_is_preferred(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    mounts = HYBRID_MOUNTS.replace("/sys/fs/cgroup/unified", str(tmp_path))
    layout = budget.choose_layout(budget.parse_hierarchies(mounts, HYBRID_SELF))
    assert layout.name == "cgroup v2" and layout.limit.parent == tmp_path
    assert layout.usage == layout.limit


def test_v2_without_the_cpu_controller_for_children_says_so(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    mounts = f"25 20 0:22 / {tmp_path} rw - cgroup2 cgroup2 rw\n"
    with pytest.raises(BudgetUnavailable, match="does not give its children the cpu controller"):
        budget.choose_layout(budget.parse_hierarchies(mounts, "0::/\n"))


def test_a_container_mount_shows_only_the_cgroups_below_its_root() -> None:
    inside = budget.parse_hierarchies(CONTAINER_MOUNTS, "0::/docker/abc/app\n")
    assert [h.parent for h in inside] == [Path("/sys/fs/cgroup/app")]
    assert budget.parse_hierarchies(CONTAINER_MOUNTS, "0::/elsewhere\n") == []


# --- the fallback: nothing here is writable ---------------------------------------------------


def test_no_cgroup_filesystem_is_unavailable_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(BudgetUnavailable, match="no cgroups here"):
        budget.locate(tmp_path / "no-such-proc")
    (tmp_path / "mountinfo").write_text("1 0 0:1 / / rw - ext4 /dev/sda1 rw\n")
    (tmp_path / "cgroup").write_text("0::/\n")
    with pytest.raises(BudgetUnavailable, match="no cgroup hierarchy with the cpu controller"):
        budget.locate(tmp_path)


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
        layout = budget.locate()
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


@pytest.mark.parametrize(
    ("cpus", "period_us"), [(None, 10_000), (1.0, 10_000), (0.5, 10_000), (0.3, 17_000),
                            (0.25, 20_000), (0.1, 50_000)],
)  # fmt: skip
def test_a_small_budget_gets_a_period_whose_quota_holds_a_whole_cfs_slice(cpus, period_us):
    period = budget.period_for(cpus)
    assert period >= 10_000 and period % 1000 == 0
    assert cpus is None or cpus * period >= budget.cfs_slice_us()
    if budget.cfs_slice_us() == budget.DEFAULT_CFS_SLICE_US:  # the kernel's default slice
        assert period == period_us


def test_the_cfs_slice_falls_back_to_the_kernel_default_when_unreadable(tmp_path):
    assert budget.cfs_slice_us(tmp_path / "missing") == budget.DEFAULT_CFS_SLICE_US
    (tmp_path / "slice").write_text("3000\n")
    assert budget.cfs_slice_us(tmp_path / "slice") == 3000
