"""A tornado-style event loop: every connection on one thread, driven by readiness.

The listener and each connection register with an ``IOLoop``. A connection is a small state
machine (:class:`State`, its moves in :data:`TRANSITIONS`): read → parse (``ServerConnection``) →
once the body is complete, call the app → buffer the response → write it when the loop's turn
ends, with the turn's other responses, then by partial sends (watching EPOLLOUT only while output
is pending) → keep the connection alive or close it. The app runs on the loop thread, as
tornado's WSGIContainer does, so a blocking app blocks every connection; ``threads=N`` hands app
calls to a thread pool instead and gets the response back through a callback and the loop's waker.

Failures: an exception from our own code while a connection is served (parsing, the adapter, an
app call in the pool) is logged and ends that connection only: a 500 when no response had started
writing, else a close. The loop itself logs and goes on for anything else (see ``servers.ioloop``).

Timers: a connection has one timer on the loop's heap. It closes the connection when the head (or
body) of a request takes longer than ``timeout`` (10 s) or a keep-alive connection stays idle
longer than ``idle_timeout`` (5 s). A later deadline only moves a number (the timer re-arms
itself when it fires early); only an earlier one replaces the timer, so a busy connection causes
no heap churn. Before a timer drops a connection that waits for a request, it reads what the
socket holds: an app call on the loop thread may have kept the loop from seeing it in time.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import socket
from concurrent.futures import ThreadPoolExecutor

from servers.base import (
    ACCEPT_PAUSE,
    RECV_SIZE,
    RESOURCE_ERRORS,
    BaseServer,
    ServerOptions,
    log_exception,
    require,
)
from servers.http import NEED_DATA, Data, EndOfMessage, ProtocolError, Request, ServerConnection
from servers.ioloop import ERROR, READ, WRITE, IOLoop

#: accepts per listener wake-up, so a burst of connections cannot starve the established ones
ACCEPTS_PER_WAKE = 64
#: seconds a turn's finished responses may wait for the turn's other app calls before they are
#: written anyway: batching saves the client's wake-ups, a blocking app call must not hold them
WRITE_BATCH_S = 0.001


@dataclasses.dataclass(frozen=True)
class EpollOptions(ServerOptions):
    #: app calls run on a pool of this many threads; 0: on the loop thread
    threads: int = 0
    #: seconds a keep-alive connection may wait for its next request (at most ``timeout``)
    idle_timeout: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.threads >= 0, "threads", self.threads,
                "an integer >= 0 (0: the app runs on the loop)")  # fmt: skip
        require(0 < self.idle_timeout < math.inf, "idle_timeout", self.idle_timeout, "seconds > 0")


class EpollServer(BaseServer):
    multiprocess = False
    Options = EpollOptions

    @property
    def multithread(self) -> bool:
        """PEP 3333: true only when app calls are spread over a thread pool."""
        return self.options.threads > 0

    def setup(self) -> None:
        threads = self.options.threads
        #: the loop every connection of this server lives on
        self.loop = IOLoop()
        #: runs app calls off the loop thread when threads > 0
        self.pool = ThreadPoolExecutor(threads, "epoll-app") if threads else None
        #: seconds a keep-alive connection may wait for its next request
        self.idle_timeout = min(self.options.idle_timeout, self.options.timeout)
        #: open connections, so a stop can close the idle ones and wait for the rest
        self.connections: set[Connection] = set()
        #: the listener is registered with the loop
        self.accepting = False
        #: connections whose response goes out with the rest of this turn's (see queue_write)
        self.queued: list[Connection] = []
        #: when the first of them was queued, by the loop's clock
        self.first_queued_at = 0.0

    def run(self) -> None:
        self.loop.add_handler(self.waker.fileno(), self.on_wake, READ)
        self.start_accepting()
        self.loop.start()

    # -- writing: a turn's responses together ----------------------------------------------------

    def queue_write(self, conn: Connection) -> None:
        """Write ``conn``'s response at the start of the next turn, together with every response
        made in this one (as bjoern's write watchers and Redis's before-sleep writes do): a client
        that waits on several connections is then woken once per turn, not once per response.
        Once the turn has run longer than WRITE_BATCH_S (a slow app call on the loop thread), the
        queue goes out at once: a finished response never waits behind more than one slow call."""
        now = self.loop.clock()
        if not self.queued:
            self.first_queued_at = now
            self.loop.add_callback(self.write_queued)
        self.queued.append(conn)
        if now - self.first_queued_at > WRITE_BATCH_S:
            self.write_queued()

    def write_queued(self) -> None:
        connections, self.queued = self.queued, []
        for conn in connections:
            try:
                conn.flush()
            except Exception:
                conn.fail()

    # -- accepting -----------------------------------------------------------------------------

    def start_accepting(self) -> None:
        if not self.stopping and not self.accepting:
            self.loop.add_handler(self.socket.fileno(), self.on_acceptable, READ)
            self.accepting = True

    def stop_accepting(self) -> None:
        if self.accepting:
            self.loop.remove_handler(self.socket.fileno())
            self.accepting = False

    def on_acceptable(self, fd: int, events: int) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, addr = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno in RESOURCE_ERRORS:
                    self.stop_accepting()
                    self.loop.call_later(ACCEPT_PAUSE, self.start_accepting)
                    return
                continue  # the client gave up while queued: take the next one
            self.connections.add(Connection(self, sock, addr))

    # -- stopping ------------------------------------------------------------------------------

    def on_wake(self, fd: int, events: int) -> None:
        self.waker.drain()
        if self.stopping and self.socket.fileno() != -1:
            self.begin_stop()

    def begin_stop(self) -> None:
        self.stop_accepting()
        self.socket.close()
        for connection in list(self.connections):
            connection.close_if_idle()
        self.loop.call_later(self.options.graceful_timeout, self.loop.stop)
        self.stop_when_drained()

    def connection_closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if self.stopping:
            self.stop_when_drained()

    def stop_when_drained(self) -> None:
        if not self.connections:
            self.loop.stop()

    def close(self) -> None:
        for connection in list(self.connections):
            connection.close()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if not self.closed:
            self.loop.close()
        super().close()


class State(enum.Enum):
    """Where a connection is in its request cycle."""

    # Members are singletons, equal only to themselves: hash them by identity, in C. Enum's own
    # __hash__ is a Python call, and every move hashes a state twice (the table, its set).
    __hash__ = object.__hash__

    #: between requests: waiting for (the rest of) the next request head
    IDLE = "idle"
    #: a head arrived; its body is arriving
    READING = "reading"
    #: the app runs in the pool; nothing is read or written until it hands the response back
    IN_APP = "in app"
    #: a response is being written; reading waits until it is out
    RESPONDING = "responding"
    CLOSED = "closed"


# EnumType defines __getattr__, so in Python 3.11 every ``State.IDLE`` on the loop's path is a
# lookup through a Python-level hook; the module names below are plain global lookups.
IDLE, READING, IN_APP = State.IDLE, State.READING, State.IN_APP
RESPONDING, CLOSED = State.RESPONDING, State.CLOSED


#: state → the states it may move to; anything else is a bug of ours (contained like one)
TRANSITIONS = {
    IDLE: {READING, RESPONDING, CLOSED},
    READING: {IN_APP, RESPONDING, CLOSED},
    IN_APP: {RESPONDING, CLOSED},
    RESPONDING: {IDLE, CLOSED},
    CLOSED: set(),
}


class Connection:
    """One client connection's state machine on the loop (see :data:`TRANSITIONS`)."""

    def __init__(self, server: EpollServer, sock: socket.socket, addr: tuple) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server = server
        self.loop = server.loop
        #: the client socket, its fd (kept: the number outlives close()) and address
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        #: the HTTP layer for this connection
        self.conn = ServerConnection(server.options.limits)
        #: where the connection is in its request cycle
        self.state = IDLE
        #: the current request's head and the body parts received so far
        self.request: Request | None = None
        self.body: list[bytes] = []
        #: output not yet accepted by the kernel
        self.output = bytearray()
        #: keep the connection after the response being written
        self.keep = False
        #: the events registered with the loop
        self.events = READ
        #: when the connection is dropped unless something happens first, and the timer checking it
        self.deadline = self.loop.clock() + server.options.timeout
        self.timer = self.loop.call_at(self.deadline, self.on_timer)
        self.loop.add_handler(self.fd, self.on_events, READ)

    @property
    def closed(self) -> bool:
        return self.state is CLOSED

    def move(self, state: State) -> None:
        """Enter ``state``, by a transition the table allows."""
        if state not in TRANSITIONS[self.state]:
            raise RuntimeError(f"connection moved from {self.state.value} to {state.value}")
        self.state = state

    def on_events(self, fd: int, events: int) -> None:
        try:
            if events & ERROR:
                self.close()
            elif events & WRITE:
                self.flush()
            elif events & READ:
                self.on_readable()
        except Exception:
            self.fail()

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        self.conn.receive_data(data)
        self.advance()

    def advance(self) -> None:
        """Turn received bytes into events; answer each complete request while output drains."""
        conn = self.conn
        while self.state is IDLE or self.state is READING:
            try:
                event = conn.next_event()
            except ProtocolError as err:
                self.reject(err)
                return
            kind = type(event)
            if kind is Request:
                self.start_request(event)
            elif kind is EndOfMessage:
                self.run_app()
            elif kind is Data:
                self.body.append(event.data)
            elif event is NEED_DATA:
                self.set_events(WRITE if self.output else READ)
                return
            else:  # CONNECTION_CLOSED: the client left (mid-request there is nobody to answer)
                self.close()
                return

    def start_request(self, request: Request) -> None:
        self.request = request
        self.move(READING)
        self.set_deadline(self.server.options.timeout)
        if self.conn.expects_continue:
            self.write(self.conn.send_continue())

    def run_app(self) -> None:
        body = b"".join(self.body)
        self.body = []
        if self.server.stopping:
            self.conn.keep_alive = False
        if self.server.pool is None:
            output, kept = self.call_app(body)
            self.respond(output, kept)
            return
        self.move(IN_APP)
        # Nothing to read until the pool hands the response back (a 100 Continue may still drain).
        self.set_events(WRITE if self.output else 0)
        self.server.pool.submit(self.call_app_in_pool, body)

    def call_app(self, body: bytes) -> tuple[list[bytes], bool]:
        output: list[bytes] = []
        kept = self.server.adapter(self.conn, self.request, body, self.addr, output.append)
        return output, kept

    def call_app_in_pool(self, body: bytes) -> None:
        try:
            self.loop.add_callback(self.on_app_done, *self.call_app(body))
        except Exception:
            self.log_failure()
            self.loop.add_callback(self.abort)

    def on_app_done(self, output: list[bytes], kept: bool) -> None:
        if self.closed:
            return
        try:
            self.respond(output, kept)
            self.advance()
        except Exception:
            self.fail()

    def respond(self, output: list[bytes], kept: bool) -> None:
        self.keep = kept and self.conn.keep_alive and not self.server.stopping
        self.send_response(b"".join(output))

    def reject(self, err: ProtocolError) -> None:
        self.keep = False
        self.send_response(self.conn.error_response(err))

    def fail(self) -> None:
        """Our own code raised while serving this connection: log it, end this connection only."""
        self.log_failure()
        self.abort()

    def log_failure(self) -> None:
        log_exception(f"error serving {self.addr[0]}:{self.addr[1]}")

    def abort(self) -> None:
        """A 500 when no byte of a response went out yet (the adapter only buffers), else close."""
        if self.state is RESPONDING or self.state is CLOSED:
            self.close()
        else:
            self.keep = False
            self.send_response(self.conn.internal_error_response())

    def send_response(self, response: bytes) -> None:
        self.move(RESPONDING)
        self.output += response
        self.server.queue_write(self)

    def write(self, data: bytes) -> None:
        if self.output:
            self.output += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):
            self.output += memoryview(data)[sent:]
            self.set_events(WRITE)

    def flush(self) -> None:
        if self.state is CLOSED:
            return
        try:
            sent = self.sock.send(self.output)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        del self.output[:sent]
        if self.output:
            if sent:
                self.set_deadline(self.server.options.timeout)
            self.set_events(WRITE)
            return
        if self.state is RESPONDING:
            self.finish_response()
        elif self.state is READING:
            self.set_events(READ)  # a 100 Continue went out; the body comes next
        else:
            self.set_events(0)  # ... while the app already runs in the pool

    def finish_response(self) -> None:
        if not self.keep:
            self.close()
            return
        self.conn.start_next_cycle()
        self.request = None
        self.move(IDLE)
        self.set_deadline(self.server.idle_timeout)
        if self.conn.has_unread_input:  # a pipelined request, or the client's close
            self.advance()
        else:
            self.set_events(READ)  # (the response may have been written through EPOLLOUT)

    def set_events(self, events: int) -> None:
        if events != self.events and self.state is not CLOSED:
            self.loop.update_handler(self.fd, events)
            self.events = events

    def set_deadline(self, seconds: float) -> None:
        self.deadline = self.loop.clock() + seconds
        if self.timer is not None and self.deadline < self.timer.deadline:
            self.loop.remove_timeout(self.timer)
            self.timer = self.loop.call_at(self.deadline, self.on_timer)

    def on_timer(self) -> None:
        self.timer = None
        if self.closed:
            return
        now = self.loop.clock()
        if self.state is IN_APP:
            self.deadline = now + self.server.options.timeout  # the app's time is not the client's
        elif now >= self.deadline and self.state in (IDLE, READING):
            # An app call on the loop thread can hold the loop past this deadline while a request
            # waits unread in the socket: read what is there before calling the client silent.
            self.on_events(self.fd, READ)
            if self.closed:
                return
        if now >= self.deadline:
            self.close()
            return
        self.timer = self.loop.call_at(self.deadline, self.on_timer)

    def close_if_idle(self) -> None:
        """On stop: a connection between requests goes at once, one inside a request finishes."""
        if self.state is IDLE:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.state = CLOSED
        self.loop.remove_handler(self.fd)
        if self.timer is not None:
            self.loop.remove_timeout(self.timer)
        self.sock.close()
        self.server.connection_closed(self)
