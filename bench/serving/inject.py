"""``python -m bench.serving.inject -m MODULE [ARGS...]``: run MODULE with a slower HTTP layer.

With ``BENCH_INJECT_SERVER_DELAY_US=N`` (N > 0) every request head that
``servers.http.ServerConnection`` parses costs N µs more CPU (a busy-wait, not a sleep), before
MODULE runs as ``__main__``. It is the server-side twin of the app's ``BENCH_INJECT_DELAY_US``: a
deliberate, known regression of the layer all four models share, to show that `bench regress`
catches it. The product's code is untouched: the method is wrapped in this process only (fork
children inherit it). Without the variable, or with 0, MODULE runs exactly as it would alone.

The runner starts our servers through this launcher when the variable is set (``wrap_argv``).
"""

from __future__ import annotations

import functools
import os
import runpy
import sys
import time

#: the environment variable that turns the injection on
DELAY_ENV = "BENCH_INJECT_SERVER_DELAY_US"
#: this launcher, as ``python -m`` names it
LAUNCHER = "bench.serving.inject"


def delay_us(environ: dict | os._Environ = os.environ) -> int:
    """The injected µs per parsed request head; 0 when unset. A bad value is a ValueError."""
    text = environ.get(DELAY_ENV) or "0"
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{DELAY_ENV} must be a whole number of µs, not {text!r}")
    return int(text)


def busy_wait(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


def slow_down_request_heads(microseconds: int) -> None:
    """Make every parsed request head cost ``microseconds`` more CPU in this process."""
    from servers.http import Request, ServerConnection

    parse = ServerConnection.next_event
    seconds = microseconds / 1_000_000

    @functools.wraps(parse)
    def next_event(self):
        event = parse(self)
        if type(event) is Request:
            busy_wait(seconds)
        return event

    ServerConnection.next_event = next_event


def injecting(environ: dict | os._Environ = os.environ) -> bool:
    """Is an injection asked for? (Any value but empty or 0: the launcher reports a bad one.)"""
    return environ.get(DELAY_ENV, "0") not in ("", "0")


def wrap_argv(argv: list[str]) -> list[str]:
    """``[python, "-m", MODULE, ...]`` started through this launcher instead."""
    return [argv[0], "-m", LAUNCHER, *argv[1:]]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "-m":
        print("usage: python -m bench.serving.inject -m MODULE [ARGS...]", file=sys.stderr)
        return 2
    try:
        microseconds = delay_us()
    except ValueError as error:
        print(f"bench.serving.inject: error: {error}", file=sys.stderr)
        return 2
    if microseconds > 0:
        slow_down_request_heads(microseconds)
    module = argv[1]
    sys.argv = [module, *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
