"""Every server the runner can put under load, in one table.

An entry says how to start a server for an app given as ``module:attr``, how to know it is ready,
which concurrency model it belongs to, and what it needs installed. Our four models come from
``servers/``; peers (werkzeug, tornado, gunicorn, waitress, and natively bjoern and granian) and
the null reference come from ``bench.serving.peers``. The runner only reads this table.
"""

from __future__ import annotations

import sys

from bench.serving.peers import PEER_SERVERS
from bench.serving.spec import ServerSpec


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
    """Ours first, then the peers and the null reference."""
    return {spec.name: spec for spec in (*OUR_SERVERS, *PEER_SERVERS)}
