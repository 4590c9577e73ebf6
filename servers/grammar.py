# This module does no I/O: it holds the HTTP/1.1 grammar servers.http and servers.responses use.
"""The grammar of RFC 9110/9112, compiled once, and the request-target forms (section 3.2).

Heads are decoded once, as latin-1 (every byte is one character), and matched as text; body
framing lines are matched as bytes.
"""

from __future__ import annotations

import re

TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
TOKEN_RE = re.compile(TOKEN)
# A target is any run of visible characters (obs-text included); target_problem judges its form.
REQUEST_LINE = re.compile(rf"({TOKEN}) ([\x21-\x7e\x80-\xff]+) HTTP/1\.([01])")
VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
# One field line without its CRLF: name, colon, then the value without the whitespace around it.
# A value is any character but CTLs, with HTAB and SP only between visible characters; possessive
# quantifiers keep a refused line linear-time.
VISIBLE = r"[^\x00-\x20\x7f]"
FIELD_LINE = re.compile(rf"({TOKEN}):[ \t]*+((?:{VISIBLE}++|[ \t]++(?={VISIBLE}))*+)[ \t]*+")
#: every byte a field value may hold: all but the control characters, HTAB excepted
VALUE_BYTES = bytes(b for b in range(256) if b == 0x09 or 0x20 <= b != 0x7F)
LEADING_EMPTY_LINES = re.compile(rb"(?:\r\n)+")
BARE_LF = re.compile(rb"(?<!\r)\n")
# Whitespace may precede a chunk extension's ";" (BWS, RFC 9112 section 7.1.1), never end the line.
CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]+)(?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?")

RESPONSE_NAME = re.compile(TOKEN)
RESPONSE_VALUE_FORBIDDEN = re.compile(r"[\r\n\x00]")
STATUS = re.compile(r"([1-9][0-9][0-9]) [^\r\n\x00]*")

# Request-target forms other than origin-form (RFC 9112 section 3.2; RFC 3986 for the pieces).
# The request line has already excluded whitespace and control characters.
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)"
#: http(s)://[userinfo@]host[:port] then nothing, or a path, query or fragment
_ABSOLUTE_FORM = re.compile(rf"(?i:https?)://(?:[^/?#@\[\]]*@)?{_HOST}(?::[0-9]*)?(?:[/?#].*)?")
_AUTHORITY_FORM = re.compile(rf"{_HOST}:[0-9]+")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")

#: the target forms a method may use (RFC 9112 sections 3.2.3 and 3.2.4); other methods: _FORMS
_FORMS_OF_METHOD = {
    "CONNECT": frozenset({"authority"}),
    "OPTIONS": frozenset({"origin", "absolute", "asterisk"}),
}
_FORMS = frozenset({"origin", "absolute"})
#: why a target of a valid form is refused for a method that may not use it
_WRONG_FORM = {
    "origin": "CONNECT needs an authority-form target",
    "absolute": "CONNECT needs an authority-form target",
    "authority": "authority-form target is only for CONNECT",
    "asterisk": "asterisk-form target is only for OPTIONS",
}


def target_problem(method: str, target: str) -> str | None:
    """Why ``target`` cannot be a request target for ``method`` (a 400), or None when it can."""
    form = target_form(target)
    if form is None:
        if _URI_SCHEME.match(target):
            return "request target is not a valid http or https URI"
        return "invalid request target"
    if form in _FORMS_OF_METHOD.get(method, _FORMS):
        return None
    return _WRONG_FORM[form]


def target_form(target: str) -> str | None:
    """``origin``, ``absolute``, ``authority`` or ``asterisk``; None when it is none of them."""
    if target[0] == "/":
        return "origin"
    if target == "*":
        return "asterisk"
    if _ABSOLUTE_FORM.fullmatch(target):
        return "absolute"
    if _AUTHORITY_FORM.fullmatch(target):
        return "authority"
    return None
