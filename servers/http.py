# This module does no I/O: bytes go in through receive_data(), events come out of next_event(),
# and the send_* methods turn a response into bytes for the caller to write. It never imports
# socket, never blocks and never sleeps, so all four concurrency models share it unchanged.
"""The sans-I/O HTTP/1.1 layer every server in ``servers/`` speaks.

One :class:`ServerConnection` per client connection. Feed it what the socket gave you and pull
events until it needs more::

    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    conn.next_event()   # Request(method='GET', target='/', version='1.1', headers=[('host', 'x')])
    conn.next_event()   # EndOfMessage(trailers=())
    conn.next_event()   # PAUSED: answer first, then start_next_cycle()
    out = conn.send_response("200 OK", [("Content-Length", "2")]) + conn.send_data(b"hi")
    out += conn.send_end()
    if conn.keep_alive:
        conn.start_next_cycle()

What it accepts and refuses, and why, is the table in docs/servers.md; in short (gunicorn is the
bar): HTTP/1.0 and 1.1 only; CRLF line ends only (a bare LF is a 400: parsers that disagree on line
ends are how requests get smuggled); request targets of a form their method may use (RFC 9112
section 3.2); bodies framed by Content-Length or chunked, never both; no second line of a field
that cannot hold a list (:data:`SINGLETON_FIELDS`); trailer fields that must come before the
content (:data:`FORBIDDEN_TRAILERS`) dropped. Every bad input raises :class:`ProtocolError` with the
status to answer, and :class:`Limits` are enforced while the bytes arrive. Keep-alive is on for
1.1 unless ``Connection: close``, and on for 1.0 only with ``keep-alive``. ``Expect: 100-continue``
on 1.1 with a body keeps :attr:`~ServerConnection.expects_continue` true until
:meth:`~ServerConnection.send_continue` or the first body byte; a response started before then
ends the connection (the body may still be coming).

Responses are framed by Content-Length when known, chunked on 1.1 otherwise, close-delimited on 1.0;
HEAD, 1xx, 204 and 304 responses carry no body. A ``Date`` header is added, the app's
``Connection`` header is folded into :attr:`~ServerConnection.keep_alive`, and an app's
Transfer-Encoding is refused (ValueError: framing is the server's job). A body longer than its
Content-Length is cut; a shorter one ends the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import NamedTuple

from servers.cache import BoundedCache
from servers.grammar import (
    BARE_LF,
    CHUNK_SIZE_LINE,
    FIELD_LINE,
    LEADING_EMPTY_LINES,
    REQUEST_LINE,
    TOKEN_RE,
    VALUE_BYTES,
    VERSION,
    target_problem,
)
from servers.responses import (
    BODYLESS_STATUSES,
    CONTINUE,
    LENGTH_LINES,
    BodyWriter,
    body_writer,
    closing_response,
    date_line,
    length_line,
    response_fields,
    status_line,
)


class ProtocolError(Exception):
    """The peer broke HTTP/1.1; answer with ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        #: the HTTP status to answer with (400, 413, 414, 431, 501 or 505)
        self.status = status
        #: a short plain-text reason that echoes nothing the client sent
        self.message = message


def _limit(default: int, least: int, meaning: str) -> int:
    """A field of :class:`Limits`: its default, the least value that can work, what it bounds."""
    return field(default=default, metadata={"least": least, "meaning": meaning})


