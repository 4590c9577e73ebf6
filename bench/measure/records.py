"""The records a load run writes: a repeat's numbers from Locust's result and the samples of
its measured window, a cell's header, and the summary over its repeats.

Only shaping here, no I/O: every function takes what was measured and returns plain dicts, the
keys of ``cells/<cell>.json``.
"""

from __future__ import annotations

import os
import statistics

from bench.flags import flags_for
from bench.measure import latency
from bench.measure.cgroups import CgroupReading
from bench.measure.matrix import Cell
from bench.measure.settings import Settings
from bench.serving import inject


def seconds_of(counts: list[list[float]], start: float, stop: float, total: int) -> list[tuple]:
    """Each second of the measured window as (its end, its requests/s), from Locust's
    once-a-second counts."""
    points = [(start, 0), *((t, n) for t, n in counts if start < t < stop), (stop, total)]
    return [
        (t1, round((n1 - n0) / (t1 - t0), 1))
        for (t0, n0), (t1, n1) in zip(points, points[1:], strict=False)
        if t1 - t0 >= 0.5  # the sliver between the last tick and the stop says nothing per second
    ]


def rps_series(counts: list[list[float]], start: float, stop: float, total: int) -> list[float]:
    """Requests/s of each second of the measured window, from Locust's once-a-second counts."""
    return [rate for _, rate in seconds_of(counts, start, stop, total)]


def p99_series(result: dict, requests: int) -> list[float | None]:
    """The p99 (ms) of each second of ``rps_series``, from the p99 the locustfile recorded at
    each tick; None for a second it recorded none for (no request, or a result without them)."""
    at_tick = dict(map(tuple, result.get("p99_ms_series") or []))
    counts = result.get("counts", [])
    seconds = seconds_of(counts, result["measure_start"], result["measure_stop"], requests)
    return [at_tick.get(end) for end, _ in seconds]


def window_samples(samples: list[dict], start: float, stop: float) -> list[dict]:
    """The samples whose interval falls in the measured window, with ``t`` relative to its start."""
    return [{**s, "t": round(s["t"] - start, 3)} for s in samples if start < s["t"] <= stop + 0.25]


