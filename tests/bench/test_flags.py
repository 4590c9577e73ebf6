"""The honesty flags: each threshold at its edge, from a cell's summary alone."""

from __future__ import annotations

import pytest

from bench.flags import MEANINGS, flags_for

# --- flags ------------------------------------------------------------------------------------


def summary(**values) -> dict:
    base = {"rps": 1000.0, "rps_min": 1000.0, "rps_max": 1000.0, "fail_ratio": 0.0,
            "generator_cpu_pct": 10.0}  # fmt: skip
    return {**base, **values}


def test_a_clean_cell_has_no_flags():
    assert flags_for(summary(), "ok", generator_cores=1, repeat_count=3) == []


@pytest.mark.parametrize(
    ("generator_cpu_pct", "cores", "bound"),
    [(90.0, 1, True), (85.0, 1, True), (84.9, 1, False), (160.0, 2, False), (175.0, 2, True)],
)
def test_generator_bound_from_the_generators_cpu_share(generator_cpu_pct, cores, bound):
    flags = flags_for(summary(generator_cpu_pct=generator_cpu_pct), "ok", cores, 1)
    assert ("generator-bound" in flags) is bound


def test_no_generator_reading_is_not_a_flag():
    assert flags_for(summary(generator_cpu_pct=None), "ok", 1, 1) == []


@pytest.mark.parametrize(("fail_ratio", "flagged"), [(0.0, False), (0.01, False), (0.011, True)])
def test_errors_above_one_percent(fail_ratio, flagged):
    flags = flags_for(summary(fail_ratio=fail_ratio), "ok", 1, 1)
    assert ("errors" in flags) is flagged


def test_failed_status_is_flagged_even_without_numbers():
    empty = {}
    assert flags_for(empty, "failed", 1, 0) == ["failed"]


@pytest.mark.parametrize(
    ("low", "high", "repeats", "noisy"),
    [(900, 1100, 3, False), (850, 1100, 3, True), (500, 1500, 1, False), (800, 1000.5, 2, True)],
)
def test_noisy_when_repeats_spread_more_than_a_fifth(low, high, repeats, noisy):
    flags = flags_for(summary(rps_min=low, rps_max=high), "ok", 1, repeats)
    assert ("noisy" in flags) is noisy


def test_every_flag_has_a_letter_and_a_meaning_that_quotes_its_threshold():
    from bench import flags

    assert set(flags.LETTERS) == set(MEANINGS)
    assert "85%" in MEANINGS[flags.GENERATOR_BOUND] and "10%" in MEANINGS[flags.GENERATOR_BOUND]
    assert "1%" in MEANINGS[flags.ERRORS] and "20%" in MEANINGS[flags.NOISY]
    assert "1%" in MEANINGS[flags.LATE] and "5 ms" in MEANINGS[flags.LATE]


@pytest.mark.parametrize(("late_ratio", "late"), [(None, False), (0.01, False), (0.0101, True)])
def test_late_when_over_one_percent_of_open_loop_requests_left_late(late_ratio, late):
    flags = flags_for(summary(late_ratio=late_ratio), "ok", 1, 1)
    assert ("late" in flags) is late
