"""Instructions per request of a real server, its event loop included, counted by cachegrind.

``python -m bench instructions`` counts the in-memory server cycle (``servers/http.py`` and
``servers/wsgi.py``); what a model adds around it (accepting, polling, reading, writing, timers)
only shows on a real socket. This runs ``python -m servers --model MODEL APP`` under cachegrind,
drives it from a plain client outside valgrind with keep-alive requests over a few connections,
and counts::

    (count of a run serving MORE requests - count of a run serving FEWER) / (MORE - FEWER)

so start-up, imports, the connections' set-up and the stop cancel. The server runs from a compiled
copy of the tree at a fixed path with a fixed hash seed, as ``bench.micro.instructions`` runs its
workloads, so two checkouts of the same code count the same.

The client sends the request wrk sends, and waits for each response before the next request on
any connection (``--mode sequential``): every poll then finds exactly one ready connection, so the
count does not depend on timing. ``--mode burst`` sends one request on every connection, then
reads the answers, as a load generator with that many connections does; how many requests one
poll finds then depends on timing, so its count varies a little from run to run.

    python tools/epoll_instructions.py                          # epoll, the raw app, sequential
    python tools/epoll_instructions.py --mode burst --runs 2
    python tools/epoll_instructions.py --app bench.apps.app:app --model poll

It takes about a minute per run on an idle machine (cachegrind runs Python about 50 times slower).
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a file from anywhere

from bench.micro.instructions import SUMMARY, child_env, counting_tree, valgrind  # noqa: E402

#: the line the server prints once it accepts connections
LISTENING = re.compile(rb"listening on http://([\d.]+):(\d+)")
#: the connections the client keeps open, as wrk -c16
CONNECTIONS = 16
#: requests of the smaller and the larger run
FEWER, MORE = 1000, 3000
#: seconds to wait for the server to start, answer, or stop under valgrind
PATIENCE = 300


def request_bytes(host: str, port: int, path: str) -> bytes:
    """The request wrk sends: a request line and a Host field."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


def read_response(sock: socket.socket, buffer: bytearray) -> None:
    """Read one response framed by Content-Length from ``sock``; leftovers stay in ``buffer``."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        receive(sock, buffer)
    head = buffer[:end].decode("latin-1").lower()
    length = int(re.search(r"\r\ncontent-length: *(\d+)", head)[1])
    while len(buffer) < end + 4 + length:
        receive(sock, buffer)
    del buffer[: end + 4 + length]


def receive(sock: socket.socket, buffer: bytearray) -> None:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("the server closed a keep-alive connection")
    buffer += data


def drive(host: str, port: int, requests: int, path: str, mode: str) -> None:
    """Send ``requests`` keep-alive requests over CONNECTIONS connections, reading every answer."""
    request = request_bytes(host, port, path)
    socks = [socket.create_connection((host, port), timeout=PATIENCE) for _ in range(CONNECTIONS)]
    buffers = [bytearray() for _ in socks]
    try:
        sent = 0
        while sent < requests:
            batch = range(min(CONNECTIONS if mode == "burst" else 1, requests - sent))
            for i in batch:
                socks[(sent + i) % CONNECTIONS].sendall(request)
            for i in batch:
                index = (sent + i) % CONNECTIONS
                read_response(socks[index], buffers[index])
            sent += len(batch)
    finally:
        for sock in socks:
            sock.close()


def count_run(args: argparse.Namespace, tree: Path, requests: int, out: Path) -> int:
    """Instructions of one server process that served ``requests`` requests, then stopped."""
    command = [
        valgrind(), "-q", f"--tool={args.tool}", f"--{args.tool}-out-file={out}",
        *(["--cache-sim=no"] if args.tool == "cachegrind" else []),
        sys.executable, "-m", "servers", "--model", args.model, "--port", "0", args.app,
    ]  # fmt: skip
    log = out.with_suffix(".log").open("wb")  # valgrind's warnings; its tail if no count
    server = subprocess.Popen(
        command, cwd=tree.parent, env=child_env(tree), stdout=subprocess.PIPE, stderr=log
    )
    try:
        line = server.stdout.readline()
        found = LISTENING.search(line)
        if found is None:
            raise SystemExit(f"the server did not start: {line!r}")
        drive(found[1].decode(), int(found[2]), requests, args.path, args.mode)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(PATIENCE)
        log.close()
    if args.tool == "callgrind":
        return 0
    summary = SUMMARY.search(out.read_bytes())
    if server.returncode != 0 or summary is None:
        tail = out.with_suffix(".log").read_text(errors="replace")[-1500:]
        raise SystemExit(f"the server exited {server.returncode} with no count:\n{tail}")
    return int(summary[1])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="epoll", help="the model to count (default epoll)")
    parser.add_argument("--app", default="bench.apps.rawapp:app", help="MODULE:ATTR to serve")
    parser.add_argument("--path", default="/plaintext", help="the path every request asks for")
    parser.add_argument("--mode", choices=("sequential", "burst"), default="sequential")
    parser.add_argument("--runs", type=int, default=1, help="pairs of runs to count")
    parser.add_argument(
        "--callgrind",
        metavar="DIR",
        type=Path,
        help="instead of counting, write callgrind profiles of both runs into DIR "
        "(read them with callgrind_annotate)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if valgrind() is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    args.tool = "callgrind" if args.callgrind else "cachegrind"
    with counting_tree() as tree, tempfile.TemporaryDirectory() as scratch:
        outs = args.callgrind or Path(scratch)
        outs.mkdir(parents=True, exist_ok=True)
        for run in range(args.runs):
            fewer = count_run(args, tree, FEWER, outs / f"{args.tool}.{run}.{FEWER}.out")
            more = count_run(args, tree, MORE, outs / f"{args.tool}.{run}.{MORE}.out")
            if args.tool == "cachegrind":
                per_request = (more - fewer) / (MORE - FEWER)
                print(f"{args.model} {args.app} {args.path} {args.mode}: {per_request:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
