"""servers: the HTTP layer and the WSGI adapter every model shares, in-process, no sockets.

Each case runs our code (subject ``servers``) beside h11 and httptools doing the same job on the
same bytes, so a slower ``servers/http.py`` shows up as a ratio that machine speed cancels:

- ``parse_head``: a browser's request head, received whole, up to the request event;
- ``parse_head_split``: the same head arriving in three segments (a partial head is re-scanned);
- ``parse_chunked``: a POST whose 4 KiB body comes in eight chunks, up to the end of the message;
- ``wsgi_environ``: the PEP 3333 environ of a parsed request (references: h11's request event
  turned into an environ by a plain builder, as an h11-based WSGI server would);
- ``response_head``: a response head serialised (h11's ``Response`` event, validated and
  written);
- ``server_cycle``: one keep-alive request through the HTTP layer and the WSGI adapter into the
  raw WSGI app and back to bytes (references: the same cycle on h11 and on httptools).

Only the public API of ``servers.http`` and ``servers.wsgi`` is used.
"""

from __future__ import annotations

import io
import sys

import h11
import httptools
import pytest
from h11._writers import write_any_response  # h11 serialises only through a Connection's state

from bench.apps.rawapp import app as raw_app
from bench.micro.harness import call_wsgi, describe
from bench.micro.workloads import BROWSER_HEAD, PEER, SERVER_ADDRESS, ServerCycle
from servers.http import Data, Request, ServerConnection
from servers.wsgi import WSGIAdapter

GROUP = "servers"
#: our code; every other subject is a reference
OURS = "servers"
COMPARE_TO = {"servers": ("h11", "httptools"), "httptools": ("h11",)}
SUBJECTS = ["servers", "h11", "httptools"]

HEAD_SEGMENTS = (BROWSER_HEAD[:40], BROWSER_HEAD[40:300], BROWSER_HEAD[300:])
CHUNK = b"x" * 512
CHUNKED_POST = (
    (
        b"POST /upload HTTP/1.1\r\n"
        b"Host: 127.0.0.1:8000\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"\r\n" + b"200\r\n" + CHUNK + b"\r\n"
    )
    + (b"200\r\n" + CHUNK + b"\r\n") * 7
    + b"0\r\n\r\n"
)
RESPONSE_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Length", "1234"),
    ("Cache-Control", "no-cache"),
    ("Set-Cookie", "session=eyJjb3VudCI6Mn0.ZyQ2xw.4bXk3mJ0aQq1oZ8yUe5n; HttpOnly; Path=/"),
]


def run_case(benchmark, function, *args):
    describe(benchmark, GROUP, COMPARE_TO, under_test=OURS)
    return benchmark(function, *args)


# --- parsing: bytes in, the request (and its body) out --------------------------------------------


def servers_parse(segments: tuple[bytes, ...]) -> list:
    """Every event up to the end of the message, on a fresh connection."""
    conn, events = ServerConnection(), []
    for segment in segments:
        conn.receive_data(segment)
        event = conn.next_event()
        while type(event) in (Request, Data):
            events.append(event)
            event = conn.next_event()
    return events


def h11_parse(segments: tuple[bytes, ...]) -> list:
    conn, events = h11.Connection(h11.SERVER), []
    for segment in segments:
        conn.receive_data(segment)
        event = conn.next_event()
        while type(event) in (h11.Request, h11.Data):
            events.append(event)
            event = conn.next_event()
    return events


class HttptoolsEvents:
    """httptools calls back; this collects what the other parsers return as events."""

    def __init__(self) -> None:
        #: the request target, the headers (names lower-cased, like the others) and body pieces
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        #: set by on_message_complete
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


def httptools_parse(segments: tuple[bytes, ...]) -> HttptoolsEvents:
    events = HttptoolsEvents()
    parser = httptools.HttpRequestParser(events)
    for segment in segments:
        parser.feed_data(segment)
    return events


PARSE = {"servers": servers_parse, "h11": h11_parse, "httptools": httptools_parse}


def head_of(subject: str, result) -> tuple[bytes, int]:
    """(target, header count) of what a parser returned."""
    if subject == "httptools":
        return result.url, len(result.headers)
    target = result[0].target
    return (target.encode() if isinstance(target, str) else target), len(result[0].headers)


def body_of(subject: str, result) -> bytes:
    if subject == "httptools":
        return b"".join(result.body)
    return b"".join(bytes(event.data) for event in result[1:])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_parse_head(benchmark, subject):
    result = run_case(benchmark, PARSE[subject], (BROWSER_HEAD,))
    assert head_of(subject, result) == (b"/plaintext", 13)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_parse_head_split(benchmark, subject):
    result = run_case(benchmark, PARSE[subject], HEAD_SEGMENTS)
    assert head_of(subject, result) == (b"/plaintext", 13)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_parse_chunked(benchmark, subject):
    result = run_case(benchmark, PARSE[subject], (CHUNKED_POST,))
    assert body_of(subject, result) == CHUNK * 8


# --- the WSGI environ of a parsed request ---------------------------------------------------------

BASE_ENVIRON = {
    "SCRIPT_NAME": "",
    "SERVER_NAME": SERVER_ADDRESS[0],
    "SERVER_PORT": str(SERVER_ADDRESS[1]),
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
    "wsgi.input_terminated": True,
}


