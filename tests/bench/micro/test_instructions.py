"""Instruction counts under cachegrind: deterministic for unchanged code, and a clear error when
valgrind or a workload is missing (tests/bench/commands shows a planted slowdown caught). Real
valgrind runs, kept to the light in-memory server workload (one count takes a few seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.micro import instructions
from bench.micro.instructions import InstructionCountFailed

ROOT = Path(__file__).resolve().parents[3]
SERVER = "servers-raw-plaintext"
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


@needs_valgrind
def test_a_workload_that_fails_under_valgrind_says_so():
    with pytest.raises(InstructionCountFailed, match="exited 1") as raised:
        instructions.count_instructions(instructions.valgrind(), ["--only", "nosuch", "1"])
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
