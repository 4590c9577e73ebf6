"""Differential fuzzing of a whole server: bytes in over a real socket, judged against llhttp.

Used by ``test_fuzz.py`` (bounded, fixed seeds), ``fuzz_main.py`` (``tox -e fuzz``, for as long as
asked) and ``test_corpus.py``. One example is one connection: send the bytes, half-close, read
until the server closes, then judge (:func:`check_example`):

- the server process is still alive and still answers a good request;
- the connection ended (EOF or reset) within ``CLIENT_TIMEOUT`` with well-formed responses only;
- every response from the app (the echo app below puts what it saw in an ``X-Echo`` header) is one
  the app logged, and every app call is answered: a request we reject never reaches the app;
- message by message, our accept/reject decision and the method, target, version, headers and body
  the app saw agree with llhttp (``httptools``), except for the deliberate differences in
  :data:`ALLOWED_REJECTS` and :data:`ALLOWED_ACCEPTS`. Where one request ends and the next begins
  must always agree: a second parser that splits a stream differently is request smuggling.
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
from dataclasses import dataclass, field
from pathlib import Path

import httptools

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


# -- the reference parser ----------------------------------------------------------------------


@dataclass
class Message:
    """One request as llhttp parsed it."""

    method: str = ""
    target: bytes = b""
    version: str = ""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    keep_alive: bool = True
    #: llhttp stopped after this message: CONNECT or Upgrade hand the rest to another protocol
    upgrade: bool = False
    #: byte offsets of the message's first and one-past-last byte in the stream, and where the
    #: bytes llhttp skipped before it (empty lines) begin
    start: int = 0
    skipped_from: int = 0
    end: int = 0


@dataclass
class Reference:
    """llhttp's reading of a whole stream."""

    #: complete messages, in order
    messages: list[Message]
    #: how the stream ended: "clean" (between messages), "incomplete" (mid-message), "error"
    #: or "upgrade" (CONNECT or Upgrade: llhttp stops parsing HTTP there)
    end: str
    #: llhttp's error text when end is "error"
    error: str = ""
    #: the message llhttp was reading when the stream ended, if any
    partial: Message | None = None

    def rest(self, raw: bytes) -> bytes:
        """The bytes from the start of the message llhttp did not complete."""
        start = (
            self.partial.start if self.partial else (self.messages[-1].end if self.messages else 0)
        )
        return raw[start:]


