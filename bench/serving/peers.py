"""Real-world servers beside our four models, and the null reference, as registry entries.

Every peer serves the same app (``bench.apps.app:app``, never Flask), so the only difference in a
cell is the server. Each is configured the way one would run it on the single core the runner
gives a server: one process (or one worker), request logging off, errors to stderr. Entries
record their version and settings so meta.json shows what was measured. bjoern (C) and granian
(Rust) are native references: they show how far a pure-Python server is from native code on the
same app. granian installs from a wheel; bjoern builds from source against libev
(``apt-get install libev-dev``), so it is optional and skipped as "not installed" where missing.

Peers without a CLI of their own (werkzeug's ``make_server``, tornado's ``HTTPServer``) and those
whose CLI cannot report the port it bound run through the small launchers below:
``python -m bench.serving.peers NAME MODULE:ATTR HOST PORT``. Each launcher prints the same
``listening on http://HOST:PORT`` line as ``servers/`` (so port 0 works) and exits 0 on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata

from bench.serving.spec import ServerSpec

#: socketserver's own ForkingMixIn.max_children: werkzeug forks one child per connection
WERKZEUG_MAX_CHILDREN = 40
#: gunicorn's docs suggest 2-4 threads per core; 4 also matches waitress's default, so the two
#: threaded peers get the same thread budget on the one core
GTHREAD_THREADS = 4
#: waitress's default: more threads only add GIL contention on one core
WAITRESS_THREADS = 4
#: granian's Python threads per worker: the same thread budget as the threaded peers
GRANIAN_THREADS = 4
#: seconds a launcher waits for a server that binds its port itself to accept a connection
ACCEPT_TIMEOUT_S = 30.0


def load_app(target: str) -> Callable:
    """Import ``module:attr`` the way every server CLI does."""
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr or "app")


def announce(host: str, port: int) -> None:
    """The readiness line the runner waits for, identical to ``python -m servers``."""
    print(f"listening on http://{host}:{port}", flush=True)


def shutdown_on_signal(server: socketserver.BaseServer) -> None:
    """SIGTERM/SIGINT stop a socketserver's loop from a helper thread, as ``shutdown()`` requires.

    Raising KeyboardInterrupt instead can be lost: a forking server forks all the time, and an
    exception raised inside an at-fork hook is printed and ignored. A forked child, which shares
    the handler but runs no loop, drops its connection the Ctrl-C way.
    """
    server_pid = os.getpid()

    def handle(signum: int, frame: object) -> None:
        if os.getpid() != server_pid:
            raise KeyboardInterrupt
        threading.Thread(target=server.shutdown).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)


def serve_werkzeug(target: str, host: str, port: int, threaded: bool, processes: int) -> None:
    """werkzeug's ``make_server``, exactly what ``app.run`` uses, minus the per-request log line."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietRequestHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    server = make_server(
        host, port, load_app(target), threaded, processes, request_handler=QuietRequestHandler
    )
    shutdown_on_signal(server)
    announce(host, server.server_address[1])
    server.serve_forever()


async def serve_tornado(target: str, host: str, port: int) -> None:
    """tornado's HTTPServer + WSGIContainer: the app runs on the IOLoop thread, like our epoll."""
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from tornado.wsgi import WSGIContainer

    logging.getLogger("tornado.access").disabled = True
    server = HTTPServer(WSGIContainer(load_app(target)))
    sockets = bind_sockets(port, address=host)
    server.add_sockets(sockets)
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stopped.set)
    announce(host, sockets[0].getsockname()[1])
    await stopped.wait()
    server.stop()
    await server.close_all_connections()


def serve_waitress(target: str, host: str, port: int) -> None:
    """waitress with its defaults except a quiet logger (it warns on every deep task queue)."""
    from waitress import create_server

    logging.getLogger("waitress").setLevel(logging.ERROR)
    server = create_server(load_app(target), host=host, port=port, threads=WAITRESS_THREADS)
    # waitress's own way to stop is Ctrl-C: its run() closes everything on KeyboardInterrupt
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    announce(host, server.effective_port)
    server.run()


def serve_gunicorn(target: str, host: str, port: int, worker_class: str, threads: int) -> None:
    """gunicorn's arbiter with one worker, configured as its CLI would be, plus a readiness line."""
    from gunicorn.app.base import BaseApplication

    options = {
        "bind": [f"{host}:{port}"],
        "workers": 1,
        "worker_class": worker_class,
        "threads": threads,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        # the default control socket is one path per user: parallel runs would fight over it
        "control_socket_disable": True,
        "when_ready": lambda arbiter: announce(host, arbiter.LISTENERS[0].getsockname()[1]),
    }

    # gunicorn's documented embedding API; defined here so importing this module never needs it
    class PeerApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Callable:
            return load_app(target)

    PeerApplication().run()


