"""Per-endpoint and failure tables of cells: sums over repeats, readable messages, plain text."""

from __future__ import annotations

import pytest

from bench.analysis import endpoints


def repeat(entries=(), failures=()) -> dict:
    return {"endpoints": list(entries), "failure_messages": list(failures)}


def entry(name: str, requests: int, failures: int = 0, p50=2.0, p99=9.0, method="GET") -> dict:
    return {"method": method, "name": name, "requests": requests, "failures": failures,
            "p50_ms": p50, "p99_ms": p99}  # fmt: skip


def failure(name: str, error: str, occurrences: int, method="GET") -> dict:
    return {"method": method, "name": name, "error": error, "occurrences": occurrences}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CatchResponseError('status 404')", "status 404"),
        ("CatchResponseError(\"body lacks '<h1>'\")", "body lacks '<h1>'"),
        ("ConnectionResetError(104, 'Connection reset by peer')",
         "ConnectionResetError: 104, Connection reset by peer"),
        ("HTTPError('403 Client Error: FORBIDDEN for url: /login')",
         "HTTPError: 403 Client Error: FORBIDDEN for url: /login"),
        ("RemoteDisconnected()", "RemoteDisconnected"),
        ("status 500", "status 500"),
    ],
)  # fmt: skip
def test_locusts_reprs_become_messages(text, message):
    assert endpoints.readable_error(text) == message


def test_endpoints_sum_over_repeats_and_take_the_median_latency():
    cell = {"cell": "poll--app--member--u8", "repeats": [
        repeat([entry("/", 100, 1, p99=10.0), entry("/login", 8, 0, p50=80.0, p99=90.0,
                                                     method="POST")]),
        repeat([entry("/", 120, 3, p99=30.0)]),
        repeat([entry("/", 110, 0, p99=20.0)]),
    ]}  # fmt: skip
    rows = endpoints.endpoint_rows([cell])
    assert rows == [
        ["poll--app--member--u8", "GET /", "330", "4 (1%)", "2", "20"],
        ["poll--app--member--u8", "POST /login", "8", "0", "80", "90"],
    ]


def test_an_endpoint_that_never_answered_shows_dashes_not_none():
    cell = {"cell": "c", "repeats": [repeat([entry("/slow", 0, 0, p50=None, p99=None)])]}
    assert endpoints.endpoint_rows([cell]) == [["c", "GET /slow", "0", "0", "–", "–"]]


def test_failures_are_counted_per_endpoint_and_message_most_frequent_first():
    cell = {"cell": "fork--app--visitor--u8", "repeats": [
        repeat(failures=[failure("/", "CatchResponseError('status 404')", 3),
                         failure("/home", "HTTPError('401 Client Error')", 40)]),
        repeat(failures=[failure("/", "CatchResponseError('status 404')", 2)]),
    ]}  # fmt: skip
    assert endpoints.failure_rows([cell, {"cell": "clean", "repeats": [repeat()]}]) == [
        ["fork--app--visitor--u8", "GET /home", "HTTPError: 401 Client Error", "40"],
        ["fork--app--visitor--u8", "GET /", "status 404", "5"],
    ]


def test_cells_written_before_endpoints_were_recorded_have_no_rows():
    old = {"cell": "old", "repeats": [{"rps": 10.0}]}
    assert endpoints.endpoint_rows([old]) == [] and endpoints.failure_rows([old]) == []
