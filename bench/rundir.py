"""Run directories: where every command of the suite writes what it measured, and the one reader
of what a run holds.

A run lives in ``results/<run-id>/`` where the id sorts by time and names the commit.
``results/latest`` is a symlink to the newest run, replaced atomically so a reader never sees it
half-written. Inside: ``meta.json`` (machine, settings, status), ``cells/<cell>.json`` (one load
cell each), ``micro.json`` (pytest-benchmark; ``micro-*/`` and ``confirm*/`` hold more
measurements) and ``instructions.json``. Only this module knows that layout: commands, the
analysis and tools read a run through ``read_meta``, ``cell_files``/``read_record`` (lenient, for
a run being written) or ``load_run`` (strict: a ``Run``, or ``UnusableInput`` saying what is
wrong).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from bench.microcases import MicroCase, load_micro

RESULTS_ROOT = Path(__file__).resolve().parent.parent / "results"
#: the committed reference of ``regress``: read-only to every command but ``baseline``
BASELINE_NAME = "baseline"
#: environment variables that change what is measured on purpose (a demo slowdown): every run
#: records them, so an injected slowdown is never mistaken for the code's
INJECTION_PREFIX = "BENCH_INJECT_"

#: the packages whose versions change what a run measures
MEASURED_PACKAGES = (
    "werkzeug",
    "jinja2",
    "itsdangerous",
    "flask",
    "locust",
    "pytest-benchmark",
    "psutil",
    "matplotlib",
    "tornado",
    "gunicorn",
    "waitress",
)


def git_commit(short: bool = False) -> str:
    """The checked-out commit (``+dirty`` if the work tree has changes; ``unknown`` outside git)."""
    args = ["git", "rev-parse", "--short" if short else "--verify", "HEAD"]
    try:
        commit = subprocess.run(
            args, capture_output=True, text=True, check=True, cwd=RESULTS_ROOT.parent
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            cwd=RESULTS_ROOT.parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def new_run_dir(root: Path = RESULTS_ROOT, label: str = "") -> Path:
    """Create ``root/<YYYYmmdd-HHMMSS>-<commit>[-label]`` and point ``root/latest`` at it."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = "-".join(
        part for part in (stamp, git_commit(short=True).replace("+", "-"), label) if part
    )
    run_dir = root / name
    suffix = 1
    while run_dir.exists():  # two runs started within the same second
        suffix += 1
        run_dir = root / f"{name}.{suffix}"
    run_dir.mkdir(parents=True)
    point_latest(run_dir)
    return run_dir


def point_latest(run_dir: Path) -> None:
    """Point ``latest`` beside ``run_dir`` at it (callers only do so inside results/)."""
    latest = run_dir.parent / "latest"
    temporary = run_dir.parent / f".latest.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_dir.name)
    os.replace(temporary, latest)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: tuple[str, ...] = MEASURED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_meta() -> dict:
    """What a reader needs to judge a number: code, interpreter, OS, CPU and package versions."""
    return {
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "os": platform.platform(),
        "machine": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "injections": injections(),
    }


def injections() -> dict[str, str]:
    """Every ``BENCH_INJECT_*`` knob set in this process's environment."""
    return {name: value for name, value in os.environ.items() if name.startswith(INJECTION_PREFIX)}


# --- what a run may touch -------------------------------------------------------------------------


class RunDirError(ValueError):
    """A --run-dir that cannot hold this run; the message names the path and what to do."""


def shared_root(run_dir: Path) -> Path | None:
    """``results/`` when ``run_dir`` is one of its runs: only then may a command write the files
    shared by all runs there (index.html, history.jsonl, latest). None for any other place."""
    root = RESULTS_ROOT.resolve()
    run_dir = Path(run_dir).resolve()
    if run_dir.parent != root or run_dir.name == BASELINE_NAME:
        return None
    return root


def is_baseline(path: Path) -> bool:
    """Whether ``path`` is the committed baseline, results/baseline."""
    return Path(path).resolve() == (RESULTS_ROOT / BASELINE_NAME).resolve()


