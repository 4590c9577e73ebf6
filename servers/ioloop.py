"""A tornado-style I/O loop: fd handlers, callbacks, a timer heap and a waker, on one thread.

The poller is a small adapter chosen once at import: ``select.epoll`` where the platform has it,
``selectors`` elsewhere. Event masks are epoll's values on both. Only ``add_callback`` (and
``stop``) may be called from other threads; everything else belongs to the loop's thread.

As in tornado, an exception from a callback, a timeout or an fd handler is logged and the loop
goes on: one failing connection must not end every other one.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import select
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable

from servers.base import Waker, log_exception

READ = 0x001
WRITE = 0x004
ERROR = 0x008 | 0x010  # EPOLLERR | EPOLLHUP
#: the longest the loop sleeps when nothing is scheduled (it wakes for any fd or the waker anyway)
MAX_POLL = 3600.0
#: rebuild the heap once this many cancelled timeouts sit in it (and they are half of it)
CANCEL_SWEEP = 512

Handler = Callable[[int, int], None]


class EpollPoller:
    """What the loop asks of a poller, over ``select.epoll`` (level-triggered).

    ``register``/``modify`` set the events an fd is watched for (READ, WRITE; 0 watches none),
    ``unregister`` forgets it, and ``poll(timeout)`` waits up to ``timeout`` seconds and returns
    ``(fd, events)`` for every ready fd, ERROR included whatever was asked. epoll's own methods
    already mean exactly that, so they are bound here once: the loop calls straight into epoll,
    with no Python call between it and the kernel on every turn.
    """

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.register = self.epoll.register
        self.modify = self.epoll.modify
        self.unregister = self.epoll.unregister
        self.poll = self.epoll.poll
        self.close = self.epoll.close


class SelectorsPoller:
    """The same interface over ``selectors`` (which cannot hold an fd with no events)."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()

    def register(self, fd: int, events: int) -> None:
        if mask := self.mask(events):
            self.selector.register(fd, mask)

    def modify(self, fd: int, events: int) -> None:
        self.unregister(fd)
        self.register(fd, events)

    def unregister(self, fd: int) -> None:
        with contextlib.suppress(KeyError):
            self.selector.unregister(fd)

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        ready = self.selector.select(timeout)
        return [(key.fd, self.events(mask)) for key, mask in ready]

    def close(self) -> None:
        self.selector.close()

    @staticmethod
    def mask(events: int) -> int:
        return (selectors.EVENT_READ if events & READ else 0) | (
            selectors.EVENT_WRITE if events & WRITE else 0
        )

    @staticmethod
    def events(mask: int) -> int:
        return (READ if mask & selectors.EVENT_READ else 0) | (
            WRITE if mask & selectors.EVENT_WRITE else 0
        )


Poller = EpollPoller if hasattr(select, "epoll") else SelectorsPoller


class Timeout:
    """A scheduled callback; cancelling marks it dead instead of searching the heap."""

    __slots__ = ("deadline", "seq", "callback")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.seq = seq
        self.callback: Callable[[], None] | None = callback

    def __lt__(self, other: Timeout) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


