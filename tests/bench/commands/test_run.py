"""``run`` and ``load``: arguments checked before a run starts, and a run interrupted mid-cell."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.commands import run

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_keeps_finished_cells_and_leaves_no_process(tmp_path, signum):
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "bench", "load", "--profile", "smoke", "--servers", "threaded,epoll",
        "--scenarios", "fortunes", "--users", "2", "--duration", "2", "--warmup", "0.5",
        "--peers", "none", "--run-dir", str(run_dir), "--no-progress",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    first = run_dir / "cells" / "threaded--app--fortunes--u2.json"
    deadline = time.monotonic() + 60
    while not first.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert first.exists(), "the first cell never finished"
    time.sleep(1.5)  # into the second cell: its server and Locust are running
    descendants = psutil.Process(process.pid).children(recursive=True)
    assert descendants, "the second cell started no processes"
    process.send_signal(signum)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert sorted(path.name for path in (run_dir / "cells").glob("*.json")) == [first.name]
    assert (run_dir / "report.html").exists() and str(run_dir / "report.html") in stdout
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "interrupted"
    _, alive = psutil.wait_procs(descendants, timeout=5)
    assert alive == []


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--servers", "nosuch"], "nosuch"),
        (["--scenarios", "nosuch"], "nosuch"),
        (["--peers", "nosuch"], "nosuch"),
        (["--users", "0"], "--users"),
        (["--users", "8,x"], "--users"),
        (["--duration", "-1"], "--duration"),
        (["--duration", "0"], "--duration"),
        (["--warmup", "-0.5"], "--warmup"),
        (["--repeats", "0"], "--repeats"),
        (["--locust-workers", "-2"], "--locust-workers"),
        (["--server-cpus", "0.05"], "'0.05': give 'off' or CPUs from 0.1"),
        (["--server-cpus", "half"], "'half': give 'off' or CPUs"),
        (["--server-cpus", "999"], "--server-cpus"),
    ],
)
def test_bad_arguments_stop_the_command_before_a_run_starts(argv, complaint, tmp_path, capsys):
    run_dir = tmp_path / "never"
    for main in (run.load_main, run.run_main):
        with pytest.raises(SystemExit) as stopped:
            main([*argv, "--run-dir", str(run_dir)])
        assert stopped.value.code == 2
        assert complaint in capsys.readouterr().err
        assert not run_dir.exists()


@pytest.mark.parametrize(("text", "value"), [("off", "off"), ("0.3", 0.3), ("1", 1.0)])
def test_server_cpus_is_off_or_a_number_of_cpus(text, value):
    assert run.server_cpus(text) == value
