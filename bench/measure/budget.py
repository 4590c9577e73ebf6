"""A CPU budget for the server under test: its own cgroup with a CPU quota, per cell.

A server given less CPU than the load generator can use is server-bound by construction, and
that is how servers are deployed: in containers with a CPU limit. Each cell's server runs, with
its whole process tree (fork's children, threads, prefork workers inherit their parent's cgroup),
in a cgroup this module creates for it and removes after it. It never writes to a cgroup it did
not create.

Both layouts of the kernel's cgroup filesystem work, found from ``/proc/self/mountinfo`` and
``/proc/self/cgroup``:

- cgroup v2: ``cpu.max`` limits; ``cpu.stat`` counts usage and throttling.
- cgroup v1: ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` limit and ``cpu.stat`` counts throttling
  in the ``cpu`` hierarchy; ``cpuacct.usage`` counts usage in the ``cpuacct`` hierarchy, which
  may be mounted with ``cpu`` or apart (then the server joins a cgroup in each).

Where no cgroup can be written (not root, macOS, a read-only cgroupfs) :func:`locate` or
:meth:`Budget.check` raise :class:`BudgetUnavailable` saying why, and the runner runs without.

The default budget is calibrated per run (:func:`calibrated_cpus`): the generator's capacity is
measured against the null server first (:func:`generator_capacity`), and the budget is chosen so
that even the fastest cell of the run (a server serving an app), at its known requests/s per CPU,
asks for at most CAPACITY_MARGIN of that capacity.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

#: the quota's period: short, so a throttled server stalls for at most a few milliseconds
PERIOD_US = 10_000
#: the kernel hands a cgroup its quota in slices of this much runtime (the default when the sysctl
#: cannot be read). A quota below one slice throttles a group of processes erratically, so a
#: small budget gets a longer period instead, one whose quota holds a whole slice
CFS_SLICE_FILE = Path("/proc/sys/kernel/sched_cfs_bandwidth_slice_us")
DEFAULT_CFS_SLICE_US = 5_000
#: the kernel refuses quotas below 1 ms per period
MIN_QUOTA_US = 1_000

#: the fastest server of a run may ask for at most this share of the generator's capacity
CAPACITY_MARGIN = 0.5
#: the calibrated budget's range and step, in CPUs; the floor is the kernel's 1 ms per period
BUDGET_MIN, BUDGET_MAX, BUDGET_STEP = MIN_QUOTA_US / PERIOD_US, 1.0, 0.05
#: the rule in words, for meta.json and the report
RULE = (
    f"cpus = {CAPACITY_MARGIN:g} × generator_capacity ÷ fastest_rps_per_cpu, clamped to "
    f"[{BUDGET_MIN:g}, {BUDGET_MAX:g}] and rounded down to {BUDGET_STEP:g}"
)
#: plaintext requests/s per CPU on one core under wrk (the top of each measured range), per server
#: and app: what the calibration assumes the fastest cell of a run can do with one CPU. The raw app
#: costs far less CPU than the framework, so our models' raw-app reference cells are the fastest of
#: a run that has them.
KNOWN_RPS_PER_CPU = {
    ("bjoern", "app"): 23_800,
    ("granian", "app"): 13_700,
    ("epoll", "app"): 11_000,
    ("threaded", "app"): 10_800,
    ("poll", "app"): 6_900,
    ("fork", "app"): 4_600,
    ("epoll", "raw"): 29_000,
    ("threaded", "raw"): 25_800,
    ("fork", "raw"): 17_200,
    ("poll", "raw"): 13_100,
}
#: the fastest of our own models, assumed when no cell of the run is in the table
DEFAULT_FASTEST = ("epoll", "app")

#: seconds a cgroup may take to empty after its processes were killed
REMOVE_TIMEOUT_S = 5.0


class BudgetUnavailable(Exception):
    """No cgroup with a CPU quota can be made here; the message says why."""


# --- the rule ---------------------------------------------------------------------------------


def fastest_rps_per_cpu(cells: list[tuple[str, str]]) -> tuple[str, int]:
    """The fastest (server, app) of the run that KNOWN_RPS_PER_CPU knows, named as the report
    says it ("epoll", "epoll (raw app)"), with its requests/s per CPU."""
    known = [cell for cell in cells if cell in KNOWN_RPS_PER_CPU]
    server, app = max(known, key=KNOWN_RPS_PER_CPU.__getitem__, default=DEFAULT_FASTEST)
    label = server if app == "app" else f"{server} ({app} app)"
    return label, KNOWN_RPS_PER_CPU[server, app]


def generator_capacity(rps: float, generator_cpu_pct: float | None, cores: int) -> float:
    """Requests/s the generator can send with all its cores busy, from one run against the null
    server: what it sent, scaled by how far its cores were from busy.

    The null server answers faster than Locust asks, so Locust's CPU sets the pace; where Locust
    was not saturated even so (a busy machine took part of its core, or 64 users are not enough
    to fill it) the scaling says what its cores would do. Never less than what it sent.

    >>> generator_capacity(2_400, 37.5, cores=1)
    6400.0
    """
    if not generator_cpu_pct:
        return rps
    return rps * max(1.0, cores * 100 / generator_cpu_pct)


def measured_capacity(summary: dict, cores: int, remote_workers: int = 0) -> float:
    """The generator's capacity from the calibration cell's summary: scaled by the CPU of whoever
    generated the load. With workers on other machines that is the workers' own report (each
    process can use one core); the master on this machine only collects their numbers, so its
    CPU says nothing. BudgetUnavailable when the workers reported none.

    >>> measured_capacity({"rps": 2_900, "workers_cpu_pct": 96.0, "generator_cpu_pct": 0.3}, 1, 1)
    3020.8333333333335
    """
    if not remote_workers:
        return generator_capacity(summary["rps"], summary.get("generator_cpu_pct"), cores)
    workers = summary.get("workers_cpu_pct")
    if not workers:
        raise BudgetUnavailable(
            "the remote Locust workers reported no CPU use, so their capacity is unknown (start "
            "them with `python -m bench worker`, which loads the suite's instrument.py); give "
            "--server-cpus N or off"
        )
    return generator_capacity(summary["rps"], workers, cores=1)


def calibrated_cpus(generator_rps: float, rps_per_cpu: float) -> float:
    """CAPACITY_MARGIN × generator_rps ÷ rps_per_cpu, clamped to [BUDGET_MIN, BUDGET_MAX] and
    rounded down to BUDGET_STEP; generator_rps is the generator's capacity.

    >>> calibrated_cpus(6_700, 11_000)  # 0.30 CPU at most asks 3.3k of Locust's 6.7k req/s
    0.3
    """
    raw = CAPACITY_MARGIN * generator_rps / rps_per_cpu
    clamped = min(max(raw, BUDGET_MIN), BUDGET_MAX)
    # the small epsilon keeps 0.3 / 0.05 = 5.999… from rounding a whole step down
    return round(math.floor(clamped / BUDGET_STEP + 1e-9) * BUDGET_STEP, 2)


# --- where cgroups live -----------------------------------------------------------------------


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy, seen from our own cgroup in it."""

    #: 1 or 2
    version: int
    #: the controllers it has ("cpu", "cpuacct", ...)
    controllers: frozenset[str]
    #: our own cgroup's directory: a budget's cgroups are made below it
    parent: Path


