"""Each peer starts from its registry entry, serves /plaintext, and stops cleanly on SIGTERM.

Most tests serve ``bench.apps.rawapp:app``: the same /plaintext body and Content-Type as
bench.apps.app without the framework, so they check the servers and nothing else; one serves
bench.apps.app itself.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from bench.analysis.pairs import PAIRS, TARGETS
from bench.serving.peers import PEER_SERVERS, named_but_missing, select_peers
from bench.serving.registry import ServerSpec, all_servers
from bench.serving.spec import MODELS

APP = "bench.apps.rawapp:app"
REAL_PEERS = [spec for spec in PEER_SERVERS if spec.kind == "peer"]
STARTUP_TIMEOUT_S = 30


def start(spec: ServerSpec, app: str = APP) -> tuple[subprocess.Popen, int]:
    """Start SPEC on a free port in its own process group; return it once it says it listens."""
    process = subprocess.Popen(
        spec.argv(app, "127.0.0.1", 0),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_S)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("listening on http://127.0.0.1:"):
        stop_group(process)
        pytest.fail(f"{spec.name} did not announce itself: {line!r}\n{process.stderr.read()}")
    return process, int(line.rsplit(":", 1)[1])


def stop_group(process: subprocess.Popen) -> None:
    """Last resort after a failure: kill the group this test started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def group_is_empty(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def get(port: int, path: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


@pytest.fixture(params=PEER_SERVERS, ids=lambda spec: spec.name)
def running_peer(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[ServerSpec, subprocess.Popen, int]]:
    spec = request.param
    missing = spec.missing_requirements()
    if missing:
        pytest.skip(f"skipped: not installed ({', '.join(missing)})")
    process, port = start(spec)
    try:
        yield spec, process, port
    finally:
        if process.poll() is None:
            stop_group(process)
        process.stdout.close()
        process.stderr.close()


@pytest.mark.slow
def test_peer_serves_plaintext_and_stops_cleanly_on_sigterm(running_peer) -> None:
    spec, process, port = running_peer
    for _ in range(3):  # more than one request: forking and prefork servers answer from a child
        status, content_type, body = get(port, "/plaintext")
        assert (status, body) == (200, b"Hello, World!")
        assert content_type.startswith("text/plain")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, process.stderr.read()
    deadline = time.monotonic() + 5  # a bounded wait for children already told to exit
    while not group_is_empty(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_is_empty(process.pid), f"{spec.name} left processes behind"


def keep_requesting(port: int, stop: threading.Event, answered: threading.Event) -> None:
    """Requests back to back until told to stop, the server goes away, or 15 s pass; sets
    ``answered`` once the server has answered one of them."""
    deadline = time.monotonic() + 15
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            get(port, "/plaintext")
        except (OSError, http.client.HTTPException):  # the server closed mid-response: it stops
            return
        answered.set()


@pytest.mark.slow
def test_peer_stops_on_sigterm_while_serving_requests(running_peer) -> None:
    # a signal landing mid-request (or mid-fork) must still stop the server
    spec, process, port = running_peer
    stop = threading.Event()
    answered = [threading.Event() for _ in range(4)]
    clients = [threading.Thread(target=keep_requesting, args=(port, stop, event))
               for event in answered]  # fmt: skip
    for client in clients:
        client.start()
    try:
        # every client is being served: the signal lands among requests, not before them
        assert all(event.wait(timeout=15) for event in answered), "a client was never answered"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        stop.set()
        for client in clients:
            client.join()


@pytest.mark.slow
def test_peers_pass_the_path_to_the_app(running_peer) -> None:
    spec, _, port = running_peer
    status, _, body = get(port, "/no/such/page")
    if spec.model == "null":  # no app behind it: every path gets the plaintext body
        assert (status, body) == (200, b"Hello, World!")
    else:
        assert (status, body) == (404, b"Not Found")


@pytest.mark.slow
@pytest.mark.parametrize("spec", REAL_PEERS, ids=lambda spec: spec.name)
def test_peer_serves_the_app_under_test(spec: ServerSpec) -> None:
    # what the load runs: bench.apps.app through the framework, sqlite included (twice: a forking
    # server answers each connection from a fresh child)
    if spec.missing_requirements():
        pytest.skip(f"skipped: not installed ({', '.join(spec.missing_requirements())})")
    process, port = start(spec, "bench.apps.app:app")
    try:
        assert get(port, "/plaintext")[::2] == (200, b"Hello, World!")
        for _ in range(2):
            status, content_type, body = get(port, "/fortunes")
            assert status == 200 and content_type.startswith("text/html")
            assert b"<table" in body
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            stop_group(process)
        process.stdout.close()
        process.stderr.close()


def test_every_model_has_peers_of_its_own_family() -> None:
    by_name = {spec.name: spec for spec in PEER_SERVERS}
    assert set(PAIRS) == set(MODELS)
    for model, peer_names in PAIRS.items():
        for name in peer_names:
            assert by_name[name].model == model
            assert by_name[name].kind == "peer"
    assert {peer for _, peer in TARGETS} <= {name for names in PAIRS.values() for name in names}


def test_entries_record_version_and_settings_and_join_the_registry() -> None:
    servers = all_servers()
    for spec in PEER_SERVERS:
        assert servers[spec.name] is spec
        assert spec.prints_listening
        assert spec.settings
        if spec.kind == "peer" and not spec.missing_requirements():
            assert spec.settings["version"], spec.name
    null = servers["null"]
    assert (null.kind, null.model, null.requires) == ("reference", "null", ())
    assert null.scenarios == ("plaintext",)


def test_missing_package_is_reported_as_skipped_not_a_crash() -> None:
    ghost = ServerSpec(
        "ghost",
        "threaded",
        "peer",
        lambda app, host, port: [sys.executable, "-c", "import no_such_server_package"],
        requires=("no_such_server_package",),
    )
    assert ghost.missing_requirements() == ["no_such_server_package"]
    runnable, skipped = select_peers("all", (ghost, *PEER_SERVERS))
    assert ghost not in runnable
    assert skipped["ghost"].startswith("skipped: not installed")
    assert "no_such_server_package" in skipped["ghost"]


def test_a_peer_named_but_not_installed_gets_one_console_line() -> None:
    ghost = ServerSpec("ghost", "threaded", "peer", lambda app, host, port: [],
                       requires=("no_such_server_package",))  # fmt: skip
    _, skipped = select_peers("ghost,tornado", (ghost, *PEER_SERVERS))
    line = named_but_missing("ghost,tornado", skipped)
    assert line.startswith("--peers: not run, ghost not installed (no_such_server_package)")
    assert "\n" not in line and "tornado" not in line
    # "all" lists its missing peers in the report only; nothing missing, nothing said
    assert named_but_missing("all", skipped) == "" and named_but_missing("tornado", {}) == ""


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", []),
        ("all", [spec.name for spec in PEER_SERVERS]),
        ("production", [s.name for s in PEER_SERVERS if not s.name.startswith("werkzeug")]),
        ("tornado", ["tornado"]),
        ("waitress, null", ["waitress", "null"]),
    ],
)
def test_select_peers(choice: str, expected: list[str]) -> None:
    runnable, skipped = select_peers(choice)
    # every chosen peer either runs or is skipped with its reason (bjoern is optional: not
    # installed on a fresh machine), and those that run keep the registry's order
    assert sorted([spec.name for spec in runnable] + list(skipped)) == sorted(expected)
    assert [spec.name for spec in runnable] == [name for name in expected if name not in skipped]


@pytest.mark.parametrize("choice", ["tornadoo", "waitress,nginx", "poll"])
def test_select_peers_rejects_unknown_names(choice: str) -> None:
    with pytest.raises(ValueError, match="unknown peer"):
        select_peers(choice)


def test_launcher_with_an_unimportable_app_fails_loudly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.serving.peers", "werkzeug-base", "no_such_app_module:app",
         "127.0.0.1", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "no_such_app_module" in result.stderr
    assert "listening on" not in result.stdout


def test_launcher_rejects_an_unknown_server_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.serving.peers", "nginx", APP, "127.0.0.1", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
