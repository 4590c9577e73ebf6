"""The Locust scenarios, run by real Locust processes against real HTTP servers.

Locust is never imported here (it monkey-patches the standard library with gevent); each test
runs ``locust -f bench/measure/instrument.py,bench/measure/scenarios.py`` as a subprocess, the
way the runner does, and reads the result file the locustfile writes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bench.catalogue import SCENARIOS

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCUSTFILE = REPO_ROOT / "bench" / "measure" / "scenarios.py"
#: what the runner loads beside it: the measured window and the result file
INSTRUMENT = REPO_ROOT / "bench" / "measure" / "instrument.py"


def serve_in_thread(app):
    """A real threaded HTTP server on 127.0.0.1 for the duration of a test."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def served():
    servers = []

    def serve(app) -> str:
        server = serve_in_thread(app)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def run_locust(host: str, user_classes: list[str], users: int, tmp_path: Path) -> dict:
    result_file = tmp_path / "result.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "BENCH_WARMUP_S": "0.5",
        "BENCH_DURATION_S": "1.5",
        "BENCH_RESULT_FILE": str(result_file),
    }
    argv = [
        sys.executable, "-m", "locust", "-f", f"{INSTRUMENT},{LOCUSTFILE}", "--headless",
        "--host", host,
        "--users", str(users), "--spawn-rate", str(users * 4), "--run-time", "20s",
        "--csv", str(tmp_path / "stats"), "--only-summary", "--loglevel", "WARNING",
        "--exit-code-on-error", "0", *user_classes,
    ]  # fmt: skip
    completed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(result_file.read_text())


def test_locust_lists_every_user_class():
    completed = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--list"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    listed = set(completed.stdout.split())
    assert {scenario.user_class for scenario in SCENARIOS.values()} <= listed
    assert "CheckedUser" not in listed  # the abstract base makes no load


@pytest.mark.slow
def test_every_scenario_passes_its_checks_against_the_app(served, tmp_path):
    from bench.apps.app import app

    host = served(app)
    classes = sorted({scenario.user_class for scenario in SCENARIOS.values()})
    result = run_locust(host, classes, users=len(classes), tmp_path=tmp_path)
    assert result["requests"] > len(classes)
    assert result["failures"] == 0, result["errors"]
    assert result["measure_stop"] - result["measure_start"] == pytest.approx(1.5, abs=0.3)
    assert result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]
    requested = (tmp_path / "stats_stats.csv").read_text()
    for scenario in SCENARIOS.values():
        assert scenario.probe_path in requested, scenario.name


def lying_app(environ, start_response):
    """Fast answers that are wrong: a 500, a 200 without the marker, a counter that never moves."""
    path = environ["PATH_INFO"]
    status, body = {
        "/plaintext": ("500 Internal Server Error", b"Hello, World!"),
        "/json": ("200 OK", b"{}"),
        "/session": ("200 OK", b'{"count": 1}'),
    }.get(path, ("404 Not Found", b"no"))
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.mark.slow
def test_fast_wrong_answers_count_as_failures(served, tmp_path):
    host = served(lying_app)
    result = run_locust(host, ["PlaintextUser", "JsonUser", "SessionUser"], 3, tmp_path)
    errors = " ".join(result["errors"])
    assert "status 500" in errors
    assert "body lacks" in errors
    assert "counter went from 1 to 1" in errors
    # every plaintext and json request failed; only a session's first answer can pass
    assert result["failures"] >= result["requests"] - 3


@pytest.mark.slow
def test_a_missing_server_is_all_failures(tmp_path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = run_locust(f"http://127.0.0.1:{port}", ["PlaintextUser"], 2, tmp_path)
    assert result["requests"] > 0
    assert result["failures"] == result["requests"]
