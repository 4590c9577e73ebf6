"""Four concurrency models over one sans-I/O HTTP/1.1 layer and one WSGI adapter.

    from servers import make_server
    server = make_server(app, model="epoll", port=0)
    threading.Thread(target=server.serve_forever).start()
    ...  # talk to server.server_address
    server.shutdown()

``serve(app, ...)`` is the blocking form: it installs SIGTERM/SIGINT handlers (stop accepting,
finish in-flight requests, return), prints ``listening on http://HOST:PORT`` and serves.
"""

from __future__ import annotations

from collections.abc import Callable

from servers.base import BaseServer
from servers.epoll import EpollServer
from servers.fork import ForkServer
from servers.poll import PollServer
from servers.threaded import ThreadedServer

#: model name → server class; the names the CLI, the registry and the report use
MODELS: dict[str, type[BaseServer]] = {
    "poll": PollServer,
    "threaded": ThreadedServer,
    "fork": ForkServer,
    "epoll": EpollServer,
}


def make_server(
    app: Callable, model: str = "threaded", host: str = "127.0.0.1", port: int = 8000, **options
) -> BaseServer:
    """A bound (not yet serving) server; ``options`` are the model's keyword arguments."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    return MODELS[model](app, host, port, **options)


def serve(
    app: Callable, model: str = "threaded", host: str = "127.0.0.1", port: int = 8000, **options
) -> None:
    """Serve until SIGTERM or SIGINT, then let in-flight requests finish and return."""
    server = make_server(app, model, host, port, **options)
    server.install_signal_handlers()
    host, port = server.server_address
    print(f"listening on http://{host}:{port}", flush=True)
    server.serve_forever()


__all__ = ["MODELS", "make_server", "serve"]
