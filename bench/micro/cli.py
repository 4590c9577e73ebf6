"""`python -m bench micro [--profile smoke|quick|full] [--run-dir DIR]`.

Runs the cases in a pytest subprocess (so the timed process is fresh and holds nothing but the
cases), pinned to one core when there are two or more, then prints the ratio table and draws
micro.png from the JSON it wrote.

The clock is the process's CPU time (``time.process_time``), not wall time: on a shared machine
the benchmark is descheduled now and then, and those stretches would land in whichever case
happened to run, skewing its ratio to references timed a moment later. Rounds last at least
0.5 ms, far above the clock's granularity (about 1-2 µs).

GC stays enabled while timing: a framework that allocates more pays for more collections in
production too, and the median and IQR are robust to the odd collection landing in a round.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.analysis.micro_plot import draw_micro_chart
from bench.analysis.micro_table import ratio_table
from bench.cli import Parser, add_profile, add_resume, add_run_dir
from bench.microcases import load_micro
from bench.rundir import (
    META_FILE,
    MICRO_FILE,
    RunDirError,
    machine_meta,
    new_run_dir,
    prepare_run_dir,
    write_json,
)

MICRO_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = MICRO_DIR.parent.parent

#: pytest-benchmark options per profile. Rounds last at least min-time so the timer's resolution
#: and the per-round overhead vanish; max-time bounds each case (about 60 cases in all).
PROFILES = {
    "smoke": [
        "--benchmark-min-time=0.0005",
        "--benchmark-max-time=0.15",
        "--benchmark-min-rounds=5",
        "--benchmark-warmup=off",
    ],
    "quick": [
        "--benchmark-min-time=0.0005",
        "--benchmark-max-time=0.3",
        "--benchmark-min-rounds=10",
        "--benchmark-warmup=on",
        "--benchmark-warmup-iterations=1000",
    ],
    "full": [
        "--benchmark-min-time=0.001",
        "--benchmark-max-time=3.0",
        "--benchmark-min-rounds=20",
        "--benchmark-warmup=on",
        "--benchmark-warmup-iterations=20000",
    ],
}


def collecting(storage: str, micro_dir: Path = MICRO_DIR) -> list[str]:
    """pytest over ``micro_dir``'s ``bench_*.py`` cases only (this tree's bench/micro unless
    another tree's is named). pytest-benchmark creates its storage directory (./.benchmarks by
    default) even when it saves nothing: ``storage`` is a temporary one, so a run writes nowhere
    but its run directory."""
    return [
        sys.executable, "-m", "pytest", str(micro_dir), "-o", "python_files=bench_*.py",
        "-p", "no:cacheprovider", f"--benchmark-storage=file://{storage}",
        # the repository's pytest settings name plugins (timeout) the bench env does not install
        "-W", "ignore::pytest.PytestConfigWarning",
    ]  # fmt: skip


def pytest_command(
    json_path: Path, profile: str, storage: str, select: str | None = None
) -> list[str]:
    """The pytest invocation that times the cases (those matching the ``-k`` expression
    ``select`` when given) into ``json_path``."""
    return [
        *collecting(storage),
        "-q",
        f"--benchmark-json={json_path}",
        "--benchmark-save-data",
        "--benchmark-timer=time.process_time",
        "--benchmark-quiet",
        *PROFILES[profile],
        *(["-k", select] if select else []),
    ]


#: pytest's exit code when nothing was collected
NO_TESTS_COLLECTED = 5


def selects_a_case(select: str) -> bool:
    """Whether the ``-k`` expression matches a case (pytest --collect-only: nothing is timed)."""
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as storage:
        command = [*collecting(storage), "--collect-only", "-q", "-k", select]
        collected = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True)
    return collected.returncode != NO_TESTS_COLLECTED


def benchmark_core() -> int | None:
    """The core the timed process runs on: the last allowed one, or None with fewer than two."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return allowed[-1] if len(allowed) >= 2 else None


def run_pytest(command: list[str], core: int | None, profile: str) -> int:
    env = {**os.environ, "BENCH_MICRO_PROFILE": profile, "MPLBACKEND": "Agg"}
    if core is not None:
        env["BENCH_MICRO_CORE"] = str(core)
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, preexec_fn=pin).returncode


def run_micro(run_dir: Path, profile: str, *, select: str | None = None) -> int:
    """Time every case into run_dir/micro.json, print the ratio table, draw run_dir/micro.png.

    Returns pytest's exit code (non-zero when a case failed its own correctness check).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / META_FILE).exists():
        write_json(run_dir / META_FILE, {**machine_meta(), "profile": profile})
    json_path = run_dir / MICRO_FILE
    core = benchmark_core()
    print(
        f"micro ({profile}): timing on core {core if core is not None else 'any'} ...", flush=True
    )
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as storage:
        command = pytest_command(json_path, profile, storage, select)
        exit_code = run_pytest(command, core, profile)
    if exit_code == NO_TESTS_COLLECTED:
        print(f"micro: no benchmark matched -k {select!r}", file=sys.stderr)
        return exit_code
    if not json_path.exists():
        print(f"micro: pytest exited {exit_code} without writing {json_path}", file=sys.stderr)
        return exit_code or 1
    cases = load_micro(json_path)
    print(ratio_table(cases))
    chart = draw_micro_chart(cases, run_dir / "micro.png", title=f"microbenchmarks ({profile})")
    print(f"micro: {json_path}\nmicro: {chart}")
    return exit_code


def main(argv: list[str]) -> int:
    """``python -m bench micro``: time the cases into a new (or empty) run directory."""
    parser = Parser(
        prog="python -m bench micro",
        description="pytest-benchmark microbenchmarks of the framework's hot path, each beside "
        "references timed in the same run.",
    )
    add_profile(
        parser, PROFILES, "the rounds per case: smoke ~30 s, quick ~1-2 min, full several minutes"
    )
    add_run_dir(parser)
    add_resume(parser, "the micro.json already in it instead of refusing a non-empty directory")
    parser.add_argument(
        "-k",
        dest="select",
        metavar="EXPR",
        help="only cases matching EXPR (pytest -k; default: all)",
    )
    args = parser.parse_args(argv)
    if args.resume and args.run_dir is None:
        parser.error("--resume needs the --run-dir of the run to finish")
    if args.select and not selects_a_case(args.select):
        example = "test_full_cycle_plaintext[framework], test_push_top_pop[werkzeug]"
        parser.error(f"-k {args.select!r}: no benchmark matched (names look like {example})")
    try:
        run_dir = prepare_run_dir(args.run_dir, args.resume) if args.run_dir else None
    except RunDirError as error:
        parser.error(str(error))
    run_dir = run_dir or new_run_dir(label="micro")
    if args.resume and (run_dir / MICRO_FILE).is_file():
        print(f"micro: {run_dir / 'micro.json'} is already measured; nothing to resume")
        return 0
    return run_micro(run_dir, args.profile, select=args.select)
