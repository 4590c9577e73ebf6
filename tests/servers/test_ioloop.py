"""The I/O loop: timers on an injected clock, callbacks, fd dispatch and the waker, both pollers."""

from __future__ import annotations

import socket
import threading

import pytest

from servers.ioloop import READ, WRITE, EpollPoller, IOLoop, SelectorsPoller

POLLERS = [SelectorsPoller] + ([EpollPoller] if hasattr(__import__("select"), "epoll") else [])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=POLLERS, ids=lambda cls: cls.__name__)
def loop(request):
    loop = IOLoop(clock=FakeClock(), poller=request.param())
    yield loop
    loop.close()


def run_one_turn(loop: IOLoop) -> None:
    """Let the loop run exactly one pass of its four steps."""
    loop.add_callback(loop.stop)
    loop.start()


def test_timeouts_run_in_deadline_order_once_due(loop):
    ran = []
    loop.call_later(2, lambda: ran.append("b"))
    loop.call_later(1, lambda: ran.append("a"))
    loop.call_later(1, lambda: ran.append("a2"))  # same deadline: scheduling order
    run_one_turn(loop)
    assert ran == []
    loop.clock.now += 1
    run_one_turn(loop)
    assert ran == ["a", "a2"]
    loop.clock.now += 5
    run_one_turn(loop)
    assert ran == ["a", "a2", "b"]


def test_a_cancelled_timeout_never_runs_and_leaves_the_heap(loop):
    ran = []
    timeout = loop.call_later(1, lambda: ran.append("x"))
    loop.remove_timeout(timeout)
    loop.remove_timeout(timeout)  # twice is harmless
    loop.clock.now += 2
    run_one_turn(loop)
    assert ran == []
    assert loop.timeouts == []
    assert loop.cancelled == 0


def test_many_cancellations_are_swept_from_the_heap(loop):
    keep = loop.call_later(100, lambda: None)
    for _ in range(2000):
        loop.remove_timeout(loop.call_later(50, lambda: None))
    run_one_turn(loop)
    assert loop.timeouts == [keep]


def test_removing_a_fired_timeout_does_not_count_as_a_cancellation(loop):
    timeout = loop.call_later(0, lambda: None)
    run_one_turn(loop)
    loop.remove_timeout(timeout)
    assert loop.cancelled == 0


def test_poll_timeout_is_zero_with_callbacks_and_bounded_by_the_next_timer(loop):
    loop.running = True
    loop.call_later(3, lambda: None)
    assert loop.poll_timeout(loop.clock()) == 3
    loop.add_callback(lambda: None)
    assert loop.poll_timeout(loop.clock()) == 0


def test_fd_handlers_get_read_and_write_readiness(loop):
    left, right = socket.socketpair()
    with left, right:
        seen = []
        loop.add_handler(left.fileno(), lambda fd, events: seen.append(events), WRITE)
        run_one_turn(loop)
        assert seen and seen[-1] & WRITE
        seen.clear()
        loop.update_handler(left.fileno(), READ)
        run_one_turn(loop)
        assert seen == []  # nothing to read yet
        right.sendall(b"x")
        run_one_turn(loop)
        assert seen and seen[-1] & READ
        loop.remove_handler(left.fileno())
        seen.clear()
        run_one_turn(loop)
        assert seen == []


def test_a_callback_from_another_thread_wakes_a_sleeping_loop():
    loop = IOLoop()  # real clock: nothing scheduled, so it would sleep for an hour
    ran = threading.Event()

    def from_thread():
        loop.add_callback(ran.set)
        loop.add_callback(loop.stop)

    threading.Timer(0.05, from_thread).start()
    worker = threading.Thread(target=loop.start)
    worker.start()
    worker.join(5)
    loop.close()
    assert ran.is_set()
    assert not worker.is_alive()


def test_stop_from_another_thread_ends_start():
    loop = IOLoop()
    started = threading.Event()
    loop.add_callback(started.set)
    worker = threading.Thread(target=loop.start)
    worker.start()
    assert started.wait(5)
    loop.stop()
    worker.join(5)
    loop.close()
    assert not worker.is_alive()


def fail(*_args) -> None:
    raise RuntimeError("planted failure")


def test_a_failing_callback_timeout_or_handler_is_logged_and_the_loop_goes_on(loop, capsys):
    left, right = socket.socketpair()
    with left, right:
        ran = []
        loop.add_callback(fail)
        loop.add_callback(ran.append, "callback after")
        loop.call_later(0, fail)
        loop.call_later(0, lambda: ran.append("timeout after"))
        loop.add_handler(left.fileno(), fail, WRITE)
        loop.add_handler(right.fileno(), lambda fd, events: ran.append("handler after"), WRITE)
        failing_fd = left.fileno()
        run_one_turn(loop)
        loop.remove_handler(left.fileno())
        loop.remove_handler(right.fileno())
    assert sorted(ran) == ["callback after", "handler after", "timeout after"]
    err = capsys.readouterr().err
    assert err.count("RuntimeError: planted failure") == 3
    assert "error in callback" in err and "error in timeout" in err
    assert f"error in the handler of fd {failing_fd}:" in err
