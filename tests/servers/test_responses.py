"""servers.responses: response headers checked once per distinct list and pair, the Date line,
refusals."""

from __future__ import annotations

import pytest

from servers.responses import _FIELD_CACHE, closing_response, response_fields


def test_a_refused_header_is_refused_every_time_and_never_cached() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            response_fields([("X-Bad", "a\r\nX-Injected: yes")])
    assert ("X-Bad", "a\r\nX-Injected: yes") not in _FIELD_CACHE


def test_a_cached_pair_gives_the_same_fields_as_the_first_time() -> None:
    headers = [("Content-Type", "text/plain"), ("Content-Length", "13"), ("Connection", "close")]
    first = response_fields(headers)
    assert response_fields(headers) == first
    assert first.lines == b"Content-Type: text/plain\r\n"
    assert (first.content_length, first.close, first.has_date) == (13, True, False)


def test_a_header_list_with_a_list_for_a_pair_is_checked_as_before() -> None:
    fields = response_fields([["Content-Type", "text/plain"], ("Content-Length", "2")])
    assert (fields.lines, fields.content_length) == (b"Content-Type: text/plain\r\n", 2)


def test_differing_content_lengths_are_refused_even_when_each_is_cached() -> None:
    response_fields([("Content-Length", "1")])
    response_fields([("Content-Length", "2")])
    with pytest.raises(ValueError, match="differing Content-Length"):
        response_fields([("Content-Length", "1"), ("Content-Length", "2")])


def test_closing_response_is_complete_and_closes() -> None:
    response = closing_response(431, "too many header fields")
    assert response.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"\r\nContent-Length: 23\r\nConnection: close\r\nDate: " in response
    assert response.endswith(b" GMT\r\n\r\ntoo many header fields\n")
