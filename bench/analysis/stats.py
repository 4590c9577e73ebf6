"""The significance tests behind `bench compare`, in the standard library only (scipy is not a
dependency of this suite).

Two tools, both distribution-free because benchmark timings are skewed and heavy-tailed:

- ``mann_whitney_u``: is one sample stochastically larger than the other? Exact null distribution
  for small samples without ties, normal approximation with tie and continuity correction otherwise.
- ``bootstrap_ratio_ci``: a percentile bootstrap confidence interval of
  ``median(current) / median(baseline)``, seeded so the same inputs always give the same interval.
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
