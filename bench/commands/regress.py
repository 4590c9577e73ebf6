"""``regress``: the command that judges whether a change made the code slower.

``regress`` measures HEAD beside a reference commit on this machine, in one job (``--against
REF``; by default a pull request's merge-base, else the commit results/baseline was measured on):
``bench.commands.ab`` runs both sides and judges them. ``regress --against none`` keeps the older
check: a smoke run (micro + load + instruction counts) compared with the stored numbers of
``results/baseline`` by in-run ratios (``bench.analysis.compare``), a regressed micro case
re-measured before it is believed. ``baseline`` (``bench.commands.baseline``) deliberately
replaces that stored baseline with a new smoke run, measured by the helpers here.

Both count instructions per request under valgrind (``bench.micro.instructions``) when it is
installed (``--instructions auto``, the default).
"""

from __future__ import annotations

import sys
from argparse import Namespace
from dataclasses import asdict
from pathlib import Path

from bench.analysis.compare import (
    BASELINE_DIR,
    INSTRUCTION_THRESHOLD,
    LOAD_FLOOR,
    REGRESS_THRESHOLD,
    Row,
    apply_confirmation,
    compare_runs,
    exit_code,
    judged,
    suspects,
)
from bench.analysis.compare_table import print_comparison
from bench.analysis.history import append_run
from bench.analysis.report import build_report
from bench.cli import Parser
from bench.commands import ab, sides
from bench.commands.ab import VERDICT_WORDS
from bench.commands.compare import add_judging_options, fail
from bench.measure.runner import run_load
from bench.measure.settings import LoadRequest
from bench.micro import instructions
from bench.micro.cli import run_micro
from bench.rundir import (
    CONFIRM_DIRS,
    META_FILE,
    Run,
    UnusableInput,
    load_run,
    new_run_dir,
    read_meta,
    shared_root,
    write_json,
)

#: what regress and baseline measure: the shortest profile, so CI can afford it
PROFILE = "smoke"
#: the CPU budget of every server in a regress or baseline run: fixed, not calibrated, so the
#: baseline and every later run hold the servers to the same quota (a calibrated budget moves
#: with the machine's load, and the per-CPU rows would move with it). 0.1 CPU (a 50 ms period,
#: see budget.period_for): small enough that the raw-app cells and the null server are
#: server-bound too — at 0.5 CPU both were Locust-bound, so app/raw and the null rows divided by
#: Locust's pace, and cpu-per-request/null rows moved by up to +134% between unchanged runs
#: (measured: at 0.1 the null server uses its whole quota, and over 10 unchanged runs no load row
#: moved by more than 53%; see compare.LOAD_FLOOR)
SERVER_CPUS = 0.1


def smoke_run(label: str) -> Path:
    """A fresh run dir with the smoke micro and load results (what baseline and regress measure)."""
    run_dir = new_run_dir(label=label)
    print(f"run dir: {run_dir}", flush=True)
    measure_micro(run_dir)
    run_load(run_dir, LoadRequest(PROFILE, server_cpus=SERVER_CPUS))
    if shared_root(run_dir) is not None:
        append_run(run_dir)
    return run_dir


def add_instruction_option(parser: Parser) -> None:
    parser.add_argument(
        "--instructions",
        choices=("auto", "on", "off"),
        default="auto",
        help="count instructions per request under valgrind's cachegrind: auto (the default) "
        "when valgrind is installed",
    )


def count_instructions(run_dir: Path, mode: str, runs: int) -> None:
    """Write run_dir/instructions.json unless ``mode`` is off, or auto without valgrind."""
    if mode == "off":
        return
    if instructions.valgrind() is None:
        if mode == "on":
            raise UnusableInput("--instructions on, but valgrind is not installed")
        print("instruction counts: skipped, valgrind is not installed", flush=True)
        return
    print(f"instruction counts: cachegrind, {runs} run(s) ...", flush=True)
    try:
        record = instructions.measure(runs=runs)
    except instructions.InstructionCountFailed as error:
        raise UnusableInput(str(error)) from error
    instructions.write_instructions(run_dir, record)
    print(instructions.format_counts(record))


def measure_micro(run_dir: Path, select: str | None = None) -> Path:
    """The smoke micro benchmarks (those matching the ``-k`` expression ``select``) into run_dir."""
    micro_code = run_micro(run_dir, PROFILE, select=select)
    if micro_code != 0:
        raise UnusableInput(f"the micro benchmarks failed (pytest exit code {micro_code})")
    return run_dir / "micro.json"


def confirm_micro(
    rows: list[Row], baseline: Run, run_dir: Path, threshold: float, alpha: float
) -> None:
    """Measure the regressed micro cases again, each time in a fresh process, into
    run_dir/confirm/ then run_dir/confirm-2/ (so ``compare`` can apply the same confirmations
    later); a verdict stands only if every re-measurement repeats it."""
    for directory in CONFIRM_DIRS:
        cases = suspects(rows)
        if not cases:
            return
        operations = sorted({case.split("[")[0] for case in cases})
        print(f"confirming {len(cases)} regressed micro cases ({directory}): "
              f"{', '.join(operations)}", flush=True)  # fmt: skip
        again = load_run(measure_micro(run_dir / directory, select=" or ".join(operations)))
        apply_confirmation(rows, baseline, again.micro or [], threshold, alpha)


