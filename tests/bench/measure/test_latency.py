"""Microsecond histograms: what goes in comes out within 3 significant digits, histograms add up,
and a latency reads in µs or ms with 3 significant digits."""

from __future__ import annotations

import random

import pytest

from bench.measure import latency


def exact_percentile(values: list[int], percentile: float) -> int:
    """The value at rank round(percentile % of the count) of the sorted values (at least the
    first): HdrHistogram's definition, so only its bucket precision can tell the two apart."""
    rank = max(1, int(percentile * len(values) / 100 + 0.5))
    return sorted(values)[rank - 1]


def within_precision(measured: int, exact: int) -> bool:
    """3 significant digits: a recorded value stands for a bucket no wider than 1/1024 of it."""
    return abs(measured - exact) <= exact / 1024 + 1


def histogram_of(values: list[float]):
    histogram = latency.new_histogram()
    for value in values:
        latency.record(histogram, value)
    return histogram


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_match_the_exact_ones_within_the_precision(seed):
    rng = random.Random(seed)
    values = [round(rng.lognormvariate(7, 1.5)) + 1 for _ in range(5000)]
    measured = latency.percentiles(histogram_of(values))
    for key, percentile in latency.PERCENTILES.items():
        assert within_precision(measured[key], exact_percentile(values, percentile)), key
    assert within_precision(measured["max_us"], max(values))


def test_an_empty_histogram_has_no_percentiles():
    assert latency.percentiles(latency.new_histogram()) == dict.fromkeys(latency.LATENCY_KEYS)


def test_values_are_whole_microseconds_clamped_to_the_range():
    histogram = latency.new_histogram()
    assert latency.record(histogram, 0.2) == latency.LOWEST_US
    assert latency.record(histogram, 12.6) == 13
    assert latency.record(histogram, 10 * latency.HIGHEST_US) == latency.HIGHEST_US
    assert histogram.get_total_count() == 3


def test_encoded_histograms_round_trip_and_merge_to_the_histogram_of_all_values():
    first, second = [100, 200, 300], [5_000, 70_000]
    encoded = [latency.encode(histogram_of(first)), latency.encode(histogram_of(second))]
    assert all(isinstance(text, str) for text in encoded)
    assert latency.percentiles(latency.decode(encoded[0])) == latency.percentiles(
        histogram_of(first)
    )
    merged = latency.summary_of(encoded)
    together = latency.percentiles(histogram_of(first + second))
    assert {key: merged[key] for key in latency.LATENCY_KEYS} == together
    assert latency.decode(merged["latency_histogram"]).get_total_count() == 5


def test_a_late_request_counts_from_its_intended_send_time():
    assert latency.corrected_us(1.5, start_time=100.2, intended=100.0) == pytest.approx(201_500)
    assert latency.corrected_us(1.5, start_time=100.0, intended=100.2) == 1500  # early: no credit
    assert latency.corrected_us(1.5, start_time=100.0, intended=None) == 1500
