"""Processes of a cell: each server and each Locust run in its own process group, and a server
counts as started once it printed ``listening on`` and one request answered correctly.

A process group can be killed whole (fork's children, Locust's workers); output goes to log
files beside the run, and a failed cell keeps the tail of its server's stderr.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench.catalogue import Scenario
from bench.measure.cgroups import BudgetUnavailable, ServerCgroup
from bench.measure.childenv import REPO_ROOT, child_env
from bench.measure.matrix import Cell
from bench.measure.settings import HOST, Settings
from bench.measure.target import TargetServer
from bench.measure.workload import probe_refused
from bench.serving import inject

#: seconds a server may take to print ``listening on`` (imports on a busy machine are slow)
READY_TIMEOUT_S = 20.0
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


def read_tail(path: Path) -> str:
    """The last STDERR_TAIL_CHARS of a log file; "" when there is none."""
    try:
        return path.read_text(errors="replace")[-STDERR_TAIL_CHARS:]
    except OSError:
        return ""


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
        return read_tail(self.stderr_path)

    def stop(self) -> None:
        """SIGTERM the leader, give it STOP_TIMEOUT_S, then SIGKILL whatever is left of its group.

        Only the leader gets SIGTERM: it finishes in-flight requests and stops its own children.
        """
        if self.cgroup:
            with contextlib.suppress(OSError):  # a cgroup that cannot be written still goes below
                self.cgroup.lift()
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
    """One GET of the scenario's probe path. A scenario without a marker (a user class without a
    ``probe``) is ready on any well-formed HTTP answer, a 404 or a redirect included; one with a
    marker must answer 200 with it in the body."""
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
    try:
        connection.request("GET", scenario.probe_path)
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as error:
        raise CellFailed(f"GET {scenario.probe_path} did not answer: {error!r}") from error
    finally:
        connection.close()
    if scenario.marker is not None and (response.status != 200 or scenario.marker not in body):
        raise WrongAnswer(probe_refused(scenario, response.status))
