"""The forking model: a process per connection or prefork workers; reaping; stopping."""

from __future__ import annotations

import json
import os
import signal
import socket

import psutil
import pytest

from tests.servers.test_contract import (
    APP_SPEC,
    HELLO,
    get,
    read_response,
    start_cli,
    stop,
    wait_for,
)


class Forking:
    """A fork server in a subprocess (forking inside pytest would copy the test's sockets)."""

    def __init__(self, *options: str) -> None:
        self.proc, self.server_address = start_cli("--model", "fork", *options, APP_SPEC)
        self.process = psutil.Process(self.proc.pid)

    def __enter__(self) -> Forking:
        return self

    def __exit__(self, *exc_info) -> None:
        stop(self.proc)

    def children(self) -> list[psutil.Process]:
        return self.process.children()

    def app_pid(self, sock: socket.socket | None = None) -> int:
        raw = b"GET /environ HTTP/1.1\r\nHost: t\r\n\r\n"
        if sock is None:
            return json.loads(get(self, "/environ")[2])["pid"]
        sock.sendall(raw)
        return json.loads(read_response(sock.makefile("rb"))[2])["pid"]


def no_zombies(server: Forking) -> bool:
    return all(child.status() != psutil.STATUS_ZOMBIE for child in server.children())


def test_each_connection_gets_a_child_and_keep_alive_stays_in_it():
    with Forking() as server:
        first, second = server.app_pid(), server.app_pid()
        assert server.proc.pid not in (first, second)  # the parent never runs the app
        assert first != second
        with socket.create_connection(server.server_address, timeout=5) as sock:
            assert server.app_pid(sock) == server.app_pid(sock)


def test_children_are_reaped_promptly_leaving_no_zombies():
    with Forking() as server:
        for _ in range(40):
            assert get(server)[2] == HELLO
        assert wait_for(lambda: server.children() == [], seconds=5)
        assert no_zombies(server)


def test_max_children_makes_excess_connections_wait():
    with (
        Forking("--max-children", "1") as server,
        socket.create_connection(server.server_address, timeout=5) as holder,
    ):
        holder.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        read_response(holder.makefile("rb"))
        with socket.create_connection(server.server_address, timeout=5) as waiting:
            waiting.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            waiting.settimeout(0.5)
            with pytest.raises(TimeoutError):
                waiting.recv(1)
            holder.close()
            waiting.settimeout(5)
            assert waiting.recv(1) == b"H"


def test_prefork_workers_serve_and_a_dead_worker_is_replaced():
    with Forking("--workers", "2") as server:
        assert wait_for(lambda: len(server.children()) == 2)
        workers = {child.pid for child in server.children()}
        pids = {server.app_pid() for _ in range(6)}
        assert pids <= workers
        victim = workers.pop()
        os.kill(victim, signal.SIGKILL)
        assert wait_for(
            lambda: (
                len(server.children()) == 2
                and victim not in {child.pid for child in server.children()}
            )
        )
        assert get(server)[2] == HELLO
        assert no_zombies(server)


def test_sigterm_stops_prefork_workers_too_and_exits_0():
    with Forking("--workers", "2") as server:
        assert wait_for(lambda: len(server.children()) == 2)
        workers = server.children()
        assert get(server)[2] == HELLO
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) == 0
        assert not any(worker.is_running() for worker in workers)


def test_prefork_workers_exit_when_their_parent_is_killed_outright():
    with Forking("--workers", "2") as server:
        assert wait_for(lambda: len(server.children()) == 2)
        workers = server.children()
        server.proc.kill()  # SIGKILL: the parent forwards nothing
        server.proc.wait(10)
        assert wait_for(lambda: not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE
                                        for w in workers), seconds=5)  # fmt: skip
