"""Run directories: what a run may write where, and what its metadata records."""

from __future__ import annotations

import pytest

from bench import rundir


@pytest.fixture
def results(tmp_path, monkeypatch):
    root = tmp_path / "results"
    root.mkdir()
    monkeypatch.setattr(rundir, "RESULTS_ROOT", root)
    return root


def test_only_a_run_inside_results_may_touch_the_shared_files(results, tmp_path):
    assert rundir.shared_root(results / "20261201-run") == results.resolve()
    assert rundir.shared_root(tmp_path / "site" / "run1") is None
    assert rundir.shared_root(results / "deeper" / "run1") is None
    assert rundir.shared_root(results / "baseline") is None


def test_prepare_accepts_a_new_or_empty_dir_and_refuses_a_used_one(results, tmp_path):
    assert rundir.prepare_run_dir(tmp_path / "new" / "run").is_dir()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert rundir.prepare_run_dir(empty) == empty
    (empty / "meta.json").write_text("{}")
    with pytest.raises(rundir.RunDirError, match="is not empty"):
        rundir.prepare_run_dir(empty)
    assert rundir.prepare_run_dir(empty, resume=True) == empty
    with pytest.raises(rundir.RunDirError, match="no run to resume"):
        rundir.prepare_run_dir(tmp_path / "new" / "run", resume=True)
    with pytest.raises(rundir.RunDirError, match="committed baseline"):
        rundir.prepare_run_dir(results / "baseline")


def test_every_injection_knob_is_recorded(monkeypatch):
    monkeypatch.setenv("BENCH_INJECT_DELAY_US", "30")
    monkeypatch.setenv("BENCH_INJECT_SERVER_DELAY_US", "5")
    monkeypatch.setenv("BENCH_WARMUP_S", "1")  # not an injection
    assert rundir.machine_meta()["injections"] == {
        "BENCH_INJECT_DELAY_US": "30",
        "BENCH_INJECT_SERVER_DELAY_US": "5",
    }


def test_a_run_without_injections_records_none(monkeypatch):
    for name in [name for name in rundir.os.environ if name.startswith("BENCH_INJECT_")]:
        monkeypatch.delenv(name)
    assert rundir.machine_meta()["injections"] == {}
