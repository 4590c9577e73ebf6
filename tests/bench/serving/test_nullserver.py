"""The null server answers each complete request head with the canned response, nothing else."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from bench.serving.nullserver import BODY, RESPONSE, Connection, NullServer

REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n"


@pytest.fixture
def address() -> Iterator[tuple[str, int]]:
    server = NullServer("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()
    thread.join(timeout=5)
    assert not thread.is_alive()


def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=5)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"connection closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def assert_nothing_more(sock: socket.socket) -> None:
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(1)


def splits(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, 7)))
    return [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_response_is_a_complete_http_message() -> None:
    head, _, body = RESPONSE.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert f"Content-Length: {len(BODY)}".encode() in lines
    assert body == BODY == b"Hello, World!"


@pytest.mark.parametrize(
    "pieces",
    [
        [REQUEST * 3],
        [bytes([byte]) for byte in REQUEST * 2],
        splits(REQUEST * 4, seed=1),
        splits(REQUEST * 4, seed=2),
        [REQUEST[:-2], REQUEST[-2:] + REQUEST[:-1], REQUEST[-1:]],
    ],
    ids=["whole", "byte-by-byte", "random-1", "random-2", "split-inside-head-end"],
)
def test_count_heads_finds_every_head_end_however_the_bytes_arrive(pieces: list[bytes]) -> None:
    connection = Connection(sock=None)  # type: ignore[arg-type]
    assert sum(connection.count_heads(piece) for piece in pieces) == b"".join(pieces).count(
        b"\r\n\r\n"
    )


def test_answers_one_request(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        sock.sendall(REQUEST)
        assert receive_exactly(sock, len(RESPONSE)) == RESPONSE
        assert_nothing_more(sock)


def test_keeps_the_connection_alive(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        for _ in range(5):
            sock.sendall(REQUEST)
            assert receive_exactly(sock, len(RESPONSE)) == RESPONSE


def test_answers_pipelined_requests_in_one_send(address: tuple[str, int]) -> None:
    with connect(address) as sock:
        sock.sendall(REQUEST * 10)
        assert receive_exactly(sock, 10 * len(RESPONSE)) == RESPONSE * 10
        assert_nothing_more(sock)


def test_request_split_across_sends_is_answered_once_when_complete(
    address: tuple[str, int],
) -> None:
    with connect(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(REQUEST[:10])
        assert_nothing_more(sock)
        sock.settimeout(5)
        sock.sendall(REQUEST[10:-1])
        assert_nothing_more(sock)
        sock.settimeout(5)
        sock.sendall(REQUEST[-1:])
        assert receive_exactly(sock, len(RESPONSE)) == RESPONSE


def test_garbage_gets_no_answer_and_other_clients_are_still_served(
    address: tuple[str, int],
) -> None:
    with connect(address) as garbage, connect(address) as client:
        garbage.sendall(b"\x00\xff not http at all \r\n")
        assert_nothing_more(garbage)
        client.sendall(REQUEST)
        assert receive_exactly(client, len(RESPONSE)) == RESPONSE


def test_a_client_vanishing_mid_request_does_not_stop_the_server(
    address: tuple[str, int],
) -> None:
    for _ in range(3):
        with connect(address) as sock:
            sock.sendall(REQUEST * 50 + REQUEST[:5])
        # closed without reading: the server's pending responses go nowhere
    with connect(address) as sock:
        sock.sendall(REQUEST)
        assert receive_exactly(sock, len(RESPONSE)) == RESPONSE


def test_serves_many_clients_at_once(address: tuple[str, int]) -> None:
    clients = [connect(address) for _ in range(20)]
    try:
        for sock in clients:
            sock.sendall(REQUEST * 2)
        for sock in clients:
            assert receive_exactly(sock, 2 * len(RESPONSE)) == RESPONSE * 2
    finally:
        for sock in clients:
            sock.close()


def test_large_pipelined_burst_is_answered_in_full(address: tuple[str, int]) -> None:
    # more response bytes than a socket buffer holds: the server must wait for writability
    count = 5000
    with connect(address) as sock:
        sender = threading.Thread(target=sock.sendall, args=(REQUEST * count,))
        sender.start()
        assert receive_exactly(sock, count * len(RESPONSE)) == RESPONSE * count
        sender.join(timeout=5)


def test_cli_prints_the_real_port_and_exits_0_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.serving.nullserver", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        with connect(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /anything/at/all HTTP/1.1\r\nHost: x\r\n\r\n")
            assert receive_exactly(sock, len(RESPONSE)) == RESPONSE
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