@dataclass(frozen=True)
class Layout:
    """Where a budget's cgroups are made: one hierarchy limits CPU, one counts it (or both)."""

    #: the hierarchy with the cpu controller
    limit: Hierarchy
    #: the hierarchy that counts CPU time (v2: the same one; v1: cpuacct), if any
    usage: Hierarchy | None

    @property
    def name(self) -> str:
        return f"cgroup v{self.limit.version}"


def parse_hierarchies(mountinfo: str, self_cgroup: str) -> list[Hierarchy]:
    """The cgroup hierarchies mounted here, each at our own cgroup's directory in it.

    ``mountinfo`` is /proc/self/mountinfo (``ID PARENT DEV ROOT MOUNTPOINT OPTS ... - TYPE SRC
    SUPEROPTS``); ``self_cgroup`` is /proc/self/cgroup (``ID:CONTROLLERS:PATH``, v2 is ``0::PATH``).
    v2 controllers are read from the cgroup's ``cgroup.subtree_control``.
    """
    paths = {}
    for line in self_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        paths[frozenset(controllers.split(",")) if controllers else frozenset()] = path
    hierarchies = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        separator = fields.index("-")
        root, mountpoint, fstype = fields[3], fields[4], fields[separator + 1]
        if fstype == "cgroup2" and frozenset() in paths:
            parent = below_mount(mountpoint, root, paths[frozenset()])
            if parent is not None:
                hierarchies.append(Hierarchy(2, v2_controllers(parent), parent))
        elif fstype == "cgroup":
            options = set(fields[separator + 3].split(","))
            for controllers, path in paths.items():
                parent = below_mount(mountpoint, root, path)
                if controllers and controllers <= options and parent is not None:
                    hierarchies.append(Hierarchy(1, controllers, parent))
    return hierarchies


