"""The epoll model's own behaviour: timers, partial writes, the thread pool and EMFILE."""

from __future__ import annotations

import resource
import select
import socket
import subprocess
import sys
import time

import psutil
import pytest

from servers.epoll import Connection, EpollServer, State
from tests.servers.test_contract import (
    APP_SPEC,
    HELLO,
    MIB,
    TRACK_ENV,
    app,
    connect,
    get,
    read_line_with_timeout,
    read_response,
    running,
    stop,
    wait_for,
)


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout():
    with running("epoll", timeout=5, idle_timeout=0.3) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = sock.makefile("rb")
        assert read_response(reader)[2] == HELLO
        assert reader.read(1) == b""  # closed by the server, long before `timeout`


def test_a_head_that_never_completes_is_dropped_after_the_timeout():
    with running("epoll", timeout=0.5) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHo")
        assert closed_by_server(sock, within=5)
        assert get(server)[2] == HELLO


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_idle_timer_answers_a_request_waiting_unread_instead_of_closing():
    # On a fake clock: the loop turns only when the test says, so "the loop was held past the
    # idle deadline while the next request arrived" is set up exactly, then the timer runs
    # before any poll has seen that request.
    server = EpollServer(app, port=0, idle_timeout=1)
    server.loop.clock = clock = FakeClock()
    server.start_accepting()
    try:
        with connect(server) as client:
            reader = client.makefile("rb")
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            while not select.select([client], [], [], 0)[0]:
                run_one_turn(server.loop)
            assert read_response(reader)[2] == HELLO
            (connection,) = server.connections
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert select.select([connection.sock], [], [], 5)[0]  # waiting, unread
            clock.now += 10  # far past the idle deadline
            server.loop.run_due_timeouts()
            assert not connection.closed
            run_one_turn(server.loop)  # the answer goes out with the turn's other writes
            assert read_response(reader)[2] == HELLO
            clock.now += 10  # silent now: the next timer closes it
            server.loop.run_due_timeouts()
            assert connection.closed
            assert reader.read(1) == b""
    finally:
        server.close()


def test_a_turn_s_responses_go_out_together_unless_a_slow_app_call_held_the_turn():
    server = EpollServer(app, port=0)
    server.loop.clock = clock = FakeClock()
    written = []

    class Queued:
        def __init__(self, name: str) -> None:
            self.name = name

        def flush(self) -> None:
            written.append(self.name)

    try:
        server.queue_write(Queued("a"))
        server.queue_write(Queued("b"))
        assert written == []  # both wait for the end of the turn
        clock.now += 0.05  # an app call on the loop thread took 50 ms
        server.queue_write(Queued("c"))
        assert written == ["a", "b", "c"]  # not held for the rest of the turn
        server.write_queued()  # the turn's own callback then finds nothing left
        assert written == ["a", "b", "c"]
    finally:
        server.close()


def run_one_turn(loop) -> None:
    loop.add_callback(loop.stop)
    loop.start()


def test_a_slow_reader_gets_the_whole_response_through_partial_writes():
    with running("epoll") as server, connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /stream?n=128&size=65536 HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        # the kernel buffers fill up, so the server must hold output and wait for EPOLLOUT
        assert wait_for(lambda: any(c.output for c in server.connections))
        reader = sock.makefile("rb")
        assert read_response(reader)[2] == b"x" * 8 * MIB
        assert read_response(reader)[2] == HELLO  # the pipelined request came after it


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/", HELLO),  # written whole at the end of the loop's turn
        ("/stream?n=128&size=65536", b"x" * 8 * MIB),  # finished by partial writes on EPOLLOUT
    ],
)
def test_a_fault_after_a_response_went_out_closes_without_a_second_answer(
    target, body, monkeypatch, capfd
):
    # A bug of ours that strikes once epoll has written a whole response: the client keeps that
    # response and sees EOF, one log entry; a 500 written after it would reach the client as the
    # answer to a request never sent.
    finish_response = Connection.finish_response
    faults = []

    def faulty_finish_response(self):
        if self.request.target == target and not faults:
            faults.append(target)  # once: the request after it must be served as usual
            raise RuntimeError("planted fault after the response went out")
        finish_response(self)

    monkeypatch.setattr(Connection, "finish_response", faulty_finish_response)
    with running("epoll") as server, connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target.encode())
        reader = sock.makefile("rb")
        assert read_response(reader)[::2] == (200, body)
        assert reader.read() == b""
        assert get(server)[2] == HELLO
    err = capfd.readouterr().err
    assert err.count("error serving 127.0.0.1:") == 1
    assert err.count("Traceback") == 1  # the loop caught nothing the connection let through
    assert "RuntimeError: planted fault after the response went out" in err


def test_with_threads_the_loop_keeps_serving_while_an_app_call_blocks(tmp_path, monkeypatch):
    monkeypatch.setenv(TRACK_ENV, str(tmp_path))
    with running("epoll", threads=2) as server, connect(server, timeout=15) as held:
        held.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(lambda: (tmp_path / "held").exists())
        assert get(server)[2] == HELLO
        assert select.select([held], [], [], 0)[0] == []  # still in the app, until released
        (tmp_path / "release").touch()
        assert read_response(held.makefile("rb"))[2] == b"released"


def test_the_model_reports_multithread_only_with_threads():
    assert EpollServer(lambda e, s: [], port=0).multithread is False
    server = EpollServer(lambda e, s: [], port=0, threads=2)
    try:
        assert server.multithread is True
    finally:
        server.shutdown()


FD_LIMIT = 40


def test_running_out_of_fds_pauses_accepting_instead_of_spinning():
    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    argv = [sys.executable, "-m", "servers", "--model", "epoll", "--port", "0", APP_SPEC]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=low_fd_limit
    )
    clients = []
    try:
        line = read_line_with_timeout(proc, 10)
        address = ("127.0.0.1", int(line.rsplit(":", 1)[1]))
        clients = [socket.create_connection(address, timeout=5) for _ in range(60)]
        server = psutil.Process(proc.pid)
        assert wait_for(lambda: server.num_fds() == FD_LIMIT)  # it took what it could: EMFILE
        cpu_before = sum(server.cpu_times()[:2])
        time.sleep(1.0)  # a window to measure CPU over, not a wait for something to happen
        spent = sum(server.cpu_times()[:2]) - cpu_before
        assert spent < 0.5, f"{spent:.2f} s of CPU in 1 s while out of fds: spinning"
        for client in clients:
            client.close()
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert read_response(sock.makefile("rb"))[2] == HELLO
    finally:
        for client in clients:
            client.close()
        stop(proc)


def test_a_connection_moves_only_as_its_transition_table_allows():
    server = EpollServer(app, port=0)
    client = socket.create_connection(server.server_address)
    try:
        connection = Connection(server, *server.socket.accept())
        with pytest.raises(RuntimeError, match="from idle to in app"):
            connection.move(State.IN_APP)
        for state in (State.READING, State.IN_APP, State.RESPONDING, State.IDLE):
            connection.move(state)
            assert connection.state is state
        connection.close()
        assert connection.closed
        with pytest.raises(RuntimeError, match="from closed to idle"):
            connection.move(State.IDLE)
    finally:
        client.close()
        server.close()
