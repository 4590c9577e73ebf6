"""The server registry: our four models through the servers CLI, then the peers."""

from __future__ import annotations

import sys

from bench.serving.registry import OUR_SERVERS, ServerSpec, all_servers
from bench.serving.spec import MODELS


def test_our_four_models_in_report_order():
    assert [spec.name for spec in OUR_SERVERS] == list(MODELS)
    assert all(spec.kind == "ours" and spec.prints_listening for spec in OUR_SERVERS)


def test_our_argv_runs_the_servers_cli_with_the_app_last():
    spec = all_servers()["epoll"]
    argv = spec.argv("bench.apps.app:app", "127.0.0.1", 0)
    assert argv[:3] == [sys.executable, "-m", "servers"]
    assert argv[argv.index("--model") + 1] == "epoll"
    assert argv[argv.index("--port") + 1] == "0"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[-1] == "bench.apps.app:app"


def test_all_servers_puts_ours_first_and_names_are_unique():
    servers = all_servers()
    assert list(servers)[:4] == list(MODELS)
    assert all(name == spec.name for name, spec in servers.items())


def test_peers_and_the_null_reference_join_when_available():
    servers = all_servers()
    kinds = {spec.kind for spec in servers.values()}
    assert "ours" in kinds
    if len(servers) > 4:  # bench.serving.peers is present
        assert "reference" in kinds and "null" in servers


def test_missing_requirements_names_what_is_not_installed():
    spec = ServerSpec("x", "poll", "peer", lambda a, h, p: [], requires=("json", "no_such_mod_xyz"))
    assert spec.missing_requirements() == ["no_such_mod_xyz"]
