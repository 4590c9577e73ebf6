"""The load runner: servers × scenarios × user levels, each cell measured and written at once.

For each cell the runner starts the server in its own process group and waits for its
``listening on`` line, checks that one request answers correctly, then runs Locust
(``bench/measure/scenarios.py``) as a separate process per repeat: a warm-up that is excluded,
then the measured window, while ``bench.measure.sampler`` watches both process trees. On
machines with two or more cores the server tree and Locust are pinned to different cores. Where
cgroups can be written, each server tree also runs under a CPU budget (``bench.measure.budget``),
calibrated at the start of the run against the null server unless ``server_cpus`` sets it. The
runner only runs and writes raw results (``cells/<cell>.json``, ``meta.json``); the report reads
them. What is served and the locustfile may be the user's (``bench.measure.workload``), Locust's
workers may join from other machines, and the server may be one the user started
(``bench.measure.target``).

A profile's sweep adds open-loop cells after the closed-loop ones (``bench/measure/openloop.py``):
each offers a fraction of the highest requests/s its server's closed-loop cells of the same
scenario reached in this run; the cells of one server and scenario run as the steps of one Locust
run against one server start.

Ctrl-C or SIGTERM stops the current cell: its server and Locust are killed by process group, the
finished cells stay, and the report is still written for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench import flags
from bench.flags import UNRANKED, flags_for
from bench.measure import latency
from bench.measure.budget import (
    CAPACITY_MARGIN,
    RULE,
    Budget,
    BudgetUnavailable,
    CgroupReading,
    ServerCgroup,
    calibrated_cpus,
    fastest_rps_per_cpu,
    generator_capacity,
    locate,
)
from bench.measure.profiles import PROFILES, SCENARIOS, Part, Profile, Scenario, cell_seconds
from bench.measure.resume import kept_cells, resume_entry
from bench.measure.sampler import Sampler
from bench.measure.target import TARGET_NAME, TARGET_SPEC, Target, TargetServer
from bench.measure.workload import OURS, Workload
from bench.rundir import machine_meta, write_json
from bench.serving import inject
from bench.serving.peers import NULL_SERVER
from bench.serving.peers import select_peers as select_peer_specs
from bench.serving.registry import ServerSpec, all_servers

REPO_ROOT = Path(__file__).resolve().parents[2]
#: the measured window, loaded beside the scenario file
INSTRUMENT_FILE = Path(__file__).resolve().parent / "instrument.py"
#: loaded in front of the scenario file for open-loop cells: requests on a fixed schedule
OPENLOOP_FILE = Path(__file__).resolve().parent / "openloop.py"
HOST = "127.0.0.1"

#: seconds a server may take to print ``listening on`` (imports on a busy machine are slow)
READY_TIMEOUT_S = 20.0
#: seconds Locust may run beyond warm-up + duration (start-up, shutdown) before it counts as hung
LOCUST_GRACE_S = 30.0
#: seconds a Locust master waits for --expect-workers remote workers to join before it gives up
WORKERS_WAIT_S = 120
#: seconds a server gets to finish in-flight requests after SIGTERM before its group is killed
STOP_TIMEOUT_S = 5.0
#: seconds one probe request may take
PROBE_TIMEOUT_S = 10.0
#: how much of a server's stderr a failed cell keeps
STDERR_TAIL_CHARS = 2000

LISTENING = re.compile(rb"listening on http://([^\s:/]+):(\d+)")


class CellFailed(Exception):
    """The server did not start, died, or stopped answering; the message says which."""


class WrongAnswer(CellFailed):
    """The server answered, but not with 200 and the scenario's marker: retrying will not help."""


# --- the matrix -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    server: ServerSpec
    #: key of bench.measure.profiles.APPS
    app: str
    scenario: Scenario
    #: closed loop: the users; open loop: the bound on requests in flight
    users: int
    #: open loop only: the offered load as a fraction of the server's closed-loop capacity
    offered_fraction: float | None = None
    #: open loop only: the offered requests/s, known once the closed-loop cells have run
    offered_rps: float | None = None

    @property
    def mode(self) -> str:
        return "closed" if self.offered_fraction is None else "open"

    @property
    def name(self) -> str:
        level = f"u{self.users}" if self.mode == "closed" else f"o{self.offered_fraction:.0%}"
        return f"{self.server.name}--{self.app}--{self.scenario.name}--{level}".rstrip("%")


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


def part_cells(
    part: Part, servers: dict[str, ServerSpec], overrides: dict, catalogue: dict = SCENARIOS
) -> list[Cell]:
    """The cells of one part, with --servers/--scenarios/--users applied; scenarios are looked
    up in ``catalogue`` (the workload's)."""
    names = overrides.get("servers") or part.servers
    scenarios = overrides.get("scenarios") or part.scenarios
    if part.app != "app":  # reference apps serve only their own few endpoints
        scenarios = [name for name in scenarios if name in part.scenarios]
    users = overrides.get("users") or part.users
    return [
        Cell(servers[name], part.app, catalogue[scenario], level)
        for name in names
        for scenario in scenarios
        if not servers[name].scenarios or scenario in servers[name].scenarios
        for level in users
    ]


