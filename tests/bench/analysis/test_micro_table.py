"""The micro ratio table: median, IQR and each case's ratio to its references, by group."""

from __future__ import annotations

from bench.analysis.micro_table import ratio_table
from bench.microcases import load_micro


def test_ratio_table_shows_median_iqr_and_each_ratio(fixture_json):
    table = ratio_table(load_micro(fixture_json)).splitlines()
    framework_row = next(line for line in table if "full_cycle_plaintext · framework" in line)
    assert "19 µs" in framework_row and "1.9 µs" in framework_row
    assert framework_row.endswith("1.90× werkzeug, 0.45× flask")
    assert next(line for line in table if "plaintext · werkzeug" in line).endswith("reference")
    stack_row = next(line for line in table if "push_top_pop · framework" in line)
    assert "150 ns" in stack_row and stack_row.endswith("0.33× werkzeug")
    groups = [line.split()[0] for line in table[1:]]
    assert groups == ["stack", "stack", "full-cycle", "full-cycle", "full-cycle"]
