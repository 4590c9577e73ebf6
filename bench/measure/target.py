"""A server the user started elsewhere (``--target URL``): measured, never started or stopped.

The runner loads it like one of its own servers, under the server name ``target``, one cell per
scenario × user level. Given ``--target-pid PID`` of a process on this host, the sampler reads
that process tree's CPU and memory; otherwise the cells record ``server_measured: false`` and the
report's server columns say "not measured".
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

from bench.serving.spec import ServerSpec

#: the server name, model and kind of every cell measured against a target
TARGET_NAME = "target"


@dataclass(frozen=True)
class Target:
    #: the base URL Locust is pointed at, ``http://HOST:PORT``
    url: str
    host: str
    port: int
    #: the process (tree) serving it on this host, sampled; None: not measured
    pid: int | None = None


def parse_target(url: str, pid: int | None = None) -> Target:
    """``http://HOST[:PORT][/]`` and an optional live pid; ValueError (one line) otherwise."""
    parts = urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError as error:  # a port that is not a number or out of range
        raise ValueError(f"--target {url}: {error}") from error
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"--target {url}: expected http://HOST[:PORT] with no path")
    if parts.query or parts.fragment:
        raise ValueError(f"--target {url}: expected http://HOST[:PORT] with no query")
    if pid is not None and not psutil.pid_exists(pid):
        raise ValueError(f"--target-pid {pid}: no such process on this host")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return Target(f"http://{shown}:{port}", host, port, pid)


def never_started(app: str, host: str, port: int) -> list[str]:
    raise RuntimeError("a target server is started by the user, never by the runner")


#: what a target cell records as its server
TARGET_SPEC = ServerSpec(
    TARGET_NAME, TARGET_NAME, TARGET_NAME, never_started, settings={"started": "by the user"}
)


class TargetServer:
    """Stands where the runner's own server process would: alive while its pid (if any) lives."""

    #: no CPU budget: the user's server is theirs to limit, and its cgroup is not ours
    cgroup = None

    def __init__(self, target: Target):
        #: the target as given on the command line
        self.target = target

    @property
    def pid(self) -> int | None:
        return self.target.pid

    def exit_code(self) -> int | None:
        """None while the server may be running (always, when there is no pid to watch)."""
        if self.pid is None or psutil.pid_exists(self.pid):
            return None
        return -1

    def stderr_tail(self) -> str:
        return f"(the target's output is not ours to read: {self.target.url})"

    def stop(self) -> None:
        """Nothing: the user started it and stops it."""
