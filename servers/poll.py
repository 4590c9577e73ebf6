"""The iterative model, like werkzeug's BaseWSGIServer: one connection at a time.

The accept loop waits on a ``PollSelector`` (``SelectSelector`` where poll() is missing) and serves
each connection inline. Whatever the app or the client does blocks everyone else, so a per-recv
``--timeout`` bounds a silent client, and the connection is closed after each response unless
``keep_alive=True`` (one keep-alive client would otherwise starve the rest).
"""

from __future__ import annotations

import dataclasses
import socket

from servers.base import BlockingServer, ServerOptions


@dataclasses.dataclass(frozen=True)
class PollOptions(ServerOptions):
    #: serve further requests on the same connection (off: one client could starve the rest)
    keep_alive: bool = False


class PollServer(BlockingServer):
    multithread = False
    multiprocess = False
    Options = PollOptions

    def setup(self) -> None:
        self.keep_alive = self.options.keep_alive

    def process_connection(self, sock: socket.socket, addr: tuple) -> None:
        self.serve_inline(sock, addr)
