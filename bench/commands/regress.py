"""``regress`` and ``baseline``: the commands that judge whether a change made the code slower.

``regress`` measures HEAD beside a reference commit on this machine, in one job (``--against
REF``; by default a pull request's merge-base, else the commit results/baseline was measured on):
``bench.commands.ab`` runs both sides and judges them. ``regress --against none`` keeps the older
check: a smoke run (micro + load + instruction counts) compared with the stored numbers of
``results/baseline`` by in-run ratios (``bench.analysis.compare``), a regressed micro case
re-measured before it is believed. ``baseline`` deliberately replaces that stored baseline with a
new smoke run; its meta.json names the commit the A/B run re-measures by default.

Both count instructions per request under valgrind (``bench.micro.instructions``) when it is
installed (``--instructions auto``, the default).
"""

from __future__ import annotations

import json
import shutil
import sys
from argparse import SUPPRESS, Namespace
from dataclasses import asdict
from pathlib import Path

from bench.analysis.compare import (
    BASELINE_DIR,
    BASELINE_MICRO_RUNS,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
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
from bench.analysis.compare_table import format_table, print_comparison
from bench.analysis.history import append_run
from bench.analysis.ratios import MAX_SAMPLES, thin
from bench.analysis.report import build_report
from bench.cli import Parser
from bench.commands import ab, sides
from bench.commands.ab import VERDICT_WORDS
from bench.commands.compare import add_judging_options, fail
from bench.measure.matrix import plan
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
    read_json,
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
#: instruction counts of a baseline: two, so it records how far apart counts of unchanged code
#: come (measured here: at most 0.03%); regress counts once
BASELINE_INSTRUCTION_RUNS = 2


# --- the committed baseline ----------------------------------------------------------------------


def trimmed_micro(path: Path) -> dict:
    """micro.json with each case's per-round data thinned to MAX_SAMPLES (evenly chosen), so the
    committed file stays small; the summary stats (median, iqr) are kept from all rounds."""
    data = read_json(path)
    for bench in data["benchmarks"]:
        bench["stats"]["data"] = thin(bench["stats"].get("data") or [])
    data["bench_baseline"] = {"samples_per_case": f"at most {MAX_SAMPLES}, evenly chosen"}
    return data


def write_baseline(run_dir: Path, dest: Path) -> list[str]:
    """Replace ``dest`` with the run's micro.json and micro-*/micro.json (trimmed), cells/,
    meta.json and summary.json."""
    staging = dest.with_name(f".{dest.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "cells").mkdir(parents=True)
    for micro in [run_dir / "micro.json", *sorted(run_dir.glob("micro-*/micro.json"))]:
        target = staging / micro.relative_to(run_dir)
        target.parent.mkdir(exist_ok=True)
        # compact, unlike write_json: 60 cases × 200 floats, read only by programs
        target.write_text(json.dumps(trimmed_micro(micro), separators=(",", ":")) + "\n")
    for cell in sorted((run_dir / "cells").glob("*.json")):
        shutil.copy2(cell, staging / "cells" / cell.name)
    for name in (META_FILE, "summary.json", instructions.FILE_NAME):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, staging / name)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return sorted(str(path.relative_to(dest)) for path in dest.rglob("*") if path.is_file())


def smoke_cells() -> set[str]:
    """The cells of the smoke profile's default plan: what every regress run measures."""
    return {cell.name for cell in plan(PROFILE)[0]}


def check_regress_can_use(run_dir: Path, new: Run) -> None:
    """A baseline is what every later regress run is compared with: a finished smoke run of the
    full smoke matrix. Anything else makes each regress measure for two minutes and exit 2."""
    if new.micro is None or new.cells is None:
        raise UnusableInput(f"{run_dir}: a baseline needs both micro.json and cells/")
    profile = new.meta.get("profile")
    if profile != PROFILE:
        raise UnusableInput(
            f"{run_dir} was measured with profile {profile}, but regress compares a {PROFILE} "
            f"run with the baseline; measure one with `python -m bench baseline` (or `python "
            f"-m bench run --profile {PROFILE}` and pass it to --from)"
        )
    status = new.meta.get("status")
    if status != "finished":
        raise UnusableInput(f"{run_dir}: its load run is {status}, not finished")
    if set(new.cells) != smoke_cells():
        raise UnusableInput(
            f"{run_dir} does not hold the {PROFILE} profile's cells (it was restricted with "
            "--servers/--scenarios/--users or --peers), so regress could never compare with it"
        )


def check_micro_runs(run_dir: Path, wanted: int) -> None:
    """A baseline's micro ratio is the median over its measurements: a run with fewer than
    ``wanted`` would quietly replace three measurements with one."""
    run = load_run(run_dir)
    count = (run.micro is not None) + len(run.micro_repeats)
    if run.micro is not None and count < wanted:
        raise UnusableInput(
            f"{run_dir} holds {count} micro measurement(s), a baseline keeps {wanted}: add them "
            f"with `python -m bench micro --profile {PROFILE} --run-dir {run_dir}/micro-2` (and "
            "micro-3), or pass --micro-runs 1"
        )


def refresh_baseline(run_dir: Path, dest: Path = BASELINE_DIR) -> list[str]:
    """Make ``run_dir`` the baseline; prints how it compares with the one it replaces."""
    new = load_run(run_dir)
    check_regress_can_use(run_dir, new)
    if dest.exists():
        try:
            rows = compare_runs(load_run(dest), new)
            print(f"what changed against the old baseline ({dest}):")
            print(format_table(rows, DEFAULT_THRESHOLD, DEFAULT_ALPHA, INSTRUCTION_THRESHOLD))
        except UnusableInput as error:
            print(f"the old baseline is not comparable ({error}); replacing it")
    files = write_baseline(run_dir, dest)
    print(f"\nwrote {len(files)} files to {dest} from {run_dir}")
    return files


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


def baseline_main(argv: list[str]) -> int:
    """``python -m bench baseline [--from RUN_DIR]``: deliberately refresh results/baseline."""
    parser = Parser(
        prog="python -m bench baseline",
        description="Refresh the committed baseline from a new smoke run (or an existing smoke "
        "run dir): what regress compares against.",
    )
    parser.add_argument(
        "--from",
        dest="run_dir",
        type=Path,
        help="use this finished smoke run dir instead of measuring a new one",
    )
    parser.add_argument(
        "--micro-runs",
        type=int,
        default=BASELINE_MICRO_RUNS,
        help=f"measure the micro benchmarks this many times (default {BASELINE_MICRO_RUNS})",
    )
    add_instruction_option(parser)
    parser.add_argument("--dest", type=Path, default=BASELINE_DIR, help=SUPPRESS)
    args = parser.parse_args(argv)
    if args.micro_runs < 1:
        parser.error(f"--micro-runs {args.micro_runs}: must be at least 1")
    try:
        if args.run_dir is not None:
            check_micro_runs(args.run_dir, args.micro_runs)
        run_dir = args.run_dir or smoke_run("baseline")
        if args.run_dir is None:
            for number in range(2, args.micro_runs + 1):
                measure_micro(run_dir / f"micro-{number}")
            count_instructions(run_dir, args.instructions, BASELINE_INSTRUCTION_RUNS)
        refresh_baseline(run_dir, args.dest)
    except UnusableInput as error:
        return fail("baseline", error)
    return 0


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
