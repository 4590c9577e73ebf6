"""Requests a Locust process is still waiting for: a server that never answers some requests
would otherwise lose them from every count, and its cell would look clean with fewer requests.

:func:`install` wraps the HTTP clients Locust ships (``HttpSession``, ``FastHttpSession``;
``instrument.py`` calls it inside Locust's process), so each process knows which of its requests
are in flight and since when; a user stopped while it waits (the end of a test) leaves its request
abandoned, with its age. A window counts a
request still waiting when it closes as a failure, "no answer", once it has waited at least
``UNANSWERED_AFTER_S`` and ``UNANSWERED_FACTOR`` times the window's slowest answered request: a
request in flight at the close of an overloaded but answering server has waited about as long as
the slowest answered ones, not five times longer. A locustfile with a client of its own is not seen.
"""

from __future__ import annotations

import functools
import itertools
import time
from urllib.parse import urlsplit

import gevent

from bench.flags import UNANSWERED_AFTER_S, UNANSWERED_FACTOR

#: this process's requests in flight: key → (start time, method, endpoint name)
in_flight: dict[int, tuple[float, str, str]] = {}
#: those whose user was stopped while they waited: (age when stopped, method, endpoint name)
abandoned: list[tuple[float, str, str]] = []
request_keys = itertools.count()


def track_in_flight(request):
    """Wrap a client's ``request(method, url, name=None, ...)`` to keep the request in
    ``in_flight`` while it waits; a user stopped meanwhile (GreenletExit) leaves it abandoned."""

    @functools.wraps(request)
    def tracked(self, method, url, *args, **kwargs):
        name = kwargs.get("name") or (args[0] if args and isinstance(args[0], str) else None)
        key = next(request_keys)
        in_flight[key] = (time.time(), str(method), name or urlsplit(str(url)).path or str(url))
        try:
            return request(self, method, url, *args, **kwargs)
        except gevent.GreenletExit:
            started, method_name, endpoint = in_flight[key]
            abandoned.append((time.time() - started, method_name, endpoint))
            raise
        finally:
            del in_flight[key]

    tracked.tracks_in_flight = True
    return tracked


def install() -> None:
    """Track the requests of both of Locust's HTTP clients (importing them is Locust's business:
    it patches the standard library as it loads)."""
    from locust.clients import HttpSession
    from locust.contrib.fasthttp import FastHttpSession

    for client in (HttpSession, FastHttpSession):
        if not getattr(client.request, "tracks_in_flight", False):
            client.request = track_in_flight(client.request)


def forget_abandoned() -> None:
    """A new window begins: requests abandoned before it belong to none."""
    abandoned.clear()


def hand_over() -> list[tuple[float, str, str]]:
    """(age, method, name) of every request abandoned since the last hand-over or still waiting."""
    now = time.time()
    waiting = [(now - started, method, name) for started, method, name in in_flight.values()]
    handed, abandoned[:] = abandoned + waiting, []
    return handed


def unanswered_failures(window: dict, latencies: dict, whole) -> dict:
    """The window's requests that waited past the unanswered threshold, added to its failures,
    its failure messages and its endpoints' failures."""
    slowest_s = whole.get_max_value() / 1e6 if whole.get_total_count() else 0.0
    threshold_s = max(UNANSWERED_AFTER_S, UNANSWERED_FACTOR * slowest_s)
    unanswered = [(method, name) for age_s, method, name in latencies.get("waiting") or []
                  if age_s >= threshold_s]  # fmt: skip
    by_endpoint = {key: unanswered.count(key) for key in dict.fromkeys(unanswered)}
    error = f"no answer within {threshold_s:.1f} s (still waiting when the window closed)"
    messages = [{"method": method, "name": name, "error": error, "occurrences": count}
                for (method, name), count in by_endpoint.items()]  # fmt: skip
    endpoints = [dict(entry) for entry in window.get("endpoints") or []]
    for (method, name), count in by_endpoint.items():
        entry = next((e for e in endpoints if (e["method"], e["name"]) == (method, name)), None)
        if entry is None:
            entry = {"method": method, "name": name, "requests": 0, "failures": 0,
                     "p50_ms": None, "p99_ms": None}  # fmt: skip
            endpoints.append(entry)
        entry["requests"] += count  # Locust counts a failed request among the requests
        entry["failures"] += count
    errors = dict(window.get("errors") or {})
    if unanswered:
        errors[error] = len(unanswered)
    return {
        "unanswered": len(unanswered),
        "failures": latencies["failures"] + len(unanswered),
        "errors": errors,
        "failure_messages": (window.get("failure_messages") or []) + messages,
        "endpoints": endpoints,
    }
