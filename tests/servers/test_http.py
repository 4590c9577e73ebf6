"""servers.http without sockets: tables of valid and invalid requests, each fed whole, byte by
byte and in random splits, plus response framing and a fuzz test, in the manner of h11's tests."""

from __future__ import annotations

import random
import re
from dataclasses import fields
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers.http import (
    _FIELD_LINES,
    _FIELD_SECTIONS,
    _HEADS,
    _REQUEST_LINES,
    CONNECTION_CLOSED,
    NEED_DATA,
    PAUSED,
    SMALLEST_HEAD,
    Data,
    EndOfMessage,
    Limits,
    ProtocolError,
    Request,
    ServerConnection,
)

SENTINELS = (NEED_DATA, PAUSED, CONNECTION_CLOSED)


def whole(raw: bytes) -> list[bytes]:
    return [raw]


def bytewise(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def split_at(raw: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c % (len(raw) + 1) for c in cuts})
    return [raw[a:b] for a, b in pairwise([0, *cuts, len(raw)]) if raw[a:b]]


def random_splits(raw: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return split_at(raw, [rng.randrange(len(raw) + 1) for _ in range(rng.randint(1, 8))])


SPLITS = {
    "whole": whole,
    "bytewise": bytewise,
    **{f"random{seed}": lambda raw, seed=seed: random_splits(raw, seed) for seed in range(4)},
}


def drive(chunks: list[bytes], conn: ServerConnection | None = None) -> list:
    """Feed chunks, pull every event, answer each request by moving on when keep-alive allows.

    Consecutive Data events are merged (how a body is split depends on how it arrived), and a
    ("keep_alive", bool) marker records the decision taken at each request's end.
    """
    conn = conn or ServerConnection()
    events: list = []
    for chunk in [*chunks, b""]:
        conn.receive_data(chunk)
        while (event := conn.next_event()) not in (NEED_DATA, CONNECTION_CLOSED):
            if event is PAUSED:
                events.append(("keep_alive", conn.keep_alive))
                if not conn.keep_alive:
                    return events
                conn.start_next_cycle()
            elif type(event) is Data and events and type(events[-1]) is Data:
                events[-1] = Data(events[-1].data + event.data)
            else:
                events.append(event)
    return events


def get(target: str = "/", headers: list | None = None, version: str = "1.1") -> Request:
    return Request("GET", target, version, headers if headers is not None else [("host", "x")])


# --- Valid requests ----------------------------------------------------------------------------

VALID = {
    "get": (
        b"GET /path?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        [get("/path?q=1"), EndOfMessage(), ("keep_alive", True)],
    ),
    "head": (
        b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
        [Request("HEAD", "/", "1.1", [("host", "x")]), EndOfMessage(), ("keep_alive", True)],
    ),
    "post-content-length": (
        b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
        [
            Request("POST", "/f", "1.1", [("host", "x"), ("content-length", "11")]),
            Data(b"hello world"),
            EndOfMessage(),
            ("keep_alive", True),
        ],
    ),
    "post-empty-content-length": (
        b"POST /f HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        [
            Request("POST", "/f", "1.1", [("content-length", "0")]),
            EndOfMessage(),
            ("keep_alive", True),
        ],
    ),
    "chunked-extensions-trailers": (
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6 ; ext\r\n world\r\nA\r\n0123456789\r\n"
        b"0\r\nX-Checksum: abc\r\nX-Other:  two words \r\n\r\n",
        [
            Request("POST", "/c", "1.1", [("host", "x"), ("transfer-encoding", "chunked")]),
            Data(b"hello world0123456789"),
            EndOfMessage((("x-checksum", "abc"), ("x-other", "two words"))),
            ("keep_alive", True),
        ],
    ),
    # RFC 9110 section 6.5.1: never merged into the header section, so dropped, not refused
    "chunked-forbidden-trailers-dropped": (
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
        b"Vary: *\r\nX-Kept: 1\r\nContent-Type: text/evil\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\nHost: evil\r\nAuthorization: x\r\n"
        b"Cache-Control: no-store\r\nX-Also-Kept: 2\r\n\r\n",
        [
            Request("POST", "/c", "1.1", [("transfer-encoding", "chunked")]),
            Data(b"abc"),
            EndOfMessage((("x-kept", "1"), ("x-also-kept", "2"))),
            ("keep_alive", True),
        ],
    ),
    "chunked-no-trailers-case-insensitive": (
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        [
            Request("POST", "/c", "1.1", [("transfer-encoding", "Chunked")]),
            Data(b"abc"),
            EndOfMessage(),
            ("keep_alive", True),
        ],
    ),
    "pipelined-pair": (
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        [
            get("/1"),
            EndOfMessage(),
            ("keep_alive", True),
            Request(
                "POST",
                "/2",
                "1.1",
                [("host", "x"), ("content-length", "3"), ("connection", "close")],
            ),
            Data(b"abc"),
            EndOfMessage(),
            ("keep_alive", False),
        ],
    ),
    "leading-empty-lines": (
        b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        [get(), EndOfMessage(), ("keep_alive", True)],
    ),
    "stray-crlf-after-a-body-before-the-next-request": (
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\nGET /2 HTTP/1.1\r\n\r\n",
        [
            Request("POST", "/", "1.1", [("content-length", "1")]),
            Data(b"x"),
            EndOfMessage(),
            ("keep_alive", True),
            get("/2", headers=[]),
            EndOfMessage(),
            ("keep_alive", True),
        ],
    ),
    "http10-no-keep-alive": (
        b"GET / HTTP/1.0\r\n\r\n",
        [get(headers=[], version="1.0"), EndOfMessage(), ("keep_alive", False)],
    ),
    "http10-keep-alive": (
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
        [
            get(headers=[("connection", "Keep-Alive")], version="1.0"),
            EndOfMessage(),
            ("keep_alive", True),
            get("/2", headers=[], version="1.0"),
            EndOfMessage(),
            ("keep_alive", False),
        ],
    ),
    "http11-connection-close-among-tokens": (
        b"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n",
        [get(headers=[("connection", "Upgrade, CLOSE")]), EndOfMessage(), ("keep_alive", False)],
    ),
    "expect-100-continue": (
        b"PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        [
            Request(
                "PUT",
                "/u",
                "1.1",
                [("host", "x"), ("expect", "100-continue"), ("content-length", "2")],
            ),
            Data(b"ok"),
            EndOfMessage(),
            ("keep_alive", True),
        ],
    ),
    "latin1-obs-text-value": (
        b"GET / HTTP/1.1\r\nX-Name: caf\xe9 \xff\tend\r\n\r\n",
        [get(headers=[("x-name", "caf\xe9 \xff\tend")]), EndOfMessage(), ("keep_alive", True)],
    ),
    "repeated-headers-kept-in-order": (
        b"GET / HTTP/1.1\r\nAccept: a\r\nX-A: 1\r\nACCEPT: b\r\nX-Empty:\r\n\r\n",
        [
            get(headers=[("accept", "a"), ("x-a", "1"), ("accept", "b"), ("x-empty", "")]),
            EndOfMessage(),
            ("keep_alive", True),
        ],
    ),
    "identical-content-lengths-collapse": (
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
        [
            Request("POST", "/", "1.1", [("content-length", "2"), ("content-length", "2")]),
            Data(b"hi"),
            EndOfMessage(),
            ("keep_alive", True),
        ],
    ),
    "missing-host-tolerated-and-odd-targets": (
        b"OPTIONS * HTTP/1.1\r\n\r\nGET http://x/a%20b?c=%ff HTTP/1.1\r\n\r\n",
        [
            Request("OPTIONS", "*", "1.1", []),
            EndOfMessage(),
            ("keep_alive", True),
            get("http://x/a%20b?c=%ff", headers=[]),
            EndOfMessage(),
            ("keep_alive", True),
        ],
    ),
    "every-target-form-its-method-may-use": (
        b"GET /a?b#frag HTTP/1.1\r\n\r\n"
        b"GET HTTPS://user:pw@[::1]:8080 HTTP/1.1\r\n\r\n"
        b"OPTIONS http://x.org?q HTTP/1.1\r\n\r\n"
        b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n"
        b"CONNECT x.org:443 HTTP/1.1\r\n\r\n",
        [
            *(get("/a?b#frag", headers=[]), EndOfMessage(), ("keep_alive", True)),
            *(get("HTTPS://user:pw@[::1]:8080", headers=[]), EndOfMessage(), ("keep_alive", True)),
            Request("OPTIONS", "http://x.org?q", "1.1", []),
            *(EndOfMessage(), ("keep_alive", True)),
            *(Request("CONNECT", "[::1]:443", "1.1", []), EndOfMessage(), ("keep_alive", True)),
            *(Request("CONNECT", "x.org:443", "1.1", []), EndOfMessage(), ("keep_alive", True)),
        ],
    ),
    "non-ascii-target-read-as-latin-1": (
        b"GET /caf\xc3\xa9?q=\xe9 HTTP/1.0\r\n\r\n",
        [
            get("/caf\xc3\xa9?q=\xe9", headers=[], version="1.0"),
            EndOfMessage(),
            ("keep_alive", False),
        ],
    ),
}


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", VALID)
def test_valid_request_gives_the_same_events_however_it_arrives(name: str, split: str) -> None:
    raw, expected = VALID[name]
    assert drive(SPLITS[split](raw)) == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(VALID)), st.lists(st.integers(0, 400), max_size=12))
