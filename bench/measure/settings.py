"""What a load run is asked for (``LoadRequest``) and how each of its cells is measured
(``Settings``): the two objects every room of the runner passes along."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.measure.budget import Budget
from bench.measure.target import Target
from bench.measure.workload import OURS, Workload

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LoadRequest:
    """What ``run_load`` is asked to run: a profile, how the command line narrowed or changed it,
    and where and against what the servers run. None means "the profile's"."""

    profile: str
    #: --servers/--scenarios/--users: the matrix narrowed to these
    servers: list[str] | None = None
    scenarios: list[str] | None = None
    users: list[int] | None = None
    #: --duration/--repeats/--warmup: the profile's cell length overridden
    duration: float | None = None
    repeats: int | None = None
    warmup: float | None = None
    #: --peers none|all|NAME,...
    peers: str | None = None
    #: Locust worker processes beside the master; 0 runs Locust as one process
    locust_workers: int = 0
    #: what the servers serve and the locustfile that loads them
    workload: Workload = OURS
    #: the address our servers bind (``--server-host``)
    server_host: str = HOST
    #: (host, port) a Locust master binds for workers on other machines, or None
    master_bind: tuple[str, int] | None = None
    #: how many such workers every cell waits for
    expect_workers: int = 0
    #: a server started by the user, measured instead of starting ours
    target: Target | None = None
    #: each server's CPU budget: a number of CPUs, "off", or None to calibrate it
    server_cpus: float | str | None = None
    #: keep the cells in the run directory measured with the same settings
    resume: bool = False
    #: --profile-servers: sample each server's stacks in one extra window per scenario
    profile_servers: bool | None = None
    #: --second-look: measure the cells the verdict ranks once more at the end (None: the
    #: profile's default, ``Profile.second_look``)
    second_look: bool | None = None


@dataclass(frozen=True)
class ServerSampling:
    """py-spy samples the server in one extra window of these cells (``--profile-servers``)."""

    #: the py-spy executable
    py_spy: str
    #: names of the cells sampled: per server, app and scenario, the one with the most users
    cells: frozenset[str]
    #: where the flame graphs and speedscope files go (``profiles/`` in the run directory)
    directory: Path


@dataclass(frozen=True)
class Settings:
    """How every cell of a run is measured."""

    profile: str
    warmup_s: float
    duration_s: float
    repeats: int
    #: Locust worker processes beside the master; 0 runs Locust as one process
    locust_workers: int
    #: {"server_cpus": [...], "generator_cpus": [...]}, or None on a single core
    pinning: dict | None
    #: what the servers serve and the locustfile that loads them
    workload: Workload = OURS
    #: the address our servers bind (``--server-host``)
    server_host: str = HOST
    #: (host, port) a Locust master binds for workers on other machines, or None
    master_bind: tuple[str, int] | None = None
    #: how many such workers every cell waits for
    expect_workers: int = 0
    #: a server started by the user, measured instead of starting ours
    target: Target | None = None
    #: the CPU budget of every server tree, or None: servers run unlimited
    budget: Budget | None = None
    #: which cells get a sampled window, and where its files go; None: no sampling
    sampling: ServerSampling | None = None

    @property
    def generator_cores(self) -> int:
        return len(self.pinning["generator_cpus"]) if self.pinning else os.cpu_count() or 1

    @property
    def connect_host(self) -> str:
        """Where the probe and Locust reach the server (a wildcard bind is reached on loopback)."""
        if self.target is not None:
            return self.target.host
        return {"0.0.0.0": HOST, "::": "::1", "": HOST}.get(self.server_host, self.server_host)

    def base_url(self, port: int) -> str:
        host = self.connect_host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def choose_pinning() -> dict | None:
    """Server tree on the first half of our cores, Locust on the rest; None below two cores."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return {"server_cpus": cpus[:half], "generator_cpus": cpus[half:]}
