"""The in-process workloads: each serves its request correctly, again and again, and the command
line the instruction counter runs under valgrind runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.apps.rawapp import app as raw_app
from bench.micro.workloads import BROWSER_HEAD, WORKLOADS, ServerCycle

ROOT = Path(__file__).resolve().parents[3]


def test_the_server_cycle_answers_every_request_on_one_kept_alive_connection():
    cycle = ServerCycle(raw_app)
    answers = [cycle() for _ in range(3)]
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Length: 13" in head and b"Connection: close" not in head
        assert body == b"Hello, World!"
    assert cycle.conn.keep_alive


def test_the_browser_head_is_one_complete_head():
    assert BROWSER_HEAD.endswith(b"\r\n\r\n") and BROWSER_HEAD.count(b"\r\n\r\n") == 1


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_workload_serves_its_request_repeatedly(name):
    call = WORKLOADS[name]()
    first, second = call(), call()
    if name.startswith("servers"):
        assert first.startswith(b"HTTP/1.1 200 OK") and second.startswith(b"HTTP/1.1 200 OK")
        return
    for status, _, body in (first, second):
        assert status == "200 OK" and body
    if name == "framework-session":  # the same incoming cookie every time: count 1 → 2
        assert json.loads(first[2]) == json.loads(second[2]) == {"count": 2}


def test_the_command_line_runs_warm_and_extra_requests_of_chosen_workloads():
    only = "servers-raw-plaintext,framework-json"
    command = [sys.executable, "-m", "bench.micro.workloads", "--only", only, "3",
               "servers-raw-plaintext", "5"]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
