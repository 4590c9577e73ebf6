"""``--target``: a server the test starts itself, measured by the runner without starting one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.measure import matrix, processes, runner
from bench.measure.settings import LoadRequest
from bench.measure.target import TARGET_SPEC, Target, TargetServer, parse_target

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000", Target("http://127.0.0.1:8000", "127.0.0.1", 8000)),
        ("http://example.org/", Target("http://example.org:80", "example.org", 80)),
        ("http://[::1]:81", Target("http://[::1]:81", "::1", 81)),
    ],
)
def test_a_target_url(url, expected):
    assert parse_target(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1:8000", "expected http://HOST[:PORT]"),
        ("127.0.0.1:8000", "expected http://HOST[:PORT]"),
        ("http://127.0.0.1:8000/app", "with no path"),
        ("http://127.0.0.1:8000/?x=1", "with no query"),
        ("http://127.0.0.1:port", "--target http://127.0.0.1:port"),
    ],
)
def test_a_wrong_target_url_is_one_line(url, message):
    with pytest.raises(ValueError) as raised:
        parse_target(url)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_target_pid_must_be_a_live_process():
    assert parse_target("http://127.0.0.1:1", os.getpid()).pid == os.getpid()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    with pytest.raises(ValueError, match="no such process on this host"):
        parse_target("http://127.0.0.1:1", int(finished.stdout))


def test_a_target_server_lives_as_long_as_its_pid():
    assert TargetServer(Target("http://h:1", "h", 1)).exit_code() is None  # nothing to watch
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    server = TargetServer(Target("http://h:1", "h", 1, child.pid))
    assert server.exit_code() is None and server.pid == child.pid
    child.communicate(b"\n")
    assert server.exit_code() == -1
    server.stop()  # never ours to stop: a no-op


def test_a_target_plan_is_one_server_named_target_on_the_app_parts():
    cells, skipped = matrix.plan("smoke", target=True)
    assert all(cell.server is TARGET_SPEC for cell in cells)
    assert sorted(cell.name for cell in cells) == [
        "target--app--fortunes--u8", "target--app--plaintext--u8"
    ]  # fmt: skip
    assert skipped == {}


@pytest.fixture
def own_server(tmp_path):
    """``python -m servers`` started by the test, as a user would start theirs."""
    log = tmp_path / "server.out"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "servers", "--model", "threaded", "--host", "127.0.0.1",
             "--port", "0", "bench.apps.app:app"],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (found := re.search(rb"listening on (http://\S+)", log.read_bytes())):
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    yield found.group(1).decode(), server.pid
    server.terminate()
    server.wait(10)


def run_against(run_dir: Path, url: str, pid: int | None) -> dict:
    (record,) = runner.run_load(
        run_dir,
        LoadRequest(
            "smoke",
            scenarios=["plaintext"],
            users=[2],
            duration=1.5,
            warmup=0.5,
            target=parse_target(url, pid),
        ),
        progress=False,
    )
    return record


@pytest.mark.slow
def test_target_measures_a_server_started_elsewhere_with_and_without_its_pid(tmp_path, own_server):
    url, pid = own_server
    sampled = run_against(tmp_path / "with-pid", url, pid)
    assert sampled["cell"] == "target--app--plaintext--u2" and sampled["status"] == "ok"
    assert (sampled["server"], sampled["model"], sampled["kind"]) == ("target",) * 3
    assert sampled["app_target"] == url and sampled["server_measured"] is True
    assert sampled["summary"]["rps"] > 0 and sampled["summary"]["fail_ratio"] == 0
    assert sampled["summary"]["server_cpu_pct"] > 0 and sampled["summary"]["server_rss_mb"] > 0

    unsampled = run_against(tmp_path / "without-pid", url, None)
    assert unsampled["status"] == "ok" and unsampled["server_measured"] is False
    assert unsampled["summary"]["rps"] > 0
    for key in ("server_cpu_pct", "server_rss_mb", "server_procs", "cpu_s_per_1k"):
        assert unsampled["summary"][key] is None, key
    meta = json.loads((tmp_path / "without-pid" / "meta.json").read_text())
    assert meta["target"] == {"url": url, "pid": None}
    # the runner never stopped it: it still answers
    assert processes.probe(int(url.rsplit(":", 1)[1]), matrix.SCENARIOS["plaintext"]) is None
