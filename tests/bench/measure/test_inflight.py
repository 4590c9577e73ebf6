"""Requests in flight: what a wrapped client remembers, and which waiting requests a window
counts as unanswered. Through Locust itself: test_instrument.py."""

from __future__ import annotations

import gevent
import pytest

from bench.flags import UNANSWERED_AFTER_S, UNANSWERED_FACTOR
from bench.measure import inflight, latency


@pytest.fixture(autouse=True)
def empty():
    inflight.in_flight.clear()
    inflight.abandoned.clear()
    yield
    inflight.in_flight.clear()
    inflight.abandoned.clear()


def test_a_request_is_in_flight_while_it_waits_and_forgotten_once_answered():
    seen = []

    def request(client, method, url, name=None):
        seen.append(list(inflight.in_flight.values()))
        return "answer"

    tracked = inflight.track_in_flight(request)
    assert tracked(None, "GET", "http://127.0.0.1:8000/users/7?page=2") == "answer"
    assert tracked(None, "POST", "/login", "login") == "answer"
    assert [[(method, name) for _, method, name in waiting] for waiting in seen] == [
        [("GET", "/users/7")],
        [("POST", "login")],
    ]
    assert inflight.in_flight == {} and inflight.hand_over() == []


def test_a_request_whose_user_is_stopped_is_abandoned_with_its_age():
    def request(client, method, url, name=None):
        raise gevent.GreenletExit

    with pytest.raises(gevent.GreenletExit):
        inflight.track_in_flight(request)(None, "GET", "/hang", name="hang")
    ((age_s, method, name),) = inflight.hand_over()
    assert age_s >= 0 and (method, name) == ("GET", "hang")
    assert inflight.hand_over() == []  # handed over once


def test_a_failing_request_is_not_abandoned():
    def request(client, method, url, name=None):
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        inflight.track_in_flight(request)(None, "GET", "/")
    assert inflight.hand_over() == []


def window_with(slowest_us: int | None, waiting: list[tuple[float, str, str]]) -> dict:
    histogram = latency.new_histogram()
    if slowest_us is not None:
        latency.record(histogram, slowest_us)
    window = {"endpoints": [{"method": "GET", "name": "/", "requests": 10, "failures": 1,
                             "p50_ms": 1, "p99_ms": 2}],
              "errors": {"500": 1}, "failure_messages": []}  # fmt: skip
    return inflight.unanswered_failures(window, {"failures": 1, "waiting": waiting}, histogram)


def test_only_requests_waiting_past_the_floor_and_the_factor_are_unanswered():
    # the slowest answer took 0.1 s: the floor (1 s) decides
    result = window_with(100_000, [(UNANSWERED_AFTER_S * 0.9, "GET", "/"),
                                   (UNANSWERED_AFTER_S * 2, "GET", "/hang")])  # fmt: skip
    assert result["unanswered"] == 1 and result["failures"] == 2
    assert [(m["name"], m["occurrences"]) for m in result["failure_messages"]] == [("/hang", 1)]
    assert {e["name"]: (e["requests"], e["failures"]) for e in result["endpoints"]} == {
        "/": (10, 1),
        "/hang": (1, 1),
    }
    # an overloaded server whose slowest answer took 2 s: a request 3 s old is still coming
    slow = 2.0
    result = window_with(int(slow * 1e6), [(slow * 1.5, "GET", "/")])
    assert result["unanswered"] == 0 and result["failures"] == 1
    # (the histogram keeps the slowest answer to its precision, a little above 2 s)
    result = window_with(int(slow * 1e6), [(slow * UNANSWERED_FACTOR * 1.01, "GET", "/")])
    assert result["unanswered"] == 1
    assert result["endpoints"][0]["failures"] == 2 and len(result["errors"]) == 2


def test_a_window_that_answered_nothing_counts_every_long_wait():
    result = window_with(None, [(UNANSWERED_AFTER_S, "GET", "/a"), (5.0, "GET", "/a")])
    assert result["unanswered"] == 2
    (message,) = result["failure_messages"]
    assert message["occurrences"] == 2 and message["error"].startswith("no answer within 1.0 s")
