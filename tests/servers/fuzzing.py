"""Differential fuzzing of a whole server: bytes in over a real socket, judged against llhttp.

Used by ``test_fuzz.py`` (bounded, fixed seeds), ``fuzz_main.py`` (``tox -e fuzz``, for as long as
asked) and ``test_corpus.py``. One example is one connection: send the bytes, half-close, read
until the server closes, then judge (:func:`check_example`):

- the server process is still alive and still answers a good request;
- the connection ended (EOF or reset) within ``CLIENT_TIMEOUT`` with well-formed responses only;
- every response from the app (the echo app below puts what it saw in an ``X-Echo`` header) is one
  the app logged, and every app call is answered: a request we reject never reaches the app;
- message by message, our accept/reject decision and the method, target, version, headers and body
  the app saw agree with llhttp, except for the deliberate differences listed in
  ``fuzz_reference.py``; where one request ends and the next begins always agrees.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.servers.fuzz_reference import compare_with_reference

MODELS = ("poll", "threaded", "fork", "epoll")
APP_SPEC = "tests.servers.fuzzing:echo_app"
#: the file (one JSON line per call) the echo app appends to, even from a forked child
APP_LOG_ENV = "SERVERS_FUZZ_APP_LOG"
#: seconds the server keeps a silent client; the client waits longer than that for the close
SERVER_TIMEOUT = 3
CLIENT_TIMEOUT = 10
#: what the app answers, and the request that proves the server still serves after an example
ECHO_HEADER = "X-Echo"
GOOD_REQUEST = b"GET /still-serving?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


# -- the app under test ------------------------------------------------------------------------


def echo_app(environ, start_response):
    """Answer 200 with what the app saw, base64 JSON in ``X-Echo``, and log the same line."""
    body = environ["wsgi.input"].read()
    seen = {
        "method": environ["REQUEST_METHOD"],
        "target": environ["RAW_URI"],
        "protocol": environ["SERVER_PROTOCOL"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "headers": {
            key: value
            for key, value in environ.items()
            if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")
        },
        "body": base64.b64encode(body).decode("ascii"),
    }
    line = json.dumps(seen, sort_keys=True)
    log = os.environ.get(APP_LOG_ENV)
    if log:
        # One write of one line with O_APPEND: whole lines even from concurrent children.
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)
    echo = base64.b64encode(line.encode()).decode("ascii")
    start_response("200 OK", [("Content-Type", "text/plain"), (ECHO_HEADER, echo)])
    return [b"ok"]


# -- the server, as a process ------------------------------------------------------------------


class ServerProcess:
    """``python -m servers --model M`` serving the echo app; restarted when an example kills it."""

    def __init__(self, model: str, workdir: Path) -> None:
        #: the concurrency model served
        self.model = model
        #: where the app log and the server's stderr go
        self.workdir = workdir
        self.app_log = workdir / f"{model}-app.log"
        self.stderr_path = workdir / f"{model}-stderr.log"
        #: bytes of the app log already accounted for
        self.log_offset = 0
        self.proc: subprocess.Popen | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        #: how often the process had to be started again after dying
        self.restarts = 0

    def start(self) -> None:
        self.app_log.touch()
        self.log_offset = self.app_log.stat().st_size
        argv = [sys.executable, "-m", "servers", "--model", self.model, "--port", "0"]
        argv += [
            "--timeout",
            str(SERVER_TIMEOUT),
            *(["--keep-alive"] if self.model == "poll" else []),
        ]
        env = {**os.environ, APP_LOG_ENV: str(self.app_log)}
        with open(self.stderr_path, "ab") as stderr:
            # its own session, so stop() can end it and any children it left, by group
            self.proc = subprocess.Popen(
                [*argv, APP_SPEC],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                text=True,
                start_new_session=True,
            )
        line = _first_line(self.proc, CLIENT_TIMEOUT)
        if not line.startswith("listening on http://"):
            self.stop()
            raise RuntimeError(f"{self.model} did not start: {line!r} {self.stderr_tail()}")
        host, port = line.strip().removeprefix("listening on http://").rsplit(":", 1)
        self.address = (host, int(port))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def serves(self) -> str | None:
        """None when a good request on a new connection gets its 200, else what went wrong."""
        try:
            responses = parse_responses(exchange(self.address, GOOD_REQUEST).data)
        except (OSError, MalformedResponse) as err:
            return f"stopped serving: {err}"
        self.new_app_calls()
        if not (responses and responses[0].status == 200):
            return f"stopped serving: {responses}"
        return None

    def died(self) -> bool:
        """After a failed example: has the process exited, or stopped serving for good?"""
        # A crashing process may still complete handshakes into its backlog: only a request
        # tells whether it serves. One that does not is on its way out; wait for its exit.
        if self.alive() and self.serves() is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(CLIENT_TIMEOUT)
            self.stop()  # exited, or alive but serving nobody: either way it is gone
        return not self.alive()

    def ensure_running(self) -> None:
        if not self.alive():
            self.stop()
            self.restarts += 1
            self.start()

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc = None

    def stderr_tail(self, size: int = 2000) -> str:
        data = self.stderr_path.read_bytes() if self.stderr_path.exists() else b""
        return data[-size:].decode("utf-8", "replace")

    def new_app_calls(self) -> list[dict]:
        """The app calls logged since the last look."""
        with open(self.app_log, "rb") as log:
            log.seek(self.log_offset)
            data = log.read()
        self.log_offset += len(data)
        return [json.loads(line) for line in data.splitlines()]


def _first_line(proc: subprocess.Popen, seconds: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return lines[0] if lines else ""


@contextlib.contextmanager
def running_server(model: str):
    """A started :class:`ServerProcess`, stopped (by its group) afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{model}-") as workdir:
        server = ServerProcess(model, Path(workdir))
        server.start()
        try:
            yield server
        finally:
            server.stop()


