"""Test servers for the runner: Python snippets that listen, die at start or die under load."""

from __future__ import annotations

import sys

from bench.serving.registry import ServerSpec


def script_server(name: str, code: str) -> ServerSpec:
    """A test server: a Python snippet that gets HOST and PORT as argv."""
    return ServerSpec(name, "poll", "ours", lambda app, host, port: [sys.executable, "-c", code,
                      host, str(port)], prints_listening=True)  # fmt: skip


DIES_AT_START = "import sys; sys.stderr.write('cannot bind: boom\\n'); sys.exit(3)"
