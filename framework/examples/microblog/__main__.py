"""python -m framework.examples.microblog: create the database if needed and serve the app."""

import argparse
import os
import sqlite3
import sys

from framework.examples import microblog
from servers import MODELS
from servers.__main__ import RUNTIME_ERROR, OneLineParser, host_name, port_number

PROG = "python -m framework.examples.microblog"
DESCRIPTION = "Serve the microblog example, creating its sqlite database on first start."


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument(
        "--host", type=host_name, default="127.0.0.1", help="address to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=port_number, default=5000, help="0 picks a free port (default: 5000)"
    )
    parser.add_argument(
        "--server", choices=list(MODELS), default="threaded", help="default: threaded"
    )
    parser.add_argument(
        "--database",
        default=microblog.DATABASE,
        metavar="PATH",
        help=f"the sqlite file, created if missing (default: {microblog.DATABASE})",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    microblog.DATABASE = args.database
    try:
        if not os.path.exists(args.database):
            microblog.init_db()
    except sqlite3.Error as err:  # e.g. its folder does not exist
        print(f"{PROG}: error: database {args.database!r}: {err}", file=sys.stderr)
        return RUNTIME_ERROR
    try:
        microblog.app.run(host=args.host, port=args.port, server=args.server)
    except OSError as err:  # mostly the bind: the port is taken, the address is not ours
        reason = err.strerror or err
        print(f"{PROG}: error: cannot serve on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return RUNTIME_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
