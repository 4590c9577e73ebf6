"""The load runner: servers × scenarios × user levels, each cell measured and written at once.

For each cell the runner starts the server in its own process group and waits for its
``listening on`` line, checks that one request answers correctly, then runs Locust
(``bench/measure/scenarios.py``) as a separate process per repeat: a warm-up that is excluded,
then the measured window, while ``bench.measure.sampler`` watches both process trees. On
machines with two or more cores the server tree and Locust are pinned to different cores. The
runner only runs and writes raw results (``cells/<cell>.json``, ``meta.json``); the report reads
them.

Ctrl-C or SIGTERM stops the current cell: its server and Locust are killed by process group, the
finished cells stay, and the report is still written for them.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
from pathlib import Path

from bench import flags
from bench.flags import flags_for
from bench.measure.profiles import APPS, PROFILES, SCENARIOS, Part, Profile, Scenario, cell_seconds
from bench.measure.resume import kept_cells, resume_entry
from bench.measure.sampler import Sampler
from bench.rundir import machine_meta, write_json
from bench.serving.peers import select_peers as select_peer_specs
from bench.serving.registry import ServerSpec, all_servers

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS_FILE = Path(__file__).resolve().parent / "scenarios.py"
#: the measured window, loaded beside the scenario file
INSTRUMENT_FILE = Path(__file__).resolve().parent / "instrument.py"
HOST = "127.0.0.1"

#: seconds a server may take to print ``listening on`` (imports on a busy machine are slow)
READY_TIMEOUT_S = 20.0
#: seconds Locust may run beyond warm-up + duration (start-up, shutdown) before it counts as hung
LOCUST_GRACE_S = 30.0
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
    users: int

    @property
    def name(self) -> str:
        return f"{self.server.name}--{self.app}--{self.scenario.name}--u{self.users}"


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

    @property
    def generator_cores(self) -> int:
        return len(self.pinning["generator_cpus"]) if self.pinning else os.cpu_count() or 1


def choose_pinning() -> dict | None:
    """Server tree on the first half of our cores, Locust on the rest; None below two cores."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    half = len(cpus) // 2
    return {"server_cpus": cpus[:half], "generator_cpus": cpus[half:]}


def part_cells(part: Part, servers: dict[str, ServerSpec], overrides: dict) -> list[Cell]:
    """The cells of one part, with --servers/--scenarios/--users applied."""
    names = overrides.get("servers") or part.servers
    scenarios = overrides.get("scenarios") or part.scenarios
    if part.app != "app":  # reference apps serve only their own few endpoints
        scenarios = [name for name in scenarios if name in part.scenarios]
    users = overrides.get("users") or part.users
    return [
        Cell(servers[name], part.app, SCENARIOS[scenario], level)
        for name in names
        for scenario in scenarios
        if not servers[name].scenarios or scenario in servers[name].scenarios
        for level in users
    ]