class _Recorder:
    """httptools callbacks; fed one byte at a time so every offset is exact."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.messages: list[Message] = []
        self.current: Message | None = None
        self.in_trailers = False
        self.offset = 0
        self.last_end = 0

    def on_message_begin(self) -> None:
        self.current = Message(start=self.offset, skipped_from=self.last_end)
        self.in_trailers = False

    def on_url(self, url: bytes) -> None:
        self.current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        (self.current.trailers if self.in_trailers else self.current.headers).append((name, value))

    def on_headers_complete(self) -> None:
        self.current.method = self.parser.get_method().decode("latin-1")
        self.current.version = self.parser.get_http_version()
        self.in_trailers = True

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        self.current.keep_alive = self.parser.should_keep_alive()
        self.current.end = self.last_end = self.offset + 1
        self.messages.append(self.current)
        self.current = None


def reference_parse(raw: bytes) -> Reference:
    recorder = _Recorder()
    for recorder.offset in range(len(raw)):
        try:
            recorder.parser.feed_data(raw[recorder.offset : recorder.offset + 1])
        except httptools.HttpParserUpgrade:
            recorder.messages[-1].upgrade = True
            return Reference(recorder.messages, "upgrade")
        except httptools.HttpParserError as err:
            return Reference(recorder.messages, "error", str(err), recorder.current)
    end = "incomplete" if recorder.current is not None else "clean"
    return Reference(recorder.messages, end, partial=recorder.current)


# -- what the app should have seen -------------------------------------------------------------

#: RFC 3986 appendix B: scheme, authority, path, query, fragment of any URI reference
_URI = re.compile(r"^(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def expected_environ_headers(message: Message) -> dict[str, str]:
    """PEP 3333's HTTP_* keys for llhttp's header list, as the app should see them."""
    headers: dict[str, str] = {}
    authority = _absolute_form_authority(message.target.decode("latin-1"))
    for name, value in message.headers:
        name_text = name.decode("latin-1").lower()
        if "_" in name_text:
            continue  # PEP 3333 leaves "_" ambiguous with "-": such fields are dropped
        key = name_text.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        text = value.rstrip(b" \t").decode("latin-1")
        headers[key] = headers[key] + ", " + text if key in headers else text
    if authority is not None:
        # RFC 9112 section 3.2.2: with an absolute-form target the origin server MUST ignore
        # the Host field and use the target's host (llhttp reports fields as they came).
        headers["HTTP_HOST"] = authority.rpartition("@")[2]
    return headers


def _absolute_form_authority(target: str) -> str | None:
    parts = _URI.match(target)
    if target.startswith("/") or (parts[1] or "").lower() not in ("http", "https"):
        return None
    return parts[2]


def expected_path_and_query(target: str) -> tuple[str, str] | None:
    """PATH_INFO and QUERY_STRING for an origin-form or http(s) absolute-form target."""
    if target.startswith("/"):  # absolute-path: a leading "//" is not an authority here
        path, _, query = target.partition("#")[0].partition("?")
    else:
        parts = _URI.match(target)
        if (parts[1] or "").lower() not in ("http", "https") or parts[2] is None:
            return None  # asterisk- and authority-form: PEP 3333 says nothing
        path, query = parts[3] or "/", parts[4] or ""
    decoded = _PERCENT.sub(lambda m: bytes([int(m[1], 16)]), path.encode("latin-1"))
    return decoded.decode("latin-1"), query


def differences(message: Message, echo: dict) -> list[str]:
    """How what the app saw differs from llhttp's reading of the same message."""
    target = message.target.decode("latin-1")
    found = []
    if echo["method"] != message.method:
        found.append(f"method {echo['method']!r} != llhttp {message.method!r}")
    # A fragment may be stripped before the app sees the target (RFC 9112 section 3.2 has none).
    if echo["target"] not in (target, target.partition("#")[0]):
        found.append(f"target {echo['target']!r} != llhttp {target!r}")
    if echo["protocol"] != "HTTP/" + message.version:
        found.append(f"protocol {echo['protocol']!r} != llhttp HTTP/{message.version}")
    expected = expected_environ_headers(message)
    if echo["headers"] != expected:
        found.append(f"headers {echo['headers']!r} != llhttp {expected!r}")
    # After a CONNECT or an Upgrade llhttp hands the bytes that follow the head to another
    # protocol. We do not switch (RFC 9110 section 7.8 lets a server ignore Upgrade, and CONNECT
    # goes to the app like any method), so those bytes are a body to us and nothing to llhttp.
    body = base64.b64decode(echo["body"])
    if not message.upgrade and body != message.body:
        found.append(f"body {body!r} != llhttp {message.body!r}")
    path_query = expected_path_and_query(echo["target"])
    if path_query is not None and (echo["path"], echo["query"]) != path_query:
        found.append(f"PATH_INFO/QUERY_STRING {(echo['path'], echo['query'])!r} != {path_query!r}")
    return found


def _keeps_alive(message: Message) -> bool:
    # RFC 9112 section 9.6: a "close" connection option ends the connection after the response,
    # whatever else the field says; llhttp lets "keep-alive" win on HTTP/1.0.
    options = b",".join(v for n, v in message.headers if n.lower() == b"connection")
    return message.keep_alive and b"close" not in {o.strip().lower() for o in options.split(b",")}


# -- deliberate differences from llhttp --------------------------------------------------------

