"""Open-loop load: requests leave on a fixed schedule, whatever the server's response times.

Loaded by the runner beside ``instrument.py`` and any scenario file when a cell is open loop:

    locust -f instrument.py,openloop.py,scenarios.py -u 32 PlaintextUser   # BENCH_OPEN_RATES=800

Locust's users are closed loops: a user sends its next request only when the last one answered,
so a server that stalls is sent fewer requests during the stall, and the stall hides in the
numbers (coordinated omission). Here, as with wrk2 or k6's constant-arrival-rate executor, the
send times are fixed in advance: ``BENCH_OPEN_RATES`` requests per second in all, evenly spaced.
With several rates (``400,800,1200``) and as many steps (``BENCH_STEPS``, ``instrument.py``), each
step offers the next rate, its schedule starting afresh.

- In each process a dispatcher puts a ticket, its intended send time, in a queue at every send
  time of the process's share of the rate; every user class of the run gets the ``OpenLoop``
  mixin at ``init``, so between tasks a user takes the next ticket instead of its ``wait_time``.
- Latency counts from the intended send time: each request carries it in its context, and
  ``instrument.py`` adds how late it left to its response time.
- The users bound the requests in flight (``--users``): when all of them wait for answers, tickets
  wait in the queue, their requests leave late, and ``instrument.py`` counts each one that left
  over ``bench.flags.LATE_GRACE_MS`` late ("late at the generator").
- The unit of the schedule is a task; our scenarios' tasks send one request each.
"""

from __future__ import annotations

import os
import time

import gevent
from gevent.queue import Queue
from locust import events
from locust.runners import MasterRunner

from bench.measure.latency import INTENDED_SEND, STEP_MESSAGE


class Schedule:
    """The send times of this process: evenly spaced at its users' share of the offered rate."""

    def __init__(self) -> None:
        #: requests per second each user of the run stands for: the offered rate ÷ all users
        self.rate_per_user = 0.0
        #: the next send time, seconds since the epoch; None: the next tick starts the schedule
        self.next_send: float | None = None
        #: intended send times due and not yet taken by a user
        self.tickets: Queue = Queue()
        #: counts restarts, so a tick of the old schedule is dropped when it wakes up
        self.generation = 0

    def restart(self, rate_per_user: float) -> None:
        """Offer a new rate from now on; due tickets of the old one are dropped, not carried."""
        self.rate_per_user, self.next_send = rate_per_user, None
        self.generation += 1
        while not self.tickets.empty():
            self.tickets.get_nowait()

    def run(self, environment) -> None:
        """Put a ticket in the queue at every send time, for as long as the test runs."""
        while True:
            generation = self.generation
            if self.next_send is None:
                self.next_send = time.time()
            gevent.sleep(max(self.next_send - time.time(), 0.0))
            if generation != self.generation:
                continue
            self.tickets.put(self.next_send)
            # this process's share: workers each run some of the run's users
            process_users = max(environment.runner.target_user_count, 1)
            self.next_send += 1 / (self.rate_per_user * process_users)


#: the one schedule of this process, shared by its users
schedule = Schedule()
#: the offered requests/s of every step, in order
rates = [float(rate) for rate in os.environ["BENCH_OPEN_RATES"].split(",")]


class OpenLoop:
    """Mixed in before a user class: each task starts with a ticket of the schedule."""

    #: the send time of the task this user runs now; None until the user takes its first ticket
    intended_send: float | None = None

    def on_start(self) -> None:
        """Wait for a ticket before the first task too: users spawned at once would otherwise
        all send at once (a burst a slow server can take seconds to answer)."""
        super().on_start()
        self.intended_send = schedule.tickets.get()

    def wait_time(self) -> float:
        self.intended_send = schedule.tickets.get()
        return 0.0

    def context(self) -> dict:
        """Every request of the task carries its intended send time (to ``instrument.py``)."""
        if self.intended_send is None:
            return super().context()
        return {**super().context(), INTENDED_SEND: self.intended_send}


def open_loop(user_class: type) -> type:
    """``user_class`` with the OpenLoop mixin, under the same name (Locust picks classes by it)."""
    return type(user_class)(user_class.__name__, (OpenLoop, user_class), {})


@events.init.add_listener
def open_every_user_class(environment, **_kwargs) -> None:
    environment.user_classes[:] = [open_loop(cls) for cls in environment.user_classes]
    offer(environment, 0)
    if not isinstance(environment.runner, MasterRunner):  # the master runs no users
        environment.runner.register_message(
            STEP_MESSAGE, lambda msg, **_kw: offer(environment, msg.data["step"])
        )


def offer(environment, step: int) -> None:
    schedule.restart(rates[step] / environment.parsed_options.num_users)


#: the dispatcher of this process while a test runs
dispatcher: list[gevent.Greenlet] = []


@events.test_start.add_listener
def start_dispatching(environment, **_kwargs) -> None:
    if not isinstance(environment.runner, MasterRunner):
        dispatcher.append(gevent.spawn(schedule.run, environment))


@events.test_stop.add_listener
def stop_dispatching(**_kwargs) -> None:
    while dispatcher:
        dispatcher.pop().kill()
