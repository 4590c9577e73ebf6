"""py-spy against real servers under real requests, sampling between a window's marks only, and
the one line where it cannot attach."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench.measure.sampling_profiler import (
    RecordedProfile,
    Recording,
    WindowRecording,
    attach_problem,
    cpu_seconds,
    find_py_spy,
    sampling_problem,
)
from bench.speedscope import read_profile
from servers import MODELS

REPO_ROOT = Path(__file__).resolve().parents[3]
#: requests sent to a server before or after its sampled window
REQUESTS = 3000
#: seconds of requests while a server is sampled: at py-spy's 100 Hz a few hundred samples, so its
#: working ones (the rest wait for the client) hold the server's own functions even on a busy runner
SAMPLED_S = 2.0
#: a function that only a forked child runs: seeing it proves the children were followed
FORK_CHILD_FUNCTION = "ForkServer.serve_child"

needs_py_spy = pytest.mark.skipif(find_py_spy() is None, reason="py-spy is not installed")


@pytest.fixture
def serve():
    """Start ``python -m servers --model MODEL`` on the raw app; its process and port."""
    started = []

    def start(model: str) -> tuple[subprocess.Popen, int]:
        server = subprocess.Popen(
            [sys.executable, "-m", "servers", "--model", model, "--port", "0",
             "bench.apps.rawapp:app"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        started.append(server)
        match = re.search(r"listening on http://[\d.]+:(\d+)", server.stdout.readline())
        assert match, "the server printed no listening line"
        return server, int(match.group(1))

    yield start
    for server in started:
        server.terminate()
        server.wait(10)


def send_requests(port: int, count: int = 0, seconds: float = 0.0) -> None:
    """Keep-alive requests on one connection, each answered before the next: ``count`` of them,
    and for at least ``seconds``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    until = time.monotonic() + seconds
    sent = 0
    try:
        while sent < count or time.monotonic() < until:
            connection.request("GET", "/plaintext")
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b"Hello, World!"
            sent += 1
    finally:
        connection.close()


@needs_py_spy
@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_records_a_flame_graph_and_a_ranked_profile_of_a_server_under_load(model, serve, tmp_path):
    server, port = serve(model)
    py_spy = find_py_spy()
    assert attach_problem(server.pid, py_spy) is None
    recording = Recording(server.pid, tmp_path / "profiles" / model, py_spy)
    assert recording.start(longest_s=60) is None
    send_requests(port, seconds=SAMPLED_S)
    recorded = recording.stop()

    assert recorded.problem is None
    assert recorded.svg == tmp_path / "profiles" / f"{model}.svg"
    assert recorded.svg.read_text().startswith("<?xml") and "servers/" in recorded.svg.read_text()
    summary = read_profile(recorded.speedscope)
    assert summary.samples > 0
    assert any(cost.file.startswith("servers/") for cost in summary.functions)
    assert all(cost.total_pct >= cost.self_pct > 0 for cost in summary.functions)
    names = {
        frame["name"] for frame in json.loads(recorded.speedscope.read_text())["shared"]["frames"]
    }
    assert (FORK_CHILD_FUNCTION in names) == (model == "fork")
    assert server.poll() is None  # sampling left the server running


@needs_py_spy
@pytest.mark.slow
def test_a_window_recording_samples_between_the_marks_only(serve, tmp_path):
    server, port = serve("epoll")
    marks = tmp_path / "window.marks"
    one_cpu = [min(os.sched_getaffinity(0))]
    recording = Recording(server.pid, tmp_path / "epoll", find_py_spy(), cpus=one_cpu)
    window = WindowRecording(recording, marks, 60)
    send_requests(port, 100)  # the warm-up: not sampled
    window.poll()
    assert window.state == "waiting" and not window.recording.recorders
    marks.write_text("start\n")
    window.poll()
    assert window.state == "sampling" and window.problem is None
    # the recorders run on the CPUs given (the runner's: beside Locust, off the server's)
    assert all(os.sched_getaffinity(r.pid) == set(one_cpu) for r in recording.recorders.values())
    send_requests(port, seconds=SAMPLED_S)
    marks.write_text("start\nstop\n")
    window.poll()
    assert window.state == "done"
    recorded = window.finish()
    assert recorded.problem is None and read_profile(recorded.speedscope).samples > 0
    assert recorded.recorder_cpu_pct >= 0


def test_cpu_seconds_reads_a_live_process_and_zero_for_a_gone_one():
    while time.process_time() < 0.2:  # CPU enough to see beside the clock tick
        pass
    assert cpu_seconds(os.getpid()) == pytest.approx(time.process_time(), abs=0.05)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu_seconds(gone.pid) == 0.0


