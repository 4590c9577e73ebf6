"""``baseline``: deliberately replace the stored baseline (results/baseline) with a new smoke run,
or a finished one (``--from``). What ``regress --against none`` compares with, and whose meta.json
names the commit the A/B run re-measures by default; so it must be a finished smoke run of the
full smoke matrix.
"""

from __future__ import annotations

import json
import shutil
from argparse import SUPPRESS
from pathlib import Path

from bench.analysis.compare import (
    BASELINE_DIR,
    BASELINE_MICRO_RUNS,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    INSTRUCTION_THRESHOLD,
    compare_runs,
)
from bench.analysis.compare_table import format_table
from bench.analysis.ratios import MAX_SAMPLES, thin
from bench.cli import Parser
from bench.commands.compare import fail
from bench.commands.regress import (
    PROFILE,
    add_instruction_option,
    count_instructions,
    measure_micro,
    smoke_run,
)
from bench.measure.matrix import plan
from bench.micro import instructions
from bench.rundir import META_FILE, Run, UnusableInput, load_run, read_json

#: instruction counts of a baseline: two, so it records how far apart counts of unchanged code
#: come (measured here: at most 0.03%); regress counts once
BASELINE_INSTRUCTION_RUNS = 2


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
