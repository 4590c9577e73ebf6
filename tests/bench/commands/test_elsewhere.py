"""The options that bring an app, a locustfile, remote workers or a target into a run: each wrong
value or combination is one line before a run directory exists."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from bench.commands import run
from bench.commands.elsewhere import host_port, run_options
from bench.measure.workload import OURS

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = "tests/bench/fixtures/byoapp"
USER_APP = "tests.bench.fixtures.byoapp.app:app"


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--app", "no_such_package:app", "--scenarios", f"{FIXTURES}/scenarios.py"],
         "--app no_such_package:app does not import: ModuleNotFoundError"),
        (["--app", USER_APP, "--scenarios", f"{FIXTURES}/empty.py"], "has no user class"),
        (["--app", USER_APP, "--scenarios", f"{FIXTURES}/nofile.py"], "no such file"),
        (["--app", USER_APP], "--app needs --scenarios FILE.py"),
        (["--app", USER_APP, "--scenarios", "plaintext"], "--app needs --scenarios FILE.py"),
        (["--expect-workers", "2"], "--locust-master-bind and --expect-workers N"),
        (["--locust-master-bind", "127.0.0.1:5557"], "--locust-master-bind and --expect-workers"),
        (["--locust-master-bind", "127.0.0.1"], "'127.0.0.1' is not HOST:PORT"),
        (["--locust-master-bind", "127.0.0.1:5557", "--expect-workers", "1",
          "--locust-workers", "2"], "choose one"),
        (["--locust-master-bind", "0.0.0.0:5557", "--expect-workers", "1", "--server-host",
          "0.0.0.0"], "give the address they reach this machine at"),
        (["--target-pid", "1"], "--target-pid needs --target"),
        (["--target", "https://127.0.0.1:1"], "--target https://127.0.0.1:1: expected http"),
        (["--target", "http://127.0.0.1:1", "--servers", "poll"], "--servers"),
        (["--target", "http://127.0.0.1:1", "--server-host", "0.0.0.0"], "--server-host"),
    ],
)  # fmt: skip
def test_wrong_options_are_one_line_before_a_run_starts(argv, complaint, tmp_path, capsys):
    run_dir = tmp_path / "never"
    with pytest.raises(SystemExit) as stopped:
        run.load_main([*argv, "--run-dir", str(run_dir)])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert complaint in error and "Traceback" not in error
    assert not run_dir.exists()


def test_the_command_line_says_it_without_a_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--app", "no_such_package:app", "--scenarios",
         f"{FIXTURES}/scenarios.py", "--run-dir", str(tmp_path / "never")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "python -m bench run: error: --app no_such_package:app does not import: "
        "ModuleNotFoundError: No module named 'no_such_package' (see --help)"
    )
    assert "Traceback" not in done.stderr and not (tmp_path / "never").exists()


def parsed(argv: list[str]) -> argparse.Namespace:
    return run.parse_and_check(run.load_arguments("test", "test"), argv)


def test_a_scenario_file_replaces_our_scenarios_and_names_stay_names():
    args = parsed(["--app", USER_APP, "--scenarios", f"{FIXTURES}/scenarios.py"])
    assert args.scenarios is None and args.workload.apps == {"app": USER_APP}
    assert list(args.workload.scenarios) == ["greeter", "greeter2"]
    args = parsed(["--scenarios", "plaintext,io"])
    assert args.scenarios == ["plaintext", "io"] and args.workload is OURS and args.target is None


def test_the_options_reach_run_load():
    args = parsed(["--locust-master-bind", "0.0.0.0:6000", "--expect-workers", "3",
                   "--server-host", "localhost"])  # fmt: skip
    assert run_options(args) == {
        "workload": OURS, "server_host": "localhost", "master_bind": ("0.0.0.0", 6000),
        "expect_workers": 3, "target": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.0.0.0:5557", ("0.0.0.0", 5557)), ("[::]:5557", ("::", 5557)), ("h:1", ("h", 1))],
)
def test_host_port(text, expected):
    assert host_port(text) == expected


@pytest.mark.parametrize("text", ["5557", ":5557", "h:", "h:0", "h:65536", "h:x"])
def test_host_port_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError, match="is not HOST:PORT"):
        host_port(text)
