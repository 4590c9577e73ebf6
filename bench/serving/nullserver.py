"""The null reference: the fastest HTTP server Python can be on one core, and a generator gauge.

It parses nothing. It only counts the ends of request heads (``\\r\\n\\r\\n``) in what arrives and
answers each with the same canned ``200 OK`` plaintext response, keeping the connection alive, in
one thread on a selectors (epoll) loop. No real server can beat it on the same core, so a cell that
comes within 10% of it is limited by the load generator, not the server (``bench.analysis.pairs``).
Requests with a body are not supported: the suite's load scenarios only send GETs.

``python -m bench.serving.nullserver --host 127.0.0.1 --port 0`` prints ``listening on http://HOST:PORT``;
SIGTERM or SIGINT stops it with exit code 0. Standard library only.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys

BODY = b"Hello, World!"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
    b"\r\n" + BODY
)
HEAD_END = b"\r\n\r\n"
RECEIVE_SIZE = 65536


class Connection:
    """One client: counts head ends across reads and holds what the socket did not take yet."""

    def __init__(self, sock: socket.socket) -> None:
        #: the client socket, non-blocking
        self.sock = sock
        #: the last bytes received, kept so a head end split across two reads is still found
        self.tail = b""
        #: response bytes waiting for the socket to become writable
        self.unsent = b""

    def count_heads(self, data: bytes) -> int:
        window = self.tail + data
        self.tail = window[-(len(HEAD_END) - 1) :]
        return window.count(HEAD_END)


class NullServer:
    def __init__(self, host: str, port: int) -> None:
        #: the listening socket
        self.listener = socket.create_server((host, port), backlog=1024)
        self.listener.setblocking(False)
        #: where the loop waits for sockets to become ready
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        #: False once a stop signal arrived
        self.running = True

    @property
    def server_address(self) -> tuple[str, int]:
        return self.listener.getsockname()[:2]

    def serve_forever(self) -> None:
        # the short select timeout is how a stop request is noticed: ten idle wake-ups a second
        while self.running:
            for key, events in self.selector.select(timeout=0.1):
                if key.fileobj is self.listener:
                    self.accept()
                elif events & selectors.EVENT_READ:
                    self.read(key.data)
                else:
                    self.write(key.data)
        self.close()

    def accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(sock, selectors.EVENT_READ, Connection(sock))

    def read(self, connection: Connection) -> None:
        try:
            data = connection.sock.recv(RECEIVE_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(connection)
            return
        connection.unsent += RESPONSE * connection.count_heads(data)
        self.write(connection)

    def write(self, connection: Connection) -> None:
        if connection.unsent:
            try:
                sent = connection.sock.send(connection.unsent)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.drop(connection)
                return
            connection.unsent = connection.unsent[sent:]
        # wait for writability only while bytes are pending, so an idle client costs nothing
        events = selectors.EVENT_WRITE if connection.unsent else selectors.EVENT_READ
        if self.selector.get_key(connection.sock).events != events:
            self.selector.modify(connection.sock, events, connection)

    def drop(self, connection: Connection) -> None:
        self.selector.unregister(connection.sock)
        connection.sock.close()

    def shutdown(self) -> None:
        self.running = False

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving.nullserver", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    server = NullServer(args.host, args.port)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.shutdown())
    host, port = server.server_address
    print(f"listening on http://{host}:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
