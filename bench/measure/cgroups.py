"""Cgroups for one server each: where the kernel's cgroup filesystem is mounted, and a cgroup
made, joined, read and removed per server. It never writes to a cgroup it did not create.

Both layouts of the kernel's cgroup filesystem work, found from ``/proc/self/mountinfo`` and
``/proc/self/cgroup``:

- cgroup v2: ``cpu.max`` limits; ``cpu.stat`` counts usage and throttling.
- cgroup v1: ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` limit and ``cpu.stat`` counts throttling
  in the ``cpu`` hierarchy; ``cpuacct.usage`` counts usage in the ``cpuacct`` hierarchy, which
  may be mounted with ``cpu`` or apart (then the server joins a cgroup in each).

Where no cgroup can be written (not root, macOS, a read-only cgroupfs) :func:`locate` or
:class:`ServerCgroup` raise :class:`BudgetUnavailable` saying why.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

#: seconds a cgroup may take to empty after its processes were killed
REMOVE_TIMEOUT_S = 5.0


class BudgetUnavailable(Exception):
    """No cgroup with a CPU quota can be made here; the message says why."""


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
        #: the quota's period, which lift() writes again beside "no quota"
        self.period_us = period_us
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
        self.period_us = period_us
        hierarchy, directory = self.directories[0]
        if hierarchy.version == 2:
            write(directory / "cpu.max", f"{quota_us or 'max'} {period_us}")
        else:
            write(directory / "cpu.cfs_period_us", str(period_us))
            write(directory / "cpu.cfs_quota_us", str(quota_us or -1))

    def lift(self) -> None:
        """No quota from now on, only counting. A server's shutdown is not measured, and under
        a small quota its exit (finishing requests, the interpreter's teardown) waits for CPU
        time period after period."""
        self.set_quota(None, self.period_us)

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
