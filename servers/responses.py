# This module does no I/O: it turns a response's status, headers and body into bytes.
"""How servers.http writes a response: the status line, the app's headers checked and encoded,
and one body writer per framing (none, Content-Length, chunked, close-delimited)."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import NamedTuple

from servers.cache import BoundedCache
from servers.grammar import RESPONSE_NAME, RESPONSE_VALUE_FORBIDDEN, STATUS

#: a standard status → its code and encoded status line
_STATUS_LINES = {
    f"{s.value} {s.phrase}": (s.value, f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("ascii"))
    for s in HTTPStatus
}
STATUS_PHRASES = {s.value: s.phrase for s in HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BODYLESS_STATUSES = frozenset({204, 304})


class DateLine:
    """The ``Date`` header line, formatted at most once per second (it changes no faster)."""

    def __init__(self) -> None:
        #: (the second it was formatted for, the line): one tuple, so threads swap both at once
        self.cached = (-1, b"")

    def line(self) -> bytes:
        now = time.time()
        second, line = self.cached
        # Compared as floats: int() of the clock on every response costs more than the test.
        if not second <= now < second + 1:
            second = int(now)
            line = b"Date: " + formatdate(second, usegmt=True).encode("ascii") + b"\r\n"
            self.cached = (second, line)
        return line


#: the Date line now (a bound method: calling an object with __call__ costs more)
date_line = DateLine().line


def status_line(status: str) -> tuple[int, bytes]:
    """The status code and the encoded status line; a malformed status is a ValueError."""
    known = _STATUS_LINES.get(status)
    if known is not None:
        return known
    if not STATUS.fullmatch(status):
        raise ValueError(f"invalid status {status!r}")
    return int(status[:3]), b"HTTP/1.1 " + status.encode("latin-1") + b"\r\n"


#: Content-Length value → its header line: responses repeat the same few sizes
#: (sizes vary without end: at most this many lines)
LENGTH_LINES: BoundedCache = BoundedCache(256)


def length_line(length: int) -> bytes:
    """The ``Content-Length`` header line for ``length``."""
    return LENGTH_LINES.remember(length, b"Content-Length: %d\r\n" % length)


#: (name, value) → (lower-case name, encoded line, Content-Length or None). Apps send the same
#: few headers again and again, so each pair is checked and encoded once, not per response.
#: (cookies and lengths vary without end: at most this many pairs)
_FIELD_CACHE: BoundedCache = BoundedCache(1024)


def _encode_field(name: str, value: str) -> tuple[str, bytes, int | None]:
    """One response header checked and encoded; a bad one is a ValueError (the adapter's 500).

    Content-Length and Connection are decided by this layer, which writes them itself;
    Transfer-Encoding is hop-by-hop (PEP 3333 forbids it to apps) and refused.
    """
    if not RESPONSE_NAME.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    if RESPONSE_VALUE_FORBIDDEN.search(value):
        raise ValueError(f"CR, LF or NUL in the value of header {name!r}")
    lower = name.lower()
    if lower == "transfer-encoding":
        raise ValueError("Transfer-Encoding is hop-by-hop: the server frames the body")
    length = None
    if lower == "content-length":
        value = value.strip()
        if not (value.isascii() and value.isdigit()):
            raise ValueError(f"invalid Content-Length {value!r}")
        length = int(value)
    return lower, b"%s: %s\r\n" % (name.encode("ascii"), value.encode("latin-1")), length


class _ResponseFields(NamedTuple):
    """An app's response headers, checked, with the ones this layer writes itself taken out."""

    #: the encoded header lines to send as they are, joined
    lines: bytes
    #: the app's Content-Length, or None when it gave none
    content_length: int | None
    #: the app asked to close the connection after this response
    close: bool
    #: the app set its own Date
    has_date: bool


#: an app's whole header list, as a tuple → its fields. An endpoint answers with the same headers
#: response after response, so the list is looked up whole before it is checked pair by pair.
#: (a cookie or a length makes a new list: at most this many lists)
_FIELDS_CACHE: BoundedCache = BoundedCache(256)


def response_fields(headers: list[tuple[str, str]]) -> _ResponseFields:
    """The app's headers checked and encoded; a bad one is a ValueError (the adapter's 500)."""
    try:
        key = tuple(headers)
        known = _FIELDS_CACHE.get(key)
    except TypeError:  # a pair given as a list cannot be a key: it is checked pair by pair
        key = known = None
    if known is None:
        known = _check_fields(headers)
        if key is not None:
            _FIELDS_CACHE.remember(key, known)
    return known


def _check_fields(headers: list[tuple[str, str]]) -> _ResponseFields:
    lines, content_length, close, has_date = [], None, False, False
    for name, value in headers:
        known = _FIELD_CACHE.get((name, value))
        if known is None:
            known = _FIELD_CACHE.remember((name, value), _encode_field(name, value))
        lower, line, length = known
        if length is not None:
            if content_length is not None and content_length != length:
                raise ValueError("differing Content-Length headers")
            content_length = length
        elif lower == "connection":
            close = close or "close" in value.lower()
        else:
            has_date = has_date or lower == "date"
            lines.append(line)
    return _ResponseFields(b"".join(lines), content_length, close, has_date)


# Body writers, one per framing: each frames what the app writes and knows how the body ends.


class BodyWriter:
    """HEAD, 1xx, 204 and 304: whatever the app writes, nothing goes out."""

    #: the framing header line this writer needs, and whether the connection must end with it
    header = b""
    closes = False
    #: the body written so far is all the head promised
    complete = True

    def send(self, data: bytes) -> bytes:
        return b""

    def end(self) -> bytes:
        return b""


class _SizedBody(BodyWriter):
    """Content-Length framing (the head writes the length itself)."""

    def __init__(self, length: int) -> None:
        #: bytes the head promised that were not written yet
        self.left = length
        #: kept up to date rather than a property: it is read once per response
        self.complete = length == 0

    def send(self, data: bytes) -> bytes:
        # An app that writes past its Content-Length would corrupt the next response: cut it off.
        data = data[: self.left]
        self.left -= len(data)
        self.complete = self.left == 0
        return data


class _ChunkedBody(BodyWriter):
    header = b"Transfer-Encoding: chunked\r\n"

    def send(self, data: bytes) -> bytes:
        # An empty chunk would end the body, so an empty write writes nothing.
        return b"%x\r\n%s\r\n" % (len(data), data) if data else b""

    def end(self) -> bytes:
        return b"0\r\n\r\n"


class _CloseDelimitedBody(BodyWriter):
    """HTTP/1.0 without a length: the body ends where the connection does."""

    closes = True

    def send(self, data: bytes) -> bytes:
        return data


#: the writers that keep no state, shared by every response
_NO_BODY, _CHUNKED, _CLOSE_DELIMITED = BodyWriter(), _ChunkedBody(), _CloseDelimitedBody()


def body_writer(method: str, version: str, code: int, content_length: int | None) -> BodyWriter:
    """The writer that frames a response's body."""
    if method == "HEAD" or code < 200 or code in BODYLESS_STATUSES:
        return _NO_BODY
    if content_length is not None:
        return _SizedBody(content_length)
    return _CHUNKED if version == "1.1" else _CLOSE_DELIMITED


def closing_response(status: int, message: str) -> bytes:
    """A complete plain-text response after which the connection closes (errors, refusals)."""
    body = f"{message}\n".encode()
    phrase = STATUS_PHRASES.get(status, "Error")
    return b"".join(
        [
            f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii"),
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Length: %d\r\n" % len(body),
            b"Connection: close\r\n",
            date_line(),
            b"\r\n",
            body,
        ]
    )