def below_mount(mountpoint: str, root: str, path: str) -> Path | None:
    """``path`` (relative to the hierarchy's root) as a directory under a mount of ``root``."""
    if root != "/" and not (path == root or path.startswith(root.rstrip("/") + "/")):
        return None  # our cgroup is outside what this mount shows
    relative = path[len(root) :] if root != "/" else path
    return Path(mountpoint, relative.lstrip("/"))


def v2_controllers(directory: Path) -> frozenset[str]:
    """The controllers a child of ``directory`` gets: those its parent enabled for children."""
    try:
        return frozenset((directory / "cgroup.subtree_control").read_text().split())
    except OSError:
        return frozenset()


def locate(proc_self: Path = Path("/proc/self")) -> Layout:
    """The layout budgets use here; BudgetUnavailable when no hierarchy has the cpu controller."""
    try:
        mountinfo = (proc_self / "mountinfo").read_text()
        self_cgroup = (proc_self / "cgroup").read_text()
    except OSError as error:
        raise BudgetUnavailable(f"no cgroups here ({error.strerror}: {error.filename})") from error
    return choose_layout(parse_hierarchies(mountinfo, self_cgroup))


def choose_layout(hierarchies: list[Hierarchy]) -> Layout:
    """v2 when it has the cpu controller (it counts usage itself), else v1's cpu + cpuacct."""
    for hierarchy in hierarchies:
        if hierarchy.version == 2 and "cpu" in hierarchy.controllers:
            return Layout(hierarchy, hierarchy)
    limit = next((h for h in hierarchies if h.version == 1 and "cpu" in h.controllers), None)
    if limit is None:
        v2 = next((h for h in hierarchies if h.version == 2), None)
        if v2 is not None:
            raise BudgetUnavailable(f"cgroup v2 at {v2.parent} does not give its children the cpu "
                                    "controller (cgroup.subtree_control)")  # fmt: skip
        raise BudgetUnavailable("no cgroup hierarchy with the cpu controller is mounted")
    usage = next((h for h in hierarchies if h.version == 1 and "cpuacct" in h.controllers), None)
    return Layout(limit, usage)


# --- one cgroup per server --------------------------------------------------------------------


@dataclass(frozen=True)
class CgroupReading:
    """The cgroup's cumulative counters at one moment."""

    #: CPU-seconds used by every process that ran in it (None: no usage counter here)
    usage_s: float | None
    #: seconds its runnable threads waited for the next period (summed over CPUs)
    throttled_s: float
    #: quota periods that passed, and those in which it ran out of quota
    periods: int
    throttled_periods: int


#: tells the cgroups of one process apart
_serial = itertools.count()


