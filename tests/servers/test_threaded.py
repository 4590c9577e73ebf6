"""The thread-per-connection model: its cap, its keep-alive and how it stops."""

from __future__ import annotations

import contextlib
import threading
import time

from servers.threaded import ThreadedServer
from tests.servers.test_contract import (
    HELLO,
    TRACK_ENV,
    app,
    connect,
    get,
    read_response,
    running,
    wait_for,
)


def answered_within(sock, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return bool(sock.recv(1))
    except TimeoutError:
        return False


def test_max_threads_makes_excess_connections_wait_in_the_backlog():
    with running("threaded", max_threads=2) as server:
        holders = [connect(server) for _ in range(2)]
        try:
            for sock in holders:  # each holds a thread: keep-alive after one response
                sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                read_response(sock.makefile("rb"))
            with connect(server) as waiting:
                waiting.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                assert not answered_within(waiting, 0.5)
                holders[0].close()
                assert answered_within(waiting, 5)
        finally:
            for sock in holders:
                sock.close()


def test_a_thread_that_cannot_start_costs_one_connection_and_not_its_slot(monkeypatch, capfd):
    with running("threaded", max_threads=1) as server:
        real_start = threading.Thread.start

        def start_fails_once(thread):
            monkeypatch.setattr(threading.Thread, "start", real_start)
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(threading.Thread, "start", start_fails_once)
        with connect(server) as lost:
            lost.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):  # a reset: the request went unread
                assert lost.recv(1) == b""  # closed unanswered: nothing could serve it
        assert get(server)[2] == HELLO  # the only slot came back
    assert "RuntimeError: can't start new thread" in capfd.readouterr().err


def test_each_connection_runs_on_its_own_daemon_thread():
    seen = []

    def recording_app(environ, start_response):
        seen.append(threading.current_thread())
        return app(environ, start_response)

    with running("threaded", recording_app) as server:
        get(server)
        get(server)
    assert len(seen) == 2 and seen[0] is not seen[1]  # (idents are reused: compare objects)
    assert all(thread.daemon for thread in seen)
    assert all(thread is not threading.main_thread() for thread in seen)


def test_shutdown_ends_idle_keep_alive_connections_at_once():
    with running("threaded", timeout=30) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = sock.makefile("rb")
        assert read_response(reader)[2] == HELLO
        start = time.monotonic()
        server.shutdown()
        assert time.monotonic() - start < 5  # far below timeout and graceful_timeout
        assert reader.read(1) == b""


def test_shutdown_waits_for_a_request_inside_the_app(tmp_path, monkeypatch):
    monkeypatch.setenv(TRACK_ENV, str(tmp_path))
    with running("threaded") as server, connect(server, timeout=15) as sock:
        sock.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(lambda: (tmp_path / "held").exists())
        stopping = threading.Thread(target=server.shutdown)
        stopping.start()
        assert wait_for(lambda: server.socket.fileno() == -1)  # no longer accepting
        (tmp_path / "release").touch()
        status, headers, body = read_response(sock.makefile("rb"))
        stopping.join(10)
        assert (status, body) == (200, b"released")


def test_the_model_is_multithreaded_and_single_process():
    assert ThreadedServer.multithread is True
    assert ThreadedServer.multiprocess is False
