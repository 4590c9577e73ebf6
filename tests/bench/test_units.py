"""How a latency reads: microseconds below a millisecond, milliseconds above, three digits."""

from __future__ import annotations

import pytest

from bench import units


@pytest.mark.parametrize(
    ("value_us", "text"),
    [
        (None, "–"), (0, "0 µs"), (7, "7 µs"), (87.4, "87.4 µs"), (999, "999 µs"),
        (999.6, "1.00 ms"), (7_800, "7.80 ms"), (1234, "1.23 ms"), (56_789, "56.8 ms"),
        (200_191, "200 ms"), (1_234_567, "1,230 ms"),
    ],
)  # fmt: skip
def test_a_latency_reads_in_microseconds_or_milliseconds_to_three_digits(value_us, text):
    assert units.format_us(value_us) == text
