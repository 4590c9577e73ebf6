"""Run directories: what a run may write where, and what its metadata records."""

from __future__ import annotations

import re

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


# --- reading a run ------------------------------------------------------------------------------


def cell(name: str = "poll--app--plaintext--u8", **fields) -> dict:
    server, app, scenario, users = name.split("--")
    return {"cell": name, "server": server, "app": app, "scenario": scenario,
            "users": int(users[1:]), **fields}  # fmt: skip


def test_meta_of_a_run_being_written_or_damaged_reads_as_empty(tmp_path):
    assert rundir.read_meta(tmp_path) == {}
    (tmp_path / "meta.json").write_text('{"status": "runn')  # killed mid-write
    assert rundir.read_meta(tmp_path) == {}
    (tmp_path / "meta.json").write_text("[1, 2]")  # JSON, but not a run's metadata
    assert rundir.read_meta(tmp_path) == {}
    rundir.write_json(tmp_path / "meta.json", {"status": "finished"})
    assert rundir.read_meta(tmp_path) == {"status": "finished"}


def test_a_run_reads_whole_with_its_cells_micro_and_meta(tmp_path):
    rundir.write_json(tmp_path / "meta.json", {"profile": "smoke"})
    rundir.write_json(tmp_path / "cells" / "poll--app--plaintext--u8.json", cell(status="ok"))
    run = rundir.load_run(tmp_path)
    assert list(run.cells) == ["poll--app--plaintext--u8"] and run.meta == {"profile": "smoke"}
    assert run.micro is None and run.instructions is None and run.focus is None
    assert rundir.holds_run(tmp_path) and not rundir.holds_run(tmp_path / "cells")


def test_a_cell_file_reads_with_the_cells_beside_it_and_names_itself_the_focus(tmp_path):
    for name in ("poll--app--plaintext--u8", "poll--raw--plaintext--u8"):
        rundir.write_json(tmp_path / "cells" / f"{name}.json", cell(name))
    run = rundir.load_run(tmp_path / "cells" / "poll--app--plaintext--u8.json")
    assert run.focus == "poll--app--plaintext--u8" and len(run.cells) == 2


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ({"cell": "poll--app--plaintext--u8"}, "not a load cell (no 'server', 'app'"),
        ([1, 2], "not a load cell (no 'cell'"),
    ],
)
def test_a_cell_record_out_of_shape_is_unusable_and_says_what_it_lacks(tmp_path, record, says):
    rundir.write_json(tmp_path / "cells" / "poll--app--plaintext--u8.json", record)
    with pytest.raises(rundir.UnusableInput, match=re.escape(says)):
        rundir.load_run(tmp_path)
