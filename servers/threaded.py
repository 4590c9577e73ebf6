"""A thread per connection, like socketserver's ThreadingMixIn, with keep-alive.

The accept loop hands each connection to a new daemon thread. ``--max-threads`` caps them with a
semaphore: when all slots are taken the loop stops accepting and excess connections wait in the
kernel's accept backlog. A blocking app blocks only its own connection.

On stop, every open connection is shut down for reading: idle keep-alive connections see EOF and
end at once, while a thread inside a request still writes its response and then closes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time

from servers.base import BlockingServer, ServerOptions, require

#: how often a saturated accept loop looks up to see whether a stop was asked
SLOT_WAIT = 0.2


@dataclasses.dataclass(frozen=True)
class ThreadedOptions(ServerOptions):
    #: the cap on connection threads; one slot per open connection
    max_threads: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.max_threads >= 1, "max_threads", self.max_threads, "an integer >= 1")


class ThreadedServer(BlockingServer):
    multithread = True
    multiprocess = False
    Options = ThreadedOptions

    def setup(self) -> None:
        #: one slot per open connection, at most max_threads
        self.slots = threading.BoundedSemaphore(self.options.max_threads)
        #: sockets of the connections being served, so a stop can reach them
        self.connections: set[socket.socket] = set()
        #: guards ``connections`` and tells finish_connections when one ends
        self.changed = threading.Condition()

    def process_connection(self, sock: socket.socket, addr: tuple) -> None:
        while not self.slots.acquire(timeout=SLOT_WAIT):
            if self.stopping:
                sock.close()
                return
        with self.changed:
            self.connections.add(sock)
        try:
            threading.Thread(target=self.serve_in_thread, args=(sock, addr), daemon=True).start()
        except RuntimeError:  # can't start new thread: give back what the thread would have
            self.forget(sock)
            raise

    def serve_in_thread(self, sock: socket.socket, addr: tuple) -> None:
        try:
            self.serve_connection(sock, addr)
        finally:
            self.forget(sock)

    def forget(self, sock: socket.socket) -> None:
        """The connection is over: free its slot and tell finish_connections."""
        with self.changed:
            self.connections.discard(sock)
            self.changed.notify_all()
        self.slots.release()

    def finish_connections(self) -> None:
        deadline = time.monotonic() + self.options.graceful_timeout
        with self.changed:
            for sock in self.connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)
            while self.connections and (left := deadline - time.monotonic()) > 0:
                self.changed.wait(left)