def build_matrix(
    profile: Profile,
    peer_names: list[str],
    catalogue: dict = SCENARIOS,
    known_servers: dict[str, ServerSpec] | None = None,
    **overrides,
) -> list[Cell]:
    """Every cell of a run, in order, without duplicates."""
    servers = known_servers or all_servers()
    for option, valid in (("servers", servers), ("scenarios", catalogue)):
        unknown = [name for name in overrides.get(option) or () if name not in valid]
        if unknown:
            raise ValueError(
                f"--{option}: unknown {', '.join(unknown)} (valid: {', '.join(valid)})"
            )
    cells = [
        cell for part in profile.parts for cell in part_cells(part, servers, overrides, catalogue)
    ]
    if peer_names:
        peer_overrides = {**overrides, "servers": peer_names}
        cells += part_cells(peers_part(profile), servers, peer_overrides, catalogue)
    if profile.sweep is not None:
        cells += sweep_cells(profile, servers, overrides, catalogue)
    unique = {cell.name: cell for cell in cells}
    return list(unique.values())


def sweep_cells(
    profile: Profile, servers: dict[str, ServerSpec], overrides: dict, catalogue: dict = SCENARIOS
) -> list[Cell]:
    """The open-loop cells of a profile's sweep, with --servers/--scenarios applied (--users is
    not: the sweep's users bound its requests in flight); scenarios come from ``catalogue``."""
    sweep = profile.sweep
    names = [name for name in overrides.get("servers") or sweep.servers if name in sweep.servers]
    return [
        Cell(servers[name], "app", catalogue[scenario], sweep.users, offered_fraction=fraction)
        for name in names
        for scenario in overrides.get("scenarios") or sweep.scenarios
        for fraction in sweep.fractions
    ]


def offering(cell: Cell, records: list[dict]) -> Cell:
    """An open-loop cell with its offered requests/s: its fraction of the highest requests/s the
    finished closed-loop cells of its server and scenario measured; unchanged without any."""
    if cell.mode == "closed":
        return cell
    capacities = [
        record["summary"]["rps"]
        for record in records
        if record.get("mode", "closed") == "closed"
        and (record["server"], record["app"], record["scenario"])
        == (cell.server.name, cell.app, cell.scenario.name)
        and record["summary"].get("rps")
        and not UNRANKED & set(record["flags"])
    ]
    if not capacities:
        return cell
    return dataclasses.replace(cell, offered_rps=cell.offered_fraction * max(capacities))


def peers_part(profile: Profile) -> Part:
    """Where peers run: the profile's peers part; a profile without one (smoke) runs peers on its
    own scenarios and user levels, so an explicit --peers is never silently dropped."""
    if profile.peers is not None:
        return profile.peers
    ours = [part for part in profile.parts if part.app == "app"]
    scenarios = tuple(dict.fromkeys(name for part in ours for name in part.scenarios))
    users = tuple(sorted({level for part in ours for level in part.users}))
    return Part((), scenarios, users)


def peers_without_cells(choice: str | None, peer_names: list[str], cells: list[Cell]) -> str:
    """Why peers named with --peers NAME,... run nowhere ("" when each has a cell): a peer that
    serves only some scenarios (null: plaintext) may have none in this run."""
    if choice in (None, "all", "none"):
        return ""
    idle = [name for name in peer_names if not any(cell.server.name == name for cell in cells)]
    if not idle:
        return ""
    servers = all_servers()
    serves = "; ".join(f"{name} serves only {', '.join(servers[name].scenarios)}" for name in idle)
    return f"--peers: {serves}, and this run has none of those scenarios"


def select_peers(choice: str | None, profile: Profile) -> tuple[list[str], dict[str, str]]:
    """``--peers none|all|NAME,...`` → (peer names to run, {name: why skipped}); by default a
    profile with a peers part runs its ``default_peers`` (all of them, or smoke's null server)."""
    choice = choice or (profile.default_peers if profile.peers is not None else "none")
    if choice == "none":
        return [], {}
    specs, skipped = select_peer_specs(choice)
    return [spec.name for spec in specs], skipped


# --- processes --------------------------------------------------------------------------------


class ProcessGroup:
    """A subprocess in its own session (so its group can be killed), output to log files."""

    def __init__(
        self,
        argv: list[str],
        log_prefix: Path,
        cpus: list[int] | None,
        env: dict,
        cgroup: ServerCgroup | None = None,
    ):
        #: where stdout and stderr go; read back to find ``listening on`` and error tails
        self.stdout_path = Path(f"{log_prefix}.out")
        self.stderr_path = Path(f"{log_prefix}.err")
        log_prefix.parent.mkdir(parents=True, exist_ok=True)
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            #: the running process, leader of its own process group
            self.process = subprocess.Popen(
                argv,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
                env=env,
                start_new_session=True,
            )
        #: the cgroup holding the process tree to its CPU budget, removed by stop()
        self.cgroup = cgroup
        if cgroup:
            # like the pinning below: the interpreter is still starting, no child exists yet,
            # and every child it forks later starts in the same cgroup
            try:
                cgroup.add(self.process.pid)
            except OSError as error:
                self.stop()
                raise CellFailed(f"the server could not join its cgroup: {error}") from error
        if cpus:
            # set before the interpreter has even imported anything, so before any child (fork
            # workers, Locust workers) exists; children inherit it. Not a preexec_fn: those are
            # unsafe with threads (the progress bar and the sampler run threads).
            os.sched_setaffinity(self.process.pid, cpus)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        """None while the leader runs."""
        return self.process.poll()

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-STDERR_TAIL_CHARS:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the leader, give it STOP_TIMEOUT_S, then SIGKILL whatever is left of its group.

        Only the leader gets SIGTERM: it finishes in-flight requests and stops its own children.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT_S)
        signal_group(self.pid, signal.SIGKILL)
        self.process.wait()
        if self.cgroup:
            self.cgroup.remove()  # also kills whatever left the process group but not the cgroup

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pgid, signum)


