"""``python -m servers --model MODEL [options] MODULE:ATTR``: serve a WSGI app with one model."""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

from servers import MODELS, serve

#: CLI option → keyword argument, for the options only some models take
MODEL_OPTIONS = {
    "max_threads": "--max-threads",
    "max_children": "--max-children",
    "workers": "--workers",
    "threads": "--threads",
    "keep_alive": "--keep-alive",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m servers", description=__doc__)
    parser.add_argument("--model", choices=sorted(MODELS), default="threaded")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--timeout", type=float, help="seconds a silent client is kept (10)")
    parser.add_argument("--max-body", type=int, metavar="BYTES", help="largest request body")
    parser.add_argument("--max-threads", type=int, metavar="N", help="threaded: thread cap (256)")
    parser.add_argument("--max-children", type=int, metavar="N", help="fork: process cap (64)")
    parser.add_argument("--workers", type=int, metavar="N", help="fork: N prefork workers")
    parser.add_argument("--threads", type=int, metavar="N", help="epoll: app thread pool size")
    parser.add_argument(
        "--keep-alive",
        action="store_const",
        const=True,
        help="poll: keep connections open between requests",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        metavar="S",
        help="seconds in-flight requests get after SIGTERM (10)",
    )
    parser.add_argument(
        "--access-log", action="store_const", const=True, help="one line per request on stderr"
    )
    parser.add_argument("app", metavar="MODULE:ATTR", help="the WSGI application to serve")
    return parser.parse_args(argv)


def load_app(spec: str):
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr or "app")


def model_options(args: argparse.Namespace) -> dict:
    """The options given on the command line; an option the model does not take is an error."""
    names = ("timeout", "max_body", "graceful_timeout", "access_log", *MODEL_OPTIONS)
    options = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    accepted = inspect.signature(MODELS[args.model]).parameters
    for name in options:
        if name in MODEL_OPTIONS and name not in accepted:
            raise ValueError(f"{MODEL_OPTIONS[name]} does not apply to --model {args.model}")
    return options


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        options = model_options(args)
    except ValueError as err:
        print(f"python -m servers: error: {err}", file=sys.stderr)
        return 2
    serve(load_app(args.app), args.model, args.host, args.port, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
