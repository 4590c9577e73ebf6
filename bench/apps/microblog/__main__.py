"""python -m bench.apps.microblog: bind, create the database if needed, and serve the app.

The server is bound first (``servers.make_server``), so a host or port it cannot have is refused
before the database file is made.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import sys

from bench.apps import microblog
from bench.cli import Parser
from servers import MODELS, make_server

PROG = "python -m bench.apps.microblog"
DESCRIPTION = "Serve the microblog example, creating its sqlite database on first start."
#: the exit code of a bad argument, and of a failure once the arguments were good
USAGE_ERROR, RUNTIME_ERROR = 2, 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument("--server", choices=list(MODELS), default="threaded", help="the model")
    parser.add_argument(
        "--database",
        default=microblog.DATABASE,
        metavar="PATH",
        help="the sqlite file, created if missing",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"argument --port: {str(args.port)!r} is not a port from 0 to 65535")
    return args


def error(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    microblog.DATABASE = args.database
    try:
        server = make_server(microblog.app, model=args.server, host=args.host, port=args.port)
    except socket.gaierror as err:
        return error(f"unknown host {args.host!r} ({err.strerror})", USAGE_ERROR)
    except OSError as err:  # the port is taken, the address is not ours
        reason = err.strerror or err
        return error(f"cannot serve on {args.host}:{args.port}: {reason}", RUNTIME_ERROR)
    try:
        if not os.path.exists(args.database):
            microblog.init_db()
    except sqlite3.Error as err:  # e.g. its folder does not exist
        server.close()
        return error(f"database {args.database!r}: {err}", RUNTIME_ERROR)
    server.install_signal_handlers()  # SIGTERM/SIGINT: stop accepting, finish in-flight work
    host, port = server.server_address[:2]
    print(f" * Running on http://{host}:{port}/ ({args.server})", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
