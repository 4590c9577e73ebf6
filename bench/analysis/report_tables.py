"""The report's tables: every cell's numbers as text, the pairs and the microbenchmark ratios, and
the run's metadata a reader weighs them by (all of it is in meta.json)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import flags
from bench.analysis import latency_plot
from bench.analysis.micro_table import ratio_table
from bench.rundir import UnusableInput, read_run_micro


def format_value(key: str, value) -> str:
    """How a record's value reads in a table."""
    if value is None:
        return "–"
    if key == "flags":
        return flags.shown(value)
    if isinstance(value, (bool, list, tuple, dict)):
        return plain(value)
    if key in ("fail_ratio", "throttled_share"):
        return f"{value:.1%}"
    if key.endswith("_us"):
        return latency_plot.format_cell(key, value)
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


TABLE_COLUMNS = (
    ("server", "server"), ("app", "app"), ("scenario", "scenario"), ("users", "users"),
    ("mode", "mode"), ("flags", "flags"), ("rps", "req/s"), ("rps_min", "min"),
    ("rps_max", "max"), ("p50_us", "p50"),
    ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max"),
    ("fail_ratio", "failed"),
    ("rps_per_cpu", "req/s per CPU"), ("throttled_share", "throttled"),
    ("server_cpu_pct", "server CPU %"), ("cpu_s_per_1k", "CPU s/1k"),
    ("server_rss_mb", "RSS MB"), ("server_procs", "procs"), ("server_threads", "threads"),
    ("generator_cpu_pct", "Locust CPU %"), ("repeats", "repeats"),
)  # fmt: skip
#: where the flags column is: early, so it shows without scrolling
FLAGS_COLUMN = [key for key, _ in TABLE_COLUMNS].index("flags")


#: the columns of a server's own process tree: a --target without --target-pid has none of them
SERVER_COLUMNS = {"server_cpu_pct", "cpu_s_per_1k", "server_rss_mb", "server_procs",
                  "server_threads"}  # fmt: skip


def table_rows(records: list[dict]) -> list[list[str]]:
    return [[table_text(r, key) for key, _ in TABLE_COLUMNS] for r in records]


def table_text(record: dict, key: str) -> str:
    if key in SERVER_COLUMNS and record.get("server_measured") is False:
        return "not measured"
    return format_value(key, record.get(key))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def pair_table(pairs: list[dict]) -> tuple[list[str], list[list[str]]]:
    if not pairs:
        return [], []
    keys = [key for key in pairs[0] if key not in ("ours_flags", "peer_flags")]
    rows = [[format_value(key, row.get(key)) for key in keys] for row in pairs]
    return [key.replace("_", " ") for key in keys], rows


def micro_table(run_dir: Path) -> str:
    """The micro benchmarks' ratio table, when this run has them."""
    try:
        cases = read_run_micro(run_dir)
    except UnusableInput as error:  # unfinished or damaged: the rest still counts
        print(f"{error}; the report leaves the micro table out", file=sys.stderr)
        return ""
    return ratio_table(cases) if cases is not None else ""


def plain(value) -> str:
    """A setting's value as prose, not as a Python or JSON literal: yes/no, lists joined."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(plain, value)) or "none"
    if isinstance(value, dict):
        return settings_text(value)
    return str(value)


def settings_text(settings: dict | None) -> str:
    """A server's settings as ``name: value; …``."""
    return "; ".join(f"{name}: {plain(value)}" for name, value in sorted((settings or {}).items()))


def meta_rows(meta: dict) -> list[tuple[str, str]]:
    """The metadata a reader weighs a number by, one line each (all of it is in meta.json)."""
    packages = meta.get("packages") or {}
    pinning = meta.get("pinning")
    rows = {
        "commit": meta.get("commit"),
        "date": meta.get("date"),
        "python": f"{meta.get('implementation', '')} {meta.get('python', '')}".strip(),
        "os": meta.get("os"),
        "machine": meta.get("machine"),
        "cpu": f"{meta.get('cpu_model')} × {meta.get('cpu_count')}",
        "pinning": (f"server CPUs {plain(pinning['server_cpus'])}, Locust CPUs "
                    f"{plain(pinning['generator_cpus'])}" if pinning else "none"),
        "profile": meta.get("profile"),
        "per cell": f"{meta.get('warmup_s')} s warm-up, {meta.get('duration_s')} s measured, "
                    f"{meta.get('repeats')} repeat(s), {meta.get('locust_workers') or 0} Locust "
                    "workers",
        "cells": f"{meta.get('cells_finished')} finished of {len(meta.get('cells_planned') or [])}"
                 f" planned ({meta.get('status')})",
        "packages": ", ".join(f"{name} {version}" for name, version in packages.items()),
        "CPU budget": budget_sentence(meta.get("budget")),
        "skipped": "; ".join(f"{name}: {why}" for name, why in (meta.get("skipped") or {}).items()),
        **workload_rows(meta),
    }  # fmt: skip
    return [(label, str(value)) for label, value in rows.items() if value not in (None, "")]


def workload_rows(meta: dict) -> dict:
    """What was served, by which locustfile, from where the load came and what was measured."""
    rows = {"app": meta.get("app")}
    if meta.get("scenario_file_sha256"):
        rows["scenario file"] = f"{meta['scenario_file']} (sha256 {meta['scenario_file_sha256']})"
    if meta.get("server_host") not in (None, "127.0.0.1"):
        rows["servers bound to"] = meta["server_host"]
    if meta.get("locust_master_bind"):
        rows["generator"] = (f"Locust master on {meta['locust_master_bind']} with "
                             f"{meta.get('expect_workers')} workers on other hosts, each of which "
                             "reports its own CPU share of every window")  # fmt: skip
    target = meta.get("target")
    if target:
        rows["app"] = None  # the user started the server: what it serves is theirs to say
        measured = (
            f"pid {target['pid']} sampled" if target.get("pid") else "CPU, memory not measured"
        )
        rows["target"] = f"{target['url']}, a server started by the user; {measured}"
    return rows


def generator_cpu(calibration: dict) -> str:
    """Locust's CPU in a calibration recorded before meta.json said whose CPU it scaled by."""
    return f"{calibration.get('generator_cpu_pct') or 0:.0f}% CPU"


def budget_sentence(budget: dict | None) -> str:
    """How the run's servers were held to a CPU budget, or why they were not."""
    if not budget:
        return ""
    if budget.get("cpus") is None:
        why = budget.get("reason") or budget.get("source")
        return (f"No CPU budget ({why}): servers ran unlimited, so requests/s may be Locust's "
                "ceiling; the verdict ranks by CPU per request.")  # fmt: skip
    sentence = (f"Every server tree ran in its own cgroup with a CPU budget of {budget['cpus']:g} "
                f"CPU ({budget['period_us'] / 1000:g} ms period, {budget.get('cgroup')}, "
                f"{budget.get('source')}).")  # fmt: skip
    calibration = budget.get("calibration")
    if calibration:
        sentence += (
            f" Calibrated: against the unlimited null server at {calibration['users']} users "
            f"Locust sent {calibration['generator_rps']:,.0f} req/s at "
            f"{calibration.get('scaled_by') or generator_cpu(calibration)}"
            ", so generator_capacity = "
            f"{calibration.get('generator_capacity') or calibration['generator_rps']:,.0f} req/s "
            f"with its cores busy; the fastest server of the run ({calibration['fastest']}) "
            "serves up to "
            f"{calibration['fastest_rps_per_cpu']:,} req/s per CPU = fastest_rps_per_cpu; "
            f"{calibration['rule']}."
        )
    return sentence
