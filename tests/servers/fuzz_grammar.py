"""Hypothesis strategies for request streams: a grammar of HTTP/1.1 requests, and byte mutations.

Each part is mostly valid with a small share of the mistakes parsers disagree on (bare LF,
whitespace in odd places, odd framing, duplicate fields, non-ASCII bytes), so most examples go
deep into the parser and the rest probe its edges. :func:`streams` is what the fuzz tests draw.
"""

from __future__ import annotations

from functools import lru_cache

from hypothesis import strategies as st

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"
#: bytes that sit on the boundaries of the grammar: separators, CTLs, obs-text
ODD_BYTES = [b" ", b"\t", b"\r", b"\n", b"\r\n", b":", b";", b",", b"\x00", b"\x7f", b"\x80",
             b"\xff", b"#", b"?", b"/", b"%", b"[", b"]", b'"', b"0", b"a", b"\x0b"]  # fmt: skip

_odd_byte = st.sampled_from(ODD_BYTES)

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"]
FIELD_NAMES = ("Host", "Content-Type", "Accept", "X-A", "User-Agent", "Cookie", "X_Under",
               "Connection", "Expect", "Upgrade", "Trailer", "TE", "Authorization")  # fmt: skip
FIELD_VALUES = {
    "Connection": ["close", "keep-alive", "upgrade", "Close", "close, x", "keep-alive, upgrade"],
    "Expect": ["100-continue", "100-Continue", "nope"],
    "Upgrade": ["websocket", "h2c"],
    "Host": ["t", "example.com:80", "[::1]:8080", ""],
}
TRANSFER_ENCODINGS = [b"Chunked", b" chunked", b"gzip, chunked", b"chunked, gzip", b"identity",
                      b"chunked, chunked", b"", b"xchunked"]  # fmt: skip
TRAILER_NAMES = ("X-T", "Content-Length", "Host", "Transfer-Encoding", "Content-Type", "Expires")


def _text(alphabet: str, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=min_size, max_size=max_size)


# Hypothesis draws the ends of a range (and of a list) far more often than the middle: the odd
# choices sit in the middle so that "rare" means rare, and the first choice is what shrinks.


def _chance(draw, percent: int) -> bool:
    """True in about ``percent`` of the draws."""
    return 50 <= draw(st.integers(0, 99)) < 50 + percent


