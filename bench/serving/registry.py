"""Every server the runner can put under load, in one table.

An entry says how to start a server for an app given as ``module:attr``, how to know it is ready,
which concurrency model it belongs to, and what it needs installed. Our four models come from
``servers/``; peers (werkzeug, tornado, gunicorn, waitress) and the null reference come from
``bench.serving.peers``. The runner only reads this table.
"""

from __future__ import annotations

import importlib.util
import sys
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


def ours(name: str, model: str, *options: str) -> ServerSpec:
    """One of our four models, started through the shared CLI of ``servers/``."""

    def argv(app: str, host: str, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "servers",
            "--model",
            model,
            "--host",
            host,
            "--port",
            str(port),
            *options,
            app,
        ]

    return ServerSpec(
        name,
        model,
        "ours",
        argv,
        prints_listening=True,
        settings={"model": model, "options": list(options)},
    )


OUR_SERVERS = (
    ours("poll", "poll"),
    ours("threaded", "threaded"),
    ours("fork", "fork"),
    ours("epoll", "epoll"),
)


def all_servers() -> dict[str, ServerSpec]:
    """Ours first, then peers and the null reference when ``bench.serving.peers`` provides them."""
    specs = list(OUR_SERVERS)
    if importlib.util.find_spec("bench.serving.peers") is not None:
        from bench.serving.peers import PEER_SERVERS

        specs += list(PEER_SERVERS)
    return {spec.name: spec for spec in specs}