#: the least every limit must let through: a request line and its Host field
SMALLEST_HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@dataclass(frozen=True)
class Limits:
    """How much a client may send before it is refused; the comments give each value's reason.

    Each limit is checked while the bytes arrive, so a client can never make a server buffer more
    than its worth. A value below a limit's ``least`` would refuse even ``GET / HTTP/1.1`` with its
    Host field, and is a ValueError.
    """

    #: nginx's 8 KiB header buffer less the CRLF: a long query string nginx would pass on is
    #: served (gunicorn's 4094 refuses some); the line has no use beyond that
    max_request_line: int = _limit(8190, len(b"GET / HTTP/1.1"), "longest request line; 414")
    #: gunicorn's default, and what one 8 KiB nginx buffer holds: large cookies and tokens fit
    max_header_field: int = _limit(8190, len(b"Host: x"), "longest header or trailer line; 431")
    #: gunicorn's default; browsers send about 20, and the count bounds the work one head costs
    max_header_count: int = _limit(100, 1, "most header or trailer lines; 431")
    #: one read of the socket (servers.base.RECV_SIZE); above nginx's 32 KiB (four 8 KiB
    #: buffers) and llhttp's 16 KiB, so whatever a proxy in front let through is served
    max_head_bytes: int = _limit(65536, len(SMALLEST_HEAD), "largest head or trailer section; 431")
    #: the whole body is held in memory before the app runs (wsgi.input), so this bounds memory
    #: per request; nginx's client_max_body_size is 1 MiB, uploads of a few MiB pass here
    max_body: int = _limit(10 * 1024 * 1024, 0, "largest request body; 413")
    #: 16 hex digits already reach 2**64, and extensions are ignored: a longer line buys nothing
    max_chunk_line: int = _limit(64, 1, "longest chunk-size line; 400")

    def __post_init__(self) -> None:
        for limit in fields(self):
            value, least = getattr(self, limit.name), limit.metadata["least"]
            if type(value) is not int or value < least:
                raise ValueError(f"{limit.name}={value!r} cannot work; use an integer >= {least}")


# --- Events: what next_event() returns --------------------------------------------------------


class Request(NamedTuple):
    """A request head. Header names are lower-cased, values stripped, in received order.

    A named tuple rather than a frozen dataclass like the other events: one is built per
    request, and a tuple is made in one step where a frozen dataclass sets each field in turn.
    """

    method: str
    target: str
    #: "1.0" or "1.1"
    version: str
    headers: list[tuple[str, str]]


@dataclass(frozen=True)
class Data:
    """A piece of the request body, de-chunked."""

    data: bytes


@dataclass(frozen=True)
class EndOfMessage:
    """The request body is complete; chunked bodies may carry trailers."""

    trailers: tuple[tuple[str, str], ...] = ()


class _Sentinel:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: more bytes are needed before the next event
NEED_DATA = _Sentinel("NEED_DATA")
#: the request is complete; answer it, then call start_next_cycle() (or close)
PAUSED = _Sentinel("PAUSED")
#: the peer closed; between requests that is normal, mid-request there is nobody left to answer
CONNECTION_CLOSED = _Sentinel("CONNECTION_CLOSED")
#: events are immutable, so the common end of a body without trailers can be one shared object
_END = EndOfMessage()


#: fields whose value is not a list (RFC 9110 section 5.3), so a second line is a 400 rather than
#: a guess at which one counts: routing, credentials, the content's type and the preconditions
#: and ranges that decide what is sent. Content-Length has its own rule (identical copies pass).
SINGLETON_FIELDS = frozenset(
    {"host", "content-type", "authorization", "proxy-authorization", "max-forwards"}
    | {"range", "if-range", "if-modified-since", "if-unmodified-since"}
)
#: fields dropped from a trailer section (RFC 9110 section 6.5.1): they frame the message, route
#: it, manage the connection, modify, authenticate or control the response to the request, or
#: describe the content, and all of that has to be known before the content is read
FORBIDDEN_TRAILERS = frozenset(
    {"content-length", "transfer-encoding", "trailer", "connection", "keep-alive", "upgrade", "te"}
    | {"proxy-connection", "vary"}
    | {"host", "expect", "max-forwards", "cache-control", "pragma", "range", "if-range"}
    | {"if-match", "if-none-match", "if-modified-since", "if-unmodified-since"}
    | {"authorization", "proxy-authorization", "cookie"}
    | {"content-type", "content-encoding", "content-range"}
)