#: fields that must appear at most once (RFC 9110 section 5.3: not a list, so no combining)
SINGLETON_FIELDS = frozenset(
    {b"host", b"content-type", b"content-length", b"content-location", b"content-range",
     b"authorization", b"proxy-authorization", b"if-modified-since", b"if-unmodified-since",
     b"if-range", b"max-forwards", b"range", b"referer", b"user-agent", b"from", b"date"}
)  # fmt: skip
#: fields a sender must not put in a trailer section (RFC 9110 section 6.5.1): framing, routing,
#: request modifiers, authentication and content handling
TRAILER_FORBIDDEN = frozenset(
    {b"transfer-encoding", b"content-length", b"host", b"content-type", b"content-encoding",
     b"content-range", b"trailer", b"te", b"expect", b"max-forwards", b"range", b"authorization",
     b"proxy-authorization", b"cache-control", b"if-match", b"if-none-match",
     b"if-modified-since", b"if-unmodified-since", b"if-range", b"connection", b"upgrade",
     b"keep-alive", b"proxy-connection", b"cookie", b"pragma"}
)  # fmt: skip
# RFC 3986 pieces: a path character, a host name character, an IP literal
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_NAME = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})"
_HOST = rf"(?:\[[0-9A-Fa-f:.]+\]|{_NAME}+)"
#: RFC 9112 section 3.2.1: absolute-path [ "?" query ]
_ORIGIN_FORM = re.compile(rf"(?:/{_PCHAR}*)+(?:\?(?:{_PCHAR}|[/?])*)?")
#: RFC 9112 section 3.2.3: what a CONNECT target may be (host ":" port, the port not empty)
_CONNECT_AUTHORITY = re.compile(rf"{_HOST}:[0-9]+")
#: RFC 3986 section 3.2: [userinfo "@"] host [":" port], the host not empty
_AUTHORITY = re.compile(rf"(?:(?:{_NAME}|:)*@)?{_HOST}(?::[0-9]*)?")


