"""A process per connection, like socketserver's ForkingMixIn, with keep-alive; or prefork.

Per connection: the parent accepts, forks, closes its copy of the client socket at once and goes
back to accepting; it never runs the app. The child serves the connection (keep-alive included)
and exits. ``--max-children`` caps the children; at the cap the parent stops accepting until one
exits. Children are reaped promptly: SIGCHLD only wakes the loop, which then calls
``waitpid(-1, WNOHANG)`` until nothing is left to reap.

Prefork (``workers=N``): N long-lived children each run the accept loop on the inherited listening
socket and serve connections one after another; the parent only supervises, restarting a worker
that dies. It shows what forking per connection costs against reusing processes.

On stop the parent stops accepting, forwards SIGTERM to its children and waits for them (up to
``graceful_timeout``, then SIGKILL). A child's SIGTERM shuts its connection down for reading: an
idle one ends at once, one inside a request finishes its response first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

from servers.base import BlockingServer, ServerOptions, Waker, require

#: how often the parent looks at its children while waiting for a free slot or for them to exit
CHILD_POLL = 0.05


@dataclasses.dataclass(frozen=True)
class ForkOptions(ServerOptions):
    #: the cap on per-connection children
    max_children: int = 64
    #: prefork worker count; 0 means a process per connection
    workers: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.max_children >= 1, "max_children", self.max_children, "an integer >= 1")
        require(self.workers >= 0, "workers", self.workers,
                "an integer >= 0 (0: a process per connection)")  # fmt: skip


class ForkServer(BlockingServer):
    multithread = False
    multiprocess = True
    Options = ForkOptions

    def setup(self) -> None:
        #: pids of live children
        self.children: set[int] = set()
        #: True in a prefork worker (which serves inline instead of forking)
        self.in_worker = False
        #: the supervising parent's pid, which a prefork worker watches
        self.parent_pid = os.getpid()

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        signal.signal(signal.SIGCHLD, lambda *_: self.waker.wake())

    # -- the parent ----------------------------------------------------------------------------

    def run(self) -> None:
        if self.options.workers:
            self.supervise_workers()
        else:
            self.accept_loop()
        self.socket.close()
        self.finish_connections()

    def process_connection(self, sock: socket.socket, addr: tuple) -> None:
        if self.in_worker:
            self.serve_inline(sock, addr)
            return
        self.wait_for_slot()
        if self.stopping:
            sock.close()
            return
        pid = self.fork_child(lambda: self.serve_child(sock, addr))
        sock.close()
        self.children.add(pid)

    def wait_for_slot(self) -> None:
        while len(self.children) >= self.options.max_children and not self.stopping:
            self.sleep_until_woken(CHILD_POLL)
            self.reap()

    def service_actions(self) -> None:
        if self.in_worker:
            self.stop_if_orphaned()
        else:
            self.reap()

    def reap(self) -> None:
        while self.children:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)

    def supervise_workers(self) -> None:
        while not self.stopping:
            while len(self.children) < self.options.workers:
                self.children.add(self.fork_child(self.run_worker))
            self.sleep_until_woken(0.5)
            self.reap()

    def sleep_until_woken(self, seconds: float) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.waker, selectors.EVENT_READ)
            if selector.select(seconds):
                self.waker.drain()

    def finish_connections(self) -> None:
        self.signal_children(signal.SIGTERM)
        deadline = time.monotonic() + self.options.graceful_timeout
        while self.children and time.monotonic() < deadline:
            self.sleep_until_woken(CHILD_POLL)
            self.reap()
        if self.children:
            self.signal_children(signal.SIGKILL)
            while self.children:
                self.sleep_until_woken(CHILD_POLL)
                self.reap()

    def signal_children(self, signum: int) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    # -- a child -------------------------------------------------------------------------------

    def fork_child(self, serve: Callable[[], None]) -> int:
        pid = os.fork()
        if pid:
            return pid
        status = 0
        try:
            self.become_child()
            serve()
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            # Never return into the parent's code (or a test runner's) from a forked child.
            sys.stderr.flush()
            os._exit(status)

    def become_child(self) -> None:
        self.children = set()
        self.waker.close()  # the parent's: waking it from here would wake the parent
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self.request_stop)

    def serve_child(self, sock: socket.socket, addr: tuple) -> None:
        self.socket.close()  # a per-connection child never accepts
        self.serve_inline(sock, addr)

    def run_worker(self) -> None:
        self.in_worker = True
        self.waker = Waker()  # a worker runs its own accept loop, which SIGTERM must wake
        self.accept_loop()

    def stop_if_orphaned(self) -> None:
        # A parent killed outright (SIGKILL, OOM) forwards no SIGTERM; without this check its
        # workers would accept on the inherited socket forever. gunicorn's workers do the same.
        if os.getppid() != self.parent_pid:
            self.request_stop()
