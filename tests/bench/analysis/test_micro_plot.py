"""micro.png: one bar per case, drawn to a PNG file."""

from __future__ import annotations

from bench.analysis.micro_plot import draw_micro_chart
from bench.microcases import load_micro

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_chart_is_a_png(fixture_json, tmp_path):
    out = draw_micro_chart(load_micro(fixture_json), tmp_path / "out" / "micro.png")
    assert out == tmp_path / "out" / "micro.png"
    assert out.read_bytes().startswith(PNG_MAGIC)
