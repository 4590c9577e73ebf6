"""bench.analysis.stats against values computed by hand: Mann-Whitney U, the bootstrap CI, Welch's
t-test and batch means of autocorrelated series."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.analysis.stats import (
    MAX_AUTOCORRELATION,
    batch_length,
    batch_means,
    batch_test,
    bootstrap_ratio_ci,
    exact_p,
    exact_u_counts,
    lag1_autocorrelation,
    mann_whitney_u,
    midranks,
    student_t_upper,
    u_statistic,
    welch,
)


def brute_force_counts(n: int, m: int) -> list[int]:
    """U of every way to interleave n x's among m y's, counted one by one."""
    counts = [0] * (n * m + 1)
    for x_positions in itertools.combinations(range(n + m), n):
        y_positions = set(range(n + m)) - set(x_positions)
        counts[sum(1 for x in x_positions for y in y_positions if x > y)] += 1
    return counts


def test_midranks_share_the_mean_rank_of_a_tie():
    assert midranks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4]
    assert midranks([3, 1, 3, 3]) == [3, 1, 3, 3]


def test_u_counts_the_pairs_where_x_wins_and_ties_as_half():
    assert u_statistic([1, 3], [2, 4]) == 1  # only 3 > 2
    assert u_statistic([2, 5], [2, 4]) == 2.5  # 5 > 2, 5 > 4, and 2 = 2 counts one half
    assert u_statistic([1, 3], [2, 4]) + u_statistic([2, 4], [1, 3]) == 2 * 2


def test_exact_counts_of_two_against_two():
    # orderings xxyy yxxy... : U = 0, 1, 2, 2, 3, 4
    assert exact_u_counts(2, 2) == [1, 1, 2, 1, 1]


@pytest.mark.parametrize(("n", "m"), [(1, 1), (1, 4), (3, 3), (3, 5), (5, 3), (4, 6)])
def test_exact_counts_match_brute_force(n, m):
    assert exact_u_counts(n, m) == brute_force_counts(n, m)


@given(st.integers(1, 12), st.integers(1, 12))
def test_exact_counts_cover_every_ordering_symmetrically(n, m):
    counts = exact_u_counts(n, m)
    assert sum(counts) == math.comb(n + m, n)
    assert counts == counts[::-1]


@pytest.mark.parametrize(
    ("x", "y", "alternative", "expected"),
    [
        ([4, 5, 6], [1, 2, 3], "greater", 1 / 20),  # the one ordering of C(6, 3) = 20 with U = 9
        ([4, 5, 6], [1, 2, 3], "two-sided", 2 / 20),
        ([4, 5, 6], [1, 2, 3], "less", 1.0),
        ([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], "greater", 1 / 252),  # C(10, 5) = 252
        ([1, 3], [2, 4], "less", 2 / 6),  # U = 1: P(U <= 1) = (1 + 1) / 6
        ([1, 2, 4], [3, 5, 6], "less", 2 / 20),  # U = 1 with n = m = 3: (1 + 1) / 20
    ],
)
def test_exact_p_values_computed_by_hand(x, y, alternative, expected):
    result = mann_whitney_u(x, y, alternative)
    assert result.method == "exact"
    assert result.p == pytest.approx(expected)


def test_normal_approximation_with_ties_matches_the_formula():
    x, y = [1, 2, 2, 3, 3, 3, 4], [3, 4, 4, 5, 5, 6]
    result = mann_whitney_u(x, y, "less")
    assert result.method == "normal"
    u = sum((a > b) + 0.5 * (a == b) for a in x for b in y)  # by pair counting, not ranks
    assert result.u == u == 3.5  # 4 beats a 3, ties two 4s; three 3s tie one 3
    # ties in the pooled sample: 2 (x2), 3 (x4), 4 (x3), 5 (x2)
    tie_term = (6 + 60 + 24 + 6) / (13 * 12)
    sigma = math.sqrt(7 * 6 / 12 * (14 - tie_term))
    expected = 0.5 * math.erfc((7 * 6 / 2 - u - 0.5) / sigma / math.sqrt(2))
    assert result.p == pytest.approx(expected)
    assert 0.001 < result.p < 0.01


def test_normal_approximation_agrees_with_the_exact_distribution():
    rng = random.Random(7)
    x = [rng.gauss(0, 1) for _ in range(60)]
    y = [rng.gauss(0.5, 1) for _ in range(60)]
    assert mann_whitney_u(x[:25], y[:25], "less").method == "exact"
    normal_big = mann_whitney_u(x, y, "less")
    assert normal_big.method == "normal"
    assert normal_big.p == pytest.approx(exact_p(normal_big.u, 60, 60, "less"), abs=5e-4)


def test_identical_samples_give_no_evidence():
    assert mann_whitney_u([2.0] * 6, [2.0] * 6, "greater").p == 1.0
    assert mann_whitney_u([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).p == 1.0


def test_one_sided_p_values_mirror_each_other():
    rng = random.Random(3)
    x = [rng.random() for _ in range(8)]
    y = [rng.random() + 0.2 for _ in range(9)]
    assert mann_whitney_u(x, y, "greater").p == pytest.approx(mann_whitney_u(y, x, "less").p)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="alternative"):
        mann_whitney_u([1, 2], [3, 4], "bigger")
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney_u([], [3, 4])
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ratio_ci([1.0], [])


def test_bootstrap_interval_covers_the_true_ratio_and_is_reproducible():
    rng = random.Random(11)
    baseline = [rng.lognormvariate(0, 0.1) for _ in range(200)]
    current = [2 * rng.lognormvariate(0, 0.1) for _ in range(200)]
    low, high = bootstrap_ratio_ci(baseline, current)
    assert 1.9 < low < 2.0 < high < 2.1
    assert bootstrap_ratio_ci(baseline, current) == (low, high)  # seeded


def test_bootstrap_interval_of_unchanged_samples_contains_one():
    rng = random.Random(5)
    samples = [rng.uniform(0.85, 1.15) for _ in range(100)]
    low, high = bootstrap_ratio_ci(samples, [value * 1.0 for value in reversed(samples)])
    assert low < 1 < high
    assert high - low < 0.15


# --- batch means and Welch's t-test -----------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "df", "upper"),
    # from a t table: the 0.05, 0.025 and 0.005 points, and df = 1 (Cauchy: 1/4 above 1)
    [(2.015, 5, 0.05), (2.228, 10, 0.025), (2.845, 20, 0.005), (1.0, 1, 0.25), (0.0, 7, 0.5)],
)
def test_students_t_tail_matches_the_table(t, df, upper):
    assert student_t_upper(t, df) == pytest.approx(upper, abs=2e-4)


def test_welch_by_hand():
    # means 11 and 2, variances 1 and 1: t = 9 / sqrt(2/3), df = (2/3)^2 / (2 * (1/3)^2 / 2) = 4
    result = welch([10, 11, 12], [1, 2, 3])
    assert result.t == pytest.approx(9 / math.sqrt(2 / 3)) and result.df == pytest.approx(4)
    assert result.p == pytest.approx(2 * student_t_upper(result.t, 4))
    assert welch([1, 2, 3], [10, 11, 12]).t == pytest.approx(-result.t)


def test_welch_without_spread_and_with_too_few_values():
    assert welch([5, 5], [5, 5]).p == 1.0
    assert welch([6, 6], [5, 5]).p == 0.0 and welch([6, 6], [5, 5]).t > 0
    with pytest.raises(ValueError, match="two values"):
        welch([1], [1, 2])


def test_batch_means_drop_the_first_values_that_fill_no_batch():
    assert batch_means([1, 2, 3, 4, 5, 6, 7], 3) == [2.5, 4.5, 6.5]
    assert batch_means([1.0, 3.0], 5) == [1.0, 3.0]
    assert batch_means(list(range(10)), 1) == [4.5]
    with pytest.raises(ValueError):
        batch_means([1.0], 0)


def test_lag1_autocorrelation_of_alternating_steady_and_drifting_series():
    assert lag1_autocorrelation([1, -1] * 10) == pytest.approx(-0.95)
    assert lag1_autocorrelation([5.0] * 10) == 0.0
    assert lag1_autocorrelation(list(range(20))) > 0.8


def test_batch_length_grows_with_the_spells_and_is_capped():
    assert batch_length([1, 2] * 10) == 1
    assert batch_length([0.0] * 10 + [1.0] * 10) > 5
    # a straight line has r near 1: capped at MAX_AUTOCORRELATION
    cap = math.ceil((1 + MAX_AUTOCORRELATION) / (1 - MAX_AUTOCORRELATION))
    assert batch_length([float(i) for i in range(100)]) == cap


def ar1(rng: random.Random, seconds: int, phi: float, mean: float = 100.0) -> list[float]:
    """Per-second rates that drift in spells: each second keeps ``phi`` of the last one's offset."""
    offset, rates = 0.0, []
    for _ in range(seconds):
        offset = phi * offset + rng.gauss(0, 5)
        rates.append(mean + offset)
    return rates