class IOLoop:
    """Runs fd handlers, callbacks and timeouts on one thread until :meth:`stop`.

    Each turn of :meth:`start` does four things in order: run the callbacks queued so far, run
    the timeouts that are due, work out how long it may sleep, then poll and call the handler of
    every ready fd. A handler is ``handler(fd, events)`` with events a mask of READ, WRITE and
    ERROR. Only :meth:`add_callback` and :meth:`stop` may be called from other threads.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, poller=None) -> None:
        #: the time source; injectable so tests can drive timeouts
        self.clock = clock
        #: epoll or its selectors stand-in
        self.poller = poller or Poller()
        #: fd → handler(fd, events)
        self.handlers: dict[int, Handler] = {}
        #: (callback, args) to run on the next turn; the only state other threads touch
        self.callbacks: deque = deque()
        #: heap of Timeout
        self.timeouts: list[Timeout] = []
        #: cancelled timeouts still in the heap
        self.cancelled = 0
        self.sequence = itertools.count()
        #: wakes a sleeping poll for callbacks from other threads and for stop()
        self.waker = Waker()
        #: the thread running start(); others must go through add_callback
        self.thread_id: int | None = None
        self.running = False
        self.add_handler(self.waker.fileno(), lambda fd, events: self.waker.drain(), READ)

    def add_handler(self, fd: int, handler: Handler, events: int) -> None:
        """Call ``handler(fd, events)`` whenever ``fd`` is ready for ``events`` (or fails)."""
        self.handlers[fd] = handler
        self.poller.register(fd, events)

    def update_handler(self, fd: int, events: int) -> None:
        """Watch ``fd`` for other events (0: none, until the next update)."""
        self.poller.modify(fd, events)

    def remove_handler(self, fd: int) -> None:
        """Forget ``fd``; harmless when it was never added or is already gone."""
        if self.handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def add_callback(self, callback: Callable, *args) -> None:
        """Run ``callback(*args)`` on the loop's thread; safe to call from any thread."""
        self.callbacks.append((callback, args))
        if threading.get_ident() != self.thread_id:
            self.waker.wake()

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Timeout:
        """Run ``callback()`` once ``clock()`` reaches ``deadline``; the Timeout cancels it."""
        timeout = Timeout(deadline, next(self.sequence), callback)
        heapq.heappush(self.timeouts, timeout)
        return timeout

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timeout:
        """Run ``callback()`` ``delay`` seconds from now."""
        return self.call_at(self.clock() + delay, callback)

    def remove_timeout(self, timeout: Timeout) -> None:
        """Cancel ``timeout``: it stays in the heap, marked dead, until popped or swept."""
        if timeout.callback is not None:  # not fired yet, so still in the heap
            timeout.callback = None
            self.cancelled += 1

    def start(self) -> None:
        """Run turns until :meth:`stop`; exceptions from callbacks and handlers are logged."""
        self.running = True
        self.thread_id = threading.get_ident()
        while self.running:
            # Callbacks first: they were queued by the last turn or by other threads and are due.
            for _ in range(len(self.callbacks)):
                callback, args = self.callbacks.popleft()
                try:
                    callback(*args)
                except Exception:
                    log_exception(f"error in callback {callback!r}")
            # Due timers next, so a timer never waits behind a whole poll.
            now = self.run_due_timeouts()
            # Sleep until the next timer at most, and not at all when callbacks are waiting.
            wait = self.poll_timeout(now)
            # Poll and dispatch every ready fd to its handler.
            for fd, events in self.poller.poll(wait):
                handler = self.handlers.get(fd)
                if handler is not None:
                    try:
                        handler(fd, events)
                    except Exception:
                        log_exception(f"error in the handler of fd {fd}")

    def run_due_timeouts(self) -> float:
        """Run every timeout due by now (dropping cancelled ones on the way); returns now."""
        now = self.clock()
        timeouts = self.timeouts
        while timeouts and (timeouts[0].callback is None or timeouts[0].deadline <= now):
            timeout = heapq.heappop(timeouts)
            callback, timeout.callback = timeout.callback, None
            if callback is None:
                self.cancelled -= 1
                continue
            try:
                callback()
            except Exception:
                log_exception(f"error in timeout {callback!r}")
        if self.cancelled > CANCEL_SWEEP and self.cancelled > len(timeouts) // 2:
            self.timeouts = [t for t in timeouts if t.callback is not None]
            heapq.heapify(self.timeouts)
            self.cancelled = 0
        return now

    def poll_timeout(self, now: float) -> float:
        """How long the poll may sleep: until the next timeout, not at all with callbacks queued."""
        if self.callbacks or not self.running:
            return 0.0
        if not self.timeouts:
            return MAX_POLL
        # Comparisons rather than min() and max(): this runs every turn, and a builtin call
        # parses its arguments in C each time.
        wait = self.timeouts[0].deadline - now
        if wait <= 0.0:
            return 0.0
        return wait if wait < MAX_POLL else MAX_POLL

    def stop(self) -> None:
        """End start() after the current turn; safe from any thread."""
        self.running = False
        self.waker.wake()

    def close(self) -> None:
        """Release the poller and the waker; the loop cannot start again."""
        self.poller.close()
        self.waker.close()
