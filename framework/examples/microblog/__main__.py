"""``python -m framework.examples.microblog``: create the database if needed and serve the app."""

import argparse
import os

from framework.examples import microblog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument("--server", default="threaded", help="poll, threaded, fork or epoll")
    parser.add_argument("--database", default=microblog.DATABASE, help="the sqlite file")
    args = parser.parse_args()
    microblog.DATABASE = args.database
    if not os.path.exists(args.database):
        microblog.init_db()
    microblog.app.run(host=args.host, port=args.port, server=args.server)


if __name__ == "__main__":
    main()
