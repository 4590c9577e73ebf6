"""Small multiples of requests/s and p99 per second: one panel per cell, errors as panels."""

from __future__ import annotations

import matplotlib.image

from bench.analysis import timeline


def cell(server: str, users: int, rates, p99s, **extra) -> dict:
    repeats = [
        {"rps_series": list(r), "p99_ms_series": list(p)} for r, p in zip(rates, p99s, strict=True)
    ]
    base = {"server": server, "users": users, "scenario": "member", "status": "ok", "flags": [],
            "repeats": repeats, "mode": "closed"}  # fmt: skip
    return {**base, **extra}


def test_seconds_follow_each_other_across_repeats_and_missing_p99_is_none():
    two = cell("epoll", 8, [[10, 11], [12]], [[5.0, 6.0], []])
    assert timeline.seconds_of(two) == [(0, 10, 5.0), (0, 11, 6.0), (1, 12, None)]


def test_one_panel_per_cell_and_an_error_panel_for_a_failed_one(tmp_path):
    cells = [
        cell("epoll", 8, [[100, 120, 110]], [[5.0, 9.0, 7.0]]),
        cell("poll", 8, [[50, 40, 45], [48, 47, 49]], [[20.0, 30.0, 25.0], [22.0, 21.0, 20.0]],
             flags=["too-few"]),
        cell("fork", 8, [], [], status="failed", error="GET / did not answer\nmore"),
        cell("epoll", 8, [[1, 2]], [[1.0, 1.0]], scenario="other"),
    ]  # fmt: skip
    out = timeline.plot_timelines(cells, "member", tmp_path / "timeline-member.png")
    image = matplotlib.image.imread(out)
    # three panels in one row of up to four columns
    assert image.shape[1] > image.shape[0] * 2
    assert timeline.panel_title(cells[1]) == "poll · 8 users [T]"
    assert timeline.plot_timelines(cells, "nothing", tmp_path / "none.png") is None