def build_matrix(profile: Profile, peer_names: list[str], **overrides) -> list[Cell]:
    """Every cell of a run, in order, without duplicates."""
    servers = all_servers()
    for option, valid in (("servers", servers), ("scenarios", SCENARIOS)):
        unknown = [name for name in overrides.get(option) or () if name not in valid]
        if unknown:
            raise ValueError(
                f"--{option}: unknown {', '.join(unknown)} (valid: {', '.join(valid)})"
            )
    cells = [cell for part in profile.parts for cell in part_cells(part, servers, overrides)]
    if peer_names:
        peer_overrides = {**overrides, "servers": peer_names}
        cells += part_cells(peers_part(profile), servers, peer_overrides)
    unique = {cell.name: cell for cell in cells}
    return list(unique.values())


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
    profile with a peers part runs all of them."""
    choice = choice or ("all" if profile.peers is not None else "none")
    if choice == "none":
        return [], {}
    specs, skipped = select_peer_specs(choice)
    return [spec.name for spec in specs], skipped


# --- processes --------------------------------------------------------------------------------


class ProcessGroup:
    """A subprocess in its own session (so its group can be killed), output to log files."""

    def __init__(self, argv: list[str], log_prefix: Path, cpus: list[int] | None, env: dict):
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
        if cpus:
            # set before the interpreter has even imported anything, so before any child (fork
            # workers, Locust workers) exists; children inherit it. Not a preexec_fn: those are
            # unsafe with threads (the progress bar and the sampler run threads).
            os.sched_setaffinity(self.process.pid, cpus)

    @property
    def pid(self) -> int:
        return self.process.pid

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
    port = 0 if cell.server.prints_listening else free_port()
    argv = cell.server.argv(APPS[cell.app], HOST, port)
    cpus = settings.pinning["server_cpus"] if settings.pinning else None
    server = ProcessGroup(argv, logs_dir / f"{cell.name}.server", cpus, child_env())
    try:
        port = wait_until_listening(server) if cell.server.prints_listening else port
        wait_until_answering(server, port, cell.scenario)
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


def wait_until_answering(server: ProcessGroup, port: int, scenario: Scenario) -> None:
    """Probe until one request answers correctly (servers without a ready line need retries)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            probe(port, scenario)
            return
        except WrongAnswer:
            raise
        except CellFailed:
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise
        time.sleep(0.1)


def probe(port: int, scenario: Scenario) -> None:
    """One GET of the scenario's probe path: it must answer 200 with the scenario's marker."""
    connection = http.client.HTTPConnection(HOST, port, timeout=PROBE_TIMEOUT_S)
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


def locust_argv(cell: Cell, port: int, settings: Settings, csv_prefix: Path) -> list[str]:
    # a safety net only: the locustfile ends the test after warm-up + duration itself
    run_time = math.ceil(settings.warmup_s + settings.duration_s + 10)
    argv = [
        sys.executable, "-m", "locust", "-f", f"{INSTRUMENT_FILE},{SCENARIOS_FILE}", "--headless",
        "--host", f"http://{HOST}:{port}",
        "--users", str(cell.users),
        # all users within a quarter of a second: the warm-up is for the server, not for spawning
        "--spawn-rate", str(cell.users * 4),
        "--run-time", f"{run_time}s",
        "--csv", str(csv_prefix),
        "--only-summary", "--loglevel", "WARNING",
        # failures are data here, not a reason for a non-zero exit
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    if settings.locust_workers:
        # master on loopback and a free port: parallel runs must not meet on Locust's 5557
        port = free_port()
        argv += ["--processes", str(settings.locust_workers), "--master-bind-host", HOST,
                 "--master-bind-port", str(port), "--master-port", str(port)]  # fmt: skip
    return [*argv, cell.scenario.user_class]


def run_repeat(
    cell: Cell, server: ProcessGroup, port: int, settings: Settings, logs_dir: Path, index: int
) -> dict:
    """One Locust run against the running server, sampled; the repeat's record."""
    prefix = logs_dir / f"{cell.name}.r{index}"
    result_path = Path(f"{prefix}.result.json")
    result_path.unlink(missing_ok=True)
    env = child_env(
        BENCH_WARMUP_S=str(settings.warmup_s),
        BENCH_DURATION_S=str(settings.duration_s),
        BENCH_RESULT_FILE=str(result_path),
    )
    cpus = settings.pinning["generator_cpus"] if settings.pinning else None
    argv = locust_argv(cell, port, settings, prefix)
    with (
        ProcessGroup(argv, Path(f"{prefix}.locust"), cpus, env) as locust,
        Sampler(server.pid, locust.pid) as sampler,
    ):
        wait_for_locust(locust, server, settings)
    if server.process.poll() is not None:
        raise CellFailed(f"server died under load (exit code {server.process.returncode})")
    result = read_locust_result(result_path, locust)
    return repeat_record(result, sampler.samples)


def wait_for_locust(locust: ProcessGroup, server: ProcessGroup, settings: Settings) -> None:
    deadline = time.monotonic() + settings.warmup_s + settings.duration_s + LOCUST_GRACE_S
    while locust.process.poll() is None:
        if server.process.poll() is not None:
            return  # the caller reports the dead server
        if time.monotonic() > deadline:
            raise CellFailed(f"Locust did not finish within {LOCUST_GRACE_S:.0f} s of its run time")
        time.sleep(0.1)


def read_locust_result(path: Path, locust: ProcessGroup) -> dict:
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        tail = locust.stderr_tail()
        raise CellFailed(f"Locust wrote no result ({error}); its stderr:\n{tail}") from error
    if "measure_start" not in result or "measure_stop" not in result:
        raise CellFailed("Locust stopped before its warm-up ended; no measured window")
    return result


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


def repeat_record(result: dict, samples: list[dict]) -> dict:
    start, stop = result["measure_start"], result["measure_stop"]
    window_s = stop - start
    measured = window_samples(samples, start, stop)
    requests, failures = result["requests"], result["failures"]
    server_cpu_pct = mean_of(measured, "server_cpu_pct")
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
        "errors": result.get("errors", {}),
        "samples": measured,
    }


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
            probe(port, cell.scenario)  # still answering after the load?
    except CellFailed as failure:
        record["status"] = "failed"
        tail = server.stderr_tail() if server else read_tail(logs_dir / f"{cell.name}.server.err")
        record["error"] = f"{failure}\n--- server stderr (tail) ---\n{tail}".rstrip()
    finally:
        if server is not None:
            server.stop()
    record["summary"] = summarise(record["repeats"])
    record["flags"] = flags_for(
        record["summary"], record["status"], settings.generator_cores, len(record["repeats"])
    )
    return record


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
        "app_target": APPS[cell.app],
        "scenario": cell.scenario.name,
        "users": cell.users,
        "status": "ok",
        "error": None,
        "flags": [],
        "pinning": settings.pinning,
        "warmup_s": settings.warmup_s,
        "duration_s": settings.duration_s,
        "repeats": [],
    }


