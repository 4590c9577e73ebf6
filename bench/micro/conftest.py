"""Adds what a reader of micro.json needs beside pytest-benchmark's own machine info."""

from __future__ import annotations

import os

from bench.rundir import git_commit


def pytest_benchmark_update_machine_info(config, machine_info: dict) -> None:
    machine_info["bench"] = {
        "profile": os.environ.get("BENCH_MICRO_PROFILE", "ad hoc"),
        "pinned_core": os.environ.get("BENCH_MICRO_CORE"),
        "cpu_affinity": sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "git_commit": git_commit(),
        "gc_enabled_while_timing": not config.getoption("benchmark_disable_gc"),
    }