def child_env(**extra: str) -> dict:
    """Our environment, with the repo importable (Locust and servers run from a file path)."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def free_port() -> int:
    """A port for servers that cannot report the one they bound (a small race, accepted)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(cell: Cell, settings: Settings, logs_dir: Path) -> tuple[ProcessGroup, int]:
    """Start the cell's server and return it with its port once it answers."""
    if settings.target is not None:  # started by the user: only check that it answers
        probe(settings.target.port, cell.scenario, settings.connect_host)
        return TargetServer(settings.target), settings.target.port
    port = 0 if cell.server.prints_listening else free_port()
    argv = cell.server.argv(settings.workload.apps[cell.app], settings.server_host, port)
    if cell.server.kind == "ours" and inject.injecting():
        argv = inject.wrap_argv(argv)  # a deliberately slower HTTP layer, for the demo and tests
    cpus = settings.pinning["server_cpus"] if settings.pinning else None
    # the server tree joins its cgroup at once but is held to the budget only once it answers:
    # its start (imports, prefork workers) is not measured, and 0.15 CPU stretched every cell's
    # start by about half a second
    try:
        cgroup = (
            settings.budget.cgroup(cell.server.name, limited=False) if settings.budget else None
        )
    except BudgetUnavailable as error:
        raise CellFailed(f"no cgroup for the CPU budget: {error}") from error
    server = ProcessGroup(argv, logs_dir / f"{cell.name}.server", cpus, child_env(), cgroup)
    try:
        port = wait_until_listening(server) if cell.server.prints_listening else port
        wait_until_answering(server, port, cell.scenario, settings.connect_host)
        if cgroup:
            settings.budget.limit(cgroup)
    except BaseException:
        server.stop()
        raise
    return server, port


def wait_until_listening(server: ProcessGroup) -> int:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        match = LISTENING.search(server.stdout_path.read_bytes())
        if match:
            return int(match.group(2))
        if server.process.poll() is not None:
            raise CellFailed(f"server exited with code {server.process.returncode} at start")
        time.sleep(0.05)
    raise CellFailed(f"server printed no 'listening on' line within {READY_TIMEOUT_S:.0f} s")


def wait_until_answering(
    server: ProcessGroup, port: int, scenario: Scenario, host: str = HOST
) -> None:
    """Probe until one request answers correctly (servers without a ready line need retries)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            probe(port, scenario, host)
            return
        except WrongAnswer:
            raise
        except CellFailed:
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise
        time.sleep(0.1)


def probe(port: int, scenario: Scenario, host: str = HOST) -> None:
    """One GET of the scenario's probe path: it must answer 200 with the scenario's marker."""
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
    try:
        connection.request("GET", scenario.probe_path)
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as error:
        raise CellFailed(f"GET {scenario.probe_path} did not answer: {error!r}") from error
    finally:
        connection.close()
    if response.status != 200 or scenario.marker not in body:
        raise WrongAnswer(
            f"GET {scenario.probe_path} answered {response.status} without {scenario.marker!r}"
        )


# --- one repeat: Locust against a running server -----------------------------------------------


def locust_argv(
    cell: Cell, port: int, settings: Settings, csv_prefix: Path, steps: int = 1
) -> list[str]:
    # a safety net only: the locustfile ends the test after warm-up + duration itself
    run_time = math.ceil(steps * (settings.warmup_s + settings.duration_s) + 10)
    files = [INSTRUMENT_FILE, *([OPENLOOP_FILE] if cell.mode == "open" else []),
             settings.workload.scenario_file]  # fmt: skip
    argv = [
        sys.executable, "-m", "locust", "-f", ",".join(map(str, files)), "--headless",
        "--host", settings.base_url(port),
        "--users", str(cell.users),
        # all users within a quarter of a second: the warm-up is for the server, not for spawning
        "--spawn-rate", str(cell.users * 4),
        "--run-time", f"{run_time}s",
        "--csv", str(csv_prefix),
        "--only-summary", "--loglevel", "WARNING",
        # failures are data here, not a reason for a non-zero exit
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    if settings.expect_workers:
        argv += remote_workers_argv(settings)
    elif settings.locust_workers:
        # master on loopback and a free port: parallel runs must not meet on Locust's 5557
        port = free_port()
        argv += ["--processes", str(settings.locust_workers), "--master-bind-host", HOST,
                 "--master-bind-port", str(port), "--master-port", str(port)]  # fmt: skip
    return [*argv, cell.scenario.user_class]


def remote_workers_argv(settings: Settings) -> list[str]:
    """A master that waits for workers from other hosts (``python -m bench worker``)."""
    host, port = settings.master_bind  # set with expect_workers, never without
    return ["--master", "--master-bind-host", host, "--master-bind-port", str(port),
            "--expect-workers", str(settings.expect_workers),
            "--expect-workers-max-wait", str(WORKERS_WAIT_S)]  # fmt: skip


def run_repeat(
    cell: Cell, server: ProcessGroup, port: int, settings: Settings, logs_dir: Path, index: int
) -> dict:
    """One Locust run against the running server, sampled; the repeat's record."""
    (record,) = run_steps([cell], server, port, settings, logs_dir / f"{cell.name}.r{index}")
    return record


