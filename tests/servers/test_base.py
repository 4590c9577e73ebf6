"""What the models share: the listener, the waker, kernel-side socket timeouts, make_server."""

from __future__ import annotations

import select
import socket

import pytest

import servers
from servers.base import Waker, bind_listener, set_socket_timeout
from servers.epoll import EpollServer
from servers.fork import ForkServer
from servers.poll import PollServer
from servers.threaded import ThreadedServer


def test_the_listener_is_bound_non_blocking_on_the_asked_port():
    listener = bind_listener("127.0.0.1", 0)
    with listener:
        host, port = listener.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert listener.getblocking() is False
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_the_waker_wakes_a_select_once_and_drains():
    waker = Waker()
    try:
        assert select.select([waker], [], [], 0)[0] == []
        for _ in range(100_000):  # a full pipe must not block the writer
            waker.wake()
        assert select.select([waker], [], [], 0)[0] == [waker]
        waker.drain()
        assert select.select([waker], [], [], 0)[0] == []
    finally:
        waker.close()
    waker.wake()  # after close: silently nothing


def test_kernel_socket_timeout_bounds_a_recv():
    left, right = socket.socketpair()
    with left, right:
        set_socket_timeout(left, 0.2)
        with pytest.raises(OSError):
            left.recv(1)


def test_make_server_maps_model_names_to_classes():
    assert {
        "poll": PollServer,
        "threaded": ThreadedServer,
        "fork": ForkServer,
        "epoll": EpollServer,
    } == servers.MODELS
    server = servers.make_server(lambda e, s: [], "epoll", port=0, max_body=5)
    try:
        assert isinstance(server, EpollServer)
        assert server.limits.max_body == 5
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="unknown model"):
        servers.make_server(lambda e, s: [], "gevent", port=0)


def test_shutdown_before_serving_releases_the_port():
    server = servers.make_server(lambda e, s: [], "threaded", port=0)
    address = server.server_address
    server.shutdown()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()
