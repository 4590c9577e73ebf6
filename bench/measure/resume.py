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

from bench.measure.records import first_look
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


def setting_changes(record: dict, settings: CellSettings, meta: dict) -> list[str]:
    """Why a cell on disk is not kept: each setting it was measured with that this run changes
    ("duration 2 s → 5 s"), or that it did not finish; empty when it is kept as measured."""
    if record.get("status") != "ok":
        return [f"it {record.get('status') or 'did not finish'} last time"]
    budget = (record.get("budget") or {}).get("cpus")
    measured_with = [  # (setting, as the cell was measured, as this run measures)
        ("warm-up", seconds(record.get("warmup_s")), seconds(settings.warmup_s)),
        ("duration", seconds(record.get("duration_s")), seconds(settings.duration_s)),
        # a second look's repeat came after the run's cells: not a setting they were measured with
        ("repeats", str(len(first_look(record.get("repeats") or []))), str(settings.repeats)),
        ("pinning", pinning_text(record.get("pinning")), pinning_text(settings.pinning)),
        ("Locust workers", str(meta.get("locust_workers") or 0), str(settings.locust_workers)),
        ("CPU budget", budget_text(budget), budget_text(budget_cpus(settings))),
    ]
    return [f"{name} {was} → {now}" for name, was, now in measured_with if was != now]


def seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g} s"


def same_settings(record: dict, settings: CellSettings, meta: dict) -> bool:
    """Measured as this run would measure it: finished, with the same window, repeats, pinning,
    Locust workers and CPU budget."""
    return not setting_changes(record, settings, meta)


def pinning_text(pinning: dict | None) -> str:
    if not pinning:
        return "none"
    return f"server on {pinning.get('server_cpus')}, Locust on {pinning.get('generator_cpus')}"


def budget_text(cpus: float | None) -> str:
    return f"{cpus:g} CPU" if cpus else "none"


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


def remeasured(run_dir: Path, planned: list[str], settings: CellSettings) -> dict[str, list[str]]:
    """The planned cells on disk that this resume measures again, each with why."""
    meta = read_meta(run_dir)
    changes = {}
    for name, path in cell_files(run_dir).items():
        if name not in planned:
            continue
        record = read_record(path)
        why = (
            ["its file does not read"]
            if record is None
            else setting_changes(record, settings, meta)
        )
        if why:
            changes[name] = why
    return changes


def remeasure_line(changes: dict[str, list[str]]) -> str:
    """One console line: how many cells on disk are measured again, and which settings changed
    ("" when none is)."""
    if not changes:
        return ""
    counts: dict[str, int] = {}
    for reasons in changes.values():
        for why in reasons:
            counts[why] = counts.get(why, 0) + 1
    listed = "; ".join(f"{why} ({count} cell{'s' * (count != 1)})" for why, count in counts.items())
    return f"--resume measures {len(changes)} cell{'s' * (len(changes) != 1)} again: {listed}"


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
