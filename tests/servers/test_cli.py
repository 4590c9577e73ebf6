"""``python -m servers``: the listening line, options per model, access log and signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from servers.__main__ import model_options, parse_args
from servers.http import Limits
from tests.servers.test_contract import APP_SPEC, HELLO, MODELS, get, start_cli, stop


class Address:
    def __init__(self, server_address: tuple[str, int]) -> None:
        self.server_address = server_address


@pytest.mark.parametrize("model", MODELS)
def test_prints_one_listening_line_with_the_real_port_and_serves(model):
    proc, address = start_cli("--model", model, APP_SPEC)
    try:
        assert address[0] == "127.0.0.1" and address[1] > 0
        assert get(Address(address))[2] == HELLO
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert out == ""  # nothing after the one listening line
    finally:
        stop(proc)


def test_access_log_writes_a_line_per_request_to_stderr():
    proc, address = start_cli("--model", "threaded", "--access-log", APP_SPEC)
    try:
        get(Address(address), "/?a=1")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        stop(proc)
    assert '127.0.0.1 "GET /?a=1 HTTP/1.1" 200' in err


@pytest.mark.parametrize(
    ("model", "option"),
    [("poll", "--workers"), ("threaded", "--threads"), ("epoll", "--max-children")],
)
def test_an_option_the_model_does_not_take_is_refused(model, option):
    argv = [sys.executable, "-m", "servers", "--model", model, option, "2", "--port", "0", APP_SPEC]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{option} does not apply to --model {model}" in result.stderr
    assert result.stdout == ""


def test_an_unknown_model_is_refused():
    argv = [sys.executable, "-m", "servers", "--model", "gevent", APP_SPEC]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m servers ARGS`` expected to exit before serving."""
    argv = [sys.executable, "-m", "servers", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


def assert_one_line_error(result: subprocess.CompletedProcess, returncode: int, *words: str):
    assert result.returncode == returncode, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("python -m servers: error: "), result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    for word in words:
        assert word in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "70000"], ["'70000'", "0 to 65535"]),
        (["--port", "-1"], ["'-1'", "0 to 65535"]),
        (["--port", "http"], ["'http'", "0 to 65535"]),
        (["--host", "nope.invalid"], ["unknown host 'nope.invalid'"]),
        (["--max-threads", "-1"], ["--max-threads", "'-1'", ">= 1"]),
        (["--max-threads", "0"], ["--max-threads", "'0'", ">= 1"]),
        (["--model", "fork", "--max-children", "0"], ["--max-children", "'0'", ">= 1"]),
        (["--model", "fork", "--workers", "-2"], ["--workers", "'-2'", ">= 0"]),
        (["--model", "epoll", "--threads", "-1"], ["--threads", "'-1'", ">= 0"]),
        (["--timeout", "-1"], ["--timeout", "'-1'", "seconds > 0"]),
        (["--timeout", "0"], ["--timeout", "'0'", "seconds > 0"]),
        (["--timeout", "inf"], ["--timeout", "'inf'", "seconds > 0"]),
        (["--graceful-timeout", "-1"], ["--graceful-timeout", "'-1'", "seconds >= 0"]),
        (["--max-body", "-5"], ["--max-body", "'-5'", ">= 0"]),
        (["--max-request-line", "13"], ["--max-request-line", "'13'", ">= 14"]),
        (["--max-header-field", "6"], ["--max-header-field", "'6'", ">= 7"]),
        (["--max-header-count", "0"], ["--max-header-count", "'0'", ">= 1"]),
        (["--max-head-bytes", "26"], ["--max-head-bytes", "'26'", ">= 27"]),
        (["--max-chunk-line", "x"], ["--max-chunk-line", "'x'", ">= 1"]),
        (["--model", "epoll", "--idle-timeout", "0"], ["--idle-timeout", "'0'", "seconds > 0"]),
    ],
)
def test_a_value_that_cannot_work_is_refused_in_one_line(args, words):
    result = run_cli("--port", "0", *args, APP_SPEC)  # the last --port given wins
    assert_one_line_error(result, 2, *words)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no_such_module:app", ["'no_such_module'", "No module named 'no_such_module'"]),
        ("tests.servers.test_contract:nope", ["'tests.servers.test_contract'", "'nope'"]),
        ("servers", ["'servers'", "no attribute 'app'"]),  # ATTR defaults to app
        ("tests.servers.test_contract:HELLO", ["'tests.servers.test_contract:HELLO'", "bytes"]),
        (":app", ["':app'"]),
    ],
)
def test_an_app_that_cannot_be_served_is_refused_in_one_line(spec, words):
    result = run_cli("--port", "0", spec)
    assert_one_line_error(result, 2, "MODULE:ATTR", *words)


def test_an_app_whose_module_fails_to_import_is_refused_in_one_line(tmp_path):
    (tmp_path / "broken_app.py").write_text("raise RuntimeError('no config file')\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    result = run_cli("--port", "0", "broken_app:app", env=env)
    assert_one_line_error(result, 2, "'broken_app'", "RuntimeError: no config file")


def test_a_port_in_use_is_one_line_and_a_runtime_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--port", str(port), APP_SPEC)
    assert_one_line_error(result, 1, f"127.0.0.1:{port}", "Address already in use")


def test_help_shows_every_default_as_plain_text():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "``" not in result.stdout
    text = " ".join(result.stdout.split())  # argparse wraps lines to the terminal's width
    for default in ("threaded", "127.0.0.1", "8000", "10)", "10485760", "256", "64"):
        assert f"default: {default}" in text


def test_only_given_options_reach_the_model():
    args = parse_args(["--model", "fork", "--workers", "3", "--timeout", "1.5", APP_SPEC])
    assert model_options(args) == {"workers": 3, "timeout": 1.5}
    args = parse_args(["--model", "poll", "--keep-alive", "--max-body", "10", APP_SPEC])
    assert model_options(args) == {"keep_alive": True, "limits": Limits(max_body=10)}
    args = parse_args(["--max-request-line", "99", "--max-header-count", "5", APP_SPEC])
    assert model_options(args) == {"limits": Limits(max_request_line=99, max_header_count=5)}
    assert parse_args([APP_SPEC]).host == "127.0.0.1"