class ServerCgroup:
    """A cgroup made for one server: created with its quota, joined, read, removed."""

    def __init__(self, layout: Layout, label: str, quota_us: int | None, period_us: int):
        #: one directory per hierarchy we use: the limiting one first
        self.directories: list[tuple[Hierarchy, Path]] = []
        name = f"bench-{os.getpid()}-{next(_serial)}-{label}"
        hierarchies = [layout.limit]
        if layout.usage not in (None, layout.limit):
            hierarchies.append(layout.usage)
        try:
            for hierarchy in hierarchies:
                directory = hierarchy.parent / name
                directory.mkdir()
                self.directories.append((hierarchy, directory))
            self.set_quota(quota_us, period_us)
        except OSError as error:
            self.remove()
            raise BudgetUnavailable(f"cannot make a cgroup under {error.filename}: "
                                    f"{error.strerror}") from error  # fmt: skip

    def set_quota(self, quota_us: int | None, period_us: int) -> None:
        hierarchy, directory = self.directories[0]
        if hierarchy.version == 2:
            write(directory / "cpu.max", f"{quota_us or 'max'} {period_us}")
        else:
            write(directory / "cpu.cfs_period_us", str(period_us))
            write(directory / "cpu.cfs_quota_us", str(quota_us or -1))

    def add(self, pid: int) -> None:
        """Move ``pid`` (all its threads) in; the children it forks from now on stay in."""
        for _, directory in self.directories:
            write(directory / "cgroup.procs", str(pid))

    def read(self) -> CgroupReading:
        hierarchy, directory = self.directories[0]
        stat = read_stat(directory / "cpu.stat")
        periods, throttled = stat.get("nr_periods", 0), stat.get("nr_throttled", 0)
        if hierarchy.version == 2:
            throttled_s = stat.get("throttled_usec", 0) / 1e6
            return CgroupReading(stat["usage_usec"] / 1e6, throttled_s, periods, throttled)
        usage = next((d for h, d in self.directories if "cpuacct" in h.controllers), None)
        usage_s = int((usage / "cpuacct.usage").read_text()) / 1e9 if usage else None
        throttled_s = stat.get("throttled_time", 0) / 1e9
        return CgroupReading(usage_s, throttled_s, periods, throttled)

    def remove(self) -> None:
        """Kill what is still inside (only processes we started can be), then remove it."""
        for _, directory in reversed(self.directories):
            kill_members(directory)
            deadline = time.monotonic() + REMOVE_TIMEOUT_S
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY until the killed processes have left
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        self.directories = []


def write(path: Path, text: str) -> None:
    """Write a cgroup file that must already exist: a missing one means this is no cgroupfs."""
    descriptor = os.open(path, os.O_WRONLY)
    try:
        os.write(descriptor, text.encode())
    except OSError as error:  # the kernel refused the value: name the file it went to
        raise OSError(error.errno, f"{error.strerror} ({text!r})", str(path)) from error
    finally:
        os.close(descriptor)


def read_stat(path: Path) -> dict[str, int]:
    pairs = (line.split() for line in path.read_text().splitlines())
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2}


def kill_members(directory: Path) -> None:
    try:
        pids = [int(pid) for pid in (directory / "cgroup.procs").read_text().split()]
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- a budget ---------------------------------------------------------------------------------


def cfs_slice_us(path: Path = CFS_SLICE_FILE) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return DEFAULT_CFS_SLICE_US


def period_for(cpus: float | None) -> int:
    """PERIOD_US, or longer (whole milliseconds) when ``cpus`` of it would be under one slice."""
    if not cpus:
        return PERIOD_US
    return max(PERIOD_US, math.ceil(cfs_slice_us() / cpus / 1000) * 1000)


@dataclass(frozen=True)
class Budget:
    """``cpus`` CPUs per ``period_us`` for every server of a run, each in its own cgroup."""

    #: CPUs the server tree may use (0.3: 3 ms of every 10 ms period); None: unlimited, counted
    cpus: float | None
    #: where the cgroups are made
    layout: Layout
    #: the quota's period in microseconds; None: PERIOD_US, longer for a small budget (period_for)
    period_us: int | None = None

    def __post_init__(self) -> None:
        if self.period_us is None:
            object.__setattr__(self, "period_us", period_for(self.cpus))

    @property
    def quota_us(self) -> int | None:
        return None if self.cpus is None else round(self.cpus * self.period_us)

    def cgroup(self, label: str, limited: bool = True) -> ServerCgroup:
        """A new cgroup with this budget (BudgetUnavailable when it cannot be made); with
        ``limited`` False it only counts until :meth:`limit` is called."""
        return ServerCgroup(self.layout, label, self.quota_us if limited else None, self.period_us)

    def limit(self, cgroup: ServerCgroup) -> None:
        """Hold a counting cgroup's processes to this budget from now on."""
        cgroup.set_quota(self.quota_us, self.period_us)

    def check(self) -> None:
        """Make and remove one cgroup, so a run learns at its start whether budgets work here."""
        self.cgroup("check").remove()

    def describe(self) -> dict:
        """The budget as meta.json and each cell record it."""
        return {"cpus": self.cpus, "period_us": self.period_us, "cgroup": self.layout.name}
