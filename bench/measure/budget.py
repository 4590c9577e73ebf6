"""A CPU budget for the server under test: its own cgroup with a CPU quota, per cell.

A server given less CPU than the load generator can use is server-bound by construction, and
that is how servers are deployed: in containers with a CPU limit. Each cell's server runs, with
its whole process tree (fork's children, threads, prefork workers inherit their parent's cgroup),
in a cgroup made for it and removed after it (:mod:`bench.measure.cgroups`, which finds the
cgroup filesystem in either layout). Where no cgroup can be written :meth:`Budget.check` raises
:class:`BudgetUnavailable` saying why, and the runner runs without.

The default budget is calibrated per run (:func:`calibrated_cpus`): the generator's capacity is
measured against the null server first (:func:`generator_capacity`), and the budget is chosen so
that even the fastest cell of the run (a server serving an app), at its known requests/s per CPU,
asks for at most CAPACITY_MARGIN of that capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench.measure.cgroups import BudgetUnavailable, Layout, ServerCgroup

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
