"""``python -m bench compare BASELINE CURRENT``: judge two runs by their in-run ratios.

Exit 0: no regression, 1: regressed, 2: unusable input or nothing judged. Unusable input is one
line on stderr, never a traceback: a crash is not a regression.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from bench.analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    INSTRUCTION_THRESHOLD,
    LOAD_FLOOR,
    compare_runs,
    exit_code,
)
from bench.analysis.compare_table import print_comparison
from bench.cli import Parser
from bench.rundir import Run, UnusableInput, load_run


def share(what: str, examples: str, low: float, high: float, zero: bool = False):
    """An argparse type for a share: ``10%`` or ``0.1`` (both ten percent), above ``low`` (or
    equal to it, with ``zero``) and below ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            value = math.nan
        if not ((low <= value) if zero else (low < value)) or not value < high:
            raise argparse.ArgumentTypeError(f"{what} must look like {examples}, not {text!r}")
        return value

    return parse


#: a significance level, a smallest change that counts, and a least change of a load row
alpha_arg = share("alpha", "0.01 (a level between 0 and 1)", 0, 1)
threshold_arg = share("threshold", "10% or 0.1", 0, 1)
floor_arg = share("load floor", "150% or 1.5", 0, 100, zero=True)


def add_judging_options(
    parser: argparse.ArgumentParser, default_threshold: float = DEFAULT_THRESHOLD
) -> None:
    parser.add_argument(
        "--threshold",
        type=threshold_arg,
        default=default_threshold,
        help=f"smallest change that counts, e.g. 10%% or 0.1 (default {default_threshold:.0%}%)",
    )
    parser.add_argument(
        "--alpha",
        type=alpha_arg,
        default=DEFAULT_ALPHA,
        help=f"significance level of the Mann-Whitney U test (default {DEFAULT_ALPHA})",
    )
    parser.add_argument(
        "--instruction-threshold",
        type=threshold_arg,
        default=INSTRUCTION_THRESHOLD,
        help="smallest change of instructions per request that counts "
        f"(default {INSTRUCTION_THRESHOLD:.0%}%)",
    )


def fail(command: str, error: Exception) -> int:
    print(f"bench {command}: error: {error}", file=sys.stderr)
    return 2


def recorded_judging(current: Run, threshold: float | None, alpha: float | None) -> tuple:
    """The threshold and alpha to judge with: those given, else those a regress run recorded
    (so its comparison can be repeated exactly), else the defaults."""
    recorded = current.meta.get("regress") or {}
    if recorded and threshold is None:
        print(f"{current.source} is a regress run: judging with its recorded threshold "
              f"{recorded['threshold']:.0%} and its confirming re-measurement")  # fmt: skip
    threshold = threshold if threshold is not None else recorded.get("threshold", DEFAULT_THRESHOLD)
    alpha = alpha if alpha is not None else recorded.get("alpha", DEFAULT_ALPHA)
    return threshold, alpha, recorded.get("load_floor", 0.0)


def main(argv: list[str]) -> int:
    """``python -m bench compare BASELINE CURRENT [--threshold 10%]``"""
    parser = Parser(
        prog="python -m bench compare",
        description="Compare two runs by in-run ratios. Exit 0: no regression, 1: regressed, "
        "2: unusable input, or nothing could be judged. A regress run compared without "
        "--threshold/--alpha is judged with the values it recorded.",
    )
    parser.add_argument(
        "baseline",
        type=Path,
        help="run dir, micro.json, cells/ dir, cell file or instructions.json",
    )
    parser.add_argument("current", type=Path, help="the same kind of input as BASELINE")
    add_judging_options(parser)
    parser.add_argument(
        "--load-floor",
        type=floor_arg,
        help="least change a load row can count as, e.g. 150%% (default: what a regress run "
        f"recorded, else none; regress uses {LOAD_FLOOR:.0%}%)",
    )
    # a regress run compared without --threshold/--alpha is judged as regress judged it
    parser.set_defaults(threshold=None, alpha=None)
    args = parser.parse_args(argv)
    try:
        baseline, current = load_run(args.baseline), load_run(args.current)
        threshold, alpha, floor = recorded_judging(current, args.threshold, args.alpha)
        floor = floor if args.load_floor is None else args.load_floor
        rows = compare_runs(
            baseline, current, threshold, alpha, args.instruction_threshold, load_floor=floor
        )
    except UnusableInput as error:
        return fail("compare", error)
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:  # a record out of shape
        return fail("compare", UnusableInput(f"the runs cannot be compared: {error!r}"))
    print_comparison(baseline, current, rows, threshold, alpha, args.instruction_threshold)
    return exit_code(rows)
