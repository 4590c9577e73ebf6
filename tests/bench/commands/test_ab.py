"""The A/B run: its order of measurements, what it refuses to judge (a case on one side only, a
benchmark whose code differs between the trees), and, end to end on a real clone, a planted
slowdown on top of the tree under test caught by the instruction rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.analysis.compare import compare_runs
from bench.commands import ab
from bench.commands.sides import Side
from bench.rundir import load_run
from bench.serving.spec import MODELS
from tests.bench.analysis.test_compare import FULL_CYCLE, STACK, write_instructions, write_run
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


# --- what is comparable --------------------------------------------------------------------------

BENCHMARKS = """
import pytest


@pytest.mark.parametrize("subject", ["framework", "werkzeug", "flask", "raw"])
def test_full_cycle_plaintext(benchmark, subject):
    benchmark(lambda: subject)


@pytest.mark.parametrize("subject", ["framework", "werkzeug", "contextvar"])
def test_push_top_pop(benchmark, subject):
    benchmark(lambda: subject)
"""


def side(tmp_path: Path, name: str, benchmarks: str = BENCHMARKS, scenarios: str = "s1") -> tuple:
    """A side's tree (its benchmark module) and its run dir (synthetic measurements)."""
    tree = tmp_path / f"{name}-tree"
    (tree / "bench" / "micro").mkdir(parents=True)
    (tree / "bench" / "micro" / "bench_cases.py").write_text(benchmarks)
    (tree / "bench" / "micro" / "workloads.py").write_text("WORKLOADS = {}\n")
    run_dir = write_run(tmp_path / name, seed=len(name))
    write_instructions(run_dir)
    (run_dir / "load-poll").mkdir()
    (run_dir / "load-poll" / "meta.json").write_text(
        json.dumps({"scenario_file_sha256": scenarios})
    )
    return Side(name, tree, "0" * 40), run_dir


def judged_names(tmp_path: Path, head_benchmarks: str = BENCHMARKS, **head_changes) -> tuple:
    ref, ref_dir = side(tmp_path, "ref")
    head, head_dir = side(tmp_path, "head", head_benchmarks, head_changes.get("scenarios", "s1"))
    for edit in head_changes.get("edits", []):
        edit(head, head_dir)
    runs = ab.comparable(load_run(ref_dir), load_run(head_dir), ref, head,
                         {"ref": ref_dir, "head": head_dir})  # fmt: skip
    rows = compare_runs(runs[0], runs[1])
    return {row.name for row in rows}, runs[2]


def test_everything_measured_alike_on_both_sides_is_judged(tmp_path):
    names, reasons = judged_names(tmp_path)
    assert reasons == {}
    assert f"micro {STACK} / werkzeug" in names
    assert any(name.startswith("load ") for name in names)
    assert any(name.startswith("instructions ") for name in names)


def test_a_benchmark_whose_code_differs_is_not_comparable(tmp_path):
    changed = BENCHMARKS.replace("benchmark(lambda: subject)\n", "benchmark(lambda: [subject])\n")
    changed = changed.replace("[subject]", "subject", 1)  # only the second function differs
    names, reasons = judged_names(tmp_path, changed)
    assert not [name for name in names if STACK.split("[")[0] in name]
    assert f"micro {FULL_CYCLE} / werkzeug" in names
    assert reasons[f"micro {STACK}"] == "its benchmark function differs between the trees"
    assert reasons["micro test_push_top_pop[werkzeug]"].startswith("its benchmark function")


def drop_micro_case(name: str):
    def edit(head: Side, head_dir: Path) -> None:
        data = json.loads((head_dir / "micro.json").read_text())
        data["benchmarks"] = [entry for entry in data["benchmarks"] if entry["name"] != name]
        (head_dir / "micro.json").write_text(json.dumps(data))

    return edit


def drop_cell(head: Side, head_dir: Path) -> None:
    (head_dir / "cells" / "epoll--app--fortunes--u10.json").unlink()


def test_cases_and_cells_measured_on_one_side_only_are_not_comparable(tmp_path):
    names, reasons = judged_names(tmp_path, edits=[drop_micro_case(STACK), drop_cell])
    assert reasons[f"micro {STACK}"] == "measured on the ref side only"
    assert reasons["load epoll--app--fortunes--u10"] == "measured on the ref side only"
    assert not [name for name in names if name.startswith(f"micro {STACK}")]
    assert not [name for name in names if "epoll fortunes" in name]


def test_a_side_without_any_cell_leaves_the_other_rows_judged(tmp_path):
    def drop_every_cell(head: Side, head_dir: Path) -> None:
        for cell in (head_dir / "cells").iterdir():
            cell.unlink()

    names, reasons = judged_names(tmp_path, edits=[drop_every_cell])
    assert not [name for name in names if name.startswith("load ")]
    assert reasons["load poll--app--plaintext--u10"] == "measured on the ref side only"
    assert f"micro {STACK} / werkzeug" in names


def test_another_scenario_file_makes_every_load_row_not_comparable(tmp_path):
    names, reasons = judged_names(tmp_path, scenarios="s2")
    assert not [name for name in names if name.startswith("load ")]
    assert reasons["load poll--app--plaintext--u10"].startswith("its scenario file differs")


def test_another_workload_module_makes_every_instruction_row_not_comparable(tmp_path):
    def edit(head: Side, head_dir: Path) -> None:
        (head.tree / "bench" / "micro" / "workloads.py").write_text("WORKLOADS = {'x': 1}\n")

    names, reasons = judged_names(tmp_path, edits=[edit])
    assert not [name for name in names if name.startswith("instructions ")]
    assert any(why.startswith("its workload module differs") for why in reasons.values())


# --- end to end ----------------------------------------------------------------------------------

#: a pure-Python loop per request line: about 10% more instructions per server cycle
PLANTED_LOOP = (
    "    if len(line) > limits.max_request_line:\n",
    "    for _ in range(200):\n        pass\n    if len(line) > limits.max_request_line:\n",
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
