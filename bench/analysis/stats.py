"""The significance tests behind `bench compare` and the report's verdict, in the standard library
only (scipy is not a dependency of this suite).

Two distribution-free tools, because benchmark timings are skewed and heavy-tailed:

- ``mann_whitney_u``: is one sample stochastically larger than the other? Exact null distribution
  for small samples without ties, normal approximation with tie and continuity correction otherwise.
- ``bootstrap_ratio_ci``: a percentile bootstrap confidence interval of
  ``median(current) / median(baseline)``, seeded so the same inputs always give the same interval.

And two for the per-second rates of one window, which are autocorrelated (a slow spell of the
machine lasts several seconds), so that treating them as independent samples overstates how sure
a gap is:

- ``batch_means``: the window cut into a few contiguous batches; their means are close to
  independent once a batch is longer than the spells.
- ``welch``: Welch's t-test of two small samples with unequal variances (the batch means, or the
  repeats' rates), with Student's t distribution from the regularized incomplete beta function.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass

#: above this many pairs (n * m) the normal approximation is used even without ties: it is then
#: accurate to well under 0.001 in p, and the exact table would cost O(min(n, m) * n * m)
EXACT_MAX_PAIRS = 2500

ALTERNATIVES = ("two-sided", "greater", "less")
#: the largest lag-1 autocorrelation batch_length believes: beyond it a batch would have to be
#: longer than any window here, and the test has nothing to work with anyway
MAX_AUTOCORRELATION = 0.95


@dataclass(frozen=True)
class MannWhitney:
    #: U of the first sample: pairs (x, y) with x > y, ties counting one half
    u: float
    #: probability of a U at least this extreme under "both samples come from one distribution"
    p: float
    #: "exact" or "normal"
    method: str


def midranks(values: list[float]) -> list[float]:
    """Ranks 1..N of ``values``; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def u_statistic(x: list[float], y: list[float]) -> float:
    """U of ``x``, from its rank sum in the pooled sample: U = R_x - n(n+1)/2."""
    ranks = midranks(list(x) + list(y))
    n = len(x)
    return sum(ranks[:n]) - n * (n + 1) / 2


def exact_u_counts(n: int, m: int) -> list[int]:
    """How many of the C(n+m, n) orderings give U = 0, 1, ..., n*m.

    These are the coefficients of the Gaussian binomial [n+m choose n]_q, built as the product of
    (1 - q^(m+i)) / (1 - q^i) for i = 1..n; every partial product is itself a polynomial, so the
    divisions are exact integer power-series steps.
    """
    n, m = min(n, m), max(n, m)
    size = n * m + 1
    counts = [1] + [0] * (size - 1)
    for i in range(1, n + 1):
        for degree in range(size - 1, m + i - 1, -1):  # multiply by (1 - q^(m+i))
            counts[degree] -= counts[degree - m - i]
        for degree in range(i, size):  # divide by (1 - q^i)
            counts[degree] += counts[degree - i]
    return counts


def exact_p(u: float, n: int, m: int, alternative: str) -> float:
    counts = exact_u_counts(n, m)
    total = sum(counts)
    at_least = sum(counts[math.ceil(u) :]) / total
    at_most = sum(counts[: math.floor(u) + 1]) / total
    if alternative == "greater":
        return at_least
    if alternative == "less":
        return at_most
    return min(1.0, 2 * min(at_least, at_most))


def normal_p(u: float, n: int, m: int, tie_sizes: list[int], alternative: str) -> float:
    """Normal approximation of U's null distribution, with tie correction of the variance and a
    continuity correction of one half."""
    total = n + m
    tie_term = sum(t**3 - t for t in tie_sizes) / (total * (total - 1))
    variance = n * m / 12 * ((total + 1) - tie_term)
    if variance <= 0:  # every value tied: no evidence either way
        return 1.0
    sigma = math.sqrt(variance)
    mean = n * m / 2

    def upper_tail(z: float) -> float:
        return 0.5 * math.erfc(z / math.sqrt(2))

    greater = upper_tail((u - mean - 0.5) / sigma)
    less = upper_tail((mean - u - 0.5) / sigma)
    if alternative == "greater":
        return min(1.0, greater)
    if alternative == "less":
        return min(1.0, less)
    return min(1.0, 2 * min(greater, less))


def mann_whitney_u(x: list[float], y: list[float], alternative: str = "two-sided") -> MannWhitney:
    """Mann-Whitney U test of ``x`` against ``y``.

    ``alternative="greater"`` asks whether ``x`` tends to be larger than ``y``; "less" the reverse.

    >>> mann_whitney_u([4, 5, 6], [1, 2, 3], "greater").p  # 1 ordering out of C(6, 3) = 20
    0.05
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")
    if not x or not y:
        raise ValueError("both samples need at least one value")
    n, m = len(x), len(y)
    u = u_statistic(x, y)
    tie_sizes = [size for size in Counter(list(x) + list(y)).values() if size > 1]
    if not tie_sizes and n * m <= EXACT_MAX_PAIRS:
        return MannWhitney(u, exact_p(u, n, m, alternative), "exact")
    return MannWhitney(u, normal_p(u, n, m, tie_sizes, alternative), "normal")


def bootstrap_ratio_ci(
    baseline: list[float],
    current: list[float],
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``median(current) / median(baseline)``.

    Each side is resampled with replacement on its own (the samples are not paired).
    """
    if not baseline or not current:
        raise ValueError("both samples need at least one value")
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(current, k=len(current)))
        / statistics.median(rng.choices(baseline, k=len(baseline)))
        for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    low = ratios[int(tail * (resamples - 1))]
    high = ratios[math.ceil((1 - tail) * (resamples - 1))]
    return low, high


