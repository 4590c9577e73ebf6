"""In-process request workloads: one call = one request, no socket, the same every time.

The ``servers`` micro group and the instruction counts (``bench.micro.instructions``) both run
these, so "one in-memory server cycle" means the same thing to the timed check and to the
counted one. Every workload imports what it needs only when built: the instruction counter runs
one process per measurement under valgrind, where each import costs seconds.

``python -m bench.micro.workloads WARM [NAME COUNT]`` runs WARM requests of every workload, then
COUNT more of NAME: what the instruction counter runs under cachegrind (the difference between a
run with and without the COUNT requests is their cost alone, start-up and warm-up cancelled).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

#: the request a browser sends for a page: what the in-memory server cycle parses
BROWSER_HEAD = (
    b"GET /plaintext HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8000\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: theme=dark; session=eyJjb3VudCI6MX0.ZyQ2xw.4bXk3mJ0aQq1oZ8yUe5n\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-Site: none\r\n"
    b"Sec-Fetch-User: ?1\r\n"
    b"Priority: u=0, i\r\n"
    b"\r\n"
)
#: the address the in-memory server pretends to listen on, and its pretend client
SERVER_ADDRESS = ("127.0.0.1", 8000)
PEER = ("127.0.0.1", 54321)


class ServerCycle:
    """One keep-alive connection of our servers, fed the same request again and again.

    A call does what ``servers.base.BlockingServer.serve_request`` does for a request that
    arrived in one read: bytes in, the head and the end of the message out, the WSGI adapter
    calls the app and frames its answer, then the connection starts its next cycle. It uses only
    the public API of ``servers.http`` and ``servers.wsgi``.
    """

    def __init__(self, app: Callable, head: bytes = BROWSER_HEAD) -> None:
        from servers.http import ServerConnection
        from servers.wsgi import WSGIAdapter

        #: the request bytes every call receives
        self.head = head
        #: the connection, kept alive across calls
        self.conn = ServerConnection()
        #: the adapter every model shares, told it runs in one thread of one process
        self.adapter = WSGIAdapter(app, SERVER_ADDRESS, multithread=False, multiprocess=False)

    def __call__(self) -> bytes:
        conn, written = self.conn, []
        conn.receive_data(self.head)
        request = conn.next_event()
        conn.next_event()  # EndOfMessage: a GET has no body
        self.adapter(conn, request, b"", PEER, written.append)
        conn.start_next_cycle()
        return b"".join(written)


def framework_request(path: str, with_session_cookie: bool = False) -> Callable[[], tuple]:
    """One request through bench.apps.app, called the way a server calls it."""
    from werkzeug.test import EnvironBuilder

    from bench.apps.app import app
    from bench.micro.harness import call_wsgi

    def environ(cookie: str | None = None) -> dict:
        return EnvironBuilder(path=path, headers={"Cookie": cookie} if cookie else {}).get_environ()

    cookie = None
    if with_session_cookie:  # every request then reads, bumps and re-signs a count of 1
        _, headers, _ = call_wsgi(app, environ())
        cookie = dict(headers)["Set-Cookie"].split(";", 1)[0]
    prepared = environ(cookie)
    return lambda: call_wsgi(app, prepared)


def raw_server_cycle() -> Callable[[], bytes]:
    """The in-memory server cycle serving the raw WSGI app: the HTTP layer and the adapter."""
    from bench.apps.rawapp import app

    return ServerCycle(app)


#: name → builder of a zero-argument callable serving one request
WORKLOADS: dict[str, Callable[[], Callable[[], object]]] = {
    "framework-plaintext": lambda: framework_request("/plaintext"),
    "framework-json": lambda: framework_request("/json"),
    "framework-fortunes": lambda: framework_request("/fortunes"),
    "framework-session": lambda: framework_request("/session", with_session_cookie=True),
    "servers-raw-plaintext": raw_server_cycle,
}


def run(names: list[str], warm: int, extra: str | None = None, count: int = 0) -> None:
    """``warm`` requests of each named workload, then ``count`` more of ``extra``."""
    built = {name: WORKLOADS[name]() for name in names}
    for call in built.values():
        for _ in range(warm):
            call()
    if extra is not None:
        call = built[extra]
        for _ in range(count):
            call()


def main(argv: list[str]) -> int:
    """``WARM [NAME COUNT]`` over every workload, or ``--only NAME,NAME WARM [NAME COUNT]``."""
    names = list(WORKLOADS)
    if argv[:1] == ["--only"]:
        names, argv = argv[1].split(","), argv[2:]
    warm = int(argv[0])
    extra, count = (argv[1], int(argv[2])) if len(argv) == 3 else (None, 0)
    run(names, warm, extra, count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