def plain_environ(method: str, target: str, version: str, headers, body: bytes) -> dict:
    """PEP 3333's environ built the plain way (wsgiref's rules), from decoded request parts."""
    environ = BASE_ENVIRON.copy()
    path, _, query = target.partition("?")
    environ.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        QUERY_STRING=query,
        SERVER_PROTOCOL="HTTP/" + version,
        REMOTE_ADDR=PEER[0],
        REMOTE_PORT=str(PEER[1]),
    )
    environ["wsgi.input"] = io.BytesIO(body)
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = environ[key] + ", " + value if key in environ else value
    return environ


def h11_environ(event: h11.Request, body: bytes) -> dict:
    headers = [(name.decode("ascii"), value.decode("latin-1")) for name, value in event.headers]
    return plain_environ(
        event.method.decode("ascii"),
        event.target.decode("ascii"),
        event.http_version.decode("ascii"),
        headers,
        body,
    )


def httptools_environ(events: HttptoolsEvents, body: bytes) -> dict:
    headers = [(name.decode("ascii"), value.decode("latin-1")) for name, value in events.headers]
    return plain_environ("GET", events.url.decode("ascii"), "1.1", headers, body)


ADAPTER = WSGIAdapter(raw_app, SERVER_ADDRESS, multithread=False, multiprocess=False)
ENVIRON = {
    "servers": lambda request, body: ADAPTER.environ(request, body, PEER),
    "h11": h11_environ,
    "httptools": httptools_environ,
}
PARSED = {
    "servers": lambda: servers_parse((BROWSER_HEAD,))[0],
    "h11": lambda: h11_parse((BROWSER_HEAD,))[0],
    "httptools": lambda: httptools_parse((BROWSER_HEAD,)),
}


@pytest.mark.parametrize("subject", SUBJECTS)
def test_wsgi_environ(benchmark, subject):
    environ = run_case(benchmark, ENVIRON[subject], PARSED[subject](), b"")
    assert environ["PATH_INFO"] == "/plaintext"
    assert environ["HTTP_USER_AGENT"].startswith("Mozilla/5.0")
    assert environ["HTTP_COOKIE"].startswith("theme=dark")


# --- a response head out -----------------------------------------------------------------------


def servers_response_head(conn: ServerConnection) -> bytes:
    return conn.send_response("200 OK", RESPONSE_HEADERS)


H11_HEADERS = [(name.encode(), value.encode()) for name, value in RESPONSE_HEADERS]


def h11_response_head(_conn) -> bytes:
    written: list[bytes] = []
    write_any_response(
        h11.Response(status_code=200, headers=H11_HEADERS, reason=b"OK"), written.append
    )
    return b"".join(written)


RESPONSE_HEAD = {"servers": servers_response_head, "h11": h11_response_head}


@pytest.mark.parametrize("subject", ["servers", "h11"])
def test_response_head(benchmark, subject):
    conn = ServerConnection()
    conn.receive_data(BROWSER_HEAD)
    conn.next_event()
    head = run_case(benchmark, RESPONSE_HEAD[subject], conn)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"Set-Cookie: session=" in head or b"set-cookie: session=" in head


# --- one full keep-alive cycle into the raw app and back ------------------------------------------


class H11Cycle:
    """The same cycle a WSGI server built on h11 runs: events in, the app, events out."""

    def __init__(self) -> None:
        #: the connection, kept alive across calls
        self.conn = h11.Connection(h11.SERVER)

    def __call__(self) -> bytes:
        conn = self.conn
        conn.receive_data(BROWSER_HEAD)
        request = conn.next_event()
        conn.next_event()  # EndOfMessage
        status, headers, body = call_wsgi(raw_app, h11_environ(request, b""))
        code, _, reason = status.partition(" ")
        response = h11.Response(status_code=int(code), headers=headers, reason=reason)
        out = conn.send(response) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        conn.start_next_cycle()
        return out


class HttptoolsCycle:
    """httptools parses; the response is written by hand, as uvicorn's httptools protocol does."""

    def __init__(self) -> None:
        #: what the parser's callbacks collected for the current request
        self.events = HttptoolsEvents()
        #: one parser for the connection, as a server keeps it
        self.parser = httptools.HttpRequestParser(self)

    def on_url(self, url: bytes) -> None:
        self.events = HttptoolsEvents()
        self.events.on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.events.on_header(name, value)

    def on_message_complete(self) -> None:
        self.events.complete = True

    def __call__(self) -> bytes:
        self.parser.feed_data(BROWSER_HEAD)
        status, headers, body = call_wsgi(raw_app, httptools_environ(self.events, b""))
        lines = [b"HTTP/1.1 %s\r\n" % status.encode("latin-1")]
        lines += [b"%s: %s\r\n" % (n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
        return b"".join([*lines, b"\r\n", body])


CYCLES = {
    "servers": lambda: ServerCycle(raw_app),
    "h11": H11Cycle,
    "httptools": HttptoolsCycle,
}


@pytest.mark.parametrize("subject", SUBJECTS)
def test_server_cycle(benchmark, subject):
    answer = run_case(benchmark, CYCLES[subject]())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nHello, World!")
