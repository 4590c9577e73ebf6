"""Adds what a reader of micro.json needs beside pytest-benchmark's own machine info."""

from __future__ import annotations

import os

from bench.rundir import git_commit
from bench.serving import inject


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


def pytest_configure(config) -> None:
    # BENCH_INJECT_SERVER_DELAY_US slows the shared HTTP layer wherever it parses a request head:
    # in the servers a load run starts, and here, so the servers group shows it beside h11
    if inject.injecting():
        inject.slow_down_request_heads(inject.delay_us())
