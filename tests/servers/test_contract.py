"""The contract every model keeps, checked over real sockets on 127.0.0.1 for all four.

Servers run in-process (``make_server`` + a background thread) except where signals are the
point, which start ``python -m servers`` as a subprocess. ``app`` below is importable as
``tests.servers.test_contract:app`` for those subprocesses and for the per-model test modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs

import psutil
import pytest

from servers import make_server
from servers.http import Limits

MODELS = ("poll", "threaded", "fork", "epoll")
#: one line the close() of a tracked response writes, so forked children can report it too
TRACK_ENV = "SERVERS_TEST_TRACK_DIR"
HELLO = b"Hello, World!"
MIB = 1024 * 1024
APP_SPEC = "tests.servers.test_contract:app"


# -- the app under test ------------------------------------------------------------------------


class Tracked:
    """An iterable whose close() leaves a file behind, even when a forked child calls it."""

    def __init__(self, chunks, name: str) -> None:
        self.chunks = chunks
        self.name = name

    def __iter__(self):
        return iter(self.chunks)

    def close(self) -> None:
        track_dir = os.environ.get(TRACK_ENV)
        if track_dir:
            Path(track_dir, self.name).write_text("closed")


def stream_chunks(count: int, size: int):
    for _ in range(count):
        yield b"x" * size


def failing_stream():
    yield b"partial"
    raise RuntimeError("secret detail")


def track_path(name: str) -> Path:
    return Path(os.environ[TRACK_ENV], name)


def hold() -> bytes:
    """Tell the test the request is inside the app (file ``held``), then wait for ``release``."""
    track_path("held").touch()
    deadline = time.monotonic() + 10
    while not track_path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    return b"released"


def gate(want: int, seconds: float) -> bytes:
    """``met`` once ``want`` requests were inside the app at once, ``alone`` after ``seconds``."""
    me = track_path(f"inside-{uuid.uuid4().hex}")
    me.touch()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if track_path("met").exists() or len(list(me.parent.glob("inside-*"))) >= want:
                track_path("met").touch()
                return b"met"
            time.sleep(0.005)
        return b"alone"
    finally:
        me.unlink()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    text = [("Content-Type", "text/plain")]
    if path == "/":
        start_response("200 OK", [*text, ("Content-Length", str(len(HELLO)))])
        return [HELLO]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", text)
        return [body]
    if path == "/environ":
        keys = ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "SERVER_PROTOCOL")
        fields = {key: environ.get(key) for key in ("CONTENT_TYPE", "HTTP_HOST")}
        info = {key: environ[key] for key in keys} | fields | {"pid": os.getpid()}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(info).encode()]
    if path == "/big":
        start_response("200 OK", text)
        return [b"b" * MIB]
    if path == "/stream":
        start_response("200 OK", text)
        return Tracked(stream_chunks(int(query.get("n", 4)), int(query.get("size", 10))), "stream")
    if path == "/hold":
        start_response("200 OK", text)
        return [hold()]
    if path == "/gate":
        start_response("200 OK", text)
        return [gate(int(query["want"]), float(query["seconds"]))]
    if path == "/error":
        raise RuntimeError("secret detail")
    if path == "/error-after":
        start_response("200 OK", text)
        return failing_stream()
    if path == "/crlf":
        start_response("200 OK", [*text, ("X-Bad", "a\r\nX-Injected: yes")])
        return [b"never"]
    start_response("404 Not Found", text)
    return [b"not found"]


# -- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def running(model: str, wsgi_app=app, *, planted_fault: bool = False, **options):
    """A server of ``model`` serving ``wsgi_app`` on a free port, in a background thread.

    The fork model runs as a subprocess instead: a child forked from this process would inherit
    the test's own client sockets and keep them open after the test closes them.
    ``planted_fault`` makes the adapter itself fail for two paths (see :func:`plant_fault`).
    """
    if model == "fork":
        assert wsgi_app is app, "a subprocess serves this module's app only"
        server = CLIServer(model, planted_fault=planted_fault, **options)
        try:
            yield server
        finally:
            server.shutdown()
        return
    server = make_server(wsgi_app, model, "127.0.0.1", 0, **options)
    if planted_fault:
        plant_fault(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)


#: a request for this path makes the adapter raise before it sends anything
FAULT_BEFORE_HEAD = "/fault-before-head"
#: ... and for this one, after it sent a response head and part of the body
FAULT_AFTER_HEAD = "/fault-after-head"


def plant_fault(server) -> None:
    """Make ``server``'s adapter raise for the two fault paths, as a bug in our own code would.

    The app's own exceptions are the adapter's to turn into a 500; this wraps the adapter, so what
    is tested is the model's containment of whatever escapes it.
    """
    adapter = server.adapter

    def faulty_adapter(conn, request, body, peer, send):
        if request.target == FAULT_AFTER_HEAD:
            send(conn.send_response("200 OK", [("Content-Length", "10")]) + b"part")
            raise RuntimeError("planted fault after the head")
        if request.target == FAULT_BEFORE_HEAD:
            raise RuntimeError("planted fault before the head")
        return adapter(conn, request, body, peer, send)

    server.adapter = faulty_adapter


def serve_with_planted_fault(model: str) -> None:
    """What ``python -m servers`` does, for a server with a planted fault (a subprocess's main)."""
    server = make_server(app, model, "127.0.0.1", 0)
    plant_fault(server)
    server.install_signal_handlers()
    host, port = server.server_address
    print(f"listening on http://{host}:{port}", flush=True)
    server.serve_forever()


#: the main of a subprocess serving with a planted fault, the model given as its argument
FAULTY_MAIN = (
    "import sys, tests.servers.test_contract as t; t.serve_with_planted_fault(sys.argv[1])"
)


class CLIServer:
    """``python -m servers`` in a subprocess, with the part of make_server's interface tests use."""

    def __init__(self, model: str, *, planted_fault: bool = False, **options) -> None:
        if "limits" in options:  # the CLI takes each limit as a flag of its own
            limits = options.pop("limits")
            options |= non_default_limits(limits)
        flags = []
        for name, value in options.items():
            flags += ["--" + name.replace("_", "-")] + ([] if value is True else [str(value)])
        # stderr is inherited, so capfd sees what the server logs, as with in-process servers
        if planted_fault:
            assert not options, "a server with a planted fault runs with the defaults"
            argv = [sys.executable, "-c", FAULTY_MAIN, model]
            self.proc, self.server_address = start_process(argv, stderr=None)
        else:
            self.proc, self.server_address = start_cli(
                "--model", model, *flags, APP_SPEC, stderr=None
            )
        self.pid = self.proc.pid

    def shutdown(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        finally:
            stop(self.proc)


def non_default_limits(limits: Limits) -> dict[str, int]:
    return {
        limit.name: getattr(limits, limit.name)
        for limit in dataclasses.fields(limits)
        if getattr(limits, limit.name) != limit.default
    }


def connect(server, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(server.server_address, timeout=timeout)


def read_response(reader, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one response from a buffered reader."""
    status_line = reader.readline()
    if not status_line:
        raise ConnectionError("closed before a response")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if method == "HEAD" or status in (204, 304) or status < 200:
        return status, headers, b""
    if "content-length" in headers:
        return status, headers, reader.read(int(headers["content-length"]))
    if headers.get("transfer-encoding") == "chunked":
        return status, headers, read_chunked(reader)
    return status, headers, reader.read()


def read_chunked(reader) -> bytes:
    body = b""
    while size := int(reader.readline().split(b";")[0], 16):
        body += reader.read(size)
        reader.readline()
    while reader.readline() not in (b"\r\n", b""):
        pass
    return body


def request(server, raw: bytes, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection and read one response."""
    with connect(server) as sock:
        sock.sendall(raw)
        return read_response(sock.makefile("rb"), method)


def get(server, path: str = "/") -> tuple[int, dict[str, str], bytes]:
    return request(server, f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture(params=MODELS)
def model(request) -> str:
    return request.param


@pytest.fixture
def track_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(TRACK_ENV, str(tmp_path))
    return tmp_path


def wait_for(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- requests and responses --------------------------------------------------------------------


def test_get_answers_with_body_length_and_date(model):
    with running(model) as server:
        status, headers, body = get(server)
    assert (status, body) == (200, HELLO)
    assert headers["content-length"] == "13"
    assert headers["date"].endswith("GMT")


def test_head_sends_headers_but_no_body(model):
    options = {"keep_alive": True} if model == "poll" else {}
    with running(model, **options) as server, connect(server) as sock:
        reader = sock.makefile("rb")
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, _ = read_response(reader, "HEAD")
        assert (status, headers["content-length"]) == (200, "13")
        # Had a body been sent, it would be parsed as the next status line.
        assert read_response(reader)[2] == HELLO


def test_post_with_content_length_reaches_the_app(model):
    with running(model) as server:
        raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"
        assert request(server, raw)[::2] == (200, b"hello world")


def test_chunked_post_is_dechunked_for_the_app(model):
    with running(model) as server:
        raw = (
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        )
        assert request(server, raw)[::2] == (200, b"hello world")


def test_fields_forbidden_in_a_trailer_are_dropped_and_the_request_served(model):
    # RFC 9110 section 6.5.1: not merged into the header section, and no reason to refuse.
    options = {"keep_alive": True} if model == "poll" else {}
    with running(model, **options) as server, connect(server) as sock:
        sock.sendall(
            b"POST /environ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\nVary: *\r\nContent-Type: text/evil\r\n"
            b"Content-Length: 5\r\nHost: evil\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        reader = sock.makefile("rb")
        status, _, body = read_response(reader)
        assert status == 200
        assert json.loads(body)["CONTENT_TYPE"] is None and json.loads(body)["HTTP_HOST"] == "t"
        assert read_response(reader)[::2] == (200, HELLO)


def test_expect_100_continue_is_answered_before_the_body(model):
    with running(model) as server, connect(server) as sock:
        reader = sock.makefile("rb")
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(b"body")
        assert read_response(reader)[::2] == (200, b"body")


def test_one_mebibyte_response_arrives_whole(model):
    with running(model) as server:
        status, headers, body = get(server, "/big")
    assert status == 200
    assert headers["content-length"] == str(MIB)
    assert body == b"b" * MIB


def test_unsized_stream_is_chunked_on_1_1_and_close_delimited_on_1_0(model):
    with running(model) as server:
        status, headers, body = get(server, "/stream?n=5&size=3")
        assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"x" * 15)
        with connect(server) as sock:
            sock.sendall(b"GET /stream?n=4&size=2 HTTP/1.0\r\n\r\n")
            response = read_until_closed(sock)
    assert b"transfer-encoding" not in response.lower()
    assert response.endswith(b"\r\n\r\n" + b"x" * 8)


def test_keep_alive_and_pipelined_requests_are_answered_in_order(model):
    options = {"keep_alive": True} if model == "poll" else {}
    with running(model, **options) as server, connect(server) as sock:
        reader = sock.makefile("rb")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(reader)[2] == HELLO
        pipelined = b"".join(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n%02d" % i for i in range(5)
        )
        sock.sendall(pipelined)
        assert [read_response(reader)[2] for _ in range(5)] == [b"%02d" % i for i in range(5)]


def test_poll_closes_after_each_response_by_default():
    with running("poll") as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        response = read_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in response


# -- bad input ---------------------------------------------------------------------------------

CHUNKED = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
#: name → (request, status, the reason the body must give)
REJECTS = {
    "http-2.0": (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, "HTTP version not supported"),
    "malformed-line": (b"GET /\r\nHost: t\r\n\r\n", 400, "malformed request line"),
    "method-not-token": (b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n", 400, "method is not a token"),
    "no-colon": (b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, "header line without a colon"),
    "space-before-colon": (
        b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
        400,
        "whitespace before the colon",
    ),
    "nul-in-value": (
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        400,
        "invalid character in header value",
    ),
    "obs-fold": (b"GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400, "obsolete line folding"),
    "long-request-line": (
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
        414,
        "request line too long",
    ),
    "long-header": (
        b"GET / HTTP/1.1\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
        431,
        "header field too large",
    ),
    "many-headers": (
        b"GET / HTTP/1.1\r\n" + b"X-A: a\r\n" * 101 + b"\r\n",
        431,
        "too many header fields",
    ),
    "bad-content-length": (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n",
        400,
        "Content-Length is not a number",
    ),
    "cl-and-te": (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "both Content-Length and Transfer-Encoding",
    ),
    "unknown-coding": (
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: zz\r\n\r\n",
        501,
        "transfer coding not implemented",
    ),
    "chunked-on-1.0": (
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "Transfer-Encoding on HTTP/1.0",
    ),
    "bad-chunk-size": (CHUNKED + b"zz\r\n", 400, "bad chunk size"),
    "space-after-chunk-size": (CHUNKED + b"2 \r\nab\r\n0\r\n\r\n", 400, "bad chunk size"),
    "missing-crlf-after-chunk": (
        CHUNKED + b"2\r\nabc\r\n0\r\n\r\n",
        400,
        "missing CRLF after chunk data",
    ),
    "body-too-large": (
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n",
        413,
        "request body too large",
    ),
    "duplicate-host": (
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
        "duplicate host field",
    ),
    "duplicate-content-type": (
        b"POST / HTTP/1.1\r\nContent-Type: a/b\r\nContent-Type: a/b\r\n\r\n",
        400,
        "duplicate content-type field",
    ),
    # urlsplit raised on this one in the adapter, which stopped poll and epoll outright
    "bracket-in-authority": (
        b"PUT s://]ufd/: HTTP/1.1\r\n\r\n",
        400,
        "request target is not a valid http or https URI",
    ),
    "relative-target": (b"GET a/b HTTP/1.1\r\n\r\n", 400, "invalid request target"),
    "asterisk-on-get": (b"GET * HTTP/1.1\r\n\r\n", 400, "asterisk-form target is only for OPTIONS"),
    "authority-on-get": (
        b"GET x.org:80 HTTP/1.1\r\n\r\n",
        400,
        "authority-form target is only for CONNECT",
    ),
}


def test_bad_input_gets_its_status_and_reason_and_the_server_keeps_serving(model):
    with running(model) as server:
        for name, (raw, status, reason) in REJECTS.items():
            with connect(server) as sock:
                sock.sendall(raw)
                response = read_until_closed(sock)
            assert response.startswith(b"HTTP/1.1 %d " % status), name
            assert b"Connection: close\r\n" in response, name
            assert response.endswith(b"\r\n\r\n" + reason.encode() + b"\n"), name
            assert get(server)[2] == HELLO, name


#: limits far below the defaults, and for each one a request exactly at it and one a byte beyond
SMALL_LIMITS = Limits(
    max_request_line=40,
    max_header_field=30,
    max_header_count=3,
    max_head_bytes=100,
    max_body=10,
    max_chunk_line=8,
)


def get_with(line: bytes = b"GET / HTTP/1.1", *fields: bytes) -> bytes:
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in (b"Host: t", *fields)) + b"\r\n"


#: a request line of exactly max_request_line bytes
LONGEST_LINE = b"GET /?" + b"a" * 25 + b" HTTP/1.1"
POST_HEAD = b"POST /echo HTTP/1.1\r\nHost: t\r\n"
CHUNKED_BODY = b"Transfer-Encoding: chunked\r\n\r\n1;%s\r\na\r\n0\r\n\r\n"
LIMIT_CASES = {
    "max_request_line": (get_with(LONGEST_LINE), get_with(LONGEST_LINE + b"a"), 414),
    "max_header_field": (
        get_with(b"GET / HTTP/1.1", b"X: " + b"a" * 27),
        get_with(b"GET / HTTP/1.1", b"X: " + b"a" * 28),
        431,
    ),
    "max_header_count": (
        get_with(b"GET / HTTP/1.1", b"A: 1", b"B: 2"),
        get_with(b"GET / HTTP/1.1", b"A: 1", b"B: 2", b"C: 3"),
        431,
    ),
    "max_head_bytes": (
        get_with(LONGEST_LINE, b"X: " + b"a" * 27, b"Y: " + b"a" * 10),
        get_with(LONGEST_LINE, b"X: " + b"a" * 27, b"Y: " + b"a" * 11),
        431,
    ),
    "max_body": (
        POST_HEAD + b"Content-Length: 10\r\n\r\n0123456789",
        POST_HEAD + b"Content-Length: 11\r\n\r\n0123456789a",
        413,
    ),
    "max_chunk_line": (
        POST_HEAD + CHUNKED_BODY % b"abcdef",
        POST_HEAD + CHUNKED_BODY % b"abcdefg",
        400,
    ),
}


def test_each_limit_can_be_lowered_and_holds_to_the_byte(model):
    assert set(LIMIT_CASES) == set(non_default_limits(SMALL_LIMITS))
    assert len(LONGEST_LINE) == SMALL_LIMITS.max_request_line
    assert len(LIMIT_CASES["max_head_bytes"][0]) == SMALL_LIMITS.max_head_bytes
    with running(model, limits=SMALL_LIMITS) as server:
        for name, (within, beyond, status) in LIMIT_CASES.items():
            assert request(server, within)[0] == 200, name
            assert request(server, beyond)[0] == status, name
            assert get(server)[2] == HELLO, name


# -- app failures ------------------------------------------------------------------------------


def test_app_exception_is_a_500_without_details(model, capfd):
    with running(model) as server:
        status, headers, body = get(server, "/error")
        assert status == 500
        assert b"secret" not in body and b"Traceback" not in body
        assert headers["connection"] == "close"
        assert get(server)[2] == HELLO
    assert "secret detail" in capfd.readouterr().err  # logged for the operator, not the client


def test_crlf_in_an_app_header_is_a_500_and_the_header_is_not_sent(model):
    with running(model) as server:
        with connect(server) as sock:
            sock.sendall(b"GET /crlf HTTP/1.1\r\nHost: t\r\n\r\n")
            response = read_until_closed(sock)
        assert response.startswith(b"HTTP/1.1 500 ")
        assert b"X-Injected" not in response and b"X-Bad" not in response
        assert get(server)[2] == HELLO


def test_app_exception_after_the_headers_closes_the_connection(model):
    with running(model) as server:
        with connect(server) as sock:
            sock.sendall(b"GET /error-after HTTP/1.1\r\nHost: t\r\n\r\n")
            response = read_until_closed(sock)
        assert response.startswith(b"HTTP/1.1 200 ")
        assert not response.endswith(b"0\r\n\r\n")  # the chunked body never claims to be complete
        assert get(server)[2] == HELLO


@pytest.mark.parametrize(
    ("model_name", "options"),
    [("poll", {"keep_alive": True}), ("threaded", {}), ("fork", {}), ("epoll", {})]
    + [("epoll", {"threads": 2})],
)
def test_a_fault_in_our_own_code_ends_only_its_connection(model_name, options, capfd):
    with running(model_name, planted_fault=True, **options) as server:
        with connect(server) as sock:  # after a good response on the same connection: a 500
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            sock.sendall(f"GET {FAULT_BEFORE_HEAD} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            reader = sock.makefile("rb")
            assert read_response(reader)[::2] == (200, HELLO)
            status, headers, body = read_response(reader)
            assert (status, headers["connection"], body) == (
                500,
                "close",
                b"Internal Server Error\n",
            )
            assert reader.read() == b""
        with connect(server) as sock:
            sock.sendall(f"GET {FAULT_AFTER_HEAD} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            response = read_until_closed(sock)
        if model_name == "epoll":  # its adapter only buffers: nothing had gone out, so a 500
            assert response.startswith(b"HTTP/1.1 500 ")
        else:  # the head went out: the connection is closed, the body never completed
            assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(
                b"\r\n\r\npart"
            )
        assert get(server)[2] == HELLO
    err = capfd.readouterr().err
    assert err.count("error serving 127.0.0.1:") == 2
    assert "RuntimeError: planted fault before the head" in err
    assert "RuntimeError: planted fault after the head" in err


# -- clients that hang up ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "partial",
    [
        b"GET / HT",
        b"GET / HTTP/1.1\r\nHost: t\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ],
    ids=["line", "head", "body", "chunked-body"],
)
def test_client_hanging_up_mid_request_costs_nothing(model, partial, capfd):
    with running(model) as server:
        with connect(server) as sock:
            sock.sendall(partial)
        assert get(server)[2] == HELLO
    assert "Traceback" not in capfd.readouterr().err


def test_client_hanging_up_mid_response_still_closes_the_iterable(model, track_dir, capfd):
    with running(model) as server:
        with connect(server) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /stream?n=200&size=65536 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        assert wait_for(lambda: (track_dir / "stream").exists())
        assert get(server)[2] == HELLO
    assert "Traceback" not in capfd.readouterr().err


# -- concurrency: each model's nature ----------------------------------------------------------


def four_at_once(server, path: str) -> list[bytes]:
    """The bodies of four concurrent requests for ``path``, each on its own connection."""
    bodies = []

    def one():
        status, _, body = get(server, path)
        bodies.append(body if status == 200 else b"status %d" % status)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return bodies


@pytest.mark.parametrize(
    ("model_name", "options", "overlaps"),
    [
        ("poll", {}, False),
        ("threaded", {}, True),
        ("fork", {}, True),
        ("epoll", {}, False),
        ("epoll", {"threads": 4}, True),
    ],
)
def test_blocking_requests_overlap_or_serialise_by_model(model_name, options, overlaps, track_dir):
    # Overlapping models must get all four requests into the app at once (the app waits for
    # that); serialising ones must never have a second request arrive while one waits.
    path = "/gate?want=4&seconds=20" if overlaps else "/gate?want=2&seconds=0.3"
    with running(model_name, **options) as server:
        bodies = four_at_once(server, path)
    assert bodies == [b"met" if overlaps else b"alone"] * 4


@pytest.mark.parametrize("model_name", ["threaded", "fork", "epoll"])
def test_idle_connections_do_not_stop_the_server(model_name):
    with running(model_name) as server:
        idle = [connect(server) for _ in range(30)]
        try:
            for sock in idle[:10]:
                sock.sendall(b"GET / HT")  # some have started a request and stalled
            assert get(server)[2] == HELLO
        finally:
            for sock in idle:
                sock.close()


#: how long a connection may sit idle in the stall tests: long enough for the test to send a
#: request in time on a busy machine, short enough for an app call to outlast it
STALL_IDLE = 1.0
#: the option that bounds an idle keep-alive connection, per model
IDLE_OPTION = {"threaded": "timeout", "fork": "timeout", "epoll": "idle_timeout"}


@pytest.mark.parametrize("model_name", ["threaded", "fork", "epoll"])
def test_a_request_sent_while_an_app_call_outlasts_the_idle_timeout_is_answered(
    model_name, track_dir
):
    # A keep-alive connection, served once, sends its next request while another connection's
    # app call blocks past the idle timeout. However long the block, a request that arrived in
    # time is answered: no timer may take a waiting request for silence.
    options = {IDLE_OPTION[model_name]: STALL_IDLE}
    with (
        running(model_name, **options) as server,
        connect(server, timeout=15) as kept,
        connect(server, timeout=15) as blocked,
    ):
        kept_reader = kept.makefile("rb")
        kept.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(kept_reader)[2] == HELLO
        idle_since = time.monotonic()
        blocked.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(lambda: (track_dir / "held").exists(), seconds=10)
        kept.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        # The block has to outlast the idle timeout: that much time passing is the point.
        time.sleep(max(0.0, idle_since + 1.5 * STALL_IDLE - time.monotonic()))
        (track_dir / "release").touch()
        assert read_response(blocked.makefile("rb"))[2] == b"released"
        assert read_response(kept_reader)[2] == HELLO


def test_poll_serves_one_connection_at_a_time_so_a_stall_delays_but_loses_nothing(track_dir):
    # The iterative model's rule: one connection at a time, closed after its response. No
    # connection is kept idle while another is served, so no timer can drop a waiting request;
    # a request sent during a blocking app call waits in the listen backlog and comes after it.
    with running("poll", timeout=STALL_IDLE) as server:
        with connect(server) as first:
            first.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_until_closed(first).endswith(HELLO)  # closed: nothing more can wait on it
        with connect(server, timeout=15) as blocked, connect(server, timeout=15) as waiting:
            blocked.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
            assert wait_for(lambda: (track_dir / "held").exists(), seconds=10)
            waiting.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(1.5 * STALL_IDLE)  # the block outlasts the timeout, as above
            assert select.select([waiting], [], [], 0)[0] == []  # not served during the block
            (track_dir / "release").touch()
            assert read_response(blocked.makefile("rb"))[2] == b"released"
            assert read_response(waiting.makefile("rb"))[2] == HELLO


def open_fds(server) -> int:
    if isinstance(server, CLIServer):
        return psutil.Process(server.pid).num_fds()
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_no_fd_growth_over_hundreds_of_connections(model):
    with running(model) as server:
        get(server)
        before = open_fds(server)
        for i in range(300):
            if i % 3 == 0:
                with connect(server) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost")  # hang up mid-request
            else:
                assert get(server)[0] == 200
        assert wait_for(lambda: open_fds(server) <= before)


# -- PEP 3333 flags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_name", "options", "multithread", "multiprocess"),
    [
        ("poll", {}, False, False),
        ("threaded", {}, True, False),
        ("fork", {}, False, True),
        ("fork", {"workers": 2}, False, True),
        ("epoll", {}, False, False),
        ("epoll", {"threads": 2}, True, False),
    ],
)
def test_wsgi_flags_are_honest_per_model(model_name, options, multithread, multiprocess):
    with running(model_name, **options) as server:
        info = json.loads(get(server, "/environ")[2])
    assert info["wsgi.multithread"] is multithread
    assert info["wsgi.multiprocess"] is multiprocess
    assert info["wsgi.run_once"] is False
    assert (info["pid"] != os.getpid()) is multiprocess


# -- graceful shutdown -------------------------------------------------------------------------


def start_cli(*args: str, stderr=subprocess.PIPE) -> tuple[subprocess.Popen, tuple[str, int]]:
    """``python -m servers ARGS`` on a free port; returns the process and its address."""
    return start_process([sys.executable, "-m", "servers", "--port", "0", *args], stderr)


def start_process(argv: list[str], stderr=subprocess.PIPE) -> tuple[subprocess.Popen, tuple]:
    """Start a server that prints ``listening on http://HOST:PORT``; the process, its address."""
    # its own session: stop() can then end the server and any children it left, by group
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
    )
    line = read_line_with_timeout(proc, 10)
    assert line.startswith("listening on http://127.0.0.1:"), line
    host, port = line.strip().removeprefix("listening on http://").rsplit(":", 1)
    return proc, (host, int(port))


def read_line_with_timeout(proc: subprocess.Popen, seconds: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    if not lines:
        proc.kill()
        raise AssertionError(f"no listening line: {proc.stderr and proc.stderr.read()}")
    return lines[0]


def stop(proc: subprocess.Popen) -> None:
    """Kill the server; when it leads its own process group, the whole group (prefork workers)."""
    with contextlib.suppress(ProcessLookupError):  # already reaped: nothing of ours to signal
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    proc.wait(10)


def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(model, track_dir):
    proc, address = start_cli("--model", model, APP_SPEC)
    try:
        with socket.create_connection(address, timeout=15) as sock:
            sock.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
            assert wait_for(lambda: (track_dir / "held").exists(), seconds=10)
            proc.send_signal(signal.SIGTERM)
            (track_dir / "release").touch()
            status, _, body = read_response(sock.makefile("rb"))
        assert (status, body) == (200, b"released")
        assert proc.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(address, timeout=1).close()
    finally:
        stop(proc)