#: the transfer codings RFC 9112 names; any other is a 501, and only chunked is decoded here
_KNOWN_CODINGS = frozenset({"chunked", "gzip", "deflate", "compress", "x-gzip", "x-compress"})
#: request headers whose meaning this layer acts on or whose repetition it refuses
_WATCHED_HEADERS = SINGLETON_FIELDS | {
    "content-length",
    "transfer-encoding",
    "connection",
    "expect",
}


# --- Reading the head --------------------------------------------------------------------------


class _HeadScanner:
    """Finds the blank line ending a head (or trailer section) in a buffer that keeps growing.

    It resumes where the last search stopped, so a head fed one byte at a time costs linear time,
    and it enforces the limits on the part that has arrived, so an endless head is refused as soon
    as it is too long instead of being buffered.
    """

    def __init__(self, limits: Limits, *, request_line: bool) -> None:
        #: the limits to enforce
        self.limits = limits
        #: the first line is a request line (414 when too long) rather than a field (431)
        self.request_line = request_line
        #: how many bytes of the buffer have been searched already
        self.scanned = 0
        #: where the line being received starts, and how many lines have ended so far
        self.line_start = 0
        self.lines = 0
        #: bytes of empty lines skipped before a request line; bounded like the head itself
        self.skipped = 0

    def skip_empty_lines(self, buf: bytearray) -> None:
        """Drop the empty lines some clients send before a request (e.g. after a POST body)."""
        empty = LEADING_EMPTY_LINES.match(buf)
        if empty:
            self.skipped += empty.end()
            if self.skipped > self.limits.max_head_bytes:
                raise ProtocolError(400, "too many empty lines before the request")
            del buf[: empty.end()]

    def find_end(self, buf: bytearray) -> int:
        """Index of the ending CRLFCRLF, or -1 when the head is not complete yet."""
        # A head that came whole was never searched: no max() call for it.
        end = buf.find(b"\r\n\r\n", self.scanned - 3 if self.scanned > 3 else 0)
        if end < 0:
            self._check_partial(buf, max(self.scanned - 1, 0))
            self.scanned = len(buf)
        return end

    def _check_partial(self, buf: bytearray, fresh: int) -> None:
        """Enforce the limits on an incomplete head; ``fresh`` is where unchecked bytes start."""
        # Only a CRLF whose CR was the last byte checked straddles ``fresh``; none is counted twice.
        if BARE_LF.search(buf, fresh):
            raise ProtocolError(400, "line ending is not CRLF")
        if len(buf) > self.limits.max_head_bytes:
            raise ProtocolError(431, "request header section too large")
        ended = buf.count(b"\r\n", fresh)
        if ended:
            if self.lines == 0:
                self._check_line_length(buf.find(b"\r\n", fresh))
            self.lines += ended
            self.line_start = buf.rfind(b"\r\n", fresh) + 2
            if self.lines - self.request_line > self.limits.max_header_count:
                raise ProtocolError(431, "too many header fields")
        # A trailing CR may be the start of the line's CRLF: it does not count towards its length.
        self._check_line_length(len(buf) - self.line_start - (buf[-1:] == b"\r"))

    def _check_line_length(self, length: int) -> None:
        if self.lines == 0 and self.request_line:
            if length > self.limits.max_request_line:
                raise ProtocolError(414, "request line too long")
        elif length > self.limits.max_header_field:
            raise ProtocolError(431, "header field too large")


#: the body length of a chunked request in :class:`_Head`
CHUNKED = -1


@dataclass(frozen=True, slots=True)
class _Head:
    """What a valid request head says, and the sizes each connection's limits are held to.

    Slots, not a named tuple: it is read field by field on every request, and reading a slot is
    a specialised instruction where a named tuple's field is a descriptor call.
    """

    method: str
    target: str
    version: str
    fields: tuple[tuple[str, str], ...]
    #: the Content-Length (0 when there is no body), or CHUNKED
    body_length: int
    keep_alive: bool
    expects_continue: bool
    #: the length of the request line and of the longest field line
    line_length: int
    longest_field: int

    def fits(self, limits: Limits) -> bool:
        """Every limit the head was checked against holds for ``limits`` too."""
        return (
            self.line_length <= limits.max_request_line
            and self.longest_field <= limits.max_header_field
            and len(self.fields) <= limits.max_header_count
            and self.body_length <= limits.max_body
        )


