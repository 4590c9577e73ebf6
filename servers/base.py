"""What every model shares: the listening socket, the waker, stopping, and the blocking loop.

``BaseServer`` owns the options, the listener and the WSGI adapter. ``BlockingServer`` adds the
accept loop and ``serve_connection(sock, addr)``: read a request through ``servers.http``, call
the app, repeat while keep-alive allows. The blocking models (poll, threaded, fork) differ only in
``process_connection``: where that call runs.

Whatever our own code raises while serving one connection ends that connection only: a 500 when
no response had started yet, else a plain close, and one entry on stderr with the traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable

from servers.http import (
    NEED_DATA,
    Data,
    EndOfMessage,
    Limits,
    ProtocolError,
    Request,
    ServerConnection,
)
from servers.wsgi import WSGIAdapter

#: bytes asked of each recv: large, so a request and its body usually arrive in one call
RECV_SIZE = 65536
#: how long the accept loop sleeps at most before checking housekeeping (reaping, stopping)
POLL_INTERVAL = 0.5
#: accept() errors that mean "out of resources": pause accepting instead of spinning
RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
#: how long accepting pauses when the process is out of file descriptors
ACCEPT_PAUSE = 0.1


def log_exception(context: str) -> None:
    """One entry on stderr for an exception in the server's own code: where, then the traceback."""
    print(f"{context}:\n{traceback.format_exc()}", end="", file=sys.stderr, flush=True)


def bind_listener(host: str, port: int, backlog: int = 1024) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    # Non-blocking so several prefork workers can race for one connection without hanging.
    sock.setblocking(False)
    return sock


