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
import traceback
from pathlib import Path

from bench.analysis.history import append_run
from bench.analysis.report import build_report, console_verdict, second_look
from bench.catalogue import SCENARIOS
from bench.cli import Parser, add_profile, add_resume, add_run_dir
from bench.commands.elsewhere import add_options, resolve, run_options
from bench.measure.budget import BUDGET_MIN
from bench.measure.matrix import plan
from bench.measure.profiles import PROFILES
from bench.measure.resume import foreign_cells
from bench.measure.runner import run_load, run_status
from bench.measure.settings import LoadRequest
from bench.micro.cli import run_micro
from bench.rundir import (
    META_FILE,
    MICRO_FILE,
    RunDirError,
    new_run_dir,
    prepare_run_dir,
    read_meta,
    shared_root,
    write_json,
)

# --- command line -----------------------------------------------------------------------------


def names(text: str) -> list[str]:
    """``a,b,c``; an empty name (``a,,b``) is a typo, not a request for fewer items."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty item between commas")
    return items


def integers(text: str) -> list[int]:
    try:
        return [int(item) for item in names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of whole numbers, e.g. 1,16,64"
        ) from None


def duration_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 3 * 3600 else f"{seconds / 3600:.0f} h"


def profile_help() -> str:
    budgets = ", ".join(
        f"{name} ≤ {duration_text(profile.budget_s)}" for name, profile in PROFILES.items()
    )
    return f"the matrix and cell length; load time of our cells: {budgets} (peers come on top)"


def per_profile(key: str) -> str:
    values = ", ".join(f"{name} {getattr(p, key):g}" for name, p in PROFILES.items())
    return f"(default: the profile's: {values})"


def peers_default() -> str:
    values = ", ".join(f"{name} {profile.default_peers}" for name, profile in PROFILES.items())
    return f"(default: the profile's: {values})"


def profiling_default() -> str:
    on = [name for name, profile in PROFILES.items() if profile.profile_servers]
    return f"on in the {', '.join(on)} profile, off in the others"


def second_look_default() -> str:
    off = [name for name, profile in PROFILES.items() if not profile.second_look]
    return f"off in the {', '.join(off)} profile, on in the others"


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
    parser = Parser(prog=prog, description=description)
    add_profile(parser, PROFILES, profile_help())
    add_run_dir(parser)
    add_resume(parser, "its cells measured with the same settings, measure only the others")
    parser.add_argument("--servers", type=names, help="e.g. poll,epoll (default: the profile's)")
    parser.add_argument(
        "--scenarios",
        type=names,
        help=f"from {', '.join(SCENARIOS)} (default: the profile's), or a locustfile FILE.py",
    )
    parser.add_argument(
        "--users", type=integers, help="user levels, e.g. 1,16,64 (default: the profile's)"
    )
    parser.add_argument(
        "--duration", type=float, help=f"measured seconds per repeat {per_profile('duration_s')}"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        help=f"excluded seconds before each repeat {per_profile('warmup_s')}",
    )
    parser.add_argument("--repeats", type=int, help=f"repeats per cell {per_profile('repeats')}")
    parser.add_argument(
        "--peers",
        help="all, production (all but werkzeug's development servers), none or NAME,... "
        f"{peers_default()}; named peers run on a profile without a peers part too, on its "
        "scenarios and user levels",
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
    parser.add_argument(
        "--profile-servers",
        action=argparse.BooleanOptionalAction,
        help="sample each server's Python stacks with py-spy in one extra window per scenario: "
        "flame graphs and each server's costliest functions in the report (default: "
        f"{profiling_default()})",
    )
    parser.add_argument(
        "--second-look",
        action=argparse.BooleanOptionalAction,
        help="measure the cells of every gap the first look calls sure once more at the end, "
        "from a new server start, and call a gap sure only when both looks do (default: "
        f"{second_look_default()})",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_options(parser)
    return parser


def interrupt_on_sigterm() -> None:
    """SIGTERM ends a run the way Ctrl-C does: current cell stopped, finished cells kept."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def load_into(run_dir: Path, args: argparse.Namespace) -> str:
    """Run the load part; its status: "finished", "failed" (no app cell gave numbers) or
    "interrupted"."""
    try:
        request = LoadRequest(
            args.profile, servers=args.servers, scenarios=args.scenarios, users=args.users,
            duration=args.duration, repeats=args.repeats, warmup=args.warmup, peers=args.peers,
            locust_workers=args.locust_workers, **run_options(args),
            server_cpus=args.server_cpus, resume=args.resume, profile_servers=args.profile_servers,
            second_look=args.second_look,
        )  # fmt: skip
        records = run_load(run_dir, request, not args.no_progress, choose_second_look=second_look)
    except KeyboardInterrupt:
        print("interrupted: the finished cells are kept", file=sys.stderr)
        return "interrupted"
    status = run_status(records)
    if status == "failed":
        print("failed: no cell of the framework app gave numbers", file=sys.stderr)
    return status