def run_steps(
    cells: list[Cell], server: ProcessGroup, port: int, settings: Settings, prefix: Path
) -> list[dict]:
    """One Locust run of a window per cell (each after its own warm-up; open-loop cells offer
    their rates in turn) against the running server, sampled; a repeat record per cell."""
    result_path = Path(f"{prefix}.result.json")
    result_path.unlink(missing_ok=True)
    env = child_env(
        BENCH_WARMUP_S=str(settings.warmup_s),
        BENCH_DURATION_S=str(settings.duration_s),
        BENCH_RESULT_FILE=str(result_path),
        BENCH_STEPS=str(len(cells)),
    )
    if cells[0].mode == "open":
        env["BENCH_OPEN_RATES"] = ",".join(str(cell.offered_rps) for cell in cells)
    cpus = settings.pinning["generator_cpus"] if settings.pinning else None
    argv = locust_argv(cells[0], port, settings, prefix, steps=len(cells))
    with (
        ProcessGroup(argv, Path(f"{prefix}.locust"), cpus, env) as locust,
        Sampler(server.pid, locust.pid, counters=server.cgroup and server.cgroup.read) as sampler,
    ):
        wait_for_locust(locust, server, settings, steps=len(cells))
    if server.exit_code() is not None:
        raise CellFailed(f"server died under load (exit code {server.exit_code()})")
    results = read_locust_result(result_path, locust, steps=len(cells))
    return [repeat_record(result, sampler.samples, sampler.counter_readings) for result in results]


def wait_for_locust(
    locust: ProcessGroup, server: ProcessGroup, settings: Settings, steps: int = 1
) -> None:
    deadline = time.monotonic() + steps * (settings.warmup_s + settings.duration_s)
    deadline += LOCUST_GRACE_S
    deadline += WORKERS_WAIT_S if settings.expect_workers else 0
    while locust.process.poll() is None:
        if server.exit_code() is not None:
            return  # the caller reports the dead server
        if time.monotonic() > deadline:
            raise CellFailed(f"Locust did not finish within {LOCUST_GRACE_S:.0f} s of its run time")
        time.sleep(0.1)


def read_locust_result(path: Path, locust: ProcessGroup, steps: int = 1) -> list[dict]:
    """The result of every window (a run of several steps writes ``{"steps": [...]}``)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        tail = locust.stderr_tail()
        raise CellFailed(f"Locust wrote no result ({error}); its stderr:\n{tail}") from error
    results = result.get("steps", [result])
    complete = [r for r in results if "measure_start" in r and "measure_stop" in r]
    if len(complete) < steps:
        raise CellFailed(f"Locust stopped after {len(complete)} of {steps} measured windows "
                         "(a warm-up did not end)")  # fmt: skip
    return complete


def rps_series(counts: list[list[float]], start: float, stop: float, total: int) -> list[float]:
    """Requests/s of each second of the measured window, from Locust's once-a-second counts."""
    points = [(start, 0), *((t, n) for t, n in counts if start < t < stop), (stop, total)]
    return [
        round((n1 - n0) / (t1 - t0), 1)
        for (t0, n0), (t1, n1) in zip(points, points[1:], strict=False)
        if t1 - t0 >= 0.5  # the sliver between the last tick and the stop says nothing per second
    ]


def window_samples(samples: list[dict], start: float, stop: float) -> list[dict]:
    """The samples whose interval falls in the measured window, with ``t`` relative to its start."""
    return [{**s, "t": round(s["t"] - start, 3)} for s in samples if start < s["t"] <= stop + 0.25]


