"""The options of ``run`` and ``load`` that bring things from elsewhere into a run.

- ``--app mypkg.wsgi:app --scenarios myscenarios.py``: the user's WSGI app, loaded by the user
  classes of the user's locustfile (``bench.measure.workload``);
- ``--locust-master-bind HOST:PORT --expect-workers N``: every cell's Locust runs as a master
  that waits for N workers started on other machines (``python -m bench worker``);
- ``--server-host ADDR``: our servers bind ADDR instead of 127.0.0.1;
- ``--target URL [--target-pid PID]``: measure a server the user started (``bench.measure.target``).

Each is checked here, before a run directory exists: a wrong value is one line naming it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.measure.settings import HOST
from bench.measure.target import parse_target
from bench.measure.workload import OURS, WorkloadError, user_workload

#: bind addresses that name no host a remote worker could send requests to
WILDCARDS = ("0.0.0.0", "::", "")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", help="serve this WSGI app, module:attr (needs --scenarios FILE)")
    parser.add_argument(
        "--locust-master-bind",
        type=host_port,
        metavar="HOST:PORT",
        help="run Locust as a master bound here, for workers on other machines",
    )
    parser.add_argument(
        "--expect-workers", type=int, default=0, help="workers every cell waits for"
    )
    parser.add_argument("--server-host", default=HOST, help=f"address servers bind ({HOST})")
    parser.add_argument("--target", help="measure the server at this http://HOST:PORT instead")
    parser.add_argument("--target-pid", type=int, help="its process on this host, to sample")


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 0.0.0.0:5557)")
    return host.strip("[]"), int(port)


def scenario_file(args: argparse.Namespace) -> Path | None:
    """``--scenarios FILE.py`` names a locustfile; a list of names picks our scenarios."""
    if args.scenarios and len(args.scenarios) == 1 and args.scenarios[0].endswith(".py"):
        return Path(args.scenarios[0])
    return None


def resolve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the options and set ``args.workload`` and ``args.target`` (parser.error if wrong)."""
    for message in conflicts(args):
        parser.error(message)
    path = scenario_file(args)
    if path is not None:
        args.scenarios = None
    try:
        args.workload = user_workload(args.app, path) if path else OURS
        args.target = parse_target(args.target, args.target_pid) if args.target else None
    except (WorkloadError, ValueError) as error:
        parser.error(str(error))


def conflicts(args: argparse.Namespace) -> list[str]:
    """Combinations that cannot work, each as the one-line error it gets."""
    remote = args.locust_master_bind is not None
    wrong = {
        "--app needs --scenarios FILE.py: the user classes that load your app": args.app
        and scenario_file(args) is None,
        "--locust-master-bind and --expect-workers N (N >= 1) go together": remote
        != (args.expect_workers > 0),
        "--expect-workers must not be negative": args.expect_workers < 0,
        "--locust-workers starts local workers; --expect-workers waits for remote ones: "
        "choose one": remote and args.locust_workers,
        "--server-host 0.0.0.0 or :: cannot be handed to remote workers: give the address "
        "they reach this machine at": remote and args.server_host in WILDCARDS,
        "--target-pid needs --target": args.target_pid is not None and not args.target,
        "--target measures a server you started: --app, --servers, --peers and --server-host "
        "do not apply": args.target
        and (args.app or args.servers or args.peers or args.server_host != HOST),
        "--target measures a server you started, on the CPU you gave it: --server-cpus does "
        "not apply": args.target and getattr(args, "server_cpus", None) is not None,
    }
    return [message for message, is_wrong in wrong.items() if is_wrong]


def run_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``bench.measure.runner.run_load`` these options set."""
    return {
        "workload": args.workload,
        "server_host": args.server_host,
        "master_bind": args.locust_master_bind,
        "expect_workers": args.expect_workers,
        "target": args.target,
    }