def test_valid_request_in_any_split_gives_the_same_events(name: str, cuts: list[int]) -> None:
    raw, expected = VALID[name]
    assert drive(split_at(raw, cuts)) == expected


def test_request_line_and_field_exactly_at_the_limits_are_accepted() -> None:
    limits = Limits()
    target = "/" + "a" * (limits.max_request_line - len("GET  HTTP/1.1") - 1)
    value = "v" * (limits.max_header_field - len("X-Big: "))
    raw = f"GET {target} HTTP/1.1\r\nX-Big: {value}\r\n\r\n".encode()
    for chunks in (whole(raw), bytewise(raw)):
        request = drive(chunks)[0]
        assert request.target == target and request.headers == [("x-big", value)]


def test_header_count_exactly_at_the_limit_is_accepted() -> None:
    raw = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n"
    assert len(drive(bytewise(raw))[0].headers) == 100


def test_body_exactly_at_the_limit_is_accepted() -> None:
    limits = Limits(max_body=8)
    raw = (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"
    )
    assert drive(whole(raw), ServerConnection(limits))[1] == Data(b"abcdefgh")


# --- Rejects -----------------------------------------------------------------------------------

CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
BAD_TARGET = "invalid request target"
BAD_URI = "request target is not a valid http or https URI"
CONNECT_FORM = "CONNECT needs an authority-form target"

