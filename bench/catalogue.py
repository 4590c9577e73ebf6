"""What a load cell can serve and ask for, declared once: the two apps and the scenarios.

A *scenario* is one kind of load: the Locust user class that makes it (in
``bench/measure/scenarios.py``), the request the runner sends once to check a server before
loading it, and the body marker every checked response must contain. What measures a scenario
(``bench.measure``) and what reports on it (``bench.analysis``) both read it here; nothing here
imports Locust or measures anything.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the blocking wait of the io scenario, so the report can state the serial ceiling of 1000/ms req/s
IO_WAIT_MS = 20

#: the two WSGI apps a cell can serve: the framework app under test and the raw floor reference
APPS = {"app": "bench.apps.app:app", "raw": "bench.apps.rawapp:app"}


@dataclass(frozen=True)
class Scenario:
    #: name used on the command line, in cell names and in the report
    name: str
    #: the Locust user class in bench/measure/scenarios.py that generates this load
    user_class: str
    #: the request a server must answer (200 + marker) before it is put under load
    probe_path: str
    #: text every successful response body of this scenario contains
    #: (None: a user's class without a ``probe``: the probe takes any HTTP answer)
    marker: str | None
    #: one line for the report: what a request does
    description: str


SCENARIOS = {
    scenario.name: scenario
    for scenario in (
        Scenario("plaintext", "PlaintextUser", "/plaintext", "Hello, World!",
                 "a 13-byte text body: the cost of the server and framework alone"),
        Scenario("json", "JsonUser", "/json", '"message"',
                 "a small JSON document serialised per request"),
        Scenario("fortunes", "FortunesUser", "/fortunes", "<table",
                 "rows read from sqlite, one added, sorted and rendered by a jinja2 template"),
        Scenario("session", "SessionUser", "/session", "count",
                 "read-modify-write a counter in the signed session cookie"),
        Scenario("io", "IoUser", f"/io?ms={IO_WAIT_MS}", "slept",
                 f"a {IO_WAIT_MS} ms blocking wait standing for a downstream call"),
        Scenario("cpu", "CpuUser", "/cpu", "checksum",
                 "about 1 ms of pure-Python work per request"),
        Scenario("bytes", "BytesUser", "/bytes?kb=64", "x",
                 "a 64 KiB body"),
        Scenario("stream", "StreamUser", "/stream", "chunk",
                 "an unsized generator response (chunked transfer encoding)"),
        Scenario("mixed", "MixedUser", "/fortunes", "<table",
                 f"a visitor: fortunes, session round trips and some {IO_WAIT_MS} ms io"),
    )
}  # fmt: skip
