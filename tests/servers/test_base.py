"""What the models share: the listener, the waker, kernel-side socket timeouts, make_server."""

from __future__ import annotations

import select
import socket

import pytest

import servers
from servers.base import BlockingServer, Waker, bind_listener, set_socket_timeout
from servers.epoll import EpollServer
from servers.fork import ForkServer
from servers.http import Limits
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
    server = servers.make_server(lambda e, s: [], "epoll", port=0, limits=Limits(max_body=5))
    try:
        assert isinstance(server, EpollServer)
        assert server.options.limits.max_body == 5
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


@pytest.mark.parametrize(
    ("model", "options", "named"),
    [
        ("poll", {"timeout": 0}, "timeout"),
        ("poll", {"timeout": -1}, "timeout"),
        ("poll", {"timeout": float("inf")}, "timeout"),
        ("poll", {"graceful_timeout": -1}, "graceful_timeout"),
        ("poll", {"limits": {"max_body": 5}}, "limits"),
        ("threaded", {"max_threads": 0}, "max_threads"),
        ("threaded", {"max_threads": -1}, "max_threads"),
        ("fork", {"max_children": 0}, "max_children"),
        ("fork", {"workers": -1}, "workers"),
        ("epoll", {"threads": -1}, "threads"),
        ("epoll", {"idle_timeout": 0}, "idle_timeout"),
    ],
)
def test_settings_that_give_a_server_that_never_answers_are_refused_before_binding(
    model, options, named
):
    with pytest.raises(ValueError, match=rf"^{named}=.* cannot work; use "):
        servers.MODELS[model](lambda environ, start_response: [], "127.0.0.1", 0, **options)


def test_an_app_that_is_not_callable_is_refused():
    with pytest.raises(ValueError, match="^app=b'x' cannot work; use a callable WSGI app"):
        servers.MODELS["threaded"](b"x", "127.0.0.1", 0)


class InlineServer(BlockingServer):
    """The blocking request loop with nothing around it: the test calls serve_connection."""

    def process_connection(self, sock: socket.socket, addr: tuple) -> None:
        self.serve_inline(sock, addr)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"hi"]


@pytest.mark.parametrize("keep_alive", [False, True])
def test_the_blocking_loop_answers_one_request_per_connection_without_keep_alive(keep_alive):
    server = InlineServer(hello, port=0)
    server.keep_alive = keep_alive
    ours, client = socket.socketpair()
    try:
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 2)  # two pipelined requests
        client.shutdown(socket.SHUT_WR)
        server.serve_connection(ours, ("127.0.0.1", 1))
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    finally:
        client.close()
        server.close()
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == (2 if keep_alive else 1)
    assert answer.endswith(b"\r\n\r\nhi")
    assert (b"Connection: close\r\n" in answer) is not keep_alive