def mean_of(samples: list[dict], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return statistics.fmean(values) if values else None


def max_or_none(values: list) -> float | None:
    values = [value for value in values if value is not None]
    return max(values) if values else None


def mean_or_none(values: list) -> float | None:
    return statistics.fmean(values) if values else None


def median_or_none(values: list) -> float | None:
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def cgroup_window(readings: list[tuple[float, CgroupReading]], start: float, stop: float) -> dict:
    """The server cgroup's CPU use and throttling between its first and last reading inside the
    measured window (readings come with the samples, every half second); {} without two."""
    inside = [(t, reading) for t, reading in readings if start <= t <= stop]
    if len(inside) < 2:
        return {}
    (t0, first), (t1, last) = inside[0], inside[-1]
    periods = last.periods - first.periods
    throttled = last.throttled_periods - first.throttled_periods
    usage = None if first.usage_s is None else (last.usage_s - first.usage_s) / (t1 - t0) * 100
    return {
        "cgroup_cpu_pct": usage,
        # seconds per second of window, so it reads like the window's own throttled time
        "throttled_s": (last.throttled_s - first.throttled_s) / (t1 - t0) * (stop - start),
        "throttled_share": throttled / periods if periods else 0.0,
    }


def repeat_record(
    result: dict, samples: list[dict], cgroup_readings: list[tuple[float, CgroupReading]] = ()
) -> dict:
    start, stop = result["measure_start"], result["measure_stop"]
    window_s = stop - start
    measured = window_samples(samples, start, stop)
    requests, failures = result["requests"], result["failures"]
    # requests never answered are among the failures, not among the requests/s
    unanswered = result.get("unanswered", 0)
    cgroup = cgroup_window(list(cgroup_readings), start, stop)
    # the cgroup's counter misses no process, however short-lived (fork's per-connection
    # children); psutil's sampling is the fallback where there is no cgroup
    cgroup_cpu_pct = cgroup.get("cgroup_cpu_pct")
    sampled_cpu_pct = mean_of(measured, "server_cpu_pct")
    server_cpu_pct = sampled_cpu_pct if cgroup_cpu_pct is None else cgroup_cpu_pct
    return {
        "rps": requests / window_s if window_s > 0 else 0.0,
        "requests": requests,
        "failures": failures,
        "unanswered": unanswered,
        "fail_ratio": fail_ratio([result]) or 0.0,
        "p50_ms": result["p50_ms"],
        "p90_ms": result["p90_ms"],
        "p99_ms": result["p99_ms"],
        "max_ms": result["max_ms"],
        "window_s": window_s,
        "rps_series": rps_series(result.get("counts", []), start, stop, requests),
        "p99_ms_series": p99_series(result, requests),
        "server_cpu_pct": server_cpu_pct,
        "server_cpu_s": server_cpu_pct / 100 * window_s if server_cpu_pct is not None else None,
        "server_rss_mb": max_or_none([s.get("server_rss_mb") for s in measured]),
        "server_procs": max_or_none([s.get("server_procs") for s in measured]),
        "server_threads": max_or_none([s.get("server_threads") for s in measured]),
        "generator_cpu_pct": mean_of(measured, "generator_cpu_pct"),
        "server_cpu_source": "psutil" if cgroup_cpu_pct is None else "cgroup",
        "throttled_s": cgroup.get("throttled_s"),
        "throttled_share": cgroup.get("throttled_share"),
        "errors": result.get("errors", {}),
        "endpoints": result.get("endpoints", []),
        "failure_messages": result.get("failure_messages", []),
        "locust_workers": result.get("workers"),
        # each worker process's share of its one core in the window (workers report their own)
        "workers_cpu_pct": result.get("workers_cpu_pct", []),
        # seconds from the test's start to the window's: warm-up, or every user's on_start
        "setup_s": result.get("setup_s"),
        "samples": measured,
        **histogram_latencies(result),
    }


def histogram_latencies(result: dict) -> dict:
    """The µs percentiles, histogram and schedule counts of a result, and the *_ms keys from the
    histogram (Locust's are whole milliseconds); nothing for a result without a histogram."""
    if "latency_histogram" not in result:
        return {}
    keys = {key: result[key] for key in (*latency.LATENCY_KEYS, "latency_histogram")}
    scheduled, late = result.get("scheduled", 0), result.get("late", 0)
    return {
        **keys,
        **{f"{name}_ms": us_to_ms(result[f"{name}_us"]) for name in ("p50", "p90", "p99", "max")},
        "scheduled": scheduled,
        "late": late,
        "late_ratio": late / scheduled if scheduled else None,
    }


def us_to_ms(value: float | None) -> float | None:
    return None if value is None else value / 1000


def cell_header(cell: Cell, settings: Settings) -> dict:
    return {
        "cell": cell.name,
        "server": cell.server.name,
        "model": cell.server.model,
        "kind": cell.server.kind,
        "app": cell.app,
        "app_target": settings.target.url if settings.target else settings.workload.apps[cell.app],
        "server_measured": settings.target is None or settings.target.pid is not None,
        "scenario": cell.scenario.name,
        "users": cell.users,
        "mode": cell.mode,
        "offered_fraction": cell.offered_fraction,
        "offered_rps": cell.offered_rps,
        "status": "ok",
        "error": None,
        "flags": [],
        "pinning": settings.pinning,
        "warmup_s": settings.warmup_s,
        "duration_s": settings.duration_s,
        "budget": settings.budget.describe() if settings.budget else None,
        "repeats": [],
        **injected(cell),
    }


def injected(cell: Cell) -> dict:
    """The server-side injection this cell ran with, so no reader mistakes it for the product."""
    if cell.server.kind != "ours" or not inject.injecting():
        return {}
    return {"inject_server_delay_us": os.environ[inject.DELAY_ENV]}


def summarise(repeats: list[dict], budget_cpus: float | None = None) -> dict:
    """Median over repeats with min and max of requests/s; peaks are the peak of any repeat.

    Under a budget of ``budget_cpus`` CPUs requests/s is also given per CPU, so runs with
    different budgets compare.
    """

    def column(key: str) -> list:
        return [repeat[key] for repeat in repeats]

    requests = sum(column("requests"))
    cpu_s = [value for value in column("server_cpu_s") if value is not None]
    peaks = {
        key: max_or_none(column(key)) for key in ("server_rss_mb", "server_procs", "server_threads")
    }
    medians = {
        key: median_or_none(column(key))
        for key in ("rps", "p50_ms", "p90_ms", "p99_ms", "server_cpu_pct", "generator_cpu_pct")
    }
    throttled = {key: median_or_none([r.get(key) for r in repeats])
                 for key in ("throttled_s", "throttled_share")}  # fmt: skip
    rps = medians["rps"]
    return {
        **medians,
        **peaks,
        # what too-few counts: requests and per-second rates over every repeat
        "requests": requests if repeats else None,
        "seconds": sum(len(r.get("rps_series") or []) for r in repeats) if repeats else None,
        "workers_cpu_pct": median_or_none(
            [mean_or_none(r.get("workers_cpu_pct") or []) for r in repeats]
        ),  # fmt: skip
        "rps_min": min(column("rps"), default=None),
        "rps_max": max(column("rps"), default=None),
        "max_ms": max_or_none(column("max_ms")),
        "fail_ratio": fail_ratio(repeats),
        "cpu_s_per_1k": sum(cpu_s) / requests * 1000 if requests and cpu_s else None,
        "budget_cpus": budget_cpus,
        "rps_per_cpu": rps / budget_cpus if budget_cpus and rps is not None else None,
        **throttled,
        **summary_latencies(repeats),
    }


def fail_ratio(repeats: list[dict]) -> float | None:
    """Failed requests (unanswered ones included) per request sent, over every repeat."""
    sent = sum(r["requests"] + r.get("unanswered", 0) for r in repeats)
    return sum(r["failures"] for r in repeats) / sent if sent else None


def summary_latencies(repeats: list[dict]) -> dict:
    """Percentiles of every request of the cell (the repeats' histograms merged), the merged
    histogram, and the share of open-loop requests that left late; nothing for old repeats."""
    histograms = [repeat.get("latency_histogram") for repeat in repeats]
    histograms = [histogram for histogram in histograms if histogram]
    if not histograms:
        return {}
    merged = latency.summary_of(histograms)
    scheduled = sum(repeat.get("scheduled", 0) for repeat in repeats)
    return {
        **merged,
        **{f"{name}_ms": us_to_ms(merged[f"{name}_us"]) for name in ("p50", "p90", "p99", "max")},
        "late_ratio": sum(repeat.get("late", 0) for repeat in repeats) / scheduled
        if scheduled else None,
    }  # fmt: skip


def finish(record: dict, generator_cores: int) -> dict:
    """A cell's record completed with its summary (per CPU of its budget, if it ran in one) and
    its flags; every cell, closed loop or a sweep's step, ends here."""
    budget_cpus = (record["budget"] or {}).get("cpus")
    record["summary"] = summarise(record["repeats"], budget_cpus)
    ranked = record["mode"] == "closed"  # an open-loop cell's latency needs no seconds of rates
    record["flags"] = flags_for(
        record["summary"], record["status"], generator_cores, len(record["repeats"]), ranked
    )
    return record


def add_look(record: dict, again: dict, look: int, generator_cores: int) -> dict:
    """``record`` with the repeats of ``again`` (the same cell measured later) marked ``look``,
    its summary and flags taken over both; a look that failed leaves the numbers as they were and
    says why under ``looks_failed``."""
    if again["status"] != "ok":
        failed = {"look": look, "error": again["error"]}
        return {**record, "looks_failed": [*record.get("looks_failed", []), failed]}
    repeats = [*record["repeats"], *({**repeat, "look": look} for repeat in again["repeats"])]
    return finish({**record, "repeats": repeats}, generator_cores)


def first_look(repeats: list[dict]) -> list[dict]:
    """The repeats a cell was measured with in the run's order, without a later look's."""
    return [repeat for repeat in repeats if repeat.get("look", 1) == 1]