def _names(fields: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [name.lower() for name, _ in fields]


def _target_not_valid(message: Message, raw: bytes) -> bool:
    # RFC 9112 section 3.2: origin-form or http(s) absolute-form for every method, authority-form
    # only with CONNECT, asterisk-form only with OPTIONS; a fragment is not part of any form.
    # llhttp checks the characters of a target but not its form.
    target = message.target.decode("latin-1")
    if target == "*":
        return message.method != "OPTIONS"
    if message.method == "CONNECT":
        # RFC 9112 section 3.2.3: uri-host ":" port, no userinfo; RFC 9110 section 9.3.6: the
        # port MUST be sent
        return not _CONNECT_AUTHORITY.fullmatch(target)
    if target.startswith("/"):
        return not _ORIGIN_FORM.fullmatch(target)
    parts = _URI.match(target)
    if (parts[1] or "").lower() not in ("http", "https") or parts[2] is None:
        return True
    # RFC 9110 section 4.2.1: an http(s) URI with an empty host MUST be rejected as invalid.
    rest = target[len(parts[1]) + 3 + len(parts[2]) :]
    return not (_AUTHORITY.fullmatch(parts[2]) and _ORIGIN_FORM.fullmatch("/" + rest.lstrip("/")))


def _request_line_spacing(message: Message, raw: bytes) -> bool:
    # RFC 9112 section 3: one SP between method, target and version. A recipient MAY split on
    # any whitespace run instead (llhttp takes "GET /  HTTP/1.1"); we answer 400, as the same
    # section advises for an invalid request-line, rather than guess what was meant.
    line = raw[message.start :].split(b"\r\n", 1)[0]
    return re.fullmatch(rb"[^ \t]+ [^ \t]+ [^ \t]+", line) is None


def _version_not_1x(message: Message, raw: bytes) -> bool:
    # RFC 9110 section 6.2 / 15.6.6: we speak HTTP/1.0 and 1.1 only (505 for 2.0 and up, 400 for
    # 0.9 and the rest); llhttp parses 0.9 and 2.0 heads as if they were 1.x.
    return message.version not in ("1.0", "1.1")


def _bare_cr_or_lf(message: Message, raw: bytes) -> bool:
    # RFC 9112 section 2.2 lets a recipient accept a bare LF as a line end, and a bare CR must be
    # treated as invalid or as SP; we refuse both in the whole head (and before it), because
    # parsers that disagree on line ends split streams differently. llhttp skips a bare CR or
    # LF before a request line.
    head = raw[message.skipped_from : message.start] + _head(message, raw)
    return re.search(rb"(?<!\r)\n|\r(?!\n)", head) is not None


def _head(message: Message, raw: bytes) -> bytes:
    span = raw[message.start : message.end]
    return span[: span.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in span else span


def _transfer_coding_not_chunked(message: Message, raw: bytes) -> bool:
    # RFC 9112 section 6.1: a server that does not understand a transfer coding answers 501; we
    # decode only chunked, so "gzip, chunked" is refused rather than handed over still gzipped.
    # And on HTTP/1.0 a Transfer-Encoding means faulty framing (RFC 9112 section 6.1).
    codings = [
        v.lower().replace(b" ", b"")
        for n, v in message.headers
        if n.lower() == b"transfer-encoding"
    ]
    return bool(codings) and (codings != [b"chunked"] or message.version == "1.0")


def _repeated_singleton(message: Message, raw: bytes) -> bool:
    names = _names(message.headers)
    return any(names.count(name) > 1 for name in SINGLETON_FIELDS)


def _forbidden_trailer(message: Message, raw: bytes) -> bool:
    return any(name in TRAILER_FORBIDDEN for name in _names(message.trailers))


def _upgrade_with_body(message: Message, raw: bytes) -> bool:
    # llhttp ends an Upgrade request at its head and hands the rest to the new protocol; we do
    # not switch (RFC 9110 section 7.8), so its Content-Length or chunked body is ours to frame,
    # and to refuse when malformed.
    names = _names(message.headers)
    return message.upgrade and (b"content-length" in names or b"transfer-encoding" in names)


def _host_not_exactly_once(message: Message, raw: bytes) -> bool:
    # RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request without a Host field
    # or with more than one; llhttp leaves that to its user.
    return message.version == "1.1" and _names(message.headers).count(b"host") != 1


#: name → predicate on llhttp's message (its comment gives the RFC clause): we may answer 4xx/5xx
#: where llhttp parsed a complete message when one of them holds
ALLOWED_REJECTS = {
    "request target": _target_not_valid,
    "request-line spacing": _request_line_spacing,
    "version other than 1.0/1.1": _version_not_1x,
    "bare CR or LF": _bare_cr_or_lf,
    "body of an Upgrade request": _upgrade_with_body,
    "transfer coding other than chunked": _transfer_coding_not_chunked,
    "repeated singleton field": _repeated_singleton,
    "forbidden trailer field": _forbidden_trailer,
    "HTTP/1.1 without exactly one Host": _host_not_exactly_once,
}


def _bws_before_chunk_ext(rest: bytes) -> bool:
    # RFC 9112 section 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name ... ), so "5 ;a" is
    # valid; llhttp refuses any whitespace after the size.
    return re.search(rb"\n[0-9A-Fa-f]+[ \t]+;", rest) is not None


def _identical_lengths(rest: bytes) -> bool:
    # RFC 9110 section 8.6: identical repeated Content-Length values may be collapsed into one.
    head = rest.partition(b"\r\n\r\n")[0]
    values = re.findall(rb"\ncontent-length:[ \t]*([^\r\n]*)", head, re.IGNORECASE)
    return len({value.rstrip(b" \t") for value in values}) == 1


#: the methods llhttp parses whatever else it refuses
COMMON_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH",
                            b"CONNECT", b"TRACE"})  # fmt: skip


def _unknown_method(rest: bytes) -> bool:
    return rest.lstrip(b"\r\n").split(b" ", 1)[0] not in COMMON_METHODS


