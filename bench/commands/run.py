"""``run`` and ``load``: the commands that sequence a run — micro, load, history, report.

``load`` runs the Locust matrix (``bench.measure.runner``) into a run directory and builds its
report; ``run`` (what ``tox -e bench`` runs) measures the micro benchmarks first and appends the
finished run to the history. Arguments are checked before anything is created, so a bad value is
one line on stderr and no run directory.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path

from bench.analysis.history import append_run
from bench.analysis.report import build_report
from bench.commands.elsewhere import add_options, resolve, run_options
from bench.measure.budget import BUDGET_MIN
from bench.measure.profiles import PROFILES, SCENARIOS
from bench.measure.runner import plan, run_load
from bench.micro.cli import run_micro
from bench.rundir import new_run_dir

# --- command line -----------------------------------------------------------------------------


def names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def integers(text: str) -> list[int]:
    return [int(item) for item in names(text)]


def server_cpus(text: str) -> float | str:
    """``--server-cpus``: "off" or a number of CPUs the kernel can enforce (≥ 1 ms per period)."""
    if text == "off":
        return text
    try:
        cpus = float(text)
    except ValueError:
        cpus = math.nan
    if not BUDGET_MIN <= cpus <= len(os.sched_getaffinity(0)):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give 'off' or CPUs from {BUDGET_MIN} to the cores we may use, e.g. 0.3"
        )
    return cpus


def load_arguments(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--run-dir", type=Path, help="write here instead of a new results/<run-id>")
    parser.add_argument("--servers", type=names, help="e.g. poll,epoll")
    parser.add_argument(
        "--scenarios", type=names, help=f"from {', '.join(SCENARIOS)}, or a locustfile FILE.py"
    )
    parser.add_argument("--users", type=integers, help="user levels, e.g. 1,16,64")
    parser.add_argument("--duration", type=float, help="measured seconds per repeat")
    parser.add_argument("--warmup", type=float, help="excluded seconds before each repeat")
    parser.add_argument("--repeats", type=int)
    parser.add_argument(
        "--peers", help="none, all or NAME,... (default: all if the profile has a peers part)"
    )
    parser.add_argument(
        "--locust-workers",
        type=int,
        default=0,
        help="run Locust as a master with N worker processes",
    )
    parser.add_argument(
        "--server-cpus",
        type=server_cpus,
        help="CPU budget of each server tree, e.g. 0.3, or off (default: calibrated against the "
        "null server at the start of the run)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_options(parser)
    return parser


def interrupt_on_sigterm() -> None:
    """SIGTERM ends a run the way Ctrl-C does: current cell stopped, finished cells kept."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def load_into(run_dir: Path, args: argparse.Namespace) -> bool:
    """Run the load part; False when it was interrupted."""
    try:
        run_load(
            run_dir, args.profile, servers=args.servers, scenarios=args.scenarios,
            users=args.users, duration=args.duration, repeats=args.repeats, peers=args.peers,
            warmup=args.warmup, locust_workers=args.locust_workers, progress=not args.no_progress,
            **run_options(args),
            server_cpus=args.server_cpus,
        )  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted: the finished cells are kept", file=sys.stderr)
        return False
    return True


def finish_report(run_dir: Path) -> None:
    print(build_report(run_dir))


def parse_and_check(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments, with unknown servers, scenarios or peers reported before a run starts."""
    args = parser.parse_args(argv)
    out_of_range = {
        "--users must be at least 1": args.users and min(args.users) < 1,
        "--duration must be above 0": args.duration is not None and args.duration <= 0,
        "--warmup must not be negative": args.warmup is not None and args.warmup < 0,
        "--repeats must be at least 1": args.repeats is not None and args.repeats < 1,
        "--locust-workers must not be negative": args.locust_workers < 0,
    }
    for message, wrong in out_of_range.items():
        if wrong:
            parser.error(message)
    resolve(parser, args)
    try:
        plan(args.profile, args.servers, args.scenarios, args.users, args.peers,
             args.workload, args.target is not None)  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    return args


def load_main(argv: list[str]) -> int:
    """``python -m bench load``: the load matrix, then the report."""
    parser = load_arguments("python -m bench load", "the Locust load matrix, then the report")
    args = parse_and_check(parser, argv)
    interrupt_on_sigterm()
    run_dir = args.run_dir or new_run_dir(label=args.profile)
    completed = load_into(run_dir, args)
    finish_report(run_dir)
    return 0 if completed else 130


def run_main(argv: list[str]) -> int:
    """``python -m bench run``: micro + load + history + report (what ``tox -e bench`` runs)."""
    parser = load_arguments("python -m bench run", "micro + load + report")
    args = parse_and_check(parser, argv)
    interrupt_on_sigterm()
    run_dir = args.run_dir or new_run_dir(label=args.profile)
    try:
        micro_code = run_micro(run_dir, args.profile)
        completed = load_into(run_dir, args)
    except KeyboardInterrupt:
        micro_code, completed = 130, False
    if completed:  # a partial run would skew the trend
        append_run(run_dir)
    finish_report(run_dir)
    if not completed:
        return 130
    return 0 if micro_code == 0 else 1
