"""servers.grammar: the request-target forms each method may use (RFC 9112 section 3.2)."""

from __future__ import annotations

import pytest

from servers.grammar import FIELD_LINE, VALUE_BYTES, target_form, target_problem


@pytest.mark.parametrize(
    ("method", "target", "problem"),
    [
        ("GET", "/p?q", None),
        ("GET", "http://u@h:81/p?q", None),
        ("OPTIONS", "*", None),
        ("CONNECT", "h:443", None),
        ("GET", "*", "asterisk-form target is only for OPTIONS"),
        ("GET", "h:80", "authority-form target is only for CONNECT"),
        ("CONNECT", "/", "CONNECT needs an authority-form target"),
        ("CONNECT", "http://h/", "CONNECT needs an authority-form target"),
        ("GET", "ftp://h/", "request target is not a valid http or https URI"),
        ("PUT", "s://]ufd/:", "request target is not a valid http or https URI"),
        ("GET", "a/b", "invalid request target"),
        ("GET", "?q", "invalid request target"),
    ],
)
def test_target_problem(method: str, target: str, problem: str | None) -> None:
    assert target_problem(method, target) == problem


def test_target_form_is_none_for_no_form() -> None:
    assert [target_form(t) for t in ("/", "*", "http://h", "h:1", "a/b")] == [
        "origin",
        "asterisk",
        "absolute",
        "authority",
        None,
    ]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("A: 1", ("A", "1")),
        ("B:", ("B", "")),
        ("A: \t x  y \t", ("A", "x  y")),  # whitespace around a value is not part of it
        ("A: caf\xe9", ("A", "caf\xe9")),  # obs-text, decoded as latin-1
        ("A: 1\nB: 2", None),
        ("A : 1", None),
        (" A: 1", None),
        ("A: \x00", None),
        ("A: 1\r", None),
    ],
)
def test_field_line(line: str, field: tuple | None) -> None:
    match = FIELD_LINE.fullmatch(line)
    assert (match and match.groups()) == field


def test_value_bytes_are_every_byte_but_the_controls_htab_excepted() -> None:
    refused = bytes(range(256)).translate(None, VALUE_BYTES)
    assert refused == bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])
