"""``python -m servers``: the listening line, options per model, access log and signals."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from servers.__main__ import model_options, parse_args
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


def test_only_given_options_reach_the_model():
    args = parse_args(["--model", "fork", "--workers", "3", "--timeout", "1.5", APP_SPEC])
    assert model_options(args) == {"workers": 3, "timeout": 1.5}
    args = parse_args(["--model", "poll", "--keep-alive", "--max-body", "10", APP_SPEC])
    assert model_options(args) == {"keep_alive": True, "max_body": 10}
    assert parse_args([APP_SPEC]).host == "127.0.0.1"
