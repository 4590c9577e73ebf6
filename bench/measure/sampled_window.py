"""The sampled window of ``--profile-servers``: after a cell's repeats, one more Locust window
against the same server while py-spy samples its stacks (``bench.measure.sampling_profiler``).

The window is not one of the cell's repeats: sampling takes CPU, and the server runs it without
its CPU budget (throttled threads would be counted where they wait), so its numbers stay beside
the profile (``cpu_profile.window``) and out of the cell's summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.measure.locustrun import run_steps
from bench.measure.matrix import Cell, sampled_cells
from bench.measure.processes import ProcessGroup
from bench.measure.sampling_profiler import (
    RATE_HZ,
    Recording,
    WindowRecording,
    find_py_spy,
    sampling_problem,
)
from bench.measure.settings import ServerSampling, Settings


def choose_sampling(
    asked: bool, cells: list[Cell], run_dir: Path
) -> tuple[ServerSampling | None, dict]:
    """Whether this run samples its servers, and what meta.json says about it. Where py-spy is
    missing or may not read a process we start, one line says so and the run goes on without."""
    if not asked:
        return None, {"asked": False}
    py_spy = find_py_spy()
    problem = sampling_problem(py_spy)
    if problem is not None:
        print(f"server CPU profiles: {problem}; the run goes on without them", file=sys.stderr)
        return None, {"asked": True, "problem": problem}
    sampling = ServerSampling(py_spy, sampled_cells(cells), run_dir / "profiles")
    return sampling, {"asked": True, "problem": None, "rate_hz": RATE_HZ,
                      "cells": sorted(sampling.cells)}  # fmt: skip


def profile_stem(cell: Cell) -> str:
    """The files' name: one profile per server, app and scenario."""
    return f"{cell.server.name}--{cell.app}--{cell.scenario.name}"


def sample_window(
    cell: Cell, server: ProcessGroup, port: int, settings: Settings, logs_dir: Path
) -> dict:
    """Run the sampled window; what the cell records as ``cpu_profile``.

    A server that dies in the window fails the cell as in any repeat (``CellFailed``); a profile
    that could not be taken is one line in ``problem`` and the cell keeps its numbers.
    """
    sampling = settings.sampling
    if server.pid is None:  # a server the user started, without --target-pid
        return {"problem": "no process id of the server to sample (give --target-pid)"}
    if server.cgroup is not None:
        # a throttled server's woken threads wait, runnable, in the call that woke them, and
        # py-spy counts them there: the profile is taken without the budget
        server.cgroup.set_quota(None, settings.budget.period_us)
    stem = sampling.directory / profile_stem(cell)
    # the recorders take CPU: beside Locust, not on the server's cores, where the server's
    # woken threads would wait for them and be sampled waiting
    cpus = settings.pinning["generator_cpus"] if settings.pinning else None
    recording = Recording(server.pid, stem, sampling.py_spy, cpus=cpus)
    marks = logs_dir / f"{cell.name}.sampled.marks"
    marks.unlink(missing_ok=True)
    profiler = WindowRecording(recording, marks, settings.duration_s)
    try:
        (window,) = run_steps([cell], server, port, settings, logs_dir / f"{cell.name}.sampled",
                              profiler)  # fmt: skip
    finally:
        recorded = profiler.finish()
    run_dir = sampling.directory.parent
    return {
        "svg": str(recorded.svg.relative_to(run_dir)) if recorded.svg else None,
        "speedscope": str(recorded.speedscope.relative_to(run_dir))
        if recorded.speedscope
        else None,
        "problem": recorded.problem,
        "rate_hz": RATE_HZ,
        "recorder_cpu_pct": recorded.recorder_cpu_pct,
        "budget_lifted": server.cgroup is not None,
        "window": window,
    }