# --- small samples of means: batch means and Welch's t-test -----------------------------------


def batch_means(series: list[float], batches: int) -> list[float]:
    """The means of ``batches`` contiguous, equally long batches of ``series``; the few values
    that do not fill a batch are dropped from the start (the window's first seconds are the
    likeliest to carry the warm-up). Fewer values than batches: one batch per value.

    >>> batch_means([1, 2, 3, 4, 5, 6, 7], 3)
    [2.5, 4.5, 6.5]
    """
    if batches < 1:
        raise ValueError("batches must be at least 1")
    size = max(1, len(series) // batches)
    usable = series[len(series) - size * min(batches, len(series)) :]
    return [statistics.fmean(usable[i : i + size]) for i in range(0, len(usable), size)]


def lag1_autocorrelation(series: list[float]) -> float:
    """How much each value resembles the one before it: 0 for independent values, near 1 for a
    series that wanders in long spells."""
    if len(series) < 3:
        return 0.0
    mean = statistics.fmean(series)
    deviations = [value - mean for value in series]
    spread = sum(d * d for d in deviations)
    if spread == 0:
        return 0.0
    return sum(a * b for a, b in zip(deviations, deviations[1:], strict=False)) / spread


def batch_length(*series: list[float]) -> int:
    """Seconds per batch so that batch means of these series are close to independent: the
    series' integrated autocorrelation time (1 + r) / (1 - r) for an AR(1) process, from the
    larger lag-1 autocorrelation r of the series. r is corrected for its bias in short series,
    (1 + 3r) / n (Kendall), which would otherwise make a 10-s window look steadier than it is.

    >>> batch_length([1, 2, 1, 2, 1, 2, 1, 2])  # alternating: no spells, one second a batch
    1
    """
    estimates = [lag1_autocorrelation(s) + (1 + 3 * lag1_autocorrelation(s)) / len(s)
                 for s in series if len(s) >= 3]  # fmt: skip
    r = min(max([0.0, *estimates]), MAX_AUTOCORRELATION)
    return math.ceil((1 + r) / (1 - r) - 1e-9)


@dataclass(frozen=True)
class Welch:
    #: (mean(x) - mean(y)) / its standard error
    t: float
    #: Welch-Satterthwaite degrees of freedom
    df: float
    #: two-sided probability of a |t| at least this large when both means are equal
    p: float


def welch(x: list[float], y: list[float]) -> Welch:
    """Welch's two-sided t-test of ``mean(x) == mean(y)``; each sample needs two values.

    >>> round(welch([10, 11, 12], [1, 2, 3]).p, 5)
    0.00039
    """
    if len(x) < 2 or len(y) < 2:
        raise ValueError("each sample needs at least two values")
    vx, vy = statistics.variance(x) / len(x), statistics.variance(y) / len(y)
    difference = statistics.fmean(x) - statistics.fmean(y)
    if vx + vy == 0:  # no spread at all: any difference is certain, none is no evidence
        if not difference:
            return Welch(0.0, math.inf, 1.0)
        return Welch(math.copysign(math.inf, difference), math.inf, 0.0)
    t = difference / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    return Welch(t, df, min(1.0, 2 * student_t_upper(abs(t), df)))


def student_t_upper(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom and t ≥ 0."""
    return 0.5 * regularized_beta(df / (df + t * t), df / 2, 0.5)


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), by Lentz's continued fraction on whichever side converges fast."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(log_front + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * beta_fraction(x, a, b) / a
    return 1 - front * beta_fraction(1 - x, b, a) / b


def beta_fraction(x: float, a: float, b: float, steps: int = 300, eps: float = 1e-15) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, steps + 1):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < eps:
            break
    return result


@dataclass(frozen=True)
class BatchTest:
    """Welch's test over the batch means of two autocorrelated series."""

    #: seconds (values) per batch, from batch_length
    length: int
    #: batches of each series
    batches: tuple[int, int]
    #: the test, None when a series has fewer than two batches
    welch: Welch | None


def batch_test(x: list[float], y: list[float]) -> BatchTest:
    """Welch's t-test of two per-second series, each cut into batches long enough (batch_length)
    that their means are close to independent, but never fewer than two a side: with spells as
    long as the window, two batch means and Welch's few degrees of freedom still tell a large
    gap from none, and falsely call an equal pair one time in about eleven (AR(1), r = 0.8, ten
    seconds a side) instead of one in two for the per-second test."""
    shortest = min(len(x), len(y))
    length = max(1, min(batch_length(x, y), shortest // 2))
    batches = (len(x) // length, len(y) // length)
    if min(batches) < 2:
        return BatchTest(length, batches, None)
    return BatchTest(length, batches, welch(batch_means(x, batches[0]), batch_means(y, batches[1])))
