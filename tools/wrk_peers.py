"""Our epoll server beside the native peers under wrk, one core each: what our server path costs.

bjoern (C) and granian (Rust) serve the same Python app through their own server loops; epoll
serves it through ours, in Python. Each server runs alone on one core (the first of this process's
CPUs), ``wrk -t1 -c16`` on another; after WARM_S seconds that are discarded, wrk measures for
``--duration`` seconds per path. A round measures every server once, in an order rotated each
round, so that drift on a shared machine lands on every server; the table gives each server's
median over the rounds, the ratios of medians, and the server's CPU time per request.

    python tools/wrk_peers.py                     # 3 rounds, plaintext and fortunes, 6 s each
    python tools/wrk_peers.py --rounds 5 --paths /plaintext

bjoern is optional (it builds against libev); a peer that is not installed is left out with a line.
Run it on a quiet machine: it measures for real.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a file from anywhere

from bench.serving.peers import select_peers  # noqa: E402
from tools.wrk_check import CONNECTIONS, run_wrk  # noqa: E402

#: seconds of wrk discarded before each measurement: connections opened, caches warm (wrk takes
#: whole seconds)
WARM_S = 2
#: the servers compared, ours first; each starts with its listening line on stdout
SERVERS = ("epoll", "granian", "bjoern")
APP = "bench.apps.app:app"
LISTENING = re.compile(r"listening on http://[\d.]+:(\d+)")


def server_argv(name: str) -> list[str]:
    """How to start ``name`` on a free port of 127.0.0.1, serving APP."""
    if name == "epoll":
        return [sys.executable, "-m", "servers", "--model", "epoll", "--port", "0", APP]
    return [sys.executable, "-m", "bench.serving.peers", name, APP, "127.0.0.1", "0"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a server and every process under it (granian serves from a
    worker process)."""
    tree = psutil.Process(pid)
    processes = [tree, *tree.children(recursive=True)]
    return sum(sum(process.cpu_times()[:2]) for process in processes)


@dataclass
class Sample:
    """One server's measurement of one path in one round."""

    rps: float
    cpu_us_per_request: float


@dataclass
class Table:
    """Every sample, by path and server, in the order measured."""

    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)

    def add(self, path: str, server: str, sample: Sample) -> None:
        self.samples.setdefault(path, {}).setdefault(server, []).append(sample)

    def median_rps(self, path: str, server: str) -> float:
        return statistics.median(s.rps for s in self.samples[path][server])

    def lines(self) -> list[str]:
        out = []
        for path, by_server in self.samples.items():
            ours = self.median_rps(path, "epoll") if "epoll" in by_server else None
            for server, samples in by_server.items():
                rounds = ", ".join(f"{s.rps:,.0f}" for s in samples)
                cpu = statistics.median(s.cpu_us_per_request for s in samples)
                median = self.median_rps(path, server)
                compared = ours and server != "epoll"
                ratio = f"epoll ÷ {server} {ours / median:.2f}" if compared else ""
                out.append(f"{path:<11} {server:<8} {median:9,.0f} req/s ({rounds}); "
                           f"{cpu:5.1f} µs CPU/request  {ratio}")  # fmt: skip
        return out


def measure(name: str, paths: list[str], duration_s: int, cores: list[int]) -> dict:
    """Start ``name`` pinned to the first core, wrk on the second: a Sample per path."""
    server = subprocess.Popen(
        ["taskset", "-c", str(cores[0]), *server_argv(name)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        match = LISTENING.search(server.stdout.readline())
        if match is None:
            raise RuntimeError(f"{name} printed no listening line")
        port = int(match.group(1))
        measured = {}
        for path in paths:
            run_wrk(port, path, WARM_S, [cores[1]])
            before, started = cpu_seconds(server.pid), time.monotonic()
            rps = run_wrk(port, path, duration_s, [cores[1]])
            used = cpu_seconds(server.pid) - before
            requests = rps * (time.monotonic() - started)
            measured[path] = Sample(rps, 1e6 * used / requests if requests else 0.0)
        return measured
    finally:
        os.killpg(server.pid, 15)
        server.wait(10)


def rotated(names: list[str], by: int) -> list[str]:
    """``names`` starting at position ``by``: each round begins with another server."""
    by %= len(names) or 1
    return names[by:] + names[:by]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python tools/wrk_peers.py", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6, help="measured seconds per path")
    parser.add_argument("--paths", default="/plaintext,/fortunes")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        parser.error("needs wrk and taskset (apt-get install wrk util-linux)")
    if args.rounds < 1 or args.duration <= 0:
        parser.error(f"--rounds {args.rounds} and --duration {args.duration} must be positive")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        parser.error(f"needs two CPUs, one for the server and one for wrk; it may use {cores}")
    _, missing = select_peers(",".join(SERVERS[1:]))
    for name, why in missing.items():
        print(f"{name}: left out, {why}", file=sys.stderr)
    names = [name for name in SERVERS if name not in missing]
    paths = args.paths.split(",")
    print(f"server on core {cores[0]}, wrk -t1 -c{CONNECTIONS} on core {cores[1]}; "
          f"{WARM_S} s discarded, {args.duration} s per path", flush=True)  # fmt: skip
    table = Table()
    for round_index in range(args.rounds):
        for name in rotated(names, round_index):
            try:
                measured = measure(name, paths, args.duration, cores[:2])
            except (RuntimeError, ValueError, subprocess.CalledProcessError) as error:
                print(f"round {round_index + 1} {name}: not measured, {error}", file=sys.stderr)
                continue
            for path, sample in measured.items():
                table.add(path, name, sample)
                print(f"round {round_index + 1} {name} {path}: {sample.rps:,.0f} req/s", flush=True)
    print("\n".join(table.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
