"""The run's CPU budget: switched off, given, unavailable (said once), or calibrated against the
null server (a failed calibration runs unbudgeted and says why).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.measure import (
    budget,
    calibration,
    cgroups,
    matrix,
)
from bench.measure.settings import Settings
from tests.bench.measure.testservers import DIES_AT_START, script_server


def settings_for_budget() -> Settings:
    return Settings("smoke", 1.0, 2.0, 1, locust_workers=0, pinning=None)


def test_no_budget_when_switched_off():
    assert calibration.choose_budget("off", settings_for_budget(), [], Path()) == (
        None, {"cpus": None, "source": "off"}
    )  # fmt: skip


def test_without_writable_cgroups_the_run_says_so_once_and_goes_on(tmp_path, monkeypatch, capsys):
    # the real locate(), pointed at a /proc/self without cgroup files
    monkeypatch.setattr(calibration, "locate", lambda: cgroups.locate(tmp_path))
    for server_cpus in (None, 0.3):
        chosen, meta = calibration.choose_budget(server_cpus, settings_for_budget(), [], tmp_path)
        assert chosen is None and meta["source"] == "unavailable"
        assert "no cgroups here" in meta["reason"]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("no CPU budget: no cgroups") for line in lines)


def test_a_given_budget_is_used_as_given():
    try:
        budget.Budget(None, cgroups.locate()).check()
    except cgroups.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    chosen, meta = calibration.choose_budget(0.35, settings_for_budget(), [], Path())
    # 0.35 × 10 ms would be under the 5 ms CFS slice: the period grows to 15 ms
    assert chosen.cpus == 0.35 and chosen.quota_us == round(0.35 * budget.period_for(0.35))
    assert meta == {**chosen.describe(), "source": "--server-cpus"}


def test_a_failed_calibration_runs_unbudgeted_and_says_why(tmp_path, monkeypatch, capsys):
    try:
        budget.Budget(None, cgroups.locate()).check()
    except cgroups.BudgetUnavailable as why:
        pytest.skip(f"no writable cgroup here: {why}")
    monkeypatch.setattr(calibration, "NULL_SERVER", script_server("null", DIES_AT_START))
    cells, _ = matrix.plan("smoke", servers=["epoll"], scenarios=["plaintext"], users=[4])
    chosen, meta = calibration.choose_budget(None, settings_for_budget(), cells, tmp_path)
    assert chosen is None and meta["source"] == "unavailable"
    assert meta["reason"].startswith("calibration failed: server exited with code 3")
    assert "no CPU budget: calibration failed" in capsys.readouterr().err
