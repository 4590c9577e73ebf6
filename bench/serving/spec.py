"""What the runner needs to know about a server: how to start it and what it is.

Our four models (``bench.serving.registry``) and the peers (``bench.serving.peers``) are both
described by a :class:`ServerSpec`; this module knows neither, so neither imports the other's
table.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

#: the concurrency models, in the order the report shows them
MODELS = ("poll", "threaded", "fork", "epoll")


@dataclass(frozen=True)
class ServerSpec:
    #: name used on the command line, in cell file names and in the report
    name: str
    #: concurrency model it belongs to: one of MODELS, or "null" for the canned-response reference
    model: str
    #: "ours" (servers/), "peer" (a real-world server) or "reference" (the null server)
    kind: str
    #: builds the argv that serves APP on HOST:PORT
    argv: Callable[[str, str, int], list[str]]
    #: True: the server prints ``listening on http://HOST:PORT`` (so port 0 works); False: the
    #: runner picks a free port itself and polls it until a request answers
    prints_listening: bool = False
    #: importable modules the server needs; missing ones mean "skipped: not installed"
    requires: tuple[str, ...] = ()
    #: how the server is configured, recorded in meta.json so a reader can judge fairness
    settings: dict = field(default_factory=dict)
    #: the only scenarios it can answer correctly (the null server's canned body fits plaintext
    #: alone); empty: every scenario
    scenarios: tuple[str, ...] = ()

    def missing_requirements(self) -> list[str]:
        return [module for module in self.requires if importlib.util.find_spec(module) is None]
