"""servers.grammar: the request-target forms each method may use (RFC 9112 section 3.2)."""

from __future__ import annotations

import pytest

from servers.grammar import FIELD_LINE, target_form, target_problem


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
    ("text", "fields"),
    [
        ("A: 1\r\nB:\r\n", [("A", "1"), ("B", "")]),
        ("A: \t x  y \t\r\n", [("A", "x  y")]),  # whitespace around a value is not part of it
        ("A: 1\nB: 2\r\n", []),  # a bare LF ends no line and starts none
        ("A : 1\r\n", []),
        (" A: 1\r\n", []),
        ("A: \x00\r\n", []),
        ("A: caf\xe9\r\n", [("A", "caf\xe9")]),  # obs-text, decoded as latin-1
    ],
)
def test_field_line_matches_whole_lines_only(text: str, fields: list) -> None:
    assert FIELD_LINE.findall(text) == fields