REJECTS = {
    "request-line-two-parts": (b"GET /\r\n\r\n", 400, "malformed request line"),
    "request-line-four-parts": (b"GET / HTTP/1.1 x\r\n\r\n", 400, "malformed request line"),
    "request-line-double-space": (b"GET  / HTTP/1.1\r\n\r\n", 400, "malformed request line"),
    "request-line-tab-separated": (b"GET\t/\tHTTP/1.1\r\n\r\n", 400, "malformed request line"),
    "request-line-garbage": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        400,
        "malformed request line",
    ),
    "method-not-a-token": (b"G(T / HTTP/1.1\r\n\r\n", 400, "method is not a token"),
    "method-with-non-ascii": (b"G\xc9T / HTTP/1.1\r\n\r\n", 400, "method is not a token"),
    "target-with-control-character": (
        b"GET /a\x01b HTTP/1.1\r\n\r\n",
        400,
        "invalid request target",
    ),
    "version-0.9": (b"GET / HTTP/0.9\r\n\r\n", 400, "unsupported HTTP version"),
    "version-1.2": (b"GET / HTTP/1.2\r\n\r\n", 400, "unsupported HTTP version"),
    "version-2.0": (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP version not supported"),
    "version-3.0": (b"GET / HTTP/3.0\r\n\r\n", 505, "HTTP version not supported"),
    "version-lower-case": (b"GET / http/1.1\r\n\r\n", 400, "malformed HTTP version"),
    "version-without-minor": (b"GET / HTTP/1\r\n\r\n", 400, "malformed HTTP version"),
    "version-two-digit-minor": (b"GET / HTTP/1.10\r\n\r\n", 400, "malformed HTTP version"),
    "header-without-colon": (
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        400,
        "header line without a colon",
    ),
    "whitespace-before-colon": (
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        400,
        "whitespace before the colon",
    ),
    "tab-before-colon": (
        b"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",
        400,
        "whitespace before the colon",
    ),
    "empty-header-name": (b"GET / HTTP/1.1\r\n: x\r\n\r\n", 400, "header name is not a token"),
    "header-name-not-a-token": (
        b"GET / HTTP/1.1\r\nX(a): x\r\n\r\n",
        400,
        "header name is not a token",
    ),
    "header-name-non-ascii": (
        b"GET / HTTP/1.1\r\nX-\xe9: x\r\n\r\n",
        400,
        "header name is not a token",
    ),
    "nul-in-value": (
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        400,
        "invalid character in header value",
    ),
    "control-character-in-value": (
        b"GET / HTTP/1.1\r\nX: a\x1bb\r\n\r\n",
        400,
        "invalid character in header value",
    ),
    "del-in-value": (
        b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
        400,
        "invalid character in header value",
    ),
    "bare-cr-in-value": (
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        400,
        "invalid character in header value",
    ),
    "bare-lf-in-value": (b"GET / HTTP/1.1\r\nX: a\nb\r\n\r\n", 400, "line ending is not CRLF"),
    "bare-lf-line-endings": (b"GET / HTTP/1.1\nHost: x\n\n", 400, "line ending is not CRLF"),
    "obs-fold-space": (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400, "obsolete line folding"),
    "obs-fold-tab": (b"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400, "obsolete line folding"),
    "content-length-not-digits": (
        b"POST / HTTP/1.1\r\nContent-Length: 1a\r\n\r\n",
        400,
        "Content-Length is not a number",
    ),
    "content-length-negative": (
        b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        400,
        "Content-Length is not a number",
    ),
    "content-length-plus-sign": (
        b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
        400,
        "Content-Length is not a number",
    ),
    "content-length-empty": (
        b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
        400,
        "Content-Length is not a number",
    ),
    "content-length-list": (
        b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nhi",
        400,
        "Content-Length is not a number",
    ),
    "content-length-unicode-digit": (
        b"POST / HTTP/1.1\r\nContent-Length: \xd9\xa3\r\n\r\n",
        400,
        "Content-Length is not a number",
    ),
    "content-lengths-differ": (
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        400,
        "differing Content-Length headers",
    ),
    "content-length-and-transfer-encoding": (
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "both Content-Length and Transfer-Encoding",
    ),
    "transfer-encoding-not-ending-in-chunked": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        400,
        "last transfer coding is not chunked",
    ),
    "transfer-encoding-chunked-twice": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "chunked applied more than once",
    ),
    "transfer-encoding-empty": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
        400,
        "last transfer coding is not chunked",
    ),
    "transfer-encoding-unknown": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: foo\r\n\r\n",
        501,
        "transfer coding not implemented",
    ),
    "transfer-encoding-unknown-then-chunked": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
        501,
        "transfer coding not implemented",
    ),
    "transfer-encoding-gzip-not-decoded": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
        "only the chunked transfer coding is implemented",
    ),
    "chunked-on-http10": (
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "Transfer-Encoding on HTTP/1.0",
    ),
    "bad-chunk-size": (CHUNKED_HEAD + b"xyz\r\nabc\r\n0\r\n\r\n", 400, "bad chunk size"),
    "empty-chunk-size": (CHUNKED_HEAD + b"\r\nabc\r\n0\r\n\r\n", 400, "bad chunk size"),
    "negative-chunk-size": (CHUNKED_HEAD + b"-3\r\nabc\r\n0\r\n\r\n", 400, "bad chunk size"),
    "chunk-size-with-bare-lf": (CHUNKED_HEAD + b"3\nabc\r\n0\r\n\r\n", 400, "bad chunk size"),
    "chunk-extension-with-control": (
        CHUNKED_HEAD + b"3;a\x01\r\nabc\r\n0\r\n\r\n",
        400,
        "bad chunk size",
    ),
    "missing-crlf-after-chunk": (
        CHUNKED_HEAD + b"3\r\nabcd\r\n0\r\n\r\n",
        400,
        "missing CRLF after chunk data",
    ),
    "bare-lf-after-chunk": (
        CHUNKED_HEAD + b"3\r\nabc\n0\r\n\r\n",
        400,
        "missing CRLF after chunk data",
    ),
    "chunk-size-line-over-64-bytes": (
        CHUNKED_HEAD + b"3;" + b"e" * 63 + b"\r\nabc\r\n",
        400,
        "chunk-size line too long",
    ),
    "chunk-size-zeros-over-64-bytes": (
        CHUNKED_HEAD + b"0" * 65 + b"3\r\nabc\r\n",
        400,
        "chunk-size line too long",
    ),
    "bad-trailer": (CHUNKED_HEAD + b"0\r\nX : y\r\n\r\n", 400, "whitespace before the colon"),
    "endless-empty-lines": (b"\r\n" * 40000, 400, "too many empty lines before the request"),
    "duplicate-host": (
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
        400,
        "duplicate host field",
    ),
    "request-line-too-long": (
        b"GET /" + b"a" * 8190 + b" HTTP/1.1\r\n\r\n",
        414,
        "request line too long",
    ),
    "header-field-too-large": (
        b"GET / HTTP/1.1\r\nX: " + b"v" * 8190 + b"\r\n\r\n",
        431,
        "header field too large",
    ),
    "too-many-header-fields": (
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
        431,
        "too many header fields",
    ),
    "head-too-large": (
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 800) for i in range(90)),
        431,
        "request header section too large",
    ),
    "content-length-too-large": (
        b"POST / HTTP/1.1\r\nContent-Length: 10485761\r\n\r\n",
        413,
        "request body too large",
    ),
    "content-length-huge": (
        b"POST / HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        413,
        "request body too large",
    ),
    "chunked-body-too-large": (
        CHUNKED_HEAD + b"A00000\r\n" + b"x" * 0xA00000 + b"\r\n1\r\nx\r\n0\r\n\r\n",
        413,
        "request body too large",
    ),
    "chunk-size-huge": (CHUNKED_HEAD + b"f" * 40 + b"\r\n", 413, "request body too large"),
    # request targets (RFC 9112 section 3.2)
    "asterisk-form-on-get": (
        b"GET * HTTP/1.1\r\n\r\n",
        400,
        "asterisk-form target is only for OPTIONS",
    ),
    "authority-form-on-get": (
        b"GET x.org:80 HTTP/1.1\r\n\r\n",
        400,
        "authority-form target is only for CONNECT",
    ),
    "origin-form-on-connect": (b"CONNECT / HTTP/1.1\r\n\r\n", 400, CONNECT_FORM),
    "absolute-form-on-connect": (
        b"CONNECT http://x.org/ HTTP/1.1\r\n\r\n",
        400,
        CONNECT_FORM,
    ),
    "authority-form-without-port": (b"CONNECT x.org HTTP/1.1\r\n\r\n", 400, BAD_TARGET),
    "relative-target": (b"GET a/b HTTP/1.1\r\n\r\n", 400, BAD_TARGET),
    "query-only-target": (b"GET ?a=b HTTP/1.1\r\n\r\n", 400, BAD_TARGET),
    "bracket-in-authority": (b"PUT s://]ufd/: HTTP/1.1\r\n\r\n", 400, BAD_URI),
    "unclosed-ipv6-literal": (b"GET http://[::1/ HTTP/1.1\r\n\r\n", 400, BAD_URI),
    "empty-host": (b"GET http:///a HTTP/1.1\r\n\r\n", 400, BAD_URI),
    "port-not-digits": (b"GET http://x.org:8o/ HTTP/1.1\r\n\r\n", 400, BAD_URI),
    "other-scheme": (b"GET ftp://x.org/ HTTP/1.1\r\n\r\n", 400, BAD_URI),
    # repeated fields that hold one value (RFC 9110 section 5.3)
    "duplicate-content-type": (
        b"POST / HTTP/1.1\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n",
        400,
        "duplicate content-type field",
    ),
    "duplicate-authorization": (
        b"GET / HTTP/1.1\r\nAuthorization: a\r\nauthorization: a\r\n\r\n",
        400,
        "duplicate authorization field",
    ),
    # chunked framing details (RFC 9112 section 7.1)
    "whitespace-after-chunk-size": (
        CHUNKED_HEAD + b"3 \r\nabc\r\n0\r\n\r\n",
        400,
        "bad chunk size",
    ),
    "tab-after-last-chunk-size": (CHUNKED_HEAD + b"0\t\r\n\r\n", 400, "bad chunk size"),
    # transfer codings peers accept and we refuse (RFC 9112 sections 6.1 and 6.3)
    "identity-next-to-content-length": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
        400,
        "both Content-Length and Transfer-Encoding",
    ),
    "identity-then-chunked": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
        501,
        "transfer coding not implemented",
    ),
    "gzip-then-chunked-on-two-lines": (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        501,
        "only the chunked transfer coding is implemented",
    ),
}