def serve_bjoern(target: str, host: str, port: int) -> None:
    """bjoern's one libev loop in C; it stops on SIGINT only, so SIGTERM is relayed as SIGINT."""
    import bjoern

    listening = bjoern.listen(load_app(target), host, port)
    # the C loop never returns to Python while idle, so a Python SIGTERM handler would never
    # run: a thread waits for SIGTERM, blocked everywhere else, and sends the SIGINT bjoern heeds
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    threading.Thread(target=relay_sigterm_as_sigint, daemon=True).start()
    announce(host, listening.getsockname()[1])
    # bjoern ends its loop on SIGINT and may leave the KeyboardInterrupt pending: both mean stop
    with contextlib.suppress(KeyboardInterrupt):
        bjoern.run()


def relay_sigterm_as_sigint() -> None:
    signal.sigwait({signal.SIGTERM})
    os.kill(os.getpid(), signal.SIGINT)


def serve_granian(target: str, host: str, port: int) -> None:
    """granian's Rust server with one worker process calling the app through its WSGI interface.

    granian binds in its worker and cannot report a port it was asked to choose, so port 0 is
    chosen here, and the readiness line waits until the worker accepts a connection.
    """
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import Server

    port = port or unused_port(host)
    threading.Thread(target=announce_once_accepting, args=(host, port), daemon=True).start()
    Server(target, address=host, port=port, interface=Interfaces.WSGI, workers=1,
           blocking_threads=GRANIAN_THREADS, backpressure=GRANIAN_THREADS, log_access=False,
           log_level=LogLevels.warning, websockets=False).serve()  # fmt: skip


def unused_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def announce_once_accepting(host: str, port: int) -> None:
    deadline = time.monotonic() + ACCEPT_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            time.sleep(0.05)  # the worker is still starting
            continue
        announce(host, port)
        return


#: launcher name -> function(target, host, port) that serves until SIGTERM
LAUNCHERS: dict[str, Callable[[str, str, int], None]] = {
    "werkzeug-base": lambda t, h, p: serve_werkzeug(t, h, p, threaded=False, processes=1),
    "werkzeug-threaded": lambda t, h, p: serve_werkzeug(t, h, p, threaded=True, processes=1),
    "werkzeug-forking": lambda t, h, p: serve_werkzeug(
        t, h, p, threaded=False, processes=WERKZEUG_MAX_CHILDREN
    ),
    "tornado": lambda t, h, p: asyncio.run(serve_tornado(t, h, p)),
    "gunicorn-sync": lambda t, h, p: serve_gunicorn(t, h, p, "sync", threads=1),
    "gunicorn-gthread": lambda t, h, p: serve_gunicorn(t, h, p, "gthread", GTHREAD_THREADS),
    "waitress": lambda t, h, p: serve_waitress(t, h, p),
    "bjoern": lambda t, h, p: serve_bjoern(t, h, p),
    "granian": lambda t, h, p: serve_granian(t, h, p),
}


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def launcher_argv(name: str) -> Callable[[str, str, int], list[str]]:
    def argv(app: str, host: str, port: int) -> list[str]:
        return [sys.executable, "-m", "bench.serving.peers", name, app, host, str(port)]

    return argv


def peer(name: str, model: str, package: str, **settings: object) -> ServerSpec:
    """A peer started through its launcher, with its version recorded beside its settings."""
    settings = {"package": package, "version": version_of(package), **settings}
    return ServerSpec(
        name,
        model,
        "peer",
        launcher_argv(name),
        prints_listening=True,
        requires=(package,),
        settings=settings,
    )


def null_argv(app: str, host: str, port: int) -> list[str]:
    """The null server ignores the app: it answers every request with the same bytes."""
    return [sys.executable, "-m", "bench.serving.nullserver", "--host", host, "--port", str(port)]


NULL_SERVER = ServerSpec(
    "null",
    "null",
    "reference",
    null_argv,
    prints_listening=True,
    settings={
        "server": "bench.serving.nullserver",
        "loop": "selectors, one thread",
        "response": "canned",
    },
    # its canned body passes the plaintext check only
    scenarios=("plaintext",),
)

