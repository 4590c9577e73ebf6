"""Instructions per request, counted by valgrind's cachegrind: a signal that a busy machine does
not move.

Timed ratios on a shared machine drift by 10-25% between runs, so `regress` judges them at 25%
and a 10% slowdown passes. The number of instructions a request executes does not depend on the
neighbours, the clock or the cache: with ``PYTHONHASHSEED`` fixed, the same code runs the same
instructions. Each workload of ``bench.micro.workloads`` (the framework's full cycle per
endpoint, and the in-memory server cycle through ``servers/http.py`` + ``servers/wsgi.py``) is
counted as::

    (count of a run with WARM of every workload + COUNT more of this one
     - count of the run with WARM of every workload alone) / COUNT

so interpreter start-up, imports and first-request warm-up cancel. The runs are independent
processes, run in parallel on the cores we may use; a measurement of every workload takes about a
minute on a 2-core machine (cachegrind runs Python about 50 times slower).

``python -m bench instructions [--run-dir DIR] [--runs N]`` writes ``DIR/instructions.json``.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench.cli import add_run_dir
from bench.micro.workloads import WORKLOADS
from bench.rundir import INSTRUCTIONS_FILE as FILE_NAME
from bench.rundir import new_run_dir, write_json

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: the same seed every time: str hashes (and so dict and set layouts) must not vary between runs
HASH_SEED = "0"
#: requests of every workload before counting: caches, compiled templates and the allocator warm
WARM_REQUESTS = 200
#: the requests counted per workload; their difference to the warm-only run is their cost alone
COUNTED_REQUESTS = 1000

#: what a counted process imports from this tree
PACKAGES = ("framework", "servers", "bench")
#: the only variables of ours a counted process sees; each is the same for every side of a run
PASSED_ON = ("HOME", "LANG", "LC_ALL", "TMPDIR")

#: the libraries the workloads run: another version of one runs other instructions
LIBRARIES = ("werkzeug", "jinja2", "markupsafe", "itsdangerous")

SUMMARY = re.compile(rb"^summary: (\d+)", re.MULTILINE)


class InstructionCountFailed(Exception):
    """valgrind is missing, or a counted process failed; the message says which."""


def valgrind() -> str | None:
    """The valgrind executable, or None when it is not installed."""
    return shutil.which("valgrind")


def valgrind_version(executable: str) -> str:
    finished = subprocess.run([executable, "--version"], capture_output=True, text=True)
    return finished.stdout.strip()


def environment() -> dict[str, str]:
    """What the counts depend on besides our code; counts are compared only when it matches."""
    found = {"python": platform.python_version(), "machine": platform.machine()}
    for library in LIBRARIES:
        try:
            found[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            found[library] = "missing"
    return found


@contextmanager
def counting_tree() -> Iterator[Path]:
    """A copy of this tree's packages, compiled, at a path of the same length wherever the tree is.

    A counted process must see the same bytes whichever tree it counts: the length of every path
    it holds (its tree's, through ``Path.resolve()`` too) moves the heap, which moves object
    addresses, which moves identity-hashed objects' slots in dicts and sets — about 1% of a
    request's instructions between two checkouts of the same code. And its modules are compiled
    before counting: processes that compile a changed module (and race to write its ``.pyc``)
    count the compiler too.
    """
    with tempfile.TemporaryDirectory(prefix="bench-cachegrind-") as scratch:
        tree = Path(scratch) / "tree"
        for package in PACKAGES:
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(PROJECT_ROOT / package, tree / package, ignore=ignore)
        compileall.compile_dir(tree, quiet=1)
        yield tree


def child_env(tree: Path) -> dict[str, str]:
    """The environment of a counted process: ``tree`` importable, the hash seed fixed, and
    nothing that differs between the sides of a comparison (``git bisect run`` adds to PATH)."""
    kept = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
    return {
        **kept,
        "PYTHONPATH": str(tree),
        "PYTHONHASHSEED": HASH_SEED,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def count_instructions(executable: str, tree: Path, workload_args: list[str]) -> int:
    """Instructions executed by ``python -m bench.micro.workloads ARGS`` from ``tree`` under
    cachegrind."""
    with tempfile.TemporaryDirectory(prefix="bench-cachegrind-out-") as scratch:
        out = Path(scratch) / "cachegrind.out"
        command = [
            executable, "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
            sys.executable, "-m", "bench.micro.workloads", *workload_args,
        ]  # fmt: skip
        finished = subprocess.run(
            command, cwd=tree.parent, env=child_env(tree), capture_output=True, text=True
        )
        found = SUMMARY.search(out.read_bytes()) if out.exists() else None
    if finished.returncode != 0 or found is None:
        tail = finished.stderr[-1500:]
        raise InstructionCountFailed(
            f"cachegrind of workloads {' '.join(workload_args)} exited {finished.returncode}:\n"
            f"{tail}"
        )
    return int(found[1])


def workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def measure_once(
    names: list[str], warm: int = WARM_REQUESTS, counted: int = COUNTED_REQUESTS
) -> dict[str, float]:
    """Instructions per request of each named workload, from one warm-only run and one run per
    workload with ``counted`` more requests."""
    executable = valgrind()
    if executable is None:
        raise InstructionCountFailed("valgrind is not installed (apt-get install valgrind)")
    only = ["--only", ",".join(names), str(warm)]
    jobs = {None: only, **{name: [*only, name, str(counted)] for name in names}}
    with counting_tree() as tree, ThreadPoolExecutor(max_workers=workers()) as pool:
        futures = {
            key: pool.submit(count_instructions, executable, tree, args)
            for key, args in jobs.items()
        }
        counts = {key: future.result() for key, future in futures.items()}
    return {name: (counts[name] - counts[None]) / counted for name in names}


def measure(
    names: list[str] | None = None,
    runs: int = 1,
    warm: int = WARM_REQUESTS,
    counted: int = COUNTED_REQUESTS,
) -> dict:
    """Count every workload ``runs`` times; the record instructions.json holds.

    ``per_request`` is the median over the runs; ``spread`` is each workload's (max - min) / min
    over them: how far apart two counts of the same code came (0 with one run).
    """
    names = list(names or WORKLOADS)
    executable = valgrind()
    started = time.monotonic()
    measurements = [measure_once(names, warm, counted) for _ in range(runs)]
    return {
        "tool": "cachegrind",
        "valgrind": valgrind_version(executable) if executable else None,
        "environment": environment(),
        "hash_seed": HASH_SEED,
        "warm_requests": warm,
        "counted_requests": counted,
        "per_request": {name: statistics.median(m[name] for m in measurements) for name in names},
        "spread": {
            name: (max(m[name] for m in measurements) - min(m[name] for m in measurements))
            / min(m[name] for m in measurements)
            for name in names
        },
        "measurements": measurements,
        "seconds": round(time.monotonic() - started, 1),
    }


def write_instructions(run_dir: Path, record: dict) -> Path:
    path = run_dir / FILE_NAME
    write_json(path, record)
    return path


def format_counts(record: dict) -> str:
    lines = [f"{'workload':<24} {'instructions/request':>21}  spread over runs"]
    for name, value in record["per_request"].items():
        spread = record["spread"][name]
        lines.append(f"{name:<24} {value:>21,.0f}  {spread:.3%}")
    runs = len(record["measurements"])
    lines.append(f"{runs} run(s), {record['seconds']:.0f} s, {record['valgrind']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench instructions",
        description="Count instructions per request of each workload under cachegrind.",
    )
    add_run_dir(parser)
    parser.add_argument("--runs", type=int, default=1, help="count everything N times (1)")
    parser.add_argument(
        "--only", type=workload_names, help=f"comma-separated workloads of: {', '.join(WORKLOADS)}"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be 1 or more, not {args.runs}")
    try:
        record = measure(args.only, runs=args.runs)
    except InstructionCountFailed as error:
        print(f"bench instructions: error: {error}", file=sys.stderr)
        return 2
    run_dir = args.run_dir or new_run_dir(label="instructions")
    run_dir.mkdir(parents=True, exist_ok=True)
    print(format_counts(record))
    print(f"instructions: {write_instructions(run_dir, record)}")
    return 0


def workload_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload {', '.join(unknown) or repr(text)}; known: {', '.join(WORKLOADS)}"
        )
    return names