#: the longest head :data:`_HEADS` keeps: nginx's header buffer
KNOWN_HEAD_BYTES = 8192
#: a whole head → its :class:`_Head`, for heads already found valid: a client sends the same head
#: request after request, so it is parsed and framed once, and afterwards only held to the
#: connection's limits; bounded, as heads vary (at most this many of KNOWN_HEAD_BYTES each).
_HEADS: BoundedCache = BoundedCache(64)


def _parse_head(raw: bytes, limits: Limits) -> _Head:
    """What a complete head (its lines, each with its CRLF) says; a ProtocolError if it is bad."""
    request_line, _, section = raw.decode("latin-1").partition("\r\n")
    method, target, version = _parse_request_line(request_line, limits)
    fields = _parse_field_section(raw, section, limits)
    framing = _request_framing(version, fields, limits)
    longest_field = max(map(len, section.split("\r\n")))
    head = _Head(method, target, version, fields, *framing, len(request_line), longest_field)
    if len(raw) <= KNOWN_HEAD_BYTES:
        _HEADS.remember(raw, head)
    return head


#: request line → ``(method, target, version)``, for lines already found valid: clients ask for
#: the same few targets again and again, so each line is parsed once, not per request; bounded,
#: as targets vary (at most this many lines of max_request_line each).
_REQUEST_LINES: BoundedCache = BoundedCache(256)


def _parse_request_line(line: str, limits: Limits) -> tuple[str, str, str]:
    """``(method, target, version)`` of a request line, or the ProtocolError it deserves."""
    if len(line) > limits.max_request_line:
        raise ProtocolError(414, "request line too long")
    return _REQUEST_LINES.get(line) or _REQUEST_LINES.remember(line, _check_request_line(line))


def _check_request_line(line: str) -> tuple[str, str, str]:
    match = REQUEST_LINE.fullmatch(line)
    if match is None:
        _reject_request_line(line)
    method, target, minor = match.groups()
    if target[0] != "/" or method == "CONNECT":  # origin-form for any other method: nothing to do
        problem = target_problem(method, target)
        if problem is not None:
            raise ProtocolError(400, problem)
    return method, target, "1.1" if minor == "1" else "1.0"


def _reject_request_line(line: str) -> None:
    """Raise the most precise error for a request line the fast pattern refused."""
    if "\n" in line:  # the same reason _HeadScanner gives when the line arrives in pieces
        raise ProtocolError(400, "line ending is not CRLF")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[1]:
        raise ProtocolError(400, "malformed request line")
    method, target, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise ProtocolError(400, "method is not a token")
    version_match = VERSION.fullmatch(version)
    if version_match is None:
        raise ProtocolError(400, "malformed HTTP version")
    if int(version_match[1]) >= 2:
        raise ProtocolError(505, "HTTP version not supported")
    if version_match[1] != "1" or version_match[2] not in "01":
        raise ProtocolError(400, "unsupported HTTP version")
    raise ProtocolError(400, "invalid request target")


#: field line (without its CRLF) → ``(lower-case name, value)``, for lines already found valid.
#: Clients repeat the same lines request after request, so each is parsed once, not per request;
#: bounded, as cookies and tokens vary (at most this many lines of max_header_field each).
_FIELD_LINES: BoundedCache = BoundedCache(1024)


#: a head's field section → its fields, for sections already found valid: a client sends the same
#: head request after request, so it is looked up whole before its lines are. Only a section no
#: longer than one field may be is looked up, so no line of it can be too long for any connection.
_FIELD_SECTIONS: BoundedCache = BoundedCache(64)