def batched_p(x: list[float], y: list[float]) -> float:
    """The batch-means test's p; 1 where the series are too short for two batches a side."""
    test = batch_test(x, y).welch
    return test.p if test else 1.0


def test_autocorrelated_seconds_fool_the_naive_test_but_not_batch_means():
    # two windows of one server, same mean: every "significant" gap is a false alarm
    rng = random.Random(7)
    pairs = [(ar1(rng, 30, 0.8), ar1(rng, 30, 0.8)) for _ in range(200)]
    naive = sum(mann_whitney_u(x, y).p < 0.05 for x, y in pairs) / len(pairs)
    batched = sum(batched_p(x, y) < 0.05 for x, y in pairs) / len(pairs)
    assert naive > 0.4  # the per-second test, as if each second were independent
    assert batched < 0.12
    # and one such pair, named: the naive test calls it, batch means do not
    x, y = next((x, y) for x, y in pairs if mann_whitney_u(x, y).p < 0.01)
    assert batched_p(x, y) > 0.05


def test_a_batch_test_keeps_two_batches_a_side_however_long_the_spells():
    spells = [0.0] * 10 + [1.0] * 10
    test = batch_test(spells, [s + 5 for s in spells])
    assert batch_length(spells) > 10 and test.length == 10 and test.batches == (2, 2)
    assert test.welch.p < 0.05  # 5 apart, each side 0 and 1: a gap even two batches show
    assert batch_test([1.0], [2.0, 3.0]).welch is None
    steady = batch_test([1.0, 2.0] * 5, [3.0, 4.0] * 5)
    assert steady.length == 1 and steady.batches == (10, 10) and steady.welch.p < 0.001


def test_batch_means_still_see_a_real_gap():
    rng = random.Random(3)
    pairs = [(ar1(rng, 30, 0.5, mean=110), ar1(rng, 30, 0.5)) for _ in range(100)]
    assert sum(batched_p(x, y) < 0.05 for x, y in pairs) / len(pairs) > 0.8
