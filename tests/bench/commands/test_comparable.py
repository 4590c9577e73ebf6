"""What an A/B run refuses to judge: a case on one side only, a benchmark whose code differs
between the trees, another scenario file or workload module."""

from __future__ import annotations

import json
from pathlib import Path

from bench.analysis.compare import compare_runs
from bench.commands.comparable import comparable
from bench.commands.sides import Side
from bench.rundir import load_run
from tests.bench.analysis.test_compare import FULL_CYCLE, STACK, write_instructions, write_run

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
    runs = comparable(load_run(ref_dir), load_run(head_dir), ref, head,
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