@needs_py_spy
@pytest.mark.slow
def test_a_window_that_never_closes_is_stopped_and_said(serve, tmp_path):
    server, port = serve("epoll")
    marks = tmp_path / "window.marks"
    marks.write_text("start\n")
    window = WindowRecording(Recording(server.pid, tmp_path / "epoll", find_py_spy()), marks, 60)
    window.poll()
    send_requests(port, REQUESTS)
    recorded = window.finish()
    assert recorded.problem == "the measured window never closed"
    assert recorded.svg.is_file() and recorded.speedscope.is_file()
    assert all(recorder.poll() is not None for recorder in window.recording.recorders.values())


def test_a_window_that_never_opens_records_nothing(tmp_path):
    window = WindowRecording(Recording(os.getpid(), tmp_path / "self", "py-spy"), tmp_path / "m", 5)
    assert window.finish() == RecordedProfile(None, None, "no window opened")


@needs_py_spy
def test_a_process_without_python_gives_one_line_at_attach_and_at_start(tmp_path):
    not_python = subprocess.Popen(["sleep", "60"])
    try:
        problem = attach_problem(not_python.pid, find_py_spy())
        recording = Recording(not_python.pid, tmp_path / "sleep", find_py_spy())
        started = recording.start(longest_s=5)
        recorded = recording.stop()
    finally:
        not_python.kill()
        not_python.wait()
    for line in (problem, started):
        assert (
            line.startswith(f"py-spy cannot read process {not_python.pid}: ") and "\n" not in line
        )
    assert recorded.svg is None and recorded.speedscope is None
    assert recorded.problem.startswith("py-spy wrote no flamegraph")


@needs_py_spy
def test_an_idle_server_leaves_no_flame_graph_and_says_why(serve, tmp_path):
    server, _ = serve("poll")
    recording = Recording(server.pid, tmp_path / "idle", find_py_spy())
    assert recording.start(longest_s=5) is None
    recorded = recording.stop()  # no request came: no request's Python ran
    assert recorded.svg is None and not (tmp_path / "idle.svg").exists()
    # py-spy's own words for it vary with its version and with when the interrupt lands
    assert recorded.problem.startswith("py-spy wrote no flamegraph: ")
    # the loop wakes from select every POLL_INTERVAL to see whether it should stop: on a busy
    # machine a sample can land on that wake, never in a request's code
    idle = read_profile(recorded.speedscope)
    assert {cost.function for cost in idle.functions} <= {"BlockingServer.accept_loop"}


def test_missing_py_spy_gives_one_line():
    line = "py-spy not found: install it (pip install py-spy) to profile the servers"
    assert attach_problem(os.getpid(), None) == sampling_problem(None) == line


def test_a_py_spy_that_cannot_be_run_gives_one_line(tmp_path):
    not_runnable = tmp_path / "py-spy"
    not_runnable.write_text("#!/bin/sh\n")
    not_runnable.chmod(0o644)  # no execute bit: exec fails for root too
    line = attach_problem(os.getpid(), str(not_runnable))
    assert line == f"py-spy at {not_runnable} cannot be run: Permission denied"


@needs_py_spy
def test_the_run_start_probe_samples_a_python_process_of_its_own():
    assert sampling_problem(find_py_spy()) is None


def attach_problem_as_nobody(pid: int) -> str:
    """:func:`attach_problem` run by the unprivileged user nobody; skips where that cannot run."""
    reasons = []
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run(
                [python, "-c", "import bench.measure.sampling_profiler"], user="nobody",
                cwd=REPO_ROOT, capture_output=True, text=True,
            )  # fmt: skip
        except OSError as error:
            reasons.append(f"{python}: {error.strerror}")
            continue
        if probe.returncode == 0:
            break
        reasons.append(f"{python}: {probe.stderr.strip().splitlines()[-1]}")
    else:
        pytest.skip(f"user nobody cannot run this checkout: {'; '.join(reasons)}")
    code = "import sys; from bench.measure.sampling_profiler import attach_problem as a; "
    code += "print(a(int(sys.argv[1]), sys.argv[2]))"
    with tempfile.TemporaryDirectory() as shelf:  # tox keeps .tox 0700: nobody gets its own copy
        os.chmod(shelf, 0o755)
        py_spy = shutil.copy(find_py_spy(), shelf)
        done = subprocess.run(
            [python, "-c", code, str(pid), py_spy],
            user="nobody", cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
    return done.stdout.strip()


@needs_py_spy
def test_no_ptrace_permission_gives_one_line_naming_the_remedy():
    if os.geteuid() == 0:  # root may read anything: ask as nobody about a process of root's
        line = attach_problem_as_nobody(os.getpid())
        pid = os.getpid()
    else:  # a plain user may not read PID 1 unless given CAP_SYS_PTRACE
        line, pid = attach_problem(1, find_py_spy()), 1
        if line is None:
            pytest.skip("this user may read PID 1's memory (CAP_SYS_PTRACE)")
    assert line.startswith(f"py-spy cannot read process {pid}: permission denied; ")
    assert "ptrace" in line and "\n" not in line
