"""The comparison as a terminal shows it: a line per row, then what was judged, with instruction
counts tallied apart from the timed rows by their kind, not by their name."""

from __future__ import annotations

from bench.analysis.compare import NOT_COMPARABLE, NOT_JUDGED, OK, REGRESSED, Row
from bench.analysis.compare_table import format_table, tally
from bench.analysis.ratios import RowKind


def test_instruction_rows_are_tallied_apart_from_the_timed_ones():
    rows = [
        Row("micro a / werkzeug", 1.0, 1.3, REGRESSED, change=0.3, kind=RowKind.MICRO),
        Row("load x rps", 2.0, 2.0, OK, change=0.0),
        Row("instructions a / request", 100.0, 100.5, OK, change=0.005,
            kind=RowKind.INSTRUCTIONS),
    ]  # fmt: skip
    lines = format_table(rows, threshold=0.1, alpha=0.01).splitlines()
    assert lines[1].startswith("micro a / werkzeug") and lines[1].endswith(REGRESSED)
    assert lines[-2].endswith("1 regressed of 2 judged rows, 0 not judged: not enough data")
    assert lines[-1].startswith("instructions per request: threshold 2%")
    assert lines[-1].endswith("0 regressed of 1 judged rows, 0 not judged: not enough data")


def test_rows_that_are_not_comparable_are_counted_as_such():
    rows = [Row("load x rps", None, None, NOT_COMPARABLE), Row("load y", None, None, NOT_JUDGED)]
    assert tally(rows) == (
        "0 regressed of 0 judged rows, 1 not judged: not enough data, 1 not comparable"
    )