# -- one connection ----------------------------------------------------------------------------


@dataclass
class Exchange:
    """What came back on one connection."""

    data: bytes
    #: "eof", "reset" or "timeout"
    end: str


def exchange(address: tuple[str, int], raw: bytes) -> Exchange:
    """Send ``raw``, half-close, and read until the server ends the connection."""
    with socket.create_connection(address, timeout=CLIENT_TIMEOUT) as sock:
        with contextlib.suppress(OSError):  # the server may close before it read everything
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        data = bytearray()
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            return Exchange(bytes(data), "timeout")
        except ConnectionResetError:
            # Closing with unread input sends a reset; Linux still delivered what came before it.
            return Exchange(bytes(data), "reset")
    return Exchange(bytes(data), "eof")


# -- reading responses -------------------------------------------------------------------------

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [^\r\n]*\r\n")
_FIELD_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ?([^\r\n]*)\r\n")


class MalformedResponse(Exception):
    """The server sent bytes that are not a well-formed HTTP/1.1 response."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def echo(self) -> dict | None:
        value = self.headers.get(ECHO_HEADER.lower())
        return json.loads(base64.b64decode(value)) if value else None


def parse_responses(data: bytes) -> list[Response]:
    """Every final response in ``data``; anything malformed or left over is MalformedResponse."""
    responses, pos = [], 0
    while pos < len(data):
        status_line = _STATUS_LINE.match(data, pos)
        if status_line is None:
            raise MalformedResponse(f"malformed status line at byte {pos}: {data[pos:][:80]!r}")
        pos, status, headers = status_line.end(), int(status_line[1]), {}
        while not data.startswith(b"\r\n", pos):
            line = _FIELD_LINE.match(data, pos)
            if line is None:
                raise MalformedResponse(f"malformed header at byte {pos}: {data[pos:][:80]!r}")
            name = line[1].decode("ascii").lower()
            if name in headers:
                raise MalformedResponse(f"response repeats the {name} header")
            headers[name], pos = line[2].decode("latin-1"), line.end()
        pos += 2
        if status < 200:
            continue  # 100 Continue: the final response follows
        response = Response(status, headers, b"")
        echo = response.echo()
        if not (status in (204, 304) or (echo and echo["method"] == "HEAD")):
            # the echo app and the error responses are sized; nothing here is chunked
            length = headers.get("content-length", "")
            if not length.isdigit() or "transfer-encoding" in headers:
                raise MalformedResponse(f"a {status} response not framed by Content-Length")
            if pos + int(length) > len(data):
                raise MalformedResponse("response body cut short")
            response.body, pos = data[pos : pos + int(length)], pos + int(length)
        responses.append(response)
    return responses


# -- judging one example -----------------------------------------------------------------------


class Disagreement(AssertionError):
    """The server broke a property for one input."""


def check_example(server: ServerProcess, raw: bytes) -> None:
    """Send ``raw`` on one connection and assert every property (see the module docstring)."""
    server.ensure_running()
    server.new_app_calls()  # forget calls from before this example
    try:
        result = exchange(server.address, raw)
    except OSError as err:
        raise Disagreement(f"{server.model} refused a connection: {err}") from err
    problems = judge(raw, result, server.new_app_calls())
    if not problems and (problem := server.serves()):
        problems = [problem]
    if problems and server.died():
        raise Disagreement(f"{server.model} died on {raw!r}:\n{server.stderr_tail()}")
    if problems:
        raise Disagreement(f"{server.model} on {raw!r}:\n  " + "\n  ".join(problems))


def judge(raw: bytes, result: Exchange, calls: list[dict]) -> list[str]:
    """Everything wrong with what came back for ``raw``; empty when all properties hold."""
    if result.end == "timeout":
        return [f"no close within {CLIENT_TIMEOUT}s; received {result.data!r}"]
    try:
        responses = parse_responses(result.data)
    except MalformedResponse as err:
        return [f"{err}; received {result.data!r}"]
    echoes = [r.echo() for r in responses if r.echo() is not None]
    problems = []
    if echoes != calls:
        problems.append(f"app calls {calls!r} != echoed responses {echoes!r}")
    errors = [r for r in responses if r.echo() is None]
    problems += [
        f"a response not from the app with status {r.status}" for r in errors if r.status < 400
    ]
    if errors and (len(errors) > 1 or responses[-1] is not errors[0]):
        problems.append("a response after an error response (the connection must close)")
    return problems + compare_with_reference(raw, [(r.status, r.echo()) for r in responses])