def rejected(chunks: list[bytes], conn: ServerConnection | None = None) -> tuple[int, str]:
    """The status and reason of the ProtocolError that ``chunks`` must end in."""
    conn = conn or ServerConnection()
    with pytest.raises(ProtocolError) as caught:
        drive(chunks, conn)
    with pytest.raises(ProtocolError):
        conn.next_event()  # the connection is dead: the error comes back, nothing else
    assert conn.keep_alive is False
    return caught.value.status, caught.value.message


#: splits of big inputs that would only repeat other splits, slowly
SLOW_SPLITS = {
    "chunked-body-too-large": set(SPLITS) - {"whole"},
    "endless-empty-lines": {"bytewise"},
}
REJECT_CASES = [
    (name, split) for name in REJECTS for split in SPLITS if split not in SLOW_SPLITS.get(name, ())
]


@pytest.mark.parametrize(("name", "split"), REJECT_CASES)
def test_every_reject_gives_its_status_and_reason_however_it_arrives(name: str, split: str) -> None:
    raw, status, reason = REJECTS[name]
    assert rejected(SPLITS[split](raw)) == (status, reason)


@pytest.mark.parametrize("name", sorted(VALID) + sorted(REJECTS))
def test_lines_seen_for_the_first_time_or_again_give_the_same_outcome(name: str) -> None:
    # A request or field line is parsed on first sight, then taken from a cache: both must agree.
    def outcome() -> object:
        if name in VALID:
            return drive(whole(VALID[name][0]))
        return rejected(whole(REJECTS[name][0]))

    _FIELD_LINES.clear()
    _FIELD_SECTIONS.clear()
    _REQUEST_LINES.clear()
    _HEADS.clear()
    first = outcome()
    assert outcome() == first == (VALID[name][1] if name in VALID else REJECTS[name][1:])


