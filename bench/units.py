"""How a measured latency reads, shared by what measures it and what reports it.

Latencies are whole microseconds kept to SIGNIFICANT_DIGITS significant digits (the HdrHistograms
of ``bench.measure.latency``), so they are shown with no more digits than they hold.
"""

from __future__ import annotations

import math

#: significant digits every recorded latency keeps
SIGNIFICANT_DIGITS = 3


def format_us(value_us: float | None) -> str:
    """A latency as people read it: µs below 1 ms, ms above, 3 significant digits.

    >>> format_us(87), format_us(1234), format_us(56_789), format_us(1_234_567)
    ('87 µs', '1.23 ms', '56.8 ms', '1,230 ms')
    >>> format_us(1000), format_us(23_000)
    ('1.00 ms', '23.0 ms')
    """
    if value_us is None:
        return "–"
    rounded = significant(value_us, SIGNIFICANT_DIGITS)
    if rounded < 1000:  # whole microseconds: no trailing zeros to show
        return f"{rounded:.3g} µs"
    value = rounded / 1000
    return f"{value:,.0f} ms" if value >= 1000 else f"{value:#.3g}".rstrip(".") + " ms"


def significant(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits."""
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))