def _parse_field_section(raw: bytes, section: str, limits: Limits) -> tuple[tuple[str, str], ...]:
    """The fields of a head ``raw`` whose field section (decoded, CRLFs included) is ``section``."""
    fields = _FIELD_SECTIONS.get(section)
    if fields is None or len(section) > limits.max_header_field:
        fields = tuple(_parse_fields(raw, section.split("\r\n")[:-1], limits))
        if len(section) <= limits.max_header_field:
            _FIELD_SECTIONS.remember(section, fields)
        return fields
    if len(fields) > limits.max_header_count:
        raise ProtocolError(431, "too many header fields")
    return fields


def _parse_fields(raw: bytes, lines: list[str], limits: Limits) -> list[tuple[str, str]]:
    """``(lower-case name, value)`` of field ``lines``, decoded from ``raw`` (CRLFs included)."""
    if len(lines) > limits.max_header_count:
        raise ProtocolError(431, "too many header fields")
    # First over all the bytes at once: with every byte a value may hold deleted, only CRLFs may
    # be left (no control character, no lone CR or LF), and only a head longer than one field may
    # hold a field too long. When that fails, each line is judged on its own, in order, so the
    # first bad one is named.
    if raw.translate(None, VALUE_BYTES) != b"\r\n" * raw.count(b"\n") or (
        len(raw) > limits.max_header_field
    ):
        return [_parse_field(line, limits) for line in lines]
    return [_FIELD_LINES.get(line) or _parse_field(line, limits) for line in lines]


def _parse_field(line: str, limits: Limits) -> tuple[str, str]:
    """``(lower-case name, value)`` of one field line, or the ProtocolError it deserves."""
    if len(line) > limits.max_header_field:
        raise ProtocolError(431, "header field too large")
    match = FIELD_LINE.fullmatch(line)
    if match is None:
        _reject_field_line(line)
    name, value = match.groups()
    return _FIELD_LINES.remember(line, (name.lower(), value))


def _reject_field_line(line: str) -> None:
    """Raise the most precise error for a field line the pattern refused."""
    if "\n" in line:
        raise ProtocolError(400, "line ending is not CRLF")
    if line[:1] in (" ", "\t"):
        raise ProtocolError(400, "obsolete line folding")
    name, colon, _ = line.partition(":")
    if not colon:
        raise ProtocolError(400, "header line without a colon")
    if name[-1:] in (" ", "\t"):
        raise ProtocolError(400, "whitespace before the colon")
    if not TOKEN_RE.fullmatch(name):
        raise ProtocolError(400, "header name is not a token")
    raise ProtocolError(400, "invalid character in header value")


def _request_framing(
    version: str, fields: tuple[tuple[str, str], ...], limits: Limits
) -> tuple[int, bool, bool]:
    """What the head says: its body's length (or CHUNKED), keep-alive, and whether a 100 is awaited.

    Rejects what RFC 9112 forbids.
    """
    watched = [pair for pair in fields if pair[0] in _WATCHED_HEADERS]
    seen: dict[str, list[str]] = {}
    for name, value in watched:
        seen.setdefault(name, []).append(value)
    if len(seen) < len(watched):  # some name came more than once
        for name, values in seen.items():
            if len(values) > 1 and name in SINGLETON_FIELDS:
                raise ProtocolError(400, f"duplicate {name} field")
    body_length = _body_length(version, seen, limits)
    connection = seen.get("connection")
    if connection is None:
        keep_alive = version == "1.1"
    else:
        tokens = {t.strip().lower() for v in connection for t in v.split(",")}
        keep_alive = "close" not in tokens and (version == "1.1" or "keep-alive" in tokens)
    expects_continue = False
    # Only a 1.1 client waits for a 100, and only a body is worth waiting for.
    if "expect" in seen and version == "1.1" and body_length != 0:
        expects_continue = any(v.lower() == "100-continue" for v in seen["expect"])
    return body_length, keep_alive, expects_continue