def prepare_run_dir(run_dir: Path, resume: bool = False) -> Path:
    """Check that ``run_dir`` can hold a new run (empty or absent), or a resumed one, and create
    it; RunDirError otherwise. One run per directory: a second run into the same place would mix
    its cells with the first's."""
    run_dir = Path(run_dir)
    if is_baseline(run_dir):
        raise RunDirError(
            f"--run-dir {run_dir} is the committed baseline; only `bench baseline` writes there"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--run-dir {run_dir} is a file, not a directory")
    holds_a_run = run_dir.is_dir() and any(run_dir.iterdir())
    if holds_a_run and not resume:
        raise RunDirError(
            f"--run-dir {run_dir} is not empty (a run directory holds one run); choose a new "
            "directory, or add --resume to finish the run it holds"
        )
    if resume and not (run_dir / "meta.json").is_file():
        raise RunDirError(f"--resume: {run_dir} holds no run to resume (no meta.json)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunDirError(f"--run-dir {run_dir}: cannot create it ({error.strerror})") from error
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise RunDirError(f"--run-dir {run_dir}: not writable")
    return run_dir


def write_json(path: Path, data: object) -> None:
    """Write JSON atomically (temp file + rename) so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


# --- reading what a run holds ---------------------------------------------------------------------

#: where regress puts its confirming re-measurements of the regressed micro cases, in order
CONFIRM_DIRS = ("confirm", "confirm-2")


def read_meta(run_dir: Path) -> dict:
    """A run's meta.json; {} when it has none or it cannot be read (a run being written)."""
    return read_record(Path(run_dir) / "meta.json") or {}


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run (its meta.json or its cells/)."""
    return (Path(run_dir) / "meta.json").is_file() or (Path(run_dir) / "cells").is_dir()


def cell_files(run_dir: Path) -> dict[str, Path]:
    """The run's cell files by cell name, in name order."""
    return {path.stem: path for path in sorted((Path(run_dir) / "cells").glob("*.json"))}


def read_record(path: Path) -> dict | None:
    """A JSON object from ``path``; None when it is missing, unreadable or not an object."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class UnusableInput(ValueError):
    """The inputs cannot be compared (missing, unreadable, or measuring different things)."""


@dataclass
class Run:
    #: what the user named: a run dir or a JSON file
    source: Path
    #: the micro cases, or None when the input has no micro.json
    micro: list[MicroCase] | None = None
    #: more measurements of the same cases (``micro-*/micro.json``): the baseline keeps several
    micro_repeats: list[list[MicroCase]] = field(default_factory=list)
    #: load cell records by cell name, or None when the input has no cells
    cells: dict[str, dict] | None = None
    #: the run's meta.json, when there is one
    meta: dict = field(default_factory=dict)
    #: instructions.json (instructions per request of each workload), or None
    instructions: dict | None = None
    #: a single cell compared by itself: only its own ratios are rows (its references come
    #: from the cell files beside it)
    focus: str | None = None
    #: a regress run's confirming re-measurements of its regressed micro cases, in order
    confirmations: list[list[MicroCase]] = field(default_factory=list)


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise UnusableInput(f"{path}: cannot read ({error.strerror})") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UnusableInput(f"{path}: not valid JSON ({error})") from error


def read_micro(path: Path) -> list[MicroCase]:
    read_json(path)  # a clear message for unreadable or invalid JSON first
    try:
        return load_micro(path)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UnusableInput(f"{path}: not a pytest-benchmark JSON file ({error!r})") from error


#: the keys every load cell record has: what names it and where it ran
CELL_KEYS = ("cell", "server", "app", "scenario", "users")


def read_cells(paths: list[Path]) -> dict[str, dict]:
    cells = {}
    for path in paths:
        record = read_json(path)
        missing = [key for key in CELL_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            raise UnusableInput(f"{path}: not a load cell (no {', '.join(map(repr, missing))})")
        cells[record["cell"]] = record
    return cells


def read_instructions(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("per_request"), dict):
        raise UnusableInput(f"{path}: not an instruction count file (no 'per_request')")
    return data


def load_run(path: Path) -> Run:
    """Read what ``path`` holds: a run directory, a cells/ directory, micro.json or a cell file."""
    path = Path(path)
    if not path.exists():
        raise UnusableInput(f"{path}: no such file or directory")
    if path.is_file():
        data = read_json(path)
        if isinstance(data, dict) and "benchmarks" in data:
            return Run(path, micro=read_micro(path))
        if isinstance(data, dict) and "cell" in data:  # compared with the cells beside it
            siblings = read_cells(sorted(path.parent.glob("*--*.json")))
            return Run(path, cells=siblings, focus=data["cell"])
        if isinstance(data, dict) and "per_request" in data:
            return Run(path, instructions=read_instructions(path))
        raise UnusableInput(
            f"{path}: neither a pytest-benchmark micro.json nor a load cell (nor instructions.json)"
        )
    run = Run(path)
    if (path / "micro.json").is_file():
        run.micro = read_micro(path / "micro.json")
        run.micro_repeats = [
            read_micro(repeat) for repeat in sorted(path.glob("micro-*/micro.json"))
        ]
    cells_dir = path / "cells" if (path / "cells").is_dir() else path
    cell_files = sorted(cells_dir.glob("*--*.json"))
    if cell_files:
        run.cells = read_cells(cell_files)
    if (path / "instructions.json").is_file():
        run.instructions = read_instructions(path / "instructions.json")
    if (path / "meta.json").is_file():
        meta = read_json(path / "meta.json")
        run.meta = meta if isinstance(meta, dict) else {}
    run.confirmations = [
        read_micro(path / directory / "micro.json")
        for directory in CONFIRM_DIRS
        if (path / directory / "micro.json").is_file()
    ]
    return run
