"""The A/B run: its order of measurements and, end to end on a real clone, a planted slowdown on
top of the tree under test caught by the instruction rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.analysis.compare import LOAD_FLOOR, compare_runs
from bench.commands import ab
from bench.commands.sides import Side
from bench.rundir import load_run
from bench.serving.spec import MODELS
from tests.bench.analysis.test_compare import write_cells
from tests.bench.commands.throwaway import clone_of_this_tree, commit_edit, git, worktrees
from tests.bench.micro.test_instructions import needs_valgrind

# --- the order of measurements -------------------------------------------------------------------


def test_micro_rounds_alternate_so_drift_lands_on_both_sides():
    ref, head = Side("ref", Path("r"), "1"), Side("head", Path("h"), "2")
    order = [(side.name, number) for side, number in ab.micro_order(4, ref, head)]
    assert order == [("ref", 1), ("head", 1), ("head", 2), ("ref", 2),
                     ("ref", 3), ("head", 3), ("head", 4), ("ref", 4)]  # fmt: skip


def test_the_load_groups_cover_every_model_and_the_null_server_once():
    groups = ab.load_groups()
    assert [model for group in groups for model in group[1].split(",")] == list(MODELS)
    assert [group[-1] for group in groups].count(ab.NULL_PEER) == 1


def test_a_regressed_load_row_is_measured_again_with_its_own_model_and_the_null_server(tmp_path):
    baseline = load_run(write_cells(tmp_path / "base", seed=1, null=True))
    slower_fork = {"fork": 0.3}
    current = load_run(write_cells(tmp_path / "now", seed=2, null=True, server_factor=slower_fork))
    rows = compare_runs(baseline, current, load_floor=LOAD_FLOOR)
    assert ab.suspect_models(rows, current) == ["fork"]
    unchanged = compare_runs(baseline, baseline, load_floor=LOAD_FLOOR)
    assert ab.suspect_models(unchanged, baseline) == []


# --- end to end ----------------------------------------------------------------------------------

#: a pure-Python loop per request head read: several percent more instructions per server cycle
PLANTED_LOOP = (
    "        raw = bytes(buf[: end + 2])\n",
    "        for _ in range(200):\n            pass\n        raw = bytes(buf[: end + 2])\n",
)


@needs_valgrind
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_planted_slowdown_on_top_of_the_tree_regresses_its_instruction_row(tmp_path):
    repo = clone_of_this_tree(tmp_path / "clone")
    reference = git(repo, "rev-parse", "HEAD")
    commit_edit(repo, "servers/http.py", *PLANTED_LOOP, "a loop per request line")
    commit_edit(repo, "bench/micro/bench_routing.py", "def test_match_miss(",
                "def test_match_miss(  # edited\n    ", "edit a benchmark")  # fmt: skip
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "regress", "--against", "HEAD~2", "--micro-rounds", "1",
         "--load-duration", "0", "--instructions", "on"],
        cwd=repo, capture_output=True, text=True, timeout=850,
    )  # fmt: skip
    assert finished.returncode == 1, finished.stdout[-3000:] + finished.stderr
    run_dir = repo / "results" / "latest"
    rows = {row["name"]: row for row in json.loads((run_dir / "compare.json").read_text())}
    planted = rows["instructions servers-raw-plaintext / request"]
    assert planted["verdict"] == "REGRESSED" and planted["change"] > 0.02
    assert rows["instructions framework-plaintext / request"]["verdict"] == "ok"
    check = json.loads((run_dir / "meta.json").read_text())["regress"]
    assert check["reference"]["commit"] == reference
    assert check["reference"]["why"] == "named by --against"
    assert (
        "its benchmark function differs"
        in check["not_comparable"]["micro test_match_miss[framework]"]
    )
    assert not [name for name in rows if "test_match_miss" in name]
    assert (
        "| instructions servers-raw-plaintext / request |" in (run_dir / "verdict.md").read_text()
    )
    assert worktrees(repo) == [str(repo)]
