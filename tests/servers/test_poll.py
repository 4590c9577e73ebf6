"""The iterative model: one connection at a time, bounded by --timeout, closing by default."""

from __future__ import annotations

import selectors
import socket
import threading

from servers.poll import PollServer
from tests.servers.test_contract import HELLO, app, connect, get, read_response, running


def test_a_silent_client_is_dropped_after_the_timeout_and_the_next_one_is_served():
    with running("poll", timeout=0.5) as server, connect(server) as silent:
        silent.sendall(b"GET / HT")  # starts a request, then says nothing more
        assert get(server)[2] == HELLO  # served once the silent one was dropped
        silent.settimeout(5)
        assert silent.recv(1) == b""


def test_keep_alive_is_an_option_and_then_bounded_by_the_timeout():
    with running("poll", keep_alive=True, timeout=0.5) as server, connect(server) as sock:
        reader = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            status, headers, body = read_response(reader)
            assert (body, headers.get("connection")) == (HELLO, None)
        assert reader.read(1) == b""  # idle past --timeout: dropped so others get their turn


def test_http_1_0_keep_alive_is_refused_unless_asked_for():
    with running("poll") as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = read_response(sock.makefile("rb"))
    assert (status, headers["connection"], body) == (200, "close", HELLO)


def test_the_model_works_over_select_where_poll_is_missing():
    class SelectServer(PollServer):
        selector_class = selectors.SelectSelector

    server = SelectServer(app, port=0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        assert get(server)[2] == HELLO
    finally:
        server.shutdown()
        thread.join(5)
    assert server.socket.fileno() == -1


def test_the_default_selector_is_poll_on_this_platform():
    expected = getattr(selectors, "PollSelector", selectors.SelectSelector)
    assert PollServer.selector_class is expected
    assert PollServer.multithread is False and PollServer.multiprocess is False


def test_a_client_that_connects_and_leaves_costs_nothing():
    with running("poll") as server:
        for _ in range(20):
            socket.create_connection(server.server_address).close()
        assert get(server)[2] == HELLO