#: the exit code of each way a load part can end
EXIT_CODES = {"finished": 0, "failed": 1, "interrupted": 130}


#: where a report that could not be built leaves its traceback, in the run directory
REPORT_ERROR_LOG = "report-error.log"


def finish_report(run_dir: Path) -> bool:
    """The report's path, then the verdict's one-line answer of every scenario; False when the
    report could not be built. The measured cells are kept either way: a bug in drawing them
    must not cost a user the run, so it is one line here and a traceback in the run directory."""
    try:
        print(build_report(run_dir))
        lines = console_verdict(run_dir)
    except Exception as error:  # noqa: BLE001 — any bug of the report's, reported whole below
        (run_dir / REPORT_ERROR_LOG).write_text(traceback.format_exc())
        print(f"report: not built ({type(error).__name__}: {error}); the measured cells are in "
              f"{run_dir / 'cells'}, the traceback in {run_dir / REPORT_ERROR_LOG}; "
              f"python -m bench report {run_dir} builds it again", file=sys.stderr)  # fmt: skip
        return False
    for line in lines:
        print(f"verdict: {line}")
    return True


def parse_and_check(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments, with unknown servers, scenarios or peers reported before a run starts."""
    args = parser.parse_args(argv)
    out_of_range = {
        f"--users {args.users}: every level must be at least 1": args.users and min(args.users) < 1,
        f"--duration {args.duration}: must be above 0": args.duration is not None
        and args.duration <= 0,
        f"--warmup {args.warmup}: must not be negative": args.warmup is not None
        and args.warmup < 0,
        f"--repeats {args.repeats}: must be at least 1": args.repeats is not None
        and args.repeats < 1,
        f"--locust-workers {args.locust_workers}: must not be negative": args.locust_workers < 0,
    }
    for message, wrong in out_of_range.items():
        if wrong:
            parser.error(message)
    resolve(parser, args)
    try:
        cells, _ = plan(args.profile, args.servers, args.scenarios, args.users, args.peers,
                        args.workload, args.target is not None)  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    if args.resume and args.run_dir is None:
        parser.error("--resume needs the --run-dir of the run to finish")
    args.planned = [cell.name for cell in cells]
    if args.run_dir is not None:
        check_run_dir(parser, args.run_dir, args.resume, args.planned)
    return args


def check_run_dir(
    parser: argparse.ArgumentParser, run_dir: Path, resume: bool, planned: list[str]
) -> None:
    """The run directory holds this run only: empty, or with --resume the same run's cells."""
    try:
        prepare_run_dir(run_dir, resume)
    except RunDirError as error:
        parser.error(str(error))
    foreign = foreign_cells(run_dir, planned) if resume else []
    if foreign:
        parser.error(
            f"--resume: {run_dir} holds cells this run does not plan ({', '.join(foreign)}); "
            "resume with the same --profile, --servers, --scenarios, --users and --peers"
        )


def record_history(run_dir: Path) -> None:
    """One line in results/history.jsonl, only for a run that lives in results/."""
    if shared_root(run_dir) is not None:
        append_run(run_dir)


def load_main(argv: list[str]) -> int:
    """``python -m bench load``: the load matrix, then the report."""
    parser = load_arguments("python -m bench load", "the Locust load matrix, then the report")
    args = parse_and_check(parser, argv)
    interrupt_on_sigterm()
    run_dir = args.run_dir or new_run_dir(label=args.profile)
    status = load_into(run_dir, args)
    reported = finish_report(run_dir)
    return EXIT_CODES[status] or (0 if reported else 1)


def run_main(argv: list[str]) -> int:
    """``python -m bench run``: micro + load + history + report (what ``tox -e bench`` runs)."""
    parser = load_arguments("python -m bench run", "micro + load + report")
    args = parse_and_check(parser, argv)
    interrupt_on_sigterm()
    run_dir = args.run_dir or new_run_dir(label=args.profile)
    try:
        micro_code = micro_into(run_dir, args)
    except KeyboardInterrupt:
        mark_interrupted_before_load(run_dir, args.planned)
        micro_code, status = 130, "interrupted"
    else:
        status = load_into(run_dir, args)
    if status == "finished":  # a partial run would skew the trend
        record_history(run_dir)
    reported = finish_report(run_dir)
    if status != "finished":
        return EXIT_CODES[status]
    return 0 if micro_code == 0 and reported else 1


def mark_interrupted_before_load(run_dir: Path, planned: list[str]) -> None:
    """Stopped during the micro part: the report's banner lists every planned cell as not
    measured, instead of a run that looks merely short."""
    meta = read_meta(run_dir)
    write_json(run_dir / META_FILE, {**meta, "cells_planned": planned, "status": "interrupted"})


def micro_into(run_dir: Path, args: argparse.Namespace) -> int:
    """The micro part; a resumed run keeps the micro.json it already has."""
    if args.resume and (run_dir / MICRO_FILE).is_file():
        print(f"micro: kept {run_dir / 'micro.json'} from the resumed run", flush=True)
        return 0
    return run_micro(run_dir, args.profile)
