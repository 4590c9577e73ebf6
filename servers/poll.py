"""The iterative model, like werkzeug's BaseWSGIServer: one connection at a time.

The accept loop waits on a ``PollSelector`` (``SelectSelector`` where poll() is missing) and serves
each connection inline. Whatever the app or the client does blocks everyone else, so a per-recv
``--timeout`` bounds a silent client, and the connection is closed after each response unless
``keep_alive=True`` (one keep-alive client would otherwise starve the rest).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from servers.base import BlockingServer


class PollServer(BlockingServer):
    multithread = False
    multiprocess = False

    def __init__(
        self,
        app: Callable,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        keep_alive: bool = False,
        **options,
    ) -> None:
        super().__init__(app, host, port, **options)
        #: serve further requests on the same connection (off: one client could starve the rest)
        self.keep_alive = keep_alive

    def process_connection(self, sock: socket.socket, addr: tuple) -> None:
        self.serve_inline(sock, addr)
