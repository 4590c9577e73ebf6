"""The records of a load run: a repeat's numbers from Locust's result and the samples, and the
summary over a cell's repeats.
"""

from __future__ import annotations

import pytest

from bench.measure import (
    latency,
    records,
)
from bench.measure.cgroups import CgroupReading

SUMMARY_KEYS = {
    "rps", "rps_min", "rps_max", "p50_ms", "p90_ms", "p99_ms", "max_ms", "fail_ratio",
    "server_cpu_pct", "server_rss_mb", "server_procs", "server_threads", "generator_cpu_pct",
    "cpu_s_per_1k", "budget_cpus", "rps_per_cpu", "throttled_s", "throttled_share", "requests",
    "seconds", "workers_cpu_pct",
}  # fmt: skip


def repeat(rps: float, requests: int, failures: int = 0, cpu_s: float = 1.0, **extra) -> dict:
    base = {
        "rps": rps, "requests": requests, "failures": failures, "p50_ms": 1, "p90_ms": 2,
        "p99_ms": 3, "max_ms": 4.0, "server_cpu_pct": 50.0, "server_cpu_s": cpu_s,
        "server_rss_mb": 30.0, "server_procs": 1, "server_threads": 2, "generator_cpu_pct": 40.0,
    }  # fmt: skip
    return {**base, **extra}


def test_summary_is_the_median_with_min_max_and_totals():
    repeats = [
        repeat(100.0, 1000, failures=10, cpu_s=1.0, max_ms=9.0),
        repeat(300.0, 3000, cpu_s=2.0, server_rss_mb=80.0),
        repeat(200.0, 2000, cpu_s=3.0, server_procs=5),
    ]
    result = records.summarise(repeats)
    assert set(result) == SUMMARY_KEYS
    assert (result["rps"], result["rps_min"], result["rps_max"]) == (200.0, 100.0, 300.0)
    assert result["fail_ratio"] == pytest.approx(10 / 6000)
    assert result["cpu_s_per_1k"] == pytest.approx(6.0 / 6000 * 1000)
    assert (result["server_rss_mb"], result["server_procs"], result["max_ms"]) == (80.0, 5, 9.0)
    assert (result["requests"], result["seconds"], result["workers_cpu_pct"]) == (6000, 0, None)


def test_summary_counts_seconds_and_the_workers_cpu_over_repeats():
    repeats = [
        repeat(100.0, 300, rps_series=[99.0, 101.0, 100.0], workers_cpu_pct=[80.0, 90.0]),
        repeat(90.0, 270, rps_series=[90.0, 90.0, 90.0], workers_cpu_pct=[70.0, 70.0]),
    ]
    result = records.summarise(repeats)
    assert (result["requests"], result["seconds"]) == (570, 6)
    assert result["workers_cpu_pct"] == pytest.approx((85.0 + 70.0) / 2)


def test_summary_under_a_budget_gives_requests_per_cpu():
    repeats = [repeat(300.0, 900, throttled_share=0.9), repeat(330.0, 990, throttled_share=1.0)]
    result = records.summarise(repeats, budget_cpus=0.3)
    assert result["budget_cpus"] == 0.3 and result["rps_per_cpu"] == pytest.approx(315.0 / 0.3)
    assert result["throttled_share"] == pytest.approx(0.95)
    assert records.summarise(repeats)["rps_per_cpu"] is None


def test_cgroup_window_reads_the_counters_inside_the_measured_window():
    def at(t: float, usage_s: float, throttled_s: float, periods: int, throttled: int):
        return t, CgroupReading(usage_s, throttled_s, periods, throttled)

    readings = [at(99.5, 0.0, 0.0, 0, 0), at(100.5, 1.0, 0.1, 50, 10),
                at(101.0, 1.15, 0.2, 100, 40), at(102.5, 1.6, 0.5, 250, 160),
                at(103.5, 9.0, 9.0, 900, 900)]  # fmt: skip
    window = records.cgroup_window(readings, 100.0, 103.0)
    assert window["cgroup_cpu_pct"] == pytest.approx(0.6 / 2.0 * 100)
    assert window["throttled_s"] == pytest.approx(0.4 / 2.0 * 3.0)
    assert window["throttled_share"] == pytest.approx(150 / 200)
    assert records.cgroup_window(readings[:2], 100.0, 103.0) == {}
    # v1 without a cpuacct hierarchy counts throttling but not usage
    no_usage = [(t, CgroupReading(None, r.throttled_s, r.periods, r.throttled_periods))
                for t, r in readings]  # fmt: skip
    assert records.cgroup_window(no_usage, 100.0, 103.0)["cgroup_cpu_pct"] is None


def test_unanswered_requests_fail_but_add_nothing_to_requests_per_second():
    # 90 answered in 3 s, 10 never answered: a server that hangs a tenth of its requests
    result = {"measure_start": 100.0, "measure_stop": 103.0, "requests": 90, "failures": 10,
              "unanswered": 10, "p50_ms": 1, "p90_ms": 2, "p99_ms": 3, "max_ms": 4.0}  # fmt: skip
    record = records.repeat_record(result, [])
    assert record["rps"] == 30.0 and record["fail_ratio"] == pytest.approx(0.1)
    summary = records.summarise([repeat(30.0, 90, failures=10, unanswered=10), repeat(30.0, 90)])
    assert summary["fail_ratio"] == pytest.approx(10 / 190)
    # a cell that answered nothing still has a failure ratio, so it is flagged for its errors
    assert records.summarise([repeat(0.0, 0, failures=4, unanswered=4)])["fail_ratio"] == 1.0