def _always(rest: bytes) -> bool:
    return True


#: llhttp error (a substring) → (predicate on the stream, reason): we may accept the message
#: llhttp refused with that error when the predicate holds
ALLOWED_ACCEPTS = {
    # RFC 9110 section 9.1: a method is any token; the app answers 405/501 to ones it lacks.
    # llhttp knows a fixed list (with RTSP and ICE ones) and refuses the rest in several ways.
    "Invalid method": (_unknown_method, "unknown method token"),
    "Expected space after method": (_unknown_method, "unknown method token (a known one's prefix)"),
    "Expected HTTP/": (_unknown_method, "method llhttp reserves for RTSP/ICE"),
    # RFC 9112 section 7.1.1: a recipient MUST ignore unrecognized chunk extensions; we skip
    # them (bounded by Limits.max_chunk_line) without checking their token/quoted-string syntax.
    "chunk extension": (_always, "chunk extension syntax"),
    "Invalid character in chunk size": (_bws_before_chunk_ext, "whitespace before ';'"),
    "Duplicate Content-Length": (_identical_lengths, "identical repeated Content-Length"),
}


def allowed_reject(message: Message, raw: bytes) -> str | None:
    """The name of a deliberate difference that lets us reject what llhttp accepted."""
    return next((name for name, holds in ALLOWED_REJECTS.items() if holds(message, raw)), None)


def allowed_accept(reference: Reference, raw: bytes) -> str | None:
    """The reason we may accept the message llhttp refused with ``reference.error``."""
    for fragment, (holds, reason) in ALLOWED_ACCEPTS.items():
        if fragment in reference.error and holds(reference.rest(raw)):
            return reason
    return None


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
    if not server.alive():
        server.ensure_running()
        raise Disagreement(f"{server.model} died on {raw!r}:\n{server.stderr_tail()}")
    calls = server.new_app_calls()
    problems = judge(raw, result, calls)
    if problems:
        raise Disagreement(f"{server.model} on {raw!r}:\n  " + "\n  ".join(problems))
    try:
        responses = parse_responses(exchange(server.address, GOOD_REQUEST).data)
    except (OSError, MalformedResponse) as err:
        raise Disagreement(f"{server.model} stopped serving after {raw!r}: {err}") from err
    if not (responses and responses[0].status == 200):
        raise Disagreement(f"{server.model} stopped serving after {raw!r}: {responses}")
    server.new_app_calls()


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
    return problems + compare_with_reference(raw, responses)


def compare_with_reference(raw: bytes, responses: list[Response]) -> list[str]:
    reference = reference_parse(raw)
    for index, message in enumerate(reference.messages):
        if index >= len(responses):
            return [f"request {index + 1} ({message.method} {message.target!r}) got no answer"]
        response = responses[index]
        echo = response.echo()
        if echo is None:
            if allowed_reject(message, raw):
                return []  # a deliberate reject; the connection ends there
            return [f"we answered {response.status} where llhttp accepted request {index + 1}"
                    f" ({message.method} {message.target!r} {message.headers!r})"]  # fmt: skip
        found = differences(message, echo)
        if found:
            return [f"request {index + 1}: " + "; ".join(found)]
        if not _keeps_alive(message):
            if len(responses) > index + 1:
                return [f"we answered after request {index + 1}, which ends the connection"]
            return []
    rest = responses[len(reference.messages) :]
    if reference.end == "upgrade":
        return []  # after Upgrade llhttp no longer parses HTTP; we do not switch protocols
    if not rest or rest[0].echo() is None:
        return []  # we also refused (or ran out of) what llhttp refused or found incomplete
    if reference.end == "error":
        if allowed_accept(reference, raw):
            return []
        return [f"we accepted request {len(reference.messages) + 1} ({rest[0].echo()!r}) where"
                f" llhttp failed with {reference.error!r}"]  # fmt: skip
    return [f"we answered a request llhttp did not find (end: {reference.end}): {rest[0].echo()!r}"]
