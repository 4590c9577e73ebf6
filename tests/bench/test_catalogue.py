"""The scenario catalogue: every scenario has its Locust user class, a probe with a marker, and the
io scenario waits IO_WAIT_MS, the number the report's serial ceiling is computed from."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.catalogue import IO_WAIT_MS, SCENARIOS

SCENARIOS_FILE = Path(__file__).resolve().parents[2] / "bench" / "measure" / "scenarios.py"


def user_classes_in_locustfile() -> set[str]:
    """Class names defined in bench/measure/scenarios.py, read without importing Locust (gevent)."""
    tree = ast.parse(SCENARIOS_FILE.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def test_every_scenario_has_its_user_class():
    defined = user_classes_in_locustfile()
    assert {scenario.user_class for scenario in SCENARIOS.values()} <= defined


def test_scenario_probes_are_paths_with_markers():
    for scenario in SCENARIOS.values():
        assert scenario.probe_path.startswith("/"), scenario
        assert scenario.marker, scenario


def test_the_io_scenario_waits_what_the_report_divides_by():
    assert SCENARIOS["io"].probe_path == f"/io?ms={IO_WAIT_MS}"
    assert f"{IO_WAIT_MS} ms" in SCENARIOS["io"].description