def test_a_cached_request_line_is_still_held_to_each_connection_s_limit() -> None:
    line = b"GET /a-target-of-some-length HTTP/1.1"
    assert drive(whole(line + b"\r\nHost: x\r\n\r\n"))  # now cached
    conn = ServerConnection(Limits(max_request_line=len(line) - 1))
    assert rejected(whole(line + b"\r\nHost: x\r\n\r\n"), conn) == (414, "request line too long")


def test_a_cached_field_section_is_still_held_to_each_connection_s_limits() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"v" * 40 + b"\r\n\r\n"
    assert drive(whole(head))  # now cached
    for limits, refusal in [
        (Limits(max_header_field=40), (431, "header field too large")),
        (Limits(max_header_count=1), (431, "too many header fields")),
    ]:
        assert rejected(whole(head), ServerConnection(limits)) == refusal
    headers = drive(whole(head))[0].headers
    headers.append(("x-added", "by a consumer"))  # each request gets its own list
    assert drive(whole(head))[0].headers == [("host", "x"), ("x-long", "v" * 40)]


def test_a_cached_head_is_still_held_to_each_connection_s_body_limit() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
    assert drive(whole(raw))  # the head is now cached whole
    assert rejected(whole(raw), ServerConnection(Limits(max_body=4))) == (
        413,
        "request body too large",
    )
    assert Data(b"abcde") in drive(whole(raw), ServerConnection(Limits(max_body=5)))


def test_every_limit_at_its_least_still_admits_the_smallest_request() -> None:
    least = Limits(**{limit.name: limit.metadata["least"] for limit in fields(Limits)})
    conn = ServerConnection(least)
    conn.receive_data(SMALLEST_HEAD)
    assert conn.next_event() == Request("GET", "/", "1.1", [("host", "x")])


@pytest.mark.parametrize("name", [limit.name for limit in fields(Limits)])
@pytest.mark.parametrize("offset", [-1, 0.5])
def test_a_limit_below_its_least_or_not_an_integer_is_refused(name: str, offset: float) -> None:
    least = next(limit for limit in fields(Limits) if limit.name == name).metadata["least"]
    with pytest.raises(ValueError, match=rf"^{name}=.* cannot work; use an integer >= {least}$"):
        Limits(**{name: least + offset})


