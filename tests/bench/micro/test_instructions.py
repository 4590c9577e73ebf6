"""Instruction counts under cachegrind: deterministic for unchanged code, and a clear error when
valgrind or a workload is missing (tests/bench/commands shows a planted slowdown caught). Real
valgrind runs, kept to the light in-memory server workload (one count takes a few seconds)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.micro import instructions
from bench.micro.instructions import InstructionCountFailed

ROOT = Path(__file__).resolve().parents[3]
SERVER = "servers-raw-plaintext"
FRAMEWORK = "framework-plaintext"
needs_valgrind = pytest.mark.skipif(instructions.valgrind() is None, reason="needs valgrind")


@needs_valgrind
@pytest.mark.slow
def test_two_counts_of_unchanged_code_agree():
    record = instructions.measure([SERVER], runs=2)
    per_request = record["per_request"][SERVER]
    assert 50_000 < per_request < 2_000_000
    assert record["spread"][SERVER] < 0.002  # measured: 0.03% at most
    assert len(record["measurements"]) == 2
    assert record["environment"]["python"] and record["hash_seed"] == "0"


def test_without_valgrind_counting_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert instructions.valgrind() is None
    with pytest.raises(InstructionCountFailed, match="valgrind is not installed"):
        instructions.measure([SERVER])


def count_from(tree: Path, extra_env: dict[str, str]) -> float:
    """``python -m bench instructions`` run by the checkout at ``tree``, as a side of regress or
    a step of bisect runs it: its tree first on PYTHONPATH, its own environment."""
    run_dir = tree / "counted"
    env = {**os.environ, "PYTHONPATH": str(tree), **extra_env}
    env["PATH"] = os.pathsep.join(filter(None, [extra_env.get("PATH"), os.environ["PATH"]]))
    workloads = f"{SERVER},{FRAMEWORK}"
    command = [sys.executable, "-m", "bench", "instructions", "--only", workloads, "--run-dir"]
    subprocess.run([*command, str(run_dir)], cwd=tree, env=env, check=True, capture_output=True)
    return json.loads((run_dir / "instructions.json").read_text())["per_request"][FRAMEWORK]


@needs_valgrind
@pytest.mark.slow
def test_checkouts_of_the_same_code_at_other_paths_count_the_same(tmp_path):
    # path lengths and environments once moved counts by up to ~1% (as a worktree, or a step of
    # git bisect run with git's directory on PATH, differs from the checkout)
    counts = []
    for length, extra_env in ((1, {}), (30, {"X": "y" * 99}), (57, {"PATH": "/usr/lib/git-core"})):
        tree = tmp_path / ("d" * length)
        for package in instructions.PACKAGES:
            shutil.copytree(ROOT / package, tree / package)
        counts.append(count_from(tree, extra_env))
    assert (max(counts) - min(counts)) / min(counts) < 0.002  # measured: 0.05% at most


@needs_valgrind
def test_a_workload_that_fails_under_valgrind_says_so():
    counting = pytest.raises(InstructionCountFailed, match="exited 1")
    with counting as raised, instructions.counting_tree() as tree:
        instructions.count_instructions(instructions.valgrind(), tree, ["--only", "nosuch", "1"])
    assert "KeyError" in str(raised.value)


def test_the_counts_table_shows_each_workload_and_its_spread():
    record = {
        "per_request": {SERVER: 241143.2, "framework-json": 200400.0},
        "spread": {SERVER: 0.00025, "framework-json": 0.0},
        "measurements": [{}, {}],
        "seconds": 101.2,
        "valgrind": "valgrind-3.19.0",
    }
    lines = instructions.format_counts(record).splitlines()
    assert lines[1].split() == [SERVER, "241,143", "0.025%"]
    assert lines[-1] == "2 run(s), 101 s, valgrind-3.19.0"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "nosuch"], "unknown workload nosuch; known: framework-plaintext"),
        (["--runs", "0"], "--runs must be 1 or more, not 0"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_value(argv, message):
    command = [sys.executable, "-m", "bench", "instructions", *argv]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert message in finished.stderr and "Traceback" not in finished.stderr
