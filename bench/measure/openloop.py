"""Open-loop load: requests leave on a fixed schedule, whatever the server's response times.

Loaded by the runner beside ``instrument.py`` and any scenario file when a cell is open loop:

    locust -f instrument.py,openloop.py,scenarios.py -u 32 PlaintextUser    # BENCH_OPEN_RATE=800

Locust's users are closed loops: a user sends its next request only when the last one answered,
so a server that stalls is sent fewer requests during the stall, and the stall hides in the
numbers (coordinated omission). Here, as with wrk2 or k6's constant-arrival-rate executor, the
send times are fixed in advance: ``BENCH_OPEN_RATE`` requests per second in all, evenly spaced.
Every user class of the run gets the ``OpenLoop`` mixin at ``init``: between tasks a user takes
the next free send time of its process and waits for it, instead of its own ``wait_time``.

- Latency counts from the intended send time: each request carries it in its context, and
  ``instrument.py`` adds how late it left to its response time.
- The users are the bound on requests in flight (``--users``): when all of them wait for answers,
  the next send times pass unclaimed, their requests leave late, and ``instrument.py`` counts
  each one that left over ``bench.flags.LATE_GRACE_MS`` late ("late at the generator").
- The unit of the schedule is a task; our scenarios' tasks send one request each.
"""

from __future__ import annotations

import os
import time

import gevent
from locust import events

from bench.measure.latency import INTENDED_SEND


class Schedule:
    """The send times of this process: evenly spaced at its users' share of the offered rate."""

    def __init__(self) -> None:
        #: requests per second each user of the run stands for: the offered rate ÷ all users
        self.rate_per_user = 0.0
        #: the next send time nobody has claimed, seconds since the epoch; None before the first
        self.next_send: float | None = None

    def claim(self, process_users: int) -> float:
        """The next send time; the one after it follows at the rate of this process's users
        (all of them, spawned or not yet: workers each run their share of the run's users)."""
        send = time.time() if self.next_send is None else self.next_send
        self.next_send = send + 1 / (self.rate_per_user * max(process_users, 1))
        return send


#: the one schedule of this process, shared by its users
schedule = Schedule()


class OpenLoop:
    """Mixed in before a user class: its tasks start at the schedule's send times."""

    #: the send time of the task this user runs now; None until the user takes its first
    intended_send: float | None = None

    def on_start(self) -> None:
        """Wait for a send time before the first task too: users spawned at once would otherwise
        all send at once (a burst a slow server can take seconds to answer)."""
        super().on_start()
        gevent.sleep(self.wait_time())

    def wait_time(self) -> float:
        self.intended_send = schedule.claim(self.environment.runner.target_user_count)
        return max(self.intended_send - time.time(), 0.0)

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
    rate = float(os.environ["BENCH_OPEN_RATE"])
    schedule.rate_per_user = rate / environment.parsed_options.num_users
    environment.user_classes[:] = [open_loop(cls) for cls in environment.user_classes]