def record_verdict(
    run_dir: Path,
    baseline: Path,
    rows: list[Row],
    threshold: float,
    alpha: float,
    instruction_threshold: float = INSTRUCTION_THRESHOLD,
) -> int:
    """compare.json and the verdict in meta.json, so the report, results/index.html and a later
    ``compare`` all tell what this run decided; the exit code."""
    write_json(run_dir / "compare.json", [asdict(row) for row in rows])
    code = exit_code(rows)
    meta = read_meta(run_dir)
    meta["regress"] = {
        "baseline": str(baseline),
        "verdict": VERDICT_WORDS[code],
        "threshold": threshold,
        "alpha": alpha,
        "instruction_threshold": instruction_threshold,
        "load_floor": LOAD_FLOOR,
        "regressed": sum(row.verdict == "REGRESSED" for row in rows),
        "judged": len(judged(rows)),
        "not_judged": len(rows) - len(judged(rows)),
    }
    write_json(run_dir / META_FILE, meta)
    return code


def instruction_mode(baseline: Run, mode: str) -> str:
    """``mode``, or off when the baseline has no counts to compare with (auto only)."""
    if baseline.instructions is not None or mode == "off":
        return mode
    if mode == "on":
        raise UnusableInput(
            f"{baseline.source}: --instructions on, but it has no instruction counts"
        )
    print(
        "instruction counts: skipped, the baseline has none (refresh it: python -m bench baseline)",
        flush=True,
    )
    return "off"


def print_report(run_dir: Path) -> None:
    """The run's report.html beside its results (what CI uploads)."""
    print(f"report: {build_report(run_dir)}")


def regress_main(argv: list[str]) -> int:
    """``python -m bench regress [--against REF]``: HEAD measured beside a reference commit (or,
    with ``--against none``, a smoke run compared with the stored results/baseline)."""
    parser = Parser(
        prog="python -m bench regress",
        description="Measure HEAD and a reference commit side by side on this machine and judge "
        "HEAD against it (--against none: compare a smoke run with the stored baseline). Exit 0: "
        "no regression, 1: regressed, 2: unusable input or nothing judged.",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="the commit, branch or tag to measure beside HEAD, or none for the stored baseline "
        "(default: on a pull request in CI the merge-base with its base branch, else the commit "
        "results/baseline was measured on)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=BASELINE_DIR,
        help="the stored baseline: what --against none compares with, and whose commit is the "
        "reference outside a pull request",
    )
    parser.add_argument(
        "--worktree",
        type=Path,
        help="where to check the reference out (default: a new directory under the temp dir)",
    )
    parser.add_argument(
        "--micro-rounds",
        type=int,
        default=ab.MICRO_ROUNDS,
        help="micro rounds a side, each a fresh process",
    )
    parser.add_argument(
        "--load-duration",
        type=float,
        default=ab.LOAD_DURATION_S,
        help="seconds of load per cell and side; 0 measures no load cells",
    )
    add_judging_options(parser, default_threshold=REGRESS_THRESHOLD)
    add_instruction_option(parser)
    args = parser.parse_args(argv)
    if args.micro_rounds < 1:
        parser.error(f"--micro-rounds {args.micro_rounds}: must be at least 1")
    if args.load_duration < 0:
        parser.error(f"--load-duration {args.load_duration}: must not be negative")
    if args.against == sides.STORED:
        return stored_regress(args)
    return ab_regress(args)


def ab_regress(args: Namespace) -> int:
    """The A/B run: a bad reference is one line and exit 2, before anything is created."""
    judging = ab.Judging(args.threshold, args.alpha, args.instruction_threshold)
    plan = ab.Plan(args.micro_rounds, args.instructions, args.load_duration)
    try:
        reference = choose_reference(args.against, args.baseline)
        worktree = args.worktree or sides.default_worktree(reference.commit)
        return ab.run_ab(reference, worktree, judging, plan)
    except (sides.BadReference, ab.SideFailed, UnusableInput) as error:
        return fail("regress", error)
    except KeyboardInterrupt:
        print("regress: interrupted; the reference tree is removed, what was measured is kept",
              file=sys.stderr)  # fmt: skip
        return 130


def choose_reference(against: str | None, baseline: Path) -> ab.Reference:
    """The reference to measure: the one named, else the default, resolved and checked."""
    if against is None:
        name, why = sides.default_reference(baseline)
    else:
        name, why = against, "named by --against"
    commit = sides.resolve(name)
    sides.check_has_benchmarks(commit, name)
    return ab.Reference(name, commit, why)


def stored_regress(args: Namespace) -> int:
    """``--against none``: a smoke run compared with the stored numbers of results/baseline."""
    try:
        baseline = load_run(args.baseline)  # fail before spending a minute measuring
        if baseline.micro is None or baseline.cells is None:
            raise UnusableInput(f"{args.baseline}: a baseline needs both micro.json and cells/")
        counting = instruction_mode(baseline, args.instructions)
        run_dir = smoke_run("regress")
        count_instructions(run_dir, counting, runs=1)
        current = load_run(run_dir)
        rows = compare_runs(
            baseline,
            current,
            args.threshold,
            args.alpha,
            args.instruction_threshold,
            load_floor=LOAD_FLOOR,
        )
        confirm_micro(rows, baseline, run_dir, args.threshold, args.alpha)
    except UnusableInput as error:
        return fail("regress", error)
    print_comparison(
        baseline, current, rows, args.threshold, args.alpha, args.instruction_threshold
    )
    code = record_verdict(
        run_dir, args.baseline, rows, args.threshold, args.alpha, args.instruction_threshold
    )
    print_report(run_dir)
    print(f"\n{run_dir}: {VERDICT_WORDS[code]}")
    return code