def _body_length(version: str, seen: dict[str, list[str]], limits: Limits) -> int:
    lengths = seen.get("content-length")
    codings = seen.get("transfer-encoding")
    if lengths and codings:
        raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
    if codings:
        if version == "1.0":
            raise ProtocolError(400, "Transfer-Encoding on HTTP/1.0")
        _check_codings(codings)
        return CHUNKED
    return _content_length(lengths, limits) if lengths else 0


def _check_codings(values: list[str]) -> None:
    codings = [c.strip().lower() for v in values for c in v.split(",")]
    if any(c not in _KNOWN_CODINGS for c in codings if c):
        raise ProtocolError(501, "transfer coding not implemented")
    if codings[-1] != "chunked":
        raise ProtocolError(400, "last transfer coding is not chunked")
    if codings.count("chunked") > 1:
        raise ProtocolError(400, "chunked applied more than once")
    if codings != ["chunked"]:
        raise ProtocolError(501, "only the chunked transfer coding is implemented")


def _content_length(values: list[str], limits: Limits) -> int:
    if any(v != values[0] for v in values):
        raise ProtocolError(400, "differing Content-Length headers")
    value = values[0]
    if not (value.isascii() and value.isdigit()):
        raise ProtocolError(400, "Content-Length is not a number")
    # Compare lengths of digit strings first: int() of a huge string is slow (and capped).
    if len(value.lstrip("0")) > len(str(limits.max_body)) or int(value) > limits.max_body:
        raise ProtocolError(413, "request body too large")
    return int(value)


# --- Reading the body: one reader per framing ------------------------------------------------


class _ContentLengthReader:
    """Hands out exactly ``length`` body bytes."""

    def __init__(self, length: int) -> None:
        #: body bytes not yet handed out
        self.remaining = length

    def read(self, buf: bytearray) -> Data | EndOfMessage | None:
        if self.remaining == 0:
            return _END
        if not buf:
            return None
        data = _take(buf, self.remaining)
        self.remaining -= len(data)
        return Data(data)


#: a body of length 0 keeps no state, so one reader serves every request without a body
_NO_BODY_READER = _ContentLengthReader(0)


class _ChunkedReader:
    """De-chunks a body: size line, data, CRLF, ..., a zero-size chunk, then trailers."""

    def __init__(self, limits: Limits) -> None:
        #: the limits to enforce (chunk-size line, total body, trailer section)
        self.limits = limits
        #: bytes left in the current chunk; -1 while a size line is expected
        self.chunk_left = -1
        #: body bytes handed out so far, checked against max_body
        self.total = 0
        #: a CRLF must follow the chunk whose data was just handed out
        self.needs_crlf = False
        #: set once the zero-size chunk arrived: the trailer section is being read
        self.trailers: _HeadScanner | None = None

    def read(self, buf: bytearray) -> Data | EndOfMessage | None:
        if self.trailers is not None:
            return self._read_trailers(buf)
        if self.needs_crlf and not self._read_crlf(buf):
            return None
        if self.chunk_left < 0 and not self._read_size_line(buf):
            return None
        if self.trailers is not None:
            return self._read_trailers(buf)
        if not buf:
            return None
        data = _take(buf, self.chunk_left)
        self.chunk_left -= len(data)
        if self.chunk_left == 0:
            self.chunk_left, self.needs_crlf = -1, True
        return Data(data)

    def _read_crlf(self, buf: bytearray) -> bool:
        if buf[:2] != b"\r\n"[: len(buf)]:
            raise ProtocolError(400, "missing CRLF after chunk data")
        if len(buf) < 2:
            return False
        del buf[:2]
        self.needs_crlf = False
        return True

    def _read_size_line(self, buf: bytearray) -> bool:
        limit = self.limits.max_chunk_line
        end = buf.find(b"\r\n", 0, limit + 2)
        if end < 0:
            if len(buf) > limit + 1:
                raise ProtocolError(400, "chunk-size line too long")
            if b"\n" in buf:
                raise ProtocolError(400, "bad chunk size")
            return False
        match = CHUNK_SIZE_LINE.fullmatch(buf, 0, end)
        if match is None:
            raise ProtocolError(400, "bad chunk size")
        size = int(match[1], 16)
        if self.total + size > self.limits.max_body:
            raise ProtocolError(413, "request body too large")
        del buf[: end + 2]
        self.total += size
        if size == 0:
            self.trailers = _HeadScanner(self.limits, request_line=False)
        self.chunk_left = size
        return True

    def _read_trailers(self, buf: bytearray) -> EndOfMessage | None:
        if buf[:2] == b"\r\n":
            del buf[:2]
            return _END
        end = self.trailers.find_end(buf)
        if end < 0:
            return None
        if end + 4 > self.limits.max_head_bytes:
            raise ProtocolError(431, "trailer section too large")
        section = buf[: end + 2]
        del buf[: end + 4]
        lines = section.decode("latin-1").split("\r\n")[:-1]
        trailers = _parse_fields(section, lines, self.limits)
        # RFC 9110 section 6.5.1: such a field must not be merged into the header section; the
        # message itself stays valid, so the field is dropped rather than the request refused.
        return EndOfMessage(tuple(pair for pair in trailers if pair[0] not in FORBIDDEN_TRAILERS))


