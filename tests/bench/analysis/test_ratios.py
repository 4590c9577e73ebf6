"""In-run ratios computed from one run alone: CPU per request paired with its second, and a
zero on either side of a ratio marked not comparable instead of divided by."""

from __future__ import annotations

import pytest

from bench.analysis.ratios import (
    ZERO_RATE,
    cpu_per_request_series,
    geometric_mean,
    micro_ratios,
    ratio,
)
from bench.microcases import MicroCase


def test_cpu_per_request_pairs_each_second_with_the_samples_inside_it():
    cell = {
        "status": "ok",
        "repeats": [
            {
                "rps_series": [1000.0, 500.0, 0.0],
                "samples": [
                    {"t": 0.5, "server_cpu_pct": 40.0},
                    {"t": 1.0, "server_cpu_pct": 60.0},
                    {"t": 1.5, "server_cpu_pct": None},
                    {"t": 2.0, "server_cpu_pct": 25.0},
                    {"t": 2.5, "server_cpu_pct": 10.0},
                ],
            }
        ],
    }
    assert cpu_per_request_series(cell) == pytest.approx([0.5 / 1000, 0.25 / 500])
    assert cpu_per_request_series({**cell, "status": "failed"}) == []


@pytest.mark.parametrize(
    ("case", "reference"), [([0.0, 0.0, 0.0], [5.0, 5.0]), ([5.0, 5.0], [0.0, 0.0, 0.0])]
)
def test_a_zero_on_either_side_is_not_comparable(case, reference):
    zero = ratio("load x", case, reference, higher_is_worse=False)
    assert (zero.value, zero.samples, zero.unusable) == (None, [], ZERO_RATE)


def test_a_geometric_mean_with_a_zero_is_zero_not_a_math_error():
    assert geometric_mean([4.0, 0.0, 9.0]) == 0.0
    assert geometric_mean([4.0, 9.0]) == pytest.approx(6.0)


def test_a_micro_case_against_a_zero_reference_is_not_comparable():
    reference = MicroCase("test_x[werkzeug]", "stack", True, None, 0.0, 0.0, subject="werkzeug")
    ours = MicroCase("test_x[framework]", "stack", False, reference.name, 1e-6, 1e-7,
                     [1e-6] * 5, [reference.name], "framework")  # fmt: skip
    (zero,) = micro_ratios([ours, reference])
    assert zero.value is None and zero.unusable == ZERO_RATE
