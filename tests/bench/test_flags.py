"""The honesty flags: each threshold at its edge, from a cell's summary alone."""

from __future__ import annotations

import pytest

from bench.flags import MEANINGS, flags_for, seconds_needed, too_few_remedy

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
    assert (
        "100 requests" in MEANINGS[flags.TOO_FEW] and "3 whole seconds" in MEANINGS[flags.TOO_FEW]
    )


@pytest.mark.parametrize(("late_ratio", "late"), [(None, False), (0.01, False), (0.0101, True)])
def test_late_when_over_one_percent_of_open_loop_requests_left_late(late_ratio, late):
    flags = flags_for(summary(late_ratio=late_ratio), "ok", 1, 1)
    assert ("late" in flags) is late


@pytest.mark.parametrize(
    ("requests", "seconds", "flagged"),
    [(100, 3, False), (99, 10, True), (5000, 2, True), (None, None, False)],
)
def test_too_few_below_the_minimum_requests_or_seconds(requests, seconds, flagged):
    flags = flags_for(summary(requests=requests, seconds=seconds), "ok", 1, 1)
    assert ("too-few" in flags) is flagged


def test_an_open_loop_cell_needs_requests_but_not_seconds():
    short = summary(requests=500, seconds=1)
    assert "too-few" not in flags_for(short, "ok", 1, 1, ranked=False)
    assert "too-few" in flags_for({**short, "requests": 50}, "ok", 1, 1, ranked=False)


def test_a_failed_cell_is_failed_not_too_few():
    assert flags_for(summary(requests=0, seconds=0), "failed", 1, 1) == ["failed"]


def test_too_few_is_left_out_of_every_ranking():
    from bench import flags

    assert flags.TOO_FEW in flags.UNRANKED and flags.LETTERS[flags.TOO_FEW] == "T"


@pytest.mark.parametrize(
    ("rps", "repeats", "needed"),
    # one request in 3 s (an expensive login ate the window): 100 requests need 300 s and more
    [(1 / 3, 1, 300), (0.8, 1, 125), (0.8, 3, 42), (5000.0, 1, 3), (5000.0, 3, 1), (0.0, 1, None)],
)
def test_the_window_that_would_be_enough(rps, repeats, needed):
    assert seconds_needed(rps, repeats) == needed


def test_the_remedy_quotes_the_counts_and_the_duration():
    assert too_few_remedy({"rps": 0.8, "requests": 2, "seconds": 3}) == (
        "2 requests in 3 s: run with --duration 125 or more"
    )
    assert "no request finished" in too_few_remedy({"rps": 0.0, "requests": 0, "seconds": 3})


@pytest.mark.parametrize(("workers", "bound"), [(85.0, True), (84.9, False), (None, False)])
def test_remote_workers_are_bound_by_their_own_cpu(workers, bound):
    # the master's own CPU is idle: it only collects the workers' reports
    flags = flags_for(summary(generator_cpu_pct=0.3, workers_cpu_pct=workers), "ok", 1, 1)
    assert ("generator-bound" in flags) is bound