@pytest.mark.parametrize(
    ("limits", "raw", "status"),
    [
        (Limits(max_request_line=20), b"GET /" + b"a" * 11 + b" HTTP/1.1\r\n\r\n", 414),
        (Limits(max_header_field=10), b"GET / HTTP/1.1\r\nX: 12345678\r\n\r\n", 431),
        (Limits(max_header_count=2), b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431),
        (Limits(max_head_bytes=40), b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431),
        (Limits(max_body=4), b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde", 413),
        (Limits(max_body=4), CHUNKED_HEAD + b"2\r\nab\r\n3\r\nabc\r\n0\r\n\r\n", 413),
        (Limits(max_chunk_line=4), CHUNKED_HEAD + b"3;abc\r\nabc\r\n0\r\n\r\n", 400),
        (Limits(max_header_count=1), CHUNKED_HEAD + b"0\r\nA: 1\r\nB: 2\r\n\r\n", 431),
    ],
)
def test_configured_limits_are_enforced(limits: Limits, raw: bytes, status: int) -> None:
    for chunks in (whole(raw), bytewise(raw)):
        assert rejected(chunks, ServerConnection(limits))[0] == status


def test_error_response_is_a_complete_plain_text_response_that_closes() -> None:
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/2.0\r\n\r\n")
    with pytest.raises(ProtocolError) as caught:
        conn.next_event()
    response = conn.error_response(caught.value)
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 505 HTTP Version Not Supported"
    assert b"Content-Type: text/plain; charset=utf-8" in lines
    assert f"Content-Length: {len(body)}".encode() in lines
    assert b"Connection: close" in lines
    assert any(line.startswith(b"Date: ") for line in lines)
    assert body == caught.value.message.encode() + b"\n"
    assert conn.keep_alive is False


def test_response_started_tracks_the_head_of_the_current_request_only() -> None:
    conn = ServerConnection()
    conn.receive_data(GET11 * 2)
    conn.next_event(), conn.next_event()
    assert conn.response_started is False
    conn.send_response("200 OK", [("Content-Length", "0")])
    assert conn.response_started is True
    conn.start_next_cycle()
    assert conn.response_started is False


def test_internal_error_response_is_a_closing_500_whatever_the_state() -> None:
    conn = ServerConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")  # mid-body
    conn.next_event(), conn.next_event()
    response = conn.internal_error_response()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"\r\nConnection: close" in head and b"Content-Length: 22" in head
    assert body == b"Internal Server Error\n"
    assert conn.keep_alive is False


def test_error_messages_do_not_echo_what_the_client_sent() -> None:
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nX-<script>: evil\r\n\r\n")
    with pytest.raises(ProtocolError) as caught:
        conn.next_event()
    assert caught.value.status == 400
    assert b"script" not in conn.error_response(caught.value)


@pytest.mark.parametrize(
    ("prefix", "most_fed", "status"),
    [
        (b"GET /", 8190 + 1, 414),  # a request line that never ends
        (b"GET / HTTP/1.1\r\nX-Long: ", 16 + 8190 + 1, 431),  # a header field that never ends
        (b"GET / HTTP/1.1\r\n", 65536 + 1, 431),  # short header lines forever: the head size
    ],
)
def test_endless_head_fed_bytewise_is_refused_as_soon_as_it_passes_a_limit(
    prefix: bytes, most_fed: int, status: int
) -> None:
    line = b"X-Header-Number-Padding: v\r\n" if prefix.endswith(b"\r\n") else b"a"
    filler = (line * (1024 * 1024 // len(line) + 1))[: 1024 * 1024]
    conn = ServerConnection(Limits(max_header_count=10**6))
    stream = prefix + filler
    fed = 0
    with pytest.raises(ProtocolError) as caught:
        for fed in range(1, len(stream) + 1):
            conn.receive_data(stream[fed - 1 : fed])
            assert conn.next_event() is NEED_DATA
    assert caught.value.status == status
    assert fed == most_fed  # refused on the first byte past the limit, never later


def test_endless_trailer_section_fed_bytewise_is_refused_at_the_field_count() -> None:
    conn = ServerConnection()
    conn.receive_data(CHUNKED_HEAD + b"0\r\n")
    assert type(conn.next_event()) is Request
    stream = b"X: 1\r\n" * 200_000
    fed = 0
    with pytest.raises(ProtocolError) as caught:
        for fed in range(1, len(stream) + 1):
            conn.receive_data(stream[fed - 1 : fed])
            assert conn.next_event() is NEED_DATA
    assert caught.value.status == 431
    assert fed == 6 * 101  # the CRLF ending the 101st trailer line is the first byte too many


# --- Connection state: pipelining, 100-continue, EOF -------------------------------------------


def test_pipelined_request_waits_for_start_next_cycle_and_its_bytes_are_kept() -> None:
    conn = ServerConnection()
    conn.receive_data(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
    assert conn.next_event() == get("/1", headers=[])
    assert conn.next_event() == EndOfMessage()
    assert conn.next_event() is PAUSED
    assert conn.next_event() is PAUSED
    assert conn.request == get("/1", headers=[])
    conn.start_next_cycle()
    assert conn.request is None
    assert conn.next_event() == get("/2", headers=[])
    assert conn.request == get("/2", headers=[])


def test_start_next_cycle_before_the_request_is_complete_is_refused() -> None:
    conn = ServerConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
    conn.next_event()
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()


def test_start_next_cycle_without_keep_alive_is_refused() -> None:
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    conn.next_event(), conn.next_event()
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", [CONNECTION_CLOSED]),
        (b"\r\n", [CONNECTION_CLOSED]),
        (b"GET / HTTP/1.1\r\nHost:", [CONNECTION_CLOSED]),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", [Request, Data, CONNECTION_CLOSED]),
        (CHUNKED_HEAD + b"5\r\nab", [Request, Data, CONNECTION_CLOSED]),
        (CHUNKED_HEAD + b"2\r\nab\r\n0\r\nX: 1\r\n", [Request, Data, CONNECTION_CLOSED]),
    ],
)
def test_peer_closing_mid_request_gives_connection_closed(raw: bytes, expected: list) -> None:
    conn = ServerConnection()
    conn.receive_data(raw)
    conn.receive_data(b"")
    events = []
    while not events or events[-1] is not CONNECTION_CLOSED:
        event = conn.next_event()
        events.append(event if event in SENTINELS else type(event))
    assert events == expected
    assert conn.next_event() is CONNECTION_CLOSED


def test_peer_closing_after_a_pipelined_request_still_lets_it_be_served() -> None:
    conn = ServerConnection()
    conn.receive_data(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
    conn.receive_data(b"")
    assert drive([], conn) == [
        get("/1", headers=[]),
        EndOfMessage(),
        ("keep_alive", True),
        get("/2", headers=[]),
        EndOfMessage(),
        ("keep_alive", True),
    ]


def test_data_after_the_peer_closed_is_a_programming_error() -> None:
    conn = ServerConnection()
    conn.receive_data(b"")
    with pytest.raises(RuntimeError):
        conn.receive_data(b"GET")


def test_unread_body_can_be_drained_to_reach_the_next_request() -> None:
    conn = ServerConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\n\r\n")
    assert type(conn.next_event()) is Request
    drained = []
    while type(event := conn.next_event()) is Data:
        drained.append(event.data)
    assert event == EndOfMessage() and b"".join(drained) == b"abc"
    conn.start_next_cycle()
    assert conn.next_event() == get("/next", headers=[])


CONTINUE_HEAD = b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n"


def continue_conn(raw: bytes = CONTINUE_HEAD) -> ServerConnection:
    conn = ServerConnection()
    conn.receive_data(raw)
    assert type(conn.next_event()) is Request
    return conn


def test_100_continue_is_sent_exactly_once_before_the_body() -> None:
    conn = continue_conn()
    assert conn.expects_continue is True
    assert conn.next_event() is NEED_DATA
    assert conn.send_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.expects_continue is False
    assert conn.send_continue() == b""
    conn.receive_data(b"ok")
    assert conn.next_event() == Data(b"ok")
    head = conn.send_response("200 OK", [("Content-Length", "0")])
    assert conn.keep_alive is True and b"Connection" not in head


def test_body_arriving_without_waiting_for_100_cancels_it() -> None:
    conn = continue_conn()
    conn.receive_data(b"o")
    assert conn.expects_continue is False
    assert conn.send_continue() == b""


def test_body_sent_along_with_the_head_means_no_100() -> None:
    conn = continue_conn(CONTINUE_HEAD + b"ok")
    assert conn.expects_continue is False


def test_response_while_the_client_waits_for_100_ends_the_connection() -> None:
    conn = continue_conn()
    head = conn.send_response("413 Payload Too Large", [("Content-Length", "0")])
    assert conn.keep_alive is False
    assert b"\r\nConnection: close\r\n" in head


@pytest.mark.parametrize(
    "raw",
    [
        b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        b"PUT / HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 2\r\n\r\n",
    ],
)
def test_no_100_is_owed_on_http10_without_a_body_or_for_other_expectations(raw: bytes) -> None:
    conn = continue_conn(raw)
    assert conn.expects_continue is False
    assert conn.send_continue() == b""


# --- Responses ---------------------------------------------------------------------------------


def answered(
    raw: bytes, status: str, headers: list, body: list[bytes]
) -> tuple[list[bytes], bytes, ServerConnection]:
    """Serve one request: (head lines without the status line, framed body bytes, conn)."""
    conn = ServerConnection()
    conn.receive_data(raw)
    while conn.next_event() is not PAUSED:
        pass
    head = conn.send_response(status, headers)
    assert head.endswith(b"\r\n\r\n")
    framed = b"".join(conn.send_data(piece) for piece in body) + conn.send_end()
    return head[:-4].split(b"\r\n"), framed, conn


GET11 = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"
HEAD11 = b"HEAD / HTTP/1.1\r\n\r\n"

#: request, status, app headers, body pieces → framing header, framed body, keep_alive
FRAMING = {
    "content-length": (
        GET11,
        "200 OK",
        [("Content-Length", "11")],
        [b"hello", b" world"],
        b"Content-Length: 11",
        b"hello world",
        True,
    ),
    "chunked-on-1.1": (
        GET11,
        "200 OK",
        [],
        [b"hello", b"", b" world"],
        b"Transfer-Encoding: chunked",
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        True,
    ),
    "close-delimited-on-1.0": (
        GET10,
        "200 OK",
        [],
        [b"hello", b" world"],
        b"Connection: close",
        b"hello world",
        False,
    ),
    "content-length-on-1.0-keep-alive": (
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "200 OK",
        [("Content-Length", "2")],
        [b"hi"],
        b"Connection: keep-alive",
        b"hi",
        True,
    ),
    "head-keeps-content-length-drops-body": (
        HEAD11,
        "200 OK",
        [("Content-Length", "11")],
        [b"hello world"],
        b"Content-Length: 11",
        b"",
        True,
    ),
    "head-without-length-is-not-chunked": (
        HEAD11,
        "200 OK",
        [],
        [b"hello"],
        None,
        b"",
        True,
    ),
    "204-drops-content-length-and-body": (
        GET11,
        "204 No Content",
        [("Content-Length", "5")],
        [b"hello"],
        None,
        b"",
        True,
    ),
    "304-no-body": (
        GET11,
        "304 Not Modified",
        [("ETag", '"x"')],
        [b"hello"],
        None,
        b"",
        True,
    ),
    "1xx-no-body": (GET11, "103 Early Hints", [], [b"hello"], None, b"", True),
    "content-length-overrun-is-cut": (
        GET11,
        "200 OK",
        [("Content-Length", "3")],
        [b"ab", b"cdef"],
        b"Content-Length: 3",
        b"abc",
        True,
    ),
    "content-length-shortfall-closes": (
        GET11,
        "200 OK",
        [("Content-Length", "10")],
        [b"abc"],
        b"Content-Length: 10",
        b"abc",
        False,
    ),
    "app-connection-close": (
        GET11,
        "200 OK",
        [("Connection", "close"), ("Content-Length", "0")],
        [],
        b"Connection: close",
        b"",
        False,
    ),
    "client-connection-close": (
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        "200 OK",
        [("Content-Length", "0")],
        [],
        b"Connection: close",
        b"",
        False,
    ),
}


@pytest.mark.parametrize("name", FRAMING)
def test_response_framing(name: str) -> None:
    raw, status, headers, body, framing_line, expected_body, keep_alive = FRAMING[name]
    lines, framed, conn = answered(raw, status, headers, body)
    assert lines[0] == b"HTTP/1.1 " + status.encode()
    assert framed == expected_body
    assert conn.keep_alive is keep_alive
    framing_names = (b"content-length", b"transfer-encoding", b"connection")
    framing_lines = [line for line in lines if line.split(b":")[0].lower() in framing_names]
    if framing_line is not None:
        assert framing_line in framing_lines
    if keep_alive and raw.startswith(b"GET / HTTP/1.1"):
        assert not any(line.lower().startswith(b"connection") for line in lines)
    assert len(framing_lines) == len({line.split(b":")[0].lower() for line in framing_lines})
    if status[0] == "1" or status[:3] == "204":
        assert not any(line.lower().startswith(b"content-length") for line in lines)


def test_response_head_keeps_app_headers_in_order_and_adds_one_date() -> None:
    lines, _, _ = answered(
        GET11, "200 OK", [("X-B", "2"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], []
    )
    assert lines[1:4] == [b"X-B: 2", b"Set-Cookie: a=1", b"Set-Cookie: b=2"]
    dates = [line for line in lines if line.startswith(b"Date: ")]
    assert len(dates) == 1
    sent = parsedate_to_datetime(dates[0][6:].decode())
    assert abs((datetime.now(timezone.utc) - sent).total_seconds()) < 60
    assert re.fullmatch(rb"Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", dates[0])


def test_app_date_header_is_not_duplicated() -> None:
    date = "Sun, 06 Nov 1994 08:49:37 GMT"
    lines, _, _ = answered(GET11, "200 OK", [("date", date)], [])
    assert [line for line in lines if line.lower().startswith(b"date")] == [
        f"date: {date}".encode()
    ]


def test_latin1_header_value_is_sent_as_latin1_and_unknown_status_is_kept() -> None:
    lines, _, _ = answered(GET11, "599 Custom Thing", [("X-Name", "caf\xe9")], [])
    assert lines[0] == b"HTTP/1.1 599 Custom Thing"
    assert b"X-Name: caf\xe9" in lines


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200 OK", [("Bad Name", "v")]),
        ("200 OK", [("Bad:Name", "v")]),
        ("200 OK", [("", "v")]),
        ("200 OK", [("X-\xe9", "v")]),
        ("200 OK", [("X", "a\r\nSet-Cookie: evil=1")]),
        ("200 OK", [("X", "a\nb")]),
        ("200 OK", [("X", "a\rb")]),
        ("200 OK", [("X", "a\x00b")]),
        ("200 OK", [("X", "snow \u2603")]),
        ("200 OK", [("Content-Length", "-1")]),
        ("200 OK", [("Content-Length", "ten")]),
        ("200 OK", [("Content-Length", "1"), ("Content-Length", "2")]),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200\r\nX: y", []),
        ("20 OK", []),
        ("OK", []),
    ],
)
def test_invalid_response_heads_raise_value_error(status: str, headers: list) -> None:
    conn = ServerConnection()
    conn.receive_data(GET11)
    conn.next_event(), conn.next_event()
    with pytest.raises(ValueError):
        conn.send_response(status, headers)


def test_a_refused_head_changes_nothing_so_a_500_can_follow() -> None:
    conn = ServerConnection()
    conn.receive_data(GET11)
    conn.next_event(), conn.next_event()
    with pytest.raises(ValueError):
        conn.send_response("200 OK", [("Content-Length", "5"), ("X", "a\r\nb")])
    assert conn.keep_alive is True
    head = conn.send_response("500 Internal Server Error", [("Content-Type", "text/plain")])
    assert b"\r\nX:" not in head and b"Content-Length: 5" not in head
    assert conn.send_data(b"oops") + conn.send_end() == b"4\r\noops\r\n0\r\n\r\n"


def test_keep_alive_cycle_serves_three_requests_on_one_connection() -> None:
    conn = ServerConnection()
    conn.receive_data(GET11 * 3)
    served = 0
    while (event := conn.next_event()) is not NEED_DATA:
        if event is PAUSED:
            conn.send_response("200 OK", [("Content-Length", "0")])
            assert conn.send_end() == b""
            conn.start_next_cycle()
            served += 1
    assert served == 3 and conn.keep_alive


# --- Fuzz --------------------------------------------------------------------------------------

ALLOWED_STATUSES = {400, 413, 414, 431, 501, 505}


def drive_bounded(chunks: list[bytes], limits: Limits | None = None) -> None:
    """Pull events until the input is used up; every step must make progress or stop."""
    conn = ServerConnection(limits)
    budget = 3 * sum(len(chunk) for chunk in chunks) + 10
    try:
        for chunk in [*chunks, b""]:
            conn.receive_data(chunk)
            while (event := conn.next_event()) not in (NEED_DATA, CONNECTION_CLOSED):
                budget -= 1
                assert budget > 0, "next_event() keeps returning events without consuming input"
                if event is PAUSED:
                    if not conn.keep_alive:
                        return
                    conn.start_next_cycle()
    except ProtocolError as err:
        assert err.status in ALLOWED_STATUSES
        assert conn.error_response(err).startswith(b"HTTP/1.1 %d " % err.status)


def mutated(raw: bytes, data: st.DataObject) -> bytes:
    for _ in range(data.draw(st.integers(0, 4))):
        at = data.draw(st.integers(0, len(raw)))
        edit = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = data.draw(st.binary(min_size=1, max_size=4) | st.sampled_from(INTERESTING))
        if edit == "insert":
            raw = raw[:at] + piece + raw[at:]
        elif edit == "delete":
            raw = raw[:at] + raw[at + len(piece) :]
        else:
            raw = raw[:at] + piece + raw[at + len(piece) :]
    return raw


INTERESTING = [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b",", b"0", b"\x00", b"\xff"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512), st.lists(st.integers(0, 512), max_size=8))
def test_fuzz_arbitrary_bytes_raise_only_protocol_error_and_terminate(
    raw: bytes, cuts: list[int]
) -> None:
    drive_bounded(split_at(raw, cuts))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_valid_requests_raise_only_protocol_error_and_terminate(
    data: st.DataObject,
) -> None:
    raw = mutated(VALID[data.draw(st.sampled_from(sorted(VALID)))][0], data)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    small = Limits(max_request_line=40, max_header_field=30, max_header_count=3, max_body=16)
    drive_bounded(split_at(raw, cuts), data.draw(st.sampled_from([None, small])))
