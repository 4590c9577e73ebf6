"""The run's CPU budget: given (``--server-cpus``), switched off, kept from the run being
resumed, or calibrated at the start of the run against the null server (``bench.measure.budget``
holds the rules; this module runs the calibration cell and says what it chose)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from bench.catalogue import SCENARIOS
from bench.measure.budget import (
    CAPACITY_MARGIN,
    RULE,
    Budget,
    calibrated_cpus,
    fastest_rps_per_cpu,
    measured_capacity,
)
from bench.measure.cellrun import run_cell
from bench.measure.cgroups import BudgetUnavailable, locate
from bench.measure.matrix import Cell
from bench.measure.settings import Settings
from bench.measure.workload import OURS
from bench.rundir import read_meta
from bench.serving.peers import NULL_SERVER


def earlier_budget(run_dir: Path) -> float | str | None:
    """The CPU budget a run being resumed was measured under: its CPUs, "off", or None."""
    budget = read_meta(run_dir).get("budget") or {}
    if budget.get("cpus"):
        return budget["cpus"]
    return "off" if budget.get("source") == "off" else None


def choose_budget(
    server_cpus: float | str | None, settings: Settings, cells: list[Cell], logs_dir: Path
) -> tuple[Budget | None, dict]:
    """The run's CPU budget and its record for meta.json.

    ``server_cpus``: "off", a number of CPUs, or None to calibrate. Where no cgroup can be made
    this says so once, on stderr, and the run goes on unbudgeted as before.
    """
    if server_cpus == "off":
        return None, {"cpus": None, "source": "off"}
    try:
        layout = locate()
        given = Budget(None if server_cpus is None else float(server_cpus), layout)
        given.check()
    except BudgetUnavailable as why:
        print(f"no CPU budget: {why}; servers run unlimited, as without --server-cpus",
              file=sys.stderr)  # fmt: skip
        return None, {"cpus": None, "source": "unavailable", "reason": str(why)}
    if server_cpus is not None:
        return given, {**given.describe(), "source": "--server-cpus"}
    if not cells:
        return None, {"cpus": None, "source": "no cells to calibrate for"}
    calibration = calibrate(Budget(None, layout), settings, cells, logs_dir)
    if calibration.get("cpus") is None:
        print(f"no CPU budget: {calibration['reason']}", file=sys.stderr)
        return None, {"cpus": None, "source": "unavailable", **calibration}
    budget = Budget(calibration["cpus"], layout)
    print(f"CPU budget {budget.cpus:g} per server: Locust sent {calibration['generator_rps']:,.0f}"
          f" req/s to the null server at {calibration['scaled_by']}, so "
          f"{calibration['generator_capacity']:,.0f} with its cores busy; "
          f"{calibration['fastest']} serves up to {calibration['fastest_rps_per_cpu']:,} per "
          "CPU", file=sys.stderr)  # fmt: skip
    return budget, {**budget.describe(), "source": "calibrated", "calibration": calibration}


def generator_cpu_text(calibration: dict) -> str:
    """Whose CPU the capacity was scaled by, as meta.json and the report say it: the remote
    workers' own report, or Locust's here."""
    if calibration.get("workers_cpu_pct") is not None:
        return f"{calibration['workers_cpu_pct']:.0f}% of each remote worker's core"
    return f"{calibration['generator_cpu_pct'] or 0:.0f}% CPU"


def calibrate(counted: Budget, settings: Settings, cells: list[Cell], logs_dir: Path) -> dict:
    """Measure the generator's capacity: the null server, unlimited (its cgroup only counts), at
    the run's top user level on plaintext, one repeat; then apply the rules of
    ``bench.measure.budget``. The result has ``cpus`` None and a ``reason`` when the null server
    gave no number."""
    users = max(cell.users for cell in cells)
    cell = Cell(NULL_SERVER, "app", SCENARIOS["plaintext"], users)
    # our own plaintext user against the null server, whatever app and locustfile the run loads
    calibration_settings = replace(settings, repeats=1, budget=counted, workload=OURS)
    record = run_cell(cell, calibration_settings, logs_dir / "calibration")
    summary = record["summary"]
    fastest, rate = fastest_rps_per_cpu(sorted({(cell.server.name, cell.app) for cell in cells}))
    calibration = {
        "cell": cell.name,
        "users": users,
        "generator_rps": summary["rps"],
        "generator_cpu_pct": summary["generator_cpu_pct"],
        "workers_cpu_pct": summary.get("workers_cpu_pct") if settings.expect_workers else None,
        "generator_cores": settings.generator_cores,
        "null_cpu_pct": summary["server_cpu_pct"],
        "fastest": fastest,
        "fastest_rps_per_cpu": rate,
        "margin": CAPACITY_MARGIN,
        "rule": RULE,
    }
    if record["status"] != "ok" or not summary["rps"]:
        return {**calibration, "cpus": None, "reason": f"calibration failed: {record['error']}"}
    try:  # workers on other machines: their own CPU, or no calibration
        capacity = measured_capacity(summary, settings.generator_cores, settings.expect_workers)
    except BudgetUnavailable as why:
        return {**calibration, "cpus": None, "reason": str(why)}
    calibration["scaled_by"] = generator_cpu_text(calibration)
    return {**calibration, "generator_capacity": capacity, "cpus": calibrated_cpus(capacity, rate)}
