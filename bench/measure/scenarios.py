"""The Locust scenarios: one user class per scenario of ``bench.measure.profiles.SCENARIOS``.

This is the only module of the suite that imports Locust: Locust monkey-patches the standard
library with gevent, so the runner starts it as a separate process, naming the user class:

    locust -f bench/measure/instrument.py,bench/measure/scenarios.py --headless \
        -H http://127.0.0.1:8000 -u 16 -t 4s PlaintextUser

Users are closed loops with no wait: each sends its next request as soon as the last one answered,
so requests/s measures the server, not a think time. Every response is checked for its status and
the scenario's body marker, so a server that answers errors fast does not look fast.

The measured window (warm-up, duration, the result file) is not here: it is
``bench/measure/instrument.py``, which the runner loads beside any locustfile, ours or a user's.
"""

from __future__ import annotations

import re

from locust import FastHttpUser, constant, task

from bench.checks import fetch
from bench.flags import IO_WAIT_MS
from bench.measure.profiles import SCENARIOS


class CheckedUser(FastHttpUser):
    """A closed-loop user whose every request must answer 200 with the expected marker."""

    abstract = True
    wait_time = constant(0)

    def fetch(self, path: str, marker: str) -> str | None:
        """GET ``path``: a failure unless it answers 200 with ``marker`` in the body."""
        return fetch(self.client, path, marker)

    def fetch_scenario(self, name: str) -> str | None:
        scenario = SCENARIOS[name]
        return self.fetch(scenario.probe_path, scenario.marker)


class PlaintextUser(CheckedUser):
    @task
    def plaintext(self) -> None:
        self.fetch_scenario("plaintext")


class JsonUser(CheckedUser):
    @task
    def json(self) -> None:
        self.fetch_scenario("json")


class FortunesUser(CheckedUser):
    @task
    def fortunes(self) -> None:
        self.fetch_scenario("fortunes")


class IoUser(CheckedUser):
    @task
    def io(self) -> None:
        self.fetch_scenario("io")


class CpuUser(CheckedUser):
    @task
    def cpu(self) -> None:
        self.fetch_scenario("cpu")


class BytesUser(CheckedUser):
    @task
    def bytes(self) -> None:
        self.fetch_scenario("bytes")


class StreamUser(CheckedUser):
    @task
    def stream(self) -> None:
        self.fetch_scenario("stream")


class SessionUser(CheckedUser):
    """Round trips through the signed session cookie: the counter must go up by one each time."""

    #: the counter the server returned last time; None before the first answer
    last_count: int | None = None

    @task
    def session(self) -> None:
        self.session_round_trip()

    def session_round_trip(self) -> None:
        scenario = SCENARIOS["session"]
        with self.client.get(scenario.probe_path, catch_response=True) as response:
            count = first_integer(response.text or "") if response.status_code == 200 else None
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
            elif count is None:
                response.failure("no counter in the body")
            elif self.last_count is not None and count != self.last_count + 1:
                response.failure(f"counter went from {self.last_count} to {count}")
            if count is not None:
                self.last_count = count


class MixedUser(SessionUser):
    """A visitor: mostly pages, some session round trips, now and then a slow downstream call."""

    @task(5)
    def fortunes(self) -> None:
        self.fetch_scenario("fortunes")

    @task(3)
    def session(self) -> None:
        self.session_round_trip()

    @task(1)
    def io(self) -> None:
        self.fetch(f"/io?ms={IO_WAIT_MS}", SCENARIOS["io"].marker)


def first_integer(text: str) -> int | None:
    match = re.search(r"\d+", text)
    return int(match.group()) if match else None