def median_or_none(values: list) -> float | None:
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def summarise(repeats: list[dict]) -> dict:
    """Median over repeats with min and max of requests/s; peaks are the peak of any repeat."""

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
    return {
        **medians,
        **peaks,
        "rps_min": min(column("rps"), default=None),
        "rps_max": max(column("rps"), default=None),
        "max_ms": max_or_none(column("max_ms")),
        "fail_ratio": sum(column("failures")) / requests if requests else None,
        "cpu_s_per_1k": sum(cpu_s) / requests * 1000 if requests and cpu_s else None,
    }


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
        "scenarios": {name: s.description for name, s in SCENARIOS.items()},
        "skipped": skipped,
        "cells_planned": [cell.name for cell in cells],
        "status": "running",
    }


def plan(
    profile: str,
    servers: list[str] | None = None,
    scenarios: list[str] | None = None,
    users: list[int] | None = None,
    peers: str | None = None,
) -> tuple[list[Cell], dict[str, str]]:
    """The cells of a run and the peers skipped; ValueError for an unknown name."""
    chosen = PROFILES[profile]
    if peers is None and servers:  # an explicit server list is the whole list
        peers = "none"
    peer_names, skipped = select_peers(peers, chosen)
    cells = build_matrix(chosen, peer_names, servers=servers, scenarios=scenarios, users=users)
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
    resume: bool = False,
) -> list[dict]:
    """Run the load matrix of ``profile`` into ``run_dir``; the finished cells' records.

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
    )
    cells, skipped = plan(profile, servers, scenarios, users, peers)
    meta = run_meta(settings, cells, skipped)
    kept = kept_cells(run_dir, [cell.name for cell in cells], settings) if resume else {}
    if resume:
        meta["resumes"] = resume_entry(run_dir, kept)
    write_json(run_dir / "meta.json", meta)
    records: list[dict] = list(kept.values())
    try:
        with CellProgress(cells, settings, enabled=progress) as bar:
            for cell in cells:
                if cell.name in kept:
                    bar.kept(kept[cell.name])
                    continue
                bar.starting(cell)
                record = run_cell(cell, settings, run_dir / "logs")
                write_json(run_dir / "cells" / f"{cell.name}.json", record)
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