def mean_of(samples: list[dict], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return statistics.fmean(values) if values else None


def max_of(samples: list[dict], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return max(values) if values else None


def cgroup_window(readings: list[tuple[float, CgroupReading]], start: float, stop: float) -> dict:
    """The server cgroup's CPU use and throttling between its first and last reading inside the
    measured window (readings come with the samples, every half second); {} without two."""
    inside = [(t, reading) for t, reading in readings if start <= t <= stop]
    if len(inside) < 2:
        return {}
    (t0, first), (t1, last) = inside[0], inside[-1]
    periods = last.periods - first.periods
    throttled = last.throttled_periods - first.throttled_periods
    usage = None if first.usage_s is None else (last.usage_s - first.usage_s) / (t1 - t0) * 100
    return {
        "cgroup_cpu_pct": usage,
        # seconds per second of window, so it reads like the window's own throttled time
        "throttled_s": (last.throttled_s - first.throttled_s) / (t1 - t0) * (stop - start),
        "throttled_share": throttled / periods if periods else 0.0,
    }


def repeat_record(
    result: dict, samples: list[dict], cgroup_readings: list[tuple[float, CgroupReading]] = ()
) -> dict:
    start, stop = result["measure_start"], result["measure_stop"]
    window_s = stop - start
    measured = window_samples(samples, start, stop)
    requests, failures = result["requests"], result["failures"]
    cgroup = cgroup_window(list(cgroup_readings), start, stop)
    # the cgroup's counter misses no process, however short-lived (fork's per-connection
    # children); psutil's sampling is the fallback where there is no cgroup
    cgroup_cpu_pct = cgroup.get("cgroup_cpu_pct")
    sampled_cpu_pct = mean_of(measured, "server_cpu_pct")
    server_cpu_pct = sampled_cpu_pct if cgroup_cpu_pct is None else cgroup_cpu_pct
    return {
        "rps": requests / window_s if window_s > 0 else 0.0,
        "requests": requests,
        "failures": failures,
        "fail_ratio": failures / requests if requests else 0.0,
        "p50_ms": result["p50_ms"],
        "p90_ms": result["p90_ms"],
        "p99_ms": result["p99_ms"],
        "max_ms": result["max_ms"],
        "window_s": window_s,
        "rps_series": rps_series(result.get("counts", []), start, stop, requests),
        "server_cpu_pct": server_cpu_pct,
        "server_cpu_s": server_cpu_pct / 100 * window_s if server_cpu_pct is not None else None,
        "server_rss_mb": max_of(measured, "server_rss_mb"),
        "server_procs": max_of(measured, "server_procs"),
        "server_threads": max_of(measured, "server_threads"),
        "generator_cpu_pct": mean_of(measured, "generator_cpu_pct"),
        "server_cpu_source": "psutil" if cgroup_cpu_pct is None else "cgroup",
        "throttled_s": cgroup.get("throttled_s"),
        "throttled_share": cgroup.get("throttled_share"),
        "errors": result.get("errors", {}),
        "locust_workers": result.get("workers"),
        "samples": measured,
        **histogram_latencies(result),
    }


def histogram_latencies(result: dict) -> dict:
    """The µs percentiles, histogram and schedule counts of a result, and the *_ms keys from the
    histogram (Locust's are whole milliseconds); nothing for a result without a histogram."""
    if "latency_histogram" not in result:
        return {}
    keys = {key: result[key] for key in (*latency.LATENCY_KEYS, "latency_histogram")}
    scheduled, late = result.get("scheduled", 0), result.get("late", 0)
    return {
        **keys,
        **{f"{name}_ms": us_to_ms(result[f"{name}_us"]) for name in ("p50", "p90", "p99", "max")},
        "scheduled": scheduled,
        "late": late,
        "late_ratio": late / scheduled if scheduled else None,
    }


def us_to_ms(value: float | None) -> float | None:
    return None if value is None else value / 1000


# --- one cell ---------------------------------------------------------------------------------


def run_cell(cell: Cell, settings: Settings, logs_dir: Path) -> dict:
    """Start the server, run every repeat, stop the server; the cell's record (never raises
    CellFailed: a failure is recorded with the tail of the server's stderr)."""
    record = cell_header(cell, settings)
    server = None
    try:
        server, port = start_server(cell, settings, logs_dir)
        for index in range(settings.repeats):
            record["repeats"].append(run_repeat(cell, server, port, settings, logs_dir, index))
            probe(port, cell.scenario, settings.connect_host)  # still answering after the load?
    except CellFailed as failure:
        record["status"] = "failed"
        tail = server.stderr_tail() if server else read_tail(logs_dir / f"{cell.name}.server.err")
        record["error"] = f"{failure}\n--- server stderr (tail) ---\n{tail}".rstrip()
    finally:
        if server is not None:
            server.stop()
    record["summary"] = summarise(record["repeats"], record["budget"] and record["budget"]["cpus"])
    record["flags"] = flags_for(
        record["summary"], record["status"], settings.generator_cores, len(record["repeats"])
    )
    return record


def run_sweep(cells: list[Cell], settings: Settings, logs_dir: Path) -> list[dict]:
    """The offered loads of one server and scenario as the steps of one Locust run against one
    server (a Locust and a server start per step would double the sweep's time); a record per
    cell, each step failing with the run when it fails."""
    records = [cell_header(cell, settings) for cell in cells]
    server = None
    try:
        if not cells[0].offered_rps:
            raise CellFailed("no trusted closed-loop cell of this server and scenario ran before "
                             "it, so there is no capacity to offer a fraction of")  # fmt: skip
        server, port = start_server(cells[0], settings, logs_dir)
        repeats = run_steps(cells, server, port, settings, logs_dir / f"{cells[0].name}.sweep")
        for record, repeat in zip(records, repeats, strict=True):
            record["repeats"].append(repeat)
        probe(port, cells[0].scenario)  # still answering after the load?
    except CellFailed as failure:
        log = logs_dir / f"{cells[0].name}.server.err"
        tail = server.stderr_tail() if server else read_tail(log)
        for record in records:
            record["status"] = "failed"
            record["error"] = f"{failure}\n--- server stderr (tail) ---\n{tail}".rstrip()
    finally:
        if server is not None:
            server.stop()
    for record in records:
        record["summary"] = summarise(record["repeats"])
        record["flags"] = flags_for(
            record["summary"], record["status"], settings.generator_cores, len(record["repeats"])
        )
    return records


def read_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-STDERR_TAIL_CHARS:]
    except OSError:
        return ""


def cell_header(cell: Cell, settings: Settings) -> dict:
    return {
        "cell": cell.name,
        "server": cell.server.name,
        "model": cell.server.model,
        "kind": cell.server.kind,
        "app": cell.app,
        "app_target": settings.target.url if settings.target else settings.workload.apps[cell.app],
        "server_measured": settings.target is None or settings.target.pid is not None,
        "scenario": cell.scenario.name,
        "users": cell.users,
        "mode": cell.mode,
        "offered_fraction": cell.offered_fraction,
        "offered_rps": cell.offered_rps,
        "status": "ok",
        "error": None,
        "flags": [],
        "pinning": settings.pinning,
        "warmup_s": settings.warmup_s,
        "duration_s": settings.duration_s,
        "budget": settings.budget.describe() if settings.budget else None,
        "repeats": [],
        **injected(cell),
    }


def injected(cell: Cell) -> dict:
    """The server-side injection this cell ran with, so no reader mistakes it for the product."""
    if cell.server.kind != "ours" or not inject.injecting():
        return {}
    return {"inject_server_delay_us": os.environ[inject.DELAY_ENV]}


def median_or_none(values: list) -> float | None:
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def summarise(repeats: list[dict], budget_cpus: float | None = None) -> dict:
    """Median over repeats with min and max of requests/s; peaks are the peak of any repeat.

    Under a budget of ``budget_cpus`` CPUs requests/s is also given per CPU, so runs with
    different budgets compare.
    """

    def column(key: str) -> list:
        return [repeat[key] for repeat in repeats]

    requests = sum(column("requests"))
    cpu_s = [value for value in column("server_cpu_s") if value is not None]
    peaks = {
        key: max_or_none(column(key)) for key in ("server_rss_mb", "server_procs", "server_threads")
    }
    medians = {
        key: median_or_none(column(key))
        for key in ("rps", "p50_ms", "p90_ms", "p99_ms", "server_cpu_pct", "generator_cpu_pct")
    }
    throttled = {key: median_or_none([r.get(key) for r in repeats])
                 for key in ("throttled_s", "throttled_share")}  # fmt: skip
    rps = medians["rps"]
    return {
        **medians,
        **peaks,
        "rps_min": min(column("rps"), default=None),
        "rps_max": max(column("rps"), default=None),
        "max_ms": max_or_none(column("max_ms")),
        "fail_ratio": sum(column("failures")) / requests if requests else None,
        "cpu_s_per_1k": sum(cpu_s) / requests * 1000 if requests and cpu_s else None,
        "budget_cpus": budget_cpus,
        "rps_per_cpu": rps / budget_cpus if budget_cpus and rps is not None else None,
        **throttled,
        **summary_latencies(repeats),
    }


def summary_latencies(repeats: list[dict]) -> dict:
    """Percentiles of every request of the cell (the repeats' histograms merged), the merged
    histogram, and the share of open-loop requests that left late; nothing for old repeats."""
    histograms = [repeat.get("latency_histogram") for repeat in repeats]
    histograms = [histogram for histogram in histograms if histogram]
    if not histograms:
        return {}
    merged = latency.summary_of(histograms)
    scheduled = sum(repeat.get("scheduled", 0) for repeat in repeats)
    return {
        **merged,
        **{f"{name}_ms": us_to_ms(merged[f"{name}_us"]) for name in ("p50", "p90", "p99", "max")},
        "late_ratio": sum(repeat.get("late", 0) for repeat in repeats) / scheduled
        if scheduled else None,
    }  # fmt: skip


def max_or_none(values: list) -> float | None:
    values = [value for value in values if value is not None]
    return max(values) if values else None


# --- a run ------------------------------------------------------------------------------------


def run_meta(settings: Settings, cells: list[Cell], skipped: dict[str, str]) -> dict:
    servers = {cell.server.name: cell.server for cell in cells}
    return {
        **machine_meta(),
        "profile": settings.profile,
        "pinning": settings.pinning,
        "warmup_s": settings.warmup_s,
        "duration_s": settings.duration_s,
        "repeats": settings.repeats,
        "locust_workers": settings.locust_workers,
        "servers": {
            name: {"model": spec.model, "kind": spec.kind, "settings": spec.settings}
            for name, spec in servers.items()
        },
        "scenarios": {name: s.description for name, s in settings.workload.scenarios.items()},
        **setup_meta(settings),
        "skipped": skipped,
        "cells_planned": [cell.name for cell in cells],
        "status": "running",
    }


def setup_meta(settings: Settings) -> dict:
    """What meta.json says about the app, the scenario file, the generator and the server host."""
    target = settings.target
    return {
        **settings.workload.record(),
        "server_host": settings.server_host,
        "locust_master_bind": ":".join(map(str, settings.master_bind or ())) or None,
        "expect_workers": settings.expect_workers,
        "target": {"url": target.url, "pid": target.pid} if target else None,
    }


def earlier_budget(run_dir: Path) -> float | str | None:
    """The CPU budget a run being resumed was measured under: its CPUs, "off", or None."""
    try:
        budget = json.loads((run_dir / "meta.json").read_text()).get("budget") or {}
    except (OSError, ValueError):
        return None
    if budget.get("cpus"):
        return budget["cpus"]
    return "off" if budget.get("source") == "off" else None


def choose_budget(
    server_cpus: float | str | None, settings: Settings, cells: list[Cell], logs_dir: Path
) -> tuple[Budget | None, dict]:
    """The run's CPU budget and its record for meta.json.

    ``server_cpus``: "off", a number of CPUs, or None to calibrate. Where no cgroup can be made
    this says so once, on stderr, and the run goes on unbudgeted as before.
    """
    if server_cpus == "off":
        return None, {"cpus": None, "source": "off"}
    try:
        layout = locate()
        given = Budget(None if server_cpus is None else float(server_cpus), layout)
        given.check()
    except BudgetUnavailable as why:
        print(f"no CPU budget: {why}; servers run unlimited, as without --server-cpus",
              file=sys.stderr)  # fmt: skip
        return None, {"cpus": None, "source": "unavailable", "reason": str(why)}
    if server_cpus is not None:
        return given, {**given.describe(), "source": "--server-cpus"}
    if not cells:
        return None, {"cpus": None, "source": "no cells to calibrate for"}
    calibration = calibrate(Budget(None, layout), settings, cells, logs_dir)
    if calibration.get("cpus") is None:
        print(f"no CPU budget: {calibration['reason']}", file=sys.stderr)
        return None, {"cpus": None, "source": "unavailable", **calibration}
    budget = Budget(calibration["cpus"], layout)
    print(f"CPU budget {budget.cpus:g} per server: Locust sent {calibration['generator_rps']:,.0f}"
          f" req/s to the null server at {calibration['generator_cpu_pct'] or 0:.0f}% CPU, so "
          f"{calibration['generator_capacity']:,.0f} with its cores busy; "
          f"{calibration['fastest']} serves up to {calibration['fastest_rps_per_cpu']:,} per "
          "CPU", file=sys.stderr)  # fmt: skip
    return budget, {**budget.describe(), "source": "calibrated", "calibration": calibration}


def calibrate(counted: Budget, settings: Settings, cells: list[Cell], logs_dir: Path) -> dict:
    """Measure the generator's capacity: the null server, unlimited (its cgroup only counts), at
    the run's top user level on plaintext, one repeat; then apply the rules of
    ``bench.measure.budget``. The result has ``cpus`` None and a ``reason`` when the null server
    gave no number."""
    users = max(cell.users for cell in cells)
    cell = Cell(NULL_SERVER, "app", SCENARIOS["plaintext"], users)
    # our own plaintext user against the null server, whatever app and locustfile the run loads
    calibration_settings = replace(settings, repeats=1, budget=counted, workload=OURS)
    record = run_cell(cell, calibration_settings, logs_dir / "calibration")
    summary = record["summary"]
    fastest, rate = fastest_rps_per_cpu(sorted({(cell.server.name, cell.app) for cell in cells}))
    calibration = {
        "cell": cell.name,
        "users": users,
        "generator_rps": summary["rps"],
        "generator_cpu_pct": summary["generator_cpu_pct"],
        "generator_cores": settings.generator_cores,
        "null_cpu_pct": summary["server_cpu_pct"],
        "fastest": fastest,
        "fastest_rps_per_cpu": rate,
        "margin": CAPACITY_MARGIN,
        "rule": RULE,
    }
    if record["status"] != "ok" or not summary["rps"]:
        return {**calibration, "cpus": None, "reason": f"calibration failed: {record['error']}"}
    capacity = generator_capacity(
        summary["rps"], summary["generator_cpu_pct"], settings.generator_cores
    )
    return {**calibration, "generator_capacity": capacity, "cpus": calibrated_cpus(capacity, rate)}


def plan(
    profile: str,
    servers: list[str] | None = None,
    scenarios: list[str] | None = None,
    users: list[int] | None = None,
    peers: str | None = None,
    workload: Workload = OURS,
    target: bool = False,
) -> tuple[list[Cell], dict[str, str]]:
    """The cells of a run and the peers skipped; ValueError for an unknown name.

    With ``target``, one server named ``target`` stands for all of them, serving the app parts.
    """
    chosen = workload.profile(PROFILES[profile])
    if target:
        chosen = replace(chosen, parts=tuple(p for p in chosen.parts if p.app == "app"))
        servers, peers = [TARGET_NAME], "none"
    if peers is None and servers:  # an explicit server list is the whole list
        peers = "none"
    peer_names, skipped = select_peers(peers, chosen)
    if workload.users_own:  # a canned answer (the null server) fits only our own scenarios
        canned = {name for name in peer_names if all_servers()[name].scenarios}
        skipped.update(dict.fromkeys(canned, "answers only our own scenarios"))
        peer_names = [name for name in peer_names if name not in canned]
    known = {TARGET_NAME: TARGET_SPEC} if target else None
    cells = build_matrix(chosen, peer_names, workload.scenarios, known,
                         servers=servers, scenarios=scenarios, users=users)  # fmt: skip
    idle = peers_without_cells(peers, peer_names, cells)
    if idle:
        raise ValueError(idle)
    return cells, skipped


def run_load(
    run_dir: Path,
    profile: str,
    *,
    servers: list[str] | None = None,
    scenarios: list[str] | None = None,
    users: list[int] | None = None,
    duration: float | None = None,
    repeats: int | None = None,
    peers: str | None = None,
    warmup: float | None = None,
    locust_workers: int = 0,
    progress: bool = True,
    workload: Workload = OURS,
    server_host: str = HOST,
    master_bind: tuple[str, int] | None = None,
    expect_workers: int = 0,
    target: Target | None = None,
    server_cpus: float | str | None = None,
    resume: bool = False,
) -> list[dict]:
    """Run the load matrix of ``profile`` into ``run_dir``; the finished cells' records.

    ``server_cpus`` is each server's CPU budget: a number of CPUs, "off", or None to calibrate
    it against the null server first (a resumed run keeps the budget it was measured under).
    With ``resume``, cells already in ``run_dir`` that finished with the same settings are kept
    and only the others are measured. meta.json's status ends "finished", or "failed" when no
    cell of the framework app gave numbers. A KeyboardInterrupt (Ctrl-C, or SIGTERM through
    ``interrupt_on_sigterm``) ends the current cell, marks meta.json interrupted and propagates
    once the finished cells are safe on disk.
    """
    chosen = PROFILES[profile]
    settings = Settings(
        profile=profile,
        warmup_s=chosen.warmup_s if warmup is None else warmup,
        duration_s=chosen.duration_s if duration is None else duration,
        repeats=chosen.repeats if repeats is None else repeats,
        locust_workers=locust_workers,
        pinning=choose_pinning(),
        workload=workload,
        server_host=server_host,
        master_bind=master_bind,
        expect_workers=expect_workers,
        target=target,
    )
    cells, skipped = plan(profile, servers, scenarios, users, peers, workload, target is not None)
    if resume and server_cpus is None:  # the kept cells were measured under the earlier budget
        server_cpus = earlier_budget(run_dir)
    # a server the user started is theirs to limit: no budget, no calibration
    budget, budget_meta = choose_budget(
        "off" if target is not None else server_cpus, settings, cells, run_dir / "logs"
    )
    settings = replace(settings, budget=budget)
    meta = {**run_meta(settings, cells, skipped), "budget": budget_meta}
    kept = kept_cells(run_dir, [cell.name for cell in cells], settings) if resume else {}
    if resume:
        meta["resumes"] = resume_entry(run_dir, kept)
    write_json(run_dir / "meta.json", meta)
    records: list[dict] = list(kept.values())
    try:
        with CellProgress(cells, settings, enabled=progress) as bar:
            for batch in batches(cells):
                if all(cell.name in kept for cell in batch):
                    for cell in batch:
                        bar.kept(kept[cell.name])
                        records.append(kept[cell.name])  # a sweep offers from kept capacities
                    continue
                bar.starting(batch[0])
                batch = [offering(cell, records) for cell in batch]
                batch_settings = cell_settings(batch[0], settings, chosen)
                if batch[0].mode == "closed":
                    batch_records = [run_cell(batch[0], batch_settings, run_dir / "logs")]
                else:
                    batch_records = run_sweep(batch, batch_settings, run_dir / "logs")
                for record in batch_records:
                    write_json(run_dir / "cells" / f"{record['cell']}.json", record)
                    records.append(record)
                    bar.finished(record)
        meta["status"] = run_status(records)
    except KeyboardInterrupt:
        meta["status"] = "interrupted"
        raise
    except BaseException:
        meta["status"] = "crashed"
        raise
    finally:
        meta["cells_finished"] = len(records)
        write_json(run_dir / "meta.json", meta)
    return records


def batches(cells: list[Cell]) -> list[list[Cell]]:
    """Each closed-loop cell alone; consecutive open-loop cells of one server, app and scenario
    together (a sweep, run as the steps of one Locust run)."""
    grouped: list[list[Cell]] = []
    for cell in cells:
        if cell.mode == "open" and grouped and sweep_key(grouped[-1][0]) == sweep_key(cell):
            grouped[-1].append(cell)
        else:
            grouped.append([cell])
    return grouped


def sweep_key(cell: Cell) -> tuple[str, str, str, str]:
    return cell.mode, cell.server.name, cell.app, cell.scenario.name


def cell_settings(cell: Cell, settings: Settings, profile: Profile) -> Settings:
    """An open-loop cell is timed by its profile's sweep and runs once; the rest by ``settings``."""
    if cell.mode == "closed" or profile.sweep is None:
        return settings
    sweep = profile.sweep
    return dataclasses.replace(
        settings, warmup_s=sweep.warmup_s, duration_s=sweep.duration_s, repeats=1
    )


def run_status(records: list[dict]) -> str:
    """ "finished", or "failed" when no cell of the framework app gave numbers: a run whose every
    server failed has measured nothing, whatever else it wrote."""
    served = [record for record in records if record.get("app") == "app"] or records
    return "finished" if any(record["status"] == "ok" for record in served) else "failed"


def console_line(record: dict) -> str:
    """A finished cell as the console shows it: req/s, its flags as the report's table shows
    them, and a failed cell's reason (the first line of the error the report shows)."""
    rps = record["summary"]["rps"]
    shown = f"{rps:8.0f} req/s" if rps is not None else "       - req/s"
    line = f"{record['cell']:<42} {shown}"
    if record["flags"]:
        line += f" [{flags.shown(record['flags'])}]"
    if record.get("error"):
        line += f" {record['error'].splitlines()[0]}"
    return line


class CellProgress:
    """A rich progress bar weighted by each cell's expected seconds, so the ETA means something."""

    def __init__(self, cells: list[Cell], settings: Settings, enabled: bool = True):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        #: expected seconds of one cell
        self.cell_s = cell_seconds(settings.warmup_s, settings.duration_s, settings.repeats)
        #: cells in the run and cells done
        self.total, self.done = len(cells), 0
        #: the rich progress display (disabled: renders nothing)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), disable=not enabled,
        )  # fmt: skip
        #: the one task of the bar
        self.task = self.progress.add_task("load", total=self.total * self.cell_s)

    def __enter__(self) -> CellProgress:
        self.progress.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.progress.stop()

    def starting(self, cell: Cell) -> None:
        self.progress.update(self.task, description=f"{self.done}/{self.total} {cell.name}")

    def finished(self, record: dict) -> None:
        self.done += 1
        self.progress.update(self.task, advance=self.cell_s,
                             description=f"{self.done}/{self.total} done")  # fmt: skip
        # markup=False: rich would read "[generator-bound]" as a style tag and drop it;
        # soft_wrap: one line per cell, also in a log that is not a terminal
        self.progress.console.print(
            console_line(record), highlight=False, markup=False, soft_wrap=True
        )

    def kept(self, record: dict) -> None:
        """A cell kept from the run being resumed: counted as done, shown as measured then."""
        self.done += 1
        self.progress.update(self.task, advance=self.cell_s)
        line = f"{console_line(record)} (kept from the resumed run)"
        self.progress.console.print(line, highlight=False, markup=False, soft_wrap=True)