def _weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of ``choices``, each ``(percent, strategy)``; the first is the common case.

    Build these once, at import: a strategy made inside a draw costs far more than the draw.
    """
    first, rest = choices[0], choices[1:]
    labels = [0] * (first[0] // 2)
    labels += [i for i, (percent, _) in enumerate(rest, 1) for _ in range(percent)]
    labels += [0] * (first[0] - first[0] // 2)
    return st.sampled_from(labels).flatmap(lambda label: choices[label][1])


def _oddify(draw, value: bytes, percent: int = 3) -> bytes:
    """``value``, or in ``percent`` of the draws ``value`` with one odd byte inserted."""
    if not _chance(draw, percent):
        return value
    at = draw(st.integers(0, len(value)))
    return value[:at] + draw(_odd_byte) + value[at:]


def _odd(strategy: st.SearchStrategy[bytes], percent: int = 3) -> st.SearchStrategy[bytes]:
    """``strategy`` with :func:`_oddify` applied."""
    return st.composite(lambda draw: _oddify(draw, draw(strategy), percent))()


def _encode(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return strategy.map(lambda text: text.encode("latin-1"))


methods = _odd(
    _weighted(
        (92, st.sampled_from(METHODS).map(str.encode)),
        (4, _encode(_text(TCHAR, 1, 8))),
        (4, st.sampled_from([b"get", b"M-SEARCH", b"PURGE", b"MKCOL", b"SOURCE"])),
    )
)

_segment = _encode(_text(PCHAR + "%", 0, 8))
_path = st.lists(_segment, min_size=1, max_size=4).map(lambda parts: b"/" + b"/".join(parts))
_query = _encode(_text(PCHAR + "/?%", 0, 10))
_host = st.one_of(
    _encode(_text("abcdefghijklmnopqrstuvwxyz0123456789-.", 0, 12)),
    st.sampled_from([b"[::1]", b"127.0.0.1", b"]", b"[", b"[v1.x]", b"a@b", b"%41", b"h_1"]),
)
_port = st.one_of(st.just(b""), st.integers(0, 70000).map(lambda n: b":%d" % n), st.just(b":"))


@st.composite
def _origin_form(draw) -> bytes:
    target = draw(_path)
    if draw(st.booleans()):
        target += b"?" + draw(_query)
    if _chance(draw, 6):
        target += b"#" + draw(_query)
    return target


@st.composite
def _absolute_form(draw) -> bytes:
    scheme = draw(st.sampled_from([b"http", b"https", b"HTTP", b"ftp", b"s", b"h"]))
    authority = draw(_host) + draw(_port)
    rest = draw(st.one_of(st.just(b""), _origin_form()))
    return scheme + b"://" + authority + rest


targets = _odd(
    _weighted(
        (80, _origin_form()),
        (8, _absolute_form()),
        (4, st.tuples(_host, _port).map(b"".join)),  # authority-form
        (4, st.just(b"*")),
        (4, _encode(_text("".join(map(chr, range(0x21, 0x7F))), 1, 12))),  # any visible ASCII
    )
)
versions = _weighted(
    (80, st.just(b"HTTP/1.1")),
    (15, st.just(b"HTTP/1.0")),
    (5, st.sampled_from([b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"HTTP/1.10", b"http/1.1"])),
)


_field_text = _text("".join(map(chr, range(0x20, 0x7F))) + "\t\x80\xe9\xff", 0, 16)
_separator = st.sampled_from([b": ", b": ", b":", b":  ", b":\t"])


@lru_cache
def _field_names(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    return _weighted((85, st.sampled_from(names)), (15, _text(TCHAR, 1, 10)))


@lru_cache
def _field_values(name: str) -> st.SearchStrategy[str]:
    return _weighted((70, st.sampled_from(FIELD_VALUES.get(name, ["v"]))), (30, _field_text))


@st.composite
def fields(draw, names: tuple[str, ...]) -> tuple[bytes, bytes]:
    """One ``(name, value)``: a known field with typical values, or arbitrary tokens and text."""
    name = draw(_field_names(names))
    value = draw(_field_values(name)).encode("latin-1")
    return _oddify(draw, name.encode("latin-1")), draw(_separator) + _oddify(draw, value)


_chunk_ext = _weighted(
    (70, st.just(b"")),
    (30, st.sampled_from([b";a", b";a=b", b';a="q;\\" x"', b" ;a", b"; a = b"])),
)
_after_size = _weighted((95, st.just(b"")), (5, st.sampled_from([b" ", b"\t"])))


@st.composite
def chunked_body(draw, body: bytes) -> bytes:
    """``body`` in chunks with optional extensions, the last chunk and optional trailers."""
    out, rest = b"", body
    while rest:
        size = draw(st.integers(1, len(rest)))
        size_line = draw(st.sampled_from([b"%x", b"%X", b"0%x"])) % size
        size_line = _oddify(draw, size_line + draw(_after_size) + draw(_chunk_ext))
        out += size_line + b"\r\n" + rest[:size] + b"\r\n"
        rest = rest[size:]
    out += draw(st.sampled_from([b"0", b"000", b"0;x=y"])) + b"\r\n"
    trailers = draw(st.lists(fields(TRAILER_NAMES), max_size=2))
    return out + b"".join(n + v + b"\r\n" for n, v in trailers) + b"\r\n"


_framing = _weighted(
    (30, st.just("none")), (35, st.just("length")), (30, st.just("chunked")), (5, st.just("both"))
)
#: how far a Content-Length is from the body's real size: the rest of the stream gets misframed
_length_error = _weighted((90, st.just(0)), (10, st.sampled_from([-1, 1, 2])))
_length_format = _weighted(
    (88, st.just(b"%d")), (12, st.sampled_from([b"0%d", b"+%d", b"%d, %d", b" %d "]))
)
_coding = _weighted((75, st.just(b"chunked")), (25, st.sampled_from(TRANSFER_ENCODINGS)))
_line_end = _weighted((97, st.just(b"\r\n")), (3, st.sampled_from([b"\n", b"\r", b"\r\r\n"])))
_gap = _weighted((85, st.just(b"")), (15, st.sampled_from([b"\r\n", b"\n", b"\r\n\r\n"])))


@st.composite
def requests(draw) -> bytes:
    """One request: request line, fields, framing and body, mostly CRLF-terminated."""
    line = draw(methods) + b" " + draw(targets) + b" " + draw(versions)
    if _chance(draw, 3):
        line = draw(st.sampled_from([b"GET /", b"GET  / HTTP/1.1", b"GET / HTTP/1.1 ", b""]))
    head = [line]
    if not _chance(draw, 15):
        head.append(b"Host: " + draw(st.sampled_from([b"t", b"example.com"])))
    head += [n + v for n, v in draw(st.lists(fields(FIELD_NAMES), max_size=4))]
    body = draw(st.binary(max_size=40))
    framing = draw(_framing)
    if framing in ("length", "both"):
        declared = max(len(body) + draw(_length_error), 0)
        value = draw(_length_format)
        value = value % ((declared, declared) if value.count(b"%") == 2 else declared)
        head.append(b"Content-Length: " + value)
        if _chance(draw, 8):
            head.append(b"Content-Length: " + value)
    if framing in ("chunked", "both"):
        head.append(b"Transfer-Encoding: " + draw(_coding))
    head_fields = draw(st.permutations(head[1:]))
    eol = draw(_line_end)
    raw = eol.join([line, *head_fields]) + eol + eol
    if framing == "chunked":
        return raw + draw(chunked_body(body))
    return raw + (body if framing != "none" else b"")


@st.composite
def pipelines(draw) -> bytes:
    """One to three requests back to back, now and then with empty lines between them."""
    parts = draw(st.lists(requests(), min_size=1, max_size=3))
    gaps = [draw(_gap) for _ in parts]
    return b"".join(gap + part for gap, part in zip(gaps, parts, strict=True))


@st.composite
def mutated(draw, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` with one to three byte-level edits: replace, insert, delete or repeat a slice."""
    data = draw(base)
    for _ in range(draw(st.integers(1, 3))):
        # modulo, so that edits land all over the stream, not mostly at its two ends
        at = draw(st.integers(0, 1 << 16)) % (len(data) + 1)
        end = min(len(data), at + draw(st.integers(0, 8)))
        edit = draw(st.sampled_from(["replace", "insert", "delete", "repeat"]))
        if edit == "replace":
            data = data[:at] + draw(_odd_byte) + data[end:]
        elif edit == "insert":
            data = data[:at] + draw(_odd_byte) + data[at:]
        elif edit == "delete":
            data = data[:at] + data[end:]
        else:
            data = data[:end] + data[at:end] + data[end:]
    return data


def streams() -> st.SearchStrategy[bytes]:
    """What one fuzz example sends on one connection."""
    return _weighted((70, pipelines()), (30, mutated(pipelines())))