QUIET = {"request_log": "off", "error_log": "stderr"}

PEER_SERVERS: tuple[ServerSpec, ...] = (
    peer("werkzeug-base", "poll", "werkzeug",
         server="werkzeug.serving.BaseWSGIServer", threaded=False, processes=1, **QUIET),
    peer("werkzeug-threaded", "threaded", "werkzeug",
         server="werkzeug.serving.ThreadedWSGIServer", threaded=True, processes=1, **QUIET),
    peer("werkzeug-forking", "fork", "werkzeug",
         server="werkzeug.serving.ForkingWSGIServer", processes=WERKZEUG_MAX_CHILDREN, **QUIET),
    peer("tornado", "epoll", "tornado",
         server="tornado.httpserver.HTTPServer + tornado.wsgi.WSGIContainer", executor=None,
         **QUIET),
    peer("gunicorn-sync", "fork", "gunicorn",
         server="gunicorn arbiter", worker_class="sync", workers=1, **QUIET,
         loglevel="warning"),
    peer("gunicorn-gthread", "threaded", "gunicorn",
         server="gunicorn arbiter", worker_class="gthread", workers=1, threads=GTHREAD_THREADS,
         **QUIET, loglevel="warning"),
    peer("waitress", "threaded", "waitress",
         server="waitress.create_server", threads=WAITRESS_THREADS, **QUIET),
    # native references: how far a pure-Python server is from C and Rust on the same app
    peer("bjoern", "epoll", "bjoern",
         server="bjoern.run (C, one libev loop)", native="C", **QUIET),
    peer("granian", "threaded", "granian",
         server="granian.server.Server, interface wsgi (Rust)", native="Rust", workers=1,
         blocking_threads=GRANIAN_THREADS, backpressure=GRANIAN_THREADS, **QUIET),
    NULL_SERVER,
)  # fmt: skip


#: werkzeug's development servers (what ``app.run`` starts): werkzeug's own take on three of our
#: models, worth reading beside ours, but nobody deploys them
DEVELOPMENT_SERVERS = ("werkzeug-base", "werkzeug-threaded", "werkzeug-forking")
#: the words --peers takes beside NAME,...: every peer, every one but the development servers, none
PEER_CHOICES = ("all", "production", "none")

#: how a peer whose package is missing is listed among the skipped
NOT_INSTALLED = "skipped: not installed"


def select_peers(
    choice: str, specs: tuple[ServerSpec, ...] = PEER_SERVERS
) -> tuple[list[ServerSpec], dict[str, str]]:
    """``--peers all|production|none|NAME,...`` -> (peers to run, {name: why it is skipped}).

    A peer whose package is missing is skipped with a reason, never a crash; an unknown name is
    a usage error (ValueError) so a typo does not silently drop a peer.
    """
    by_name = {spec.name: spec for spec in specs}
    if choice == "none":
        names: list[str] = []
    elif choice == "all":
        names = list(by_name)
    elif choice == "production":
        names = [name for name in by_name if name not in DEVELOPMENT_SERVERS]
    else:
        names = [name.strip() for name in choice.split(",") if name.strip()]
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise ValueError(
                f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(by_name)} "
                f"(or one of {', '.join(PEER_CHOICES)})"
            )
    runnable, skipped = [], {}
    for name in names:
        missing = by_name[name].missing_requirements()
        if missing:
            skipped[name] = f"{NOT_INSTALLED} ({', '.join(missing)})"
        else:
            runnable.append(by_name[name])
    return runnable, skipped


def named_but_missing(choice: str | None, skipped: dict[str, str]) -> str:
    """One console line for the peers ``--peers NAME,...`` asked for by name that are not
    installed ("" when none is, or when the choice was a word such as "all", whose missing peers
    only the report lists)."""
    missing = {name: why for name, why in skipped.items() if why.startswith(NOT_INSTALLED)}
    if choice in (None, *PEER_CHOICES) or not missing:
        return ""
    listed = "; ".join(f"{name} {why.removeprefix('skipped: ')}" for name, why in missing.items())
    return (
        f"--peers: not run, {listed}; install it (see pyproject.toml's bench extra) or leave it out"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving.peers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("name", choices=sorted(LAUNCHERS))
    parser.add_argument("app", help="MODULE:ATTR of the WSGI app, e.g. bench.apps.app:app")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    args = parser.parse_args(argv)
    LAUNCHERS[args.name](args.app, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