class Waker:
    """A pipe a signal handler or another thread writes to, to wake a loop blocked in select."""

    def __init__(self) -> None:
        #: (read end, write end), both non-blocking
        self.reader, self.writer = os.pipe()
        os.set_blocking(self.reader, False)
        os.set_blocking(self.writer, False)

    def fileno(self) -> int:
        return self.reader

    def wake(self) -> None:
        # A full pipe means the loop is awake already; a closed one, that the loop is gone.
        with contextlib.suppress(OSError):
            os.write(self.writer, b"x")

    def drain(self) -> None:
        try:
            while os.read(self.reader, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        # Forget the numbers first: a late wake() from another thread must not write into an
        # fd that the process has since reused for something else.
        reader, writer = self.reader, self.writer
        self.reader = self.writer = -1
        os.close(reader)
        os.close(writer)


def set_socket_timeout(sock: socket.socket, seconds: float) -> None:
    """A kernel-side timeout: unlike ``settimeout`` it costs no extra poll() per recv/send."""
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def require(ok: bool, name: str, value: object, valid: str) -> None:
    """Refuse a setting that would give a server that never answers, before anything is bound."""
    if not ok:
        raise ValueError(f"{name}={value!r} cannot work; use {valid}")


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """The keyword options every model takes; a model with options of its own extends it.

    A value that would give a server that never answers is a ValueError here, before anything
    is bound.
    """

    #: seconds a client may stay silent before its connection is dropped
    timeout: float = 10.0
    #: seconds in-flight requests get to finish after a stop was asked
    graceful_timeout: float = 10.0
    #: one line per request on stderr
    access_log: bool = False
    #: how much a client may send (servers.http.Limits)
    limits: Limits = Limits()

    def __post_init__(self) -> None:
        require(0 < self.timeout < math.inf, "timeout", self.timeout,
                "a finite number of seconds > 0")  # fmt: skip
        require(0 <= self.graceful_timeout < math.inf, "graceful_timeout", self.graceful_timeout,
                "a finite number of seconds >= 0")  # fmt: skip
        require(isinstance(self.limits, Limits), "limits", self.limits, "a servers.http.Limits")


class BaseServer:
    """Options, listener, adapter and the stop protocol shared by the four models.

    Every model is built the same way, ``Model(app, host, port, **options)``, where ``options``
    are the fields of its ``Options`` class; a model sets its own state up in ``setup()``.
    """

    #: PEP 3333 flags; each model states its own truth
    multithread = False
    multiprocess = False
    #: the options this model takes
    Options: type[ServerOptions] = ServerOptions

    def __init__(
        self, app: Callable, host: str = "127.0.0.1", port: int = 8000, **options: object
    ) -> None:
        require(callable(app), "app", app, "a callable WSGI app")
        #: the options, checked before anything is bound
        self.options = self.Options(**options)
        #: the listening socket, bound at once so port 0 resolves before serving
        self.socket = bind_listener(host, port)
        #: (host, port) actually bound
        self.server_address = self.socket.getsockname()[:2]
        #: serves one request through the shared WSGI adapter, told honestly how this model runs
        #: the app: ``adapter(conn, request, body, peer, send)``, the adapter's bound ``serve``
        self.adapter = WSGIAdapter(
            app,
            self.server_address,
            multithread=self.multithread,
            multiprocess=self.multiprocess,
            access_log=self.options.access_log,
        ).serve
        #: written to by signal handlers and shutdown() to wake the loop
        self.waker = Waker()
        #: set once a stop was asked: accept nothing more, keep no connection alive
        self.stopping = False
        #: set when serve_forever has returned
        self.done = threading.Event()
        #: True while serve_forever runs
        self.running = False
        #: the listener and waker are closed
        self.closed = False
        self.setup()

    def setup(self) -> None:
        """The model's own state, from ``self.options``; called once, at the end of __init__."""

    def request_stop(self, *_signal_args) -> None:
        """Safe from a signal handler or another thread: flag, then wake the loop."""
        self.stopping = True
        self.waker.wake()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def serve_forever(self) -> None:
        self.running = True
        try:
            self.run()
        finally:
            self.close()
            self.done.set()

    def run(self) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        """Stop serving and wait until serve_forever has returned (call it from another thread)."""
        self.request_stop()
        if self.running:
            self.done.wait()
        else:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.socket.close()
            self.waker.close()


class BlockingServer(BaseServer):
    """An accept loop over a selector, and the blocking per-connection request loop."""

    #: how the accept loop waits; PollSelector where the platform has poll()
    selector_class = getattr(selectors, "PollSelector", selectors.SelectSelector)
    #: may a connection carry more than one request
    keep_alive = True
    #: the connection this thread serves inline (poll, a fork child), so a stop can end it
    current: socket.socket | None = None

    def request_stop(self, *_signal_args) -> None:
        super().request_stop()
        # An idle connection waits in recv: shut it down for reading and it ends at once, while
        # a request already inside the app still gets its response written.
        current = self.current
        if current is not None:
            with contextlib.suppress(OSError):
                current.shutdown(socket.SHUT_RD)

    def run(self) -> None:
        self.accept_loop()
        self.socket.close()
        self.finish_connections()

    def accept_loop(self) -> None:
        with self.selector_class() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self.waker, selectors.EVENT_READ)
            while not self.stopping:
                for key, _ in selector.select(POLL_INTERVAL):
                    if key.fileobj is self.waker:
                        self.waker.drain()
                    elif not self.stopping:
                        self.accept()
                self.service_actions()

    def accept(self) -> None:
        try:
            sock, addr = self.socket.accept()
        except OSError as err:
            # Out of fds the listener stays readable: pause rather than spin on it. Otherwise
            # another worker won the race for this connection, or the client left while queued.
            if err.errno in RESOURCE_ERRORS:
                time.sleep(ACCEPT_PAUSE)
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        set_socket_timeout(sock, self.options.timeout)
        try:
            self.process_connection(sock, addr)
        except Exception:
            # No thread or process to serve it (out of either): this connection is lost, the
            # accept loop is not.
            log_exception(f"error handing over {addr[0]}:{addr[1]}")
            sock.close()

    def process_connection(self, sock: socket.socket, addr: tuple) -> None:
        """Where a model decides what runs ``serve_connection``: inline, a thread, a process."""
        raise NotImplementedError

    def service_actions(self) -> None:
        """Housekeeping after each loop turn (the fork model reaps children here)."""

    def finish_connections(self) -> None:
        """After the loop: let in-flight requests finish, up to graceful_timeout."""

    def serve_inline(self, sock: socket.socket, addr: tuple) -> None:
        self.current = sock
        try:
            if not self.stopping:  # a stop that came before ``current`` was set
                self.serve_connection(sock, addr)
        finally:
            self.current = None
            sock.close()

    def serve_connection(self, sock: socket.socket, addr: tuple) -> None:
        conn = ServerConnection(self.options.limits)
        try:
            while self.serve_request(sock, addr, conn):
                conn.start_next_cycle()
        except ProtocolError as err:
            with contextlib.suppress(OSError):
                sock.sendall(conn.error_response(err))
        except OSError:
            pass  # reset, broken pipe or timeout: the client is gone or silent
        except Exception:
            self.contain_failure(sock, addr, conn)
        finally:
            sock.close()

    def contain_failure(self, sock: socket.socket, addr: tuple, conn: ServerConnection) -> None:
        """Our own code failed on this connection: log it, and answer 500 if nothing went out."""
        log_exception(f"error serving {addr[0]}:{addr[1]}")
        if not conn.response_started:
            with contextlib.suppress(OSError):
                sock.sendall(conn.internal_error_response())

    def serve_request(self, sock: socket.socket, addr: tuple, conn: ServerConnection) -> bool:
        """Read one request with its whole body, answer it; True when the connection stays open."""
        request = receive(sock, conn)
        if type(request) is not Request:
            return False
        if conn.expects_continue:
            sock.sendall(conn.send_continue())
        body = read_body(sock, conn)
        if body is None:
            return False
        if self.stopping or not self.keep_alive:
            conn.keep_alive = False
        kept = self.adapter(conn, request, body, addr, sock.sendall)
        return kept and conn.keep_alive and not self.stopping


def receive(sock: socket.socket, conn: ServerConnection):
    """The next event, reading from the socket as long as the layer needs more data."""
    while True:
        event = conn.next_event()
        if event is not NEED_DATA:
            return event
        conn.receive_data(sock.recv(RECV_SIZE))


def read_body(sock: socket.socket, conn: ServerConnection) -> bytes | None:
    """The whole (de-chunked) body, or None when the client left before its end."""
    parts = []
    while True:
        event = receive(sock, conn)
        if type(event) is Data:
            parts.append(event.data)
        elif type(event) is EndOfMessage:
            return b"".join(parts)
        else:
            return None  # CONNECTION_CLOSED: nothing left to answer
