"""A batch of cells against one server start: closed-loop cells and a sweep's steps share one
failure path, so they record the same things in the same way.

The slow test runs a real sweep (a real server, real Locust) against a server bound where the
runner was told, not on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.catalogue import SCENARIOS
from bench.measure import cellrun
from bench.measure.budget import Budget
from bench.measure.cgroups import Hierarchy, Layout
from bench.measure.matrix import Cell
from bench.measure.settings import Settings
from bench.serving.registry import all_servers


def settings_for(**fields) -> Settings:
    return Settings("quick", 0.5, 1.0, 1, locust_workers=0, pinning=None, **fields)


def closed_cell() -> list[Cell]:
    return [Cell(all_servers()["threaded"], "app", SCENARIOS["plaintext"], 2)]


def sweep_without_capacity() -> list[Cell]:
    server = all_servers()["threaded"]
    return [Cell(server, "app", SCENARIOS["plaintext"], 4, offered_fraction=f) for f in (0.5, 1.0)]


@pytest.mark.parametrize("cells", [closed_cell(), sweep_without_capacity()], ids=["cell", "sweep"])
def test_a_failed_batch_keeps_its_budget_in_the_summary_for_cells_and_sweeps(tmp_path, cells):
    # a budget whose cgroup cannot be made: the cell fails before a server starts; the sweep
    # fails earlier still, having no capacity to offer a fraction of
    nowhere = Hierarchy(2, frozenset({"cpu"}), tmp_path / "missing")
    settings = settings_for(budget=Budget(0.5, Layout(nowhere, None)))
    records = cellrun.run_batch(cells, settings, tmp_path / "logs")
    assert [record["status"] for record in records] == ["failed"] * len(cells)
    for record in records:
        assert record["budget"]["cpus"] == 0.5
        assert record["summary"]["budget_cpus"] == 0.5
        assert record["flags"] == ["failed"]
        assert "--- server stderr (tail) ---" in record["error"]


@pytest.mark.slow
def test_a_sweep_probes_its_server_where_the_cells_reach_it(tmp_path):
    # 127.0.0.2 is loopback too, but a server bound there does not answer on 127.0.0.1
    server = all_servers()["threaded"]
    cells = [
        Cell(server, "app", SCENARIOS["plaintext"], 4, offered_fraction=f, offered_rps=rps)
        for f, rps in ((0.5, 50.0), (1.0, 100.0))
    ]
    settings = dataclasses.replace(settings_for(server_host="127.0.0.2"), warmup_s=0.3)
    records = cellrun.run_batch(cells, settings, tmp_path)
    assert [record["status"] for record in records] == ["ok", "ok"], records[0]["error"]
    assert all(record["repeats"][0]["requests"] > 0 for record in records)
    assert Path(tmp_path / f"{cells[0].name}.server.out").read_text().count("127.0.0.2") >= 1


def test_an_open_cell_without_a_capacity_fails_without_starting_a_server(tmp_path):
    cells = [Cell(all_servers()["poll"], "app", SCENARIOS["io"], 32, offered_fraction=f)
             for f in (0.5, 1.0)]  # fmt: skip
    settings = settings_for()
    records = cellrun.run_batch(cells, settings, tmp_path)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all(r["mode"] == "open" for r in records)
    assert "no trusted closed-loop cell" in records[0]["error"]
    assert not list(tmp_path.iterdir())
