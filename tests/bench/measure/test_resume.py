"""Resuming a run: which cells on disk are kept, and what a resume records."""

from __future__ import annotations

import json
from pathlib import Path

from bench.measure import resume
from bench.measure.settings import Settings

PINNING = {"server_cpus": [0], "generator_cpus": [1]}
SETTINGS = Settings("smoke", 1.0, 2.0, 1, locust_workers=0, pinning=PINNING)


def write_cell(run_dir: Path, name: str, **fields) -> None:
    record = {"cell": name, "status": "ok", "warmup_s": 1.0, "duration_s": 2.0,
              "pinning": PINNING, "repeats": [{}], **fields}  # fmt: skip
    (run_dir / "cells").mkdir(parents=True, exist_ok=True)
    (run_dir / "cells" / f"{name}.json").write_text(json.dumps(record))


def test_only_finished_cells_measured_the_same_way_are_kept(tmp_path):
    write_cell(tmp_path, "poll--app--plaintext--u8")
    write_cell(tmp_path, "epoll--app--plaintext--u8", duration_s=5.0)
    write_cell(tmp_path, "fork--app--plaintext--u8", status="failed")
    write_cell(tmp_path, "threaded--app--plaintext--u8", repeats=[{}, {}])
    (tmp_path / "cells" / "poll--app--fortunes--u8.json").write_text('{"cell": "poll--')
    planned = ["poll--app--plaintext--u8", "epoll--app--plaintext--u8",
               "fork--app--plaintext--u8", "threaded--app--plaintext--u8",
               "poll--app--fortunes--u8"]  # fmt: skip
    assert list(resume.kept_cells(tmp_path, planned, SETTINGS)) == ["poll--app--plaintext--u8"]


def test_a_second_looks_repeat_is_not_a_changed_repeat_count(tmp_path):
    write_cell(tmp_path, "poll--app--plaintext--u8", repeats=[{}, {"look": 2}])
    write_cell(tmp_path, "epoll--app--plaintext--u8", repeats=[{}, {}, {"look": 2}])
    planned = ["poll--app--plaintext--u8", "epoll--app--plaintext--u8"]
    assert list(resume.kept_cells(tmp_path, planned, SETTINGS)) == ["poll--app--plaintext--u8"]


def test_other_locust_workers_keep_nothing(tmp_path):
    write_cell(tmp_path, "poll--app--plaintext--u8")
    (tmp_path / "meta.json").write_text(json.dumps({"locust_workers": 2}))
    assert resume.kept_cells(tmp_path, ["poll--app--plaintext--u8"], SETTINGS) == {}


def test_cells_outside_the_plan_are_another_runs(tmp_path):
    write_cell(tmp_path, "poll--app--plaintext--u8")
    write_cell(tmp_path, "poll--app--plaintext--u64")
    planned = ["poll--app--plaintext--u8"]
    assert resume.foreign_cells(tmp_path, planned) == ["poll--app--plaintext--u64"]


def test_each_resume_is_recorded_after_the_earlier_ones(tmp_path):
    earlier = {"date": "2026-12-01T10:00:00+00:00", "cells_kept": []}
    meta = {"status": "interrupted", "commit": "abc", "resumes": [earlier]}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    entries = resume.resume_entry(tmp_path, {"poll--app--plaintext--u8": {}})
    assert entries[0] == earlier
    assert entries[1]["cells_kept"] == ["poll--app--plaintext--u8"]
    assert (entries[1]["previous_status"], entries[1]["previous_commit"]) == ("interrupted", "abc")


def test_a_remeasured_cell_says_which_setting_changed(tmp_path):
    write_cell(tmp_path, "poll--app--plaintext--u8")
    write_cell(tmp_path, "epoll--app--plaintext--u8", duration_s=5.0)
    write_cell(tmp_path, "fork--app--plaintext--u8", duration_s=5.0, repeats=[{}, {}, {}])
    write_cell(tmp_path, "threaded--app--plaintext--u8", status="failed")
    write_cell(tmp_path, "null--app--plaintext--u8", pinning=None)
    (tmp_path / "cells" / "poll--app--fortunes--u8.json").write_text('{"cell": "poll--')
    planned = [path.stem for path in (tmp_path / "cells").glob("*.json")]
    changes = resume.remeasured(tmp_path, planned, SETTINGS)
    assert changes == {
        "epoll--app--plaintext--u8": ["duration 5 s → 2 s"],
        "fork--app--plaintext--u8": ["duration 5 s → 2 s", "repeats 3 → 1"],
        "threaded--app--plaintext--u8": ["it failed last time"],
        "null--app--plaintext--u8": ["pinning none → server on [0], Locust on [1]"],
        "poll--app--fortunes--u8": ["its file does not read"],
    }
    line = resume.remeasure_line(changes)
    assert line.startswith("--resume measures 5 cells again: duration 5 s → 2 s (2 cells); ")
    assert "repeats 3 → 1 (1 cell)" in line
    assert resume.remeasure_line({}) == ""


def test_a_changed_budget_is_named(tmp_path):
    write_cell(tmp_path, "poll--app--plaintext--u8", budget={"cpus": 0.3})
    changes = resume.remeasured(tmp_path, ["poll--app--plaintext--u8"], SETTINGS)
    assert changes == {"poll--app--plaintext--u8": ["CPU budget 0.3 CPU → none"]}
