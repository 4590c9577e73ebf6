"""Resuming a run: which cells already in a run directory count as measured by this run.

A run directory holds one run. ``--resume`` finishes an interrupted one: a cell on disk is kept
when it finished (status ok) with the settings this run would measure it with; any other is
measured again. A cell file that this run would not plan at all belongs to another run, so a
resume that finds one is refused before anything is measured.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Protocol

from bench.rundir import cell_files, read_meta, read_record


class CellSettings(Protocol):
    warmup_s: float
    duration_s: float
    repeats: int
    locust_workers: int
    pinning: dict | None


def foreign_cells(run_dir: Path, planned: list[str]) -> list[str]:
    """Cells in ``run_dir`` that this plan does not have: another run's, not ours to keep."""
    return [name for name in cell_files(run_dir) if name not in planned]


def same_settings(record: dict, settings: CellSettings, meta: dict) -> bool:
    """Measured as this run would measure it: same window, repeats, pinning, Locust workers and
    CPU budget."""
    return (
        record.get("status") == "ok"
        and record.get("warmup_s") == settings.warmup_s
        and record.get("duration_s") == settings.duration_s
        and len(record.get("repeats") or []) == settings.repeats
        and record.get("pinning") == settings.pinning
        and (meta.get("locust_workers") or 0) == settings.locust_workers
        and (record.get("budget") or {}).get("cpus") == budget_cpus(settings)
    )


def budget_cpus(settings: CellSettings) -> float | None:
    budget = getattr(settings, "budget", None)
    return budget.cpus if budget else None


def kept_cells(run_dir: Path, planned: list[str], settings: CellSettings) -> dict[str, dict]:
    """The planned cells already measured with ``settings``, by name."""
    meta = read_meta(run_dir)
    kept = {}
    for name, path in cell_files(run_dir).items():
        record = read_record(path)
        if name in planned and record and same_settings(record, settings, meta):
            kept[name] = record
    return kept


def resume_entry(run_dir: Path, kept: dict[str, dict]) -> list[dict]:
    """The run's list of resumes with this one appended: when, what the run was before, what
    was kept (so a reader knows the cells were measured in more than one sitting)."""
    earlier = read_meta(run_dir)
    entry = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "previous_status": earlier.get("status"),
        "previous_commit": earlier.get("commit"),
        "cells_kept": sorted(kept),
    }
    return [*(earlier.get("resumes") or []), entry]