def test_repeat_cpu_comes_from_the_cgroup_when_there_is_one():
    result = {"measure_start": 100.0, "measure_stop": 103.0, "requests": 300, "failures": 0,
              "p50_ms": 1, "p90_ms": 2, "p99_ms": 3, "max_ms": 4.0}  # fmt: skip
    samples = [{"t": 101.0, "server_cpu_pct": 10.0}, {"t": 102.0, "server_cpu_pct": 12.0}]
    sampled = records.repeat_record(result, samples)
    assert sampled["server_cpu_source"] == "psutil" and sampled["server_cpu_pct"] == 11.0
    readings = [(100.5, CgroupReading(0.0, 0.0, 0, 0)), (102.5, CgroupReading(0.5, 0.0, 10, 0))]
    counted = records.repeat_record(result, samples, readings)
    assert counted["server_cpu_source"] == "cgroup" and counted["server_cpu_pct"] == 25.0
    assert counted["server_cpu_s"] == pytest.approx(0.75) and counted["throttled_share"] == 0.0


def encoded(*values_us: int) -> str:
    histogram = latency.new_histogram()
    for value in values_us:
        latency.record(histogram, value)
    return latency.encode(histogram)


def test_summary_latencies_are_of_every_request_of_the_cell():
    repeats = [
        repeat(100.0, 3, latency_histogram=encoded(100, 200, 300), scheduled=3, late=0),
        repeat(100.0, 2, latency_histogram=encoded(50_000, 60_000), scheduled=2, late=1),
    ]
    result = records.summarise(repeats)
    assert result["max_us"] == pytest.approx(60_000, rel=1e-3)
    assert result["p50_us"] == pytest.approx(300, rel=1e-3)  # the 3rd of 5, across both repeats
    assert result["p99_ms"] == result["p99_us"] / 1000  # one truth: the histogram
    assert result["late_ratio"] == pytest.approx(1 / 5)
    assert latency.decode(result["latency_histogram"]).get_total_count() == 5


def test_a_repeat_takes_its_percentiles_from_the_histogram_when_there_is_one():
    result = {"p50_us": 870, "p90_us": 1200, "p99_us": 4100, "p999_us": 9000, "max_us": 20_000,
              "latency_histogram": encoded(870), "scheduled": 200, "late": 3}  # fmt: skip
    fields = records.histogram_latencies(result)
    assert (fields["p50_ms"], fields["max_ms"]) == (0.87, 20.0)
    assert fields["late_ratio"] == pytest.approx(0.015)
    assert records.histogram_latencies({"p50_ms": 1}) == {}  # a result from before histograms


def test_summary_of_no_repeats_is_all_none():
    assert set(records.summarise([]).values()) == {None}


def test_rps_series_per_second_of_the_window():
    counts = [(101.0, 500), (102.0, 1100), (103.0, 1500)]
    assert records.rps_series(counts, 100.0, 103.02, 1510) == [500.0, 600.0, 400.0]
    # a count from outside the window is ignored; a longer last interval is per second too
    assert records.rps_series([(99.0, 5), (101.0, 100)], 100.0, 103.0, 400) == [100.0, 150.0]


def test_p99_series_follows_the_seconds_of_the_window():
    result = {"measure_start": 100.0, "measure_stop": 103.02,
              "counts": [(101.0, 500), (102.0, 1100), (103.0, 1500)],
              "p99_ms_series": [(101.0, 4.0), (102.0, None), (103.0, 9.0)]}  # fmt: skip
    assert records.p99_series(result, 1510) == [4.0, None, 9.0]
    assert records.p99_series({**result, "p99_ms_series": []}, 1510) == [None] * 3


def test_window_samples_keep_the_measured_ones_relative_to_start():
    samples = [{"t": t} for t in (99.5, 100.5, 101.0, 103.0, 103.5)]
    kept = records.window_samples(samples, 100.0, 103.0)
    assert [s["t"] for s in kept] == [0.5, 1.0, 3.0]


def looked_cell(*rates: float) -> dict:
    """A finished closed-loop cell of one repeat per rate, under no budget."""
    repeats = [repeat(rate, int(rate) * 5, rps_series=[rate] * 5) for rate in rates]
    cell = {"mode": "closed", "status": "ok", "budget": None, "repeats": repeats}
    return records.finish(cell, generator_cores=1)


def test_a_second_look_adds_its_repeat_marked_and_the_summary_covers_both():
    first, again = looked_cell(1000), looked_cell(700)
    both = records.add_look(first, again, 2, generator_cores=1)
    assert [r.get("look", 1) for r in both["repeats"]] == [1, 2]
    assert both["summary"]["rps"] == 850 and both["summary"]["requests"] == 8500
    assert both["summary"]["seconds"] == 10
    # the two looks differ by 35% of their median: the cell is flagged noisy, as repeats would be
    assert "noisy" in both["flags"] and "noisy" not in first["flags"]
    assert records.first_look(both["repeats"]) == first["repeats"]


def test_a_failed_second_look_keeps_the_numbers_and_says_why():
    first = looked_cell(1000)
    failed = {**looked_cell(), "status": "failed", "error": "server died"}
    kept = records.add_look(first, failed, 2, generator_cores=1)
    assert kept["repeats"] == first["repeats"] and kept["summary"] == first["summary"]
    assert kept["looks_failed"] == [{"look": 2, "error": "server died"}]
