"""The baseline command: it trims and copies a finished smoke run into results/baseline, shows
what changed against the one it replaces, and refuses a run regress could never compare with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.analysis.ratios import MAX_SAMPLES
from bench.commands import baseline
from bench.commands.baseline import refresh_baseline
from bench.commands.compare import main
from bench.rundir import load_run
from tests.bench.analysis.test_compare import (
    SERVERS,
    STACK,
    write_cells,
    write_instructions,
    write_micro,
    write_run,
)

#: the cells of the synthetic runs: the smoke matrix at 10 users (the real plan has 8)
SYNTHETIC_SMOKE = {
    f"{server}--{app}--{scenario}--u10"
    for server in SERVERS
    for app, scenario in (("app", "plaintext"), ("app", "fortunes"), ("raw", "plaintext"))
}


#: the real smoke plan's cells, kept before the fixture below stands in for them
REAL_SMOKE_CELLS = baseline.smoke_cells


@pytest.fixture(autouse=True)
def synthetic_smoke(monkeypatch):
    """What a baseline must hold is the synthetic matrix here (a test about the real smoke plan
    puts REAL_SMOKE_CELLS back)."""
    monkeypatch.setattr(baseline, "smoke_cells", lambda: SYNTHETIC_SMOKE)


def test_refreshing_the_baseline_trims_micro_and_copies_cells(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", seed=1, rounds=1000)
    dest = tmp_path / "baseline"
    files = refresh_baseline(run_dir, dest)
    assert "micro.json" in files and "meta.json" in files
    assert len([f for f in files if f.startswith("cells/")]) == 12
    stored = json.loads((dest / "micro.json").read_text())
    original = json.loads((run_dir / "micro.json").read_text())
    for kept, full in zip(stored["benchmarks"], original["benchmarks"], strict=True):
        assert len(kept["stats"]["data"]) == MAX_SAMPLES
        assert kept["stats"]["data"][0] == full["stats"]["data"][0]
        assert kept["stats"]["data"][-1] == full["stats"]["data"][-1]
        assert kept["stats"]["median"] == full["stats"]["median"]
    assert main([str(dest), str(run_dir)]) == 0


def test_a_refresh_replaces_the_old_baseline_and_shows_what_changed(tmp_path, capsys):
    dest = tmp_path / "baseline"
    refresh_baseline(write_run(tmp_path / "old", seed=1), dest)
    (dest / "cells" / "stale--app--x--u1.json").write_text("{}")
    capsys.readouterr()
    new = write_run(tmp_path / "new", seed=2, slower={STACK: 1.5})
    refresh_baseline(new, dest)
    out = capsys.readouterr().out
    assert "the old baseline is not comparable" in out  # the stale cell is not a cell
    assert not (dest / "cells" / "stale--app--x--u1.json").exists()
    refresh_baseline(write_run(tmp_path / "newer", seed=3), dest)
    out = capsys.readouterr().out
    assert "what changed against the old baseline" in out
    assert "improved" in out


def test_a_baseline_needs_micro_and_load(tmp_path, capsys):
    run_dir = write_cells(tmp_path / "run")
    code = baseline.baseline_main(["--from", str(run_dir), "--dest", str(tmp_path / "b")])
    assert code == 2
    assert "a baseline needs both micro.json and cells/" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_the_baseline_keeps_every_micro_measurement(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", seed=1)
    write_micro(run_dir / "micro-2" / "micro.json", seed=2, rounds=500)
    refresh_baseline(run_dir, tmp_path / "baseline")
    kept = json.loads((tmp_path / "baseline" / "micro-2" / "micro.json").read_text())
    assert {len(b["stats"]["data"]) for b in kept["benchmarks"]} == {MAX_SAMPLES}
    assert main([str(tmp_path / "baseline"), str(run_dir)]) == 0


def test_the_baseline_keeps_its_instruction_counts(tmp_path, capsys):
    run_dir = write_instructions(write_run(tmp_path / "run", seed=1))
    files = refresh_baseline(run_dir, tmp_path / "baseline")
    assert "instructions.json" in files
    assert load_run(tmp_path / "baseline").instructions["per_request"]["framework-plaintext"] > 0


def set_meta(run_dir: Path, **values) -> Path:
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({**meta, **values}))
    return run_dir


@pytest.mark.parametrize(
    ("meta", "complaint"),
    [
        ({"profile": "quick"}, "was measured with profile quick, but regress compares a smoke"),
        ({"status": "interrupted"}, "its load run is interrupted, not finished"),
    ],
)
def test_baseline_refuses_a_run_regress_cannot_compare_with(tmp_path, capsys, meta, complaint):
    run_dir = set_meta(write_run(tmp_path / "run", seed=1), **meta)
    dest = refresh_baseline(write_run(tmp_path / "old", seed=2), tmp_path / "baseline")
    assert (
        baseline.baseline_main(
            ["--from", str(run_dir), "--dest", str(tmp_path / "baseline"), "--micro-runs", "1"]
        )
        == 2
    )
    assert complaint in capsys.readouterr().err
    assert sorted(dest) == sorted(  # the old baseline is untouched
        str(p.relative_to(tmp_path / "baseline"))
        for p in (tmp_path / "baseline").rglob("*")
        if p.is_file()
    )


def test_baseline_refuses_a_smoke_run_restricted_to_fewer_cells(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(baseline, "smoke_cells", REAL_SMOKE_CELLS)
    run_dir = write_run(tmp_path / "run", seed=1)  # 10 users: not the smoke plan's cells
    assert (
        baseline.baseline_main(
            ["--from", str(run_dir), "--dest", str(tmp_path / "b"), "--micro-runs", "1"]
        )
        == 2
    )
    assert "does not hold the smoke profile's cells" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_baseline_from_a_run_with_one_micro_measurement_keeps_the_three_it_has(tmp_path, capsys):
    dest = tmp_path / "baseline"
    old = write_run(tmp_path / "old", seed=1)
    for number in (2, 3):
        write_micro(old / f"micro-{number}" / "micro.json", seed=number)
    refresh_baseline(old, dest)
    single = write_run(tmp_path / "single", seed=4)
    assert baseline.baseline_main(["--from", str(single), "--dest", str(dest)]) == 2
    assert "holds 1 micro measurement(s), a baseline keeps 3" in capsys.readouterr().err
    assert (dest / "micro-2" / "micro.json").exists()  # was: deleted with micro-3/
    assert (
        baseline.baseline_main(["--from", str(single), "--dest", str(dest), "--micro-runs", "1"])
        == 0
    )