_BodyReader = _ContentLengthReader | _ChunkedReader


def _body_reader(body_length: int, limits: Limits) -> _BodyReader:
    """The reader of a body of ``body_length`` bytes, or of a chunked one."""
    if body_length == 0:
        return _NO_BODY_READER
    if body_length == CHUNKED:
        return _ChunkedReader(limits)
    return _ContentLengthReader(body_length)


def _take(buf: bytearray, most: int) -> bytes:
    """Remove and return up to ``most`` bytes from the front of ``buf``."""
    data = bytes(buf[:most])
    del buf[:most]
    return data


# --- The connection ----------------------------------------------------------------------------


class ServerConnection:
    """The server side of one HTTP/1.1 connection: a parser and a serializer, with no I/O."""

    def __init__(self, limits: Limits | None = None) -> None:
        #: the limits every request on this connection is held to
        self.limits = limits or Limits()
        #: the head of the request being served, or None between requests
        self.request: Request | None = None
        #: may the connection carry another request after the current response
        self.keep_alive = True
        #: the client asked for 100 Continue, it has not been sent and no body byte has arrived
        self.expects_continue = False
        #: received bytes not yet turned into events (may hold pipelined requests)
        self._buf = bytearray()
        #: the peer closed its side
        self._eof = False
        #: the error that killed the connection, raised again on every later next_event()
        self._error: ProtocolError | None = None
        #: finds the end of the next request head
        self._head = _HeadScanner(self.limits, request_line=True)
        #: reads the current body; None while reading a head
        self._body: _BodyReader | None = None
        #: the request's EndOfMessage was returned; only start_next_cycle() moves on
        self._request_done = False
        #: frames the current response's body; None until send_response
        self._writer: BodyWriter | None = None

    # --- bytes in, events out

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("data received after the peer closed")
        self._buf += data
        if self._body is not None:
            self.expects_continue = False

    def next_event(self) -> Request | Data | EndOfMessage | _Sentinel:
        """The next event, or a sentinel; raises ProtocolError on bad input."""
        if self._error is not None:
            raise self._error
        if self._request_done:
            return PAUSED
        try:
            event = self._read_head() if self._body is None else self._body.read(self._buf)
        except ProtocolError as err:
            self._error = err
            self.keep_alive = False
            raise
        if event is None:
            return CONNECTION_CLOSED if self._eof else NEED_DATA
        if type(event) is EndOfMessage:
            self._request_done = True
        return event

    def _read_head(self) -> Request | None:
        buf = self._buf
        if self._head.scanned == 0:
            if buf[:2] == b"\r\n":
                self._head.skip_empty_lines(buf)
            if len(buf) < 2:
                return None
        end = self._head.find_end(buf)
        if end < 0:
            return None
        if end + 4 > self.limits.max_head_bytes:
            raise ProtocolError(431, "request header section too large")
        raw = bytes(buf[: end + 2])
        del buf[: end + 4]
        head = _HEADS.get(raw)
        if head is None or not head.fits(self.limits):
            head = _parse_head(raw, self.limits)
        # Each request gets a list of its own: a consumer may change it. tuple.__new__ builds the
        # named tuple in C, where calling Request() would run its generated __new__ in Python.
        parts = (head.method, head.target, head.version, list(head.fields))
        request = tuple.__new__(Request, parts)
        self._body = _body_reader(head.body_length, self.limits)
        self.keep_alive = head.keep_alive
        self.request = request
        self.expects_continue = head.expects_continue and not buf
        return request

    # --- events in, bytes out

    def send_continue(self) -> bytes:
        """The ``100 Continue`` line the first time it is owed, ``b""`` otherwise."""
        if not self.expects_continue:
            return b""
        self.expects_continue = False
        return CONTINUE

    def send_response(
        self, status: str, headers: list[tuple[str, str]], body_length: int | None = None
    ) -> bytes:
        """The response head for ``status`` (e.g. ``"200 OK"``) with framing headers added.

        ``body_length`` is the size of the whole body when the caller knows it: the body is then
        framed by Content-Length if the app gave none and the status may carry a body.
        """
        code, first_line = status_line(status)
        app_lines, content_length, close, has_date = response_fields(headers)
        if content_length is None and code >= 200 and code not in BODYLESS_STATUSES:
            content_length = body_length
        if close or self.expects_continue:
            self.keep_alive = False
        request = self.request
        method = request.method if request else ""
        version = request.version if request else "1.1"
        writer = self._writer = body_writer(method, version, code, content_length)
        if writer.closes:
            self.keep_alive = False
        # HEAD and 304 may state the size of the body they leave out; 1xx and 204 must not.
        length = b""
        if content_length is not None and code >= 200 and code != 204:
            length = LENGTH_LINES.get(content_length) or length_line(content_length)
        date = b"" if has_date else date_line()
        if not self.keep_alive:
            connection = b"Connection: close\r\n"
        elif version == "1.0":
            connection = b"Connection: keep-alive\r\n"
        else:
            connection = b""
        return b"".join((first_line, app_lines, length, writer.header, date, connection, b"\r\n"))

    def send_data(self, data: bytes) -> bytes:
        """``data`` framed for the wire; ``b""`` for responses that carry no body."""
        return self._writer.send(data)

    def send_end(self) -> bytes:
        """The end of the response body: the last chunk when chunked, else ``b""``."""
        if not self._writer.complete:
            # The body fell short of its Content-Length: only closing tells the client.
            self.keep_alive = False
        return self._writer.end()

    def start_next_cycle(self) -> None:
        """Start on the next (possibly already received) request after a complete response."""
        if not (self.keep_alive and self._request_done):
            raise RuntimeError("start_next_cycle() needs keep_alive and a complete request")
        self.request = None
        self.expects_continue = False
        if self._head.scanned or self._head.skipped:  # a head that came whole left it untouched
            self._head = _HeadScanner(self.limits, request_line=True)
        self._body = None
        self._request_done = False
        self._writer = None

    @property
    def has_unread_input(self) -> bool:
        """Bytes received and not yet turned into events, or the peer's close, wait here."""
        return bool(self._buf) or self._eof

    @property
    def response_started(self) -> bool:
        """A response head was made for the current request: no other answer can replace it."""
        return self._writer is not None

    def error_response(self, err: ProtocolError) -> bytes:
        """A complete response for ``err``; the connection must be closed after sending it."""
        return self._closing_response(err.status, err.message)

    def internal_error_response(self) -> bytes:
        """A complete 500 for a failure of the server's own code; close the connection after it.

        It depends on no state of this connection, which the failure may have left inconsistent.
        """
        return self._closing_response(500, "Internal Server Error")

    def _closing_response(self, status: int, message: str) -> bytes:
        self.keep_alive = False
        return closing_response(status, message)
