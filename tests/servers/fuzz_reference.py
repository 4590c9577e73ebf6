"""llhttp's reading of a request stream, and what our server may answer differently, and why.

No I/O here: :func:`compare_with_reference` takes the bytes sent and the answers that came back
(status, and what the app saw for the ones the app gave) and lists every disagreement with
llhttp (``httptools``) that is not one of the deliberate, RFC-backed differences in
:data:`ALLOWED_REJECTS` and :data:`ALLOWED_ACCEPTS`. A different split of the stream into
requests is never allowed: two parsers that disagree on it are how requests get smuggled.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

import httptools

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


def _coding_with_trailing_ows(rest: bytes) -> bool:
    # RFC 9110 section 5.5: whitespace around a field value is not part of it, so a
    # "Transfer-Encoding: chunked<HTAB>" line says chunked; llhttp refuses the trailing HTAB.
    head = rest.partition(b"\r\n\r\n")[0]
    values = re.findall(rb"\ntransfer-encoding:[ \t]*([^\r\n]*)", head, re.IGNORECASE)
    stripped = [value.rstrip(b" \t") for value in values]
    return stripped != values and [value.lower() for value in stripped] == [b"chunked"]


#: the methods llhttp parses whatever else it refuses
COMMON_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH",
                            b"CONNECT", b"TRACE"})  # fmt: skip


def _unknown_method(rest: bytes) -> bool:
    return rest.lstrip(b"\r\n").split(b" ", 1)[0] not in COMMON_METHODS


def _target_above_ascii(rest: bytes) -> bool:
    # RFC 9112 section 3: an invalid request-line SHOULD (not MUST) get a 400. Bytes above 0x7f
    # cannot move where the line ends, so we serve them, in PATH_INFO as latin-1 (PEP 3333), as
    # gunicorn does; llhttp's strict mode refuses them.
    line = rest.lstrip(b"\r\n").partition(b"\r\n")[0]
    return any(byte > 0x7F for byte in line)


def _framing_field_in_trailers(rest: bytes) -> bool:
    # RFC 9110 section 6.5.1: a field that frames the message is not merged from a trailer
    # section, and we drop it; llhttp reads trailer fields as header fields, so a Content-Length
    # or Transfer-Encoding there clashes with the chunked head.
    body = rest.partition(b"\r\n\r\n")[2]
    last_chunk = re.search(rb"(?:^|\r\n)0+(?:[ \t;][^\r\n]*)?\r\n", body)
    if last_chunk is None:
        return False
    trailers = body[last_chunk.end() :].partition(b"\r\n\r\n")[0]
    framing = rb"(?:^|\n)(?:content-length|transfer-encoding)[ \t]*:"
    return re.search(framing, trailers, re.IGNORECASE) is not None


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
    "invalid `Transfer-Encoding`": (
        _coding_with_trailing_ows,
        "Transfer-Encoding with trailing OWS",
    ),
    "Invalid char in url": (_target_above_ascii, "bytes above 0x7f in the target"),
    # any other complaint about either framing field, when one of them is in a trailer section
    "Content-Length": (_framing_field_in_trailers, "framing field in a trailer section, dropped"),
    "Transfer-Encoding": (
        _framing_field_in_trailers,
        "framing field in a trailer section, dropped",
    ),
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


def compare_with_reference(raw: bytes, answers: list[tuple[int, dict | None]]) -> list[str]:
    """What is wrong with ``answers`` to ``raw``: (status, what the app saw or None) in order."""
    reference = reference_parse(raw)
    for index, message in enumerate(reference.messages):
        if index >= len(answers):
            return [f"request {index + 1} ({message.method} {message.target!r}) got no answer"]
        status, echo = answers[index]
        if echo is None:
            if allowed_reject(message, raw):
                return []  # a deliberate reject; the connection ends there
            return [f"we answered {status} where llhttp accepted request {index + 1}"
                    f" ({message.method} {message.target!r} {message.headers!r})"]  # fmt: skip
        found = differences(message, echo)
        if found:
            return [f"request {index + 1}: " + "; ".join(found)]
        if not _keeps_alive(message):
            if len(answers) > index + 1:
                return [f"we answered after request {index + 1}, which ends the connection"]
            return []
    rest = [echo for _, echo in answers[len(reference.messages) :]]
    if reference.end == "upgrade":
        return []  # after Upgrade llhttp no longer parses HTTP; we do not switch protocols
    if not rest or rest[0] is None:
        return []  # we also refused (or ran out of) what llhttp refused or found incomplete
    if reference.end == "error":
        if allowed_accept(reference, raw):
            return []
        return [f"we accepted request {len(reference.messages) + 1} ({rest[0]!r}) where"
                f" llhttp failed with {reference.error!r}"]  # fmt: skip
    return [f"we answered a request llhttp did not find (end: {reference.end}): {rest[0]!r}"]
