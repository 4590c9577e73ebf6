"""python -m servers [--model MODEL] [options] MODULE:ATTR: serve a WSGI app with one model.

A value that cannot work is refused while the arguments are parsed (exit 2); a server that cannot
start (the port is taken) is reported after (exit 1). Either way: one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import socket
import sys
from collections.abc import Callable
from typing import NoReturn

from servers import MODELS, serve
from servers.base import BaseServer
from servers.http import Limits

#: CLI option → keyword argument, for the options only some models take
MODEL_OPTIONS = {
    "max_threads": "--max-threads",
    "max_children": "--max-children",
    "workers": "--workers",
    "threads": "--threads",
    "keep_alive": "--keep-alive",
    "idle_timeout": "--idle-timeout",
}
#: exit status when the arguments were fine but the server could not run (argparse's is 2)
RUNTIME_ERROR = 1

DESCRIPTION = """\
Serve the WSGI application MODULE:ATTR (ATTR defaults to app) with one concurrency model.
Once it accepts connections it prints one line, listening on http://HOST:PORT, and serves
until SIGTERM or SIGINT."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: the message, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from `low` up to `high` (no upper bound when None)."""
    valid = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not valid; use {valid}")
        return value

    return parse


def seconds(allow_zero: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds, > 0 (or >= 0 when `allow_zero`)."""
    valid = "a number of seconds " + (">= 0" if allow_zero else "> 0")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"{text!r} is not valid; use {valid}")
        return value

    return parse


#: 0 asks the kernel for a free port
port_number = whole_number(0, 65535)


def host_name(text: str) -> str:
    """An argparse type: an address or a name that resolves (the bind itself comes later)."""
    try:
        socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise argparse.ArgumentTypeError(
            f"unknown host {text!r} ({reason}); use an IP address or a name that resolves"
        ) from None
    return text


def load_app(spec: str) -> Callable:
    """An argparse type: import MODULE and return its ATTR (default ``app``), a callable."""
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # the app's own import can fail any way; say how, in one line
        raise argparse.ArgumentTypeError(
            f"cannot import {module_name!r} from {spec!r}: {type(err).__name__}: {err}"
        ) from None
    if not hasattr(module, attr):
        raise argparse.ArgumentTypeError(f"module {module_name!r} has no attribute {attr!r}")
    app = getattr(module, attr)
    if not callable(app):
        kind = type(app).__name__
        raise argparse.ArgumentTypeError(f"{spec!r} is a {kind}, not a callable WSGI app")
    return app


def default_of(model: type[BaseServer], name: str) -> object:
    """A model's default for one option, so the help text cannot drift from the code."""
    return {option.name: option.default for option in dataclasses.fields(model.Options)}[name]


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """``--max-request-line`` and the rest: one flag per field of ``servers.http.Limits``."""
    for limit in dataclasses.fields(Limits):
        parser.add_argument(
            "--" + limit.name.replace("_", "-"),
            type=whole_number(limit.metadata["least"]),
            metavar="BYTES" if limit.name != "max_header_count" else "N",
            help=f"{limit.metadata['meaning']} (default: {limit.default})",
        )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The options only one concurrency model takes."""
    parser.add_argument(
        "--max-threads",
        type=whole_number(1),
        metavar="N",
        help="threaded: most connections served at once "
        f"(default: {default_of(MODELS['threaded'], 'max_threads')})",
    )
    parser.add_argument(
        "--max-children",
        type=whole_number(1),
        metavar="N",
        help="fork: most child processes at once "
        f"(default: {default_of(MODELS['fork'], 'max_children')})",
    )
    parser.add_argument(
        "--workers",
        type=whole_number(0),
        metavar="N",
        help="fork: N prefork workers instead of a process per connection (default: 0, none)",
    )
    parser.add_argument(
        "--threads",
        type=whole_number(0),
        metavar="N",
        help="epoll: run the app on a pool of N threads (default: 0, on the loop thread)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=seconds(allow_zero=False),
        metavar="S",
        help="epoll: seconds a keep-alive connection may wait for its next request "
        f"(default: {default_of(MODELS['epoll'], 'idle_timeout'):g})",
    )
    parser.add_argument(
        "--keep-alive",
        action="store_const",
        const=True,
        help="poll: keep connections open between requests (default: close after each)",
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m servers", description=DESCRIPTION)
    # Model options default to None: only what was given reaches the model (see model_options).
    parser.add_argument(
        "--model", choices=list(MODELS), default="threaded", help="default: threaded"
    )
    parser.add_argument(
        "--host", type=host_name, default="127.0.0.1", help="address to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=port_number, default=8000, help="0 picks a free port (default: 8000)"
    )
    parser.add_argument(
        "--timeout",
        type=seconds(allow_zero=False),
        metavar="S",
        help=f"seconds a silent client is kept (default: {default_of(BaseServer, 'timeout'):g})",
    )
    add_limit_options(parser)
    add_model_options(parser)
    parser.add_argument(
        "--graceful-timeout",
        type=seconds(allow_zero=True),
        metavar="S",
        help="seconds in-flight requests get after SIGTERM "
        f"(default: {default_of(BaseServer, 'graceful_timeout'):g})",
    )
    parser.add_argument(
        "--access-log", action="store_const", const=True, help="one line per request on stderr"
    )
    parser.add_argument(
        "app", metavar="MODULE:ATTR", type=load_app, help="the WSGI application to serve"
    )
    return parser.parse_args(argv)


def model_options(args: argparse.Namespace) -> dict:
    """The options given on the command line; an option the model does not take is an error."""
    names = ("timeout", "graceful_timeout", "access_log", *MODEL_OPTIONS)
    options = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    accepted = {option.name for option in dataclasses.fields(MODELS[args.model].Options)}
    for name in options:
        if name in MODEL_OPTIONS and name not in accepted:
            raise ValueError(f"{MODEL_OPTIONS[name]} does not apply to --model {args.model}")
    limits = {
        limit.name: getattr(args, limit.name)
        for limit in dataclasses.fields(Limits)
        if getattr(args, limit.name) is not None
    }
    if limits:
        options["limits"] = Limits(**limits)
    return options


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        options = model_options(args)
    except ValueError as err:
        print(f"python -m servers: error: {err}", file=sys.stderr)
        return 2
    try:
        serve(args.app, args.model, args.host, args.port, **options)
    except OSError as err:  # mostly the bind: the port is taken, the address is not ours
        reason = err.strerror or err
        print(
            f"python -m servers: error: cannot serve on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return RUNTIME_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
