"""Latency in the report: µs keys for old and new runs, the knee, and the offered-load section."""

from __future__ import annotations

from pathlib import Path

from bench.analysis import latency_plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def open_record(server: str, fraction: float, p99_us: float, flags=(), scenario="plaintext"):
    return {
        "server": server, "scenario": scenario, "mode": "open", "users": 32,
        "offered_fraction": fraction, "offered_rps": 1000 * fraction, "rps": 990 * fraction,
        "p50_us": p99_us / 4, "p90_us": p99_us / 2, "p99_us": p99_us, "p999_us": p99_us * 2,
        "max_us": p99_us * 3, "late_ratio": 0.0, "fail_ratio": 0.0, "flags": list(flags),
    }  # fmt: skip


def test_a_run_from_before_the_histograms_gets_microseconds_from_whole_milliseconds():
    old = latency_plot.with_microseconds({"p50_ms": 0, "p90_ms": 2, "p99_ms": 7.5, "max_ms": 40})
    assert old.get("p50_us") is None  # Locust's 0 ms means "under 1 ms", not zero
    assert (old["p90_us"], old["p99_us"], old["max_us"]) == (2000, 7500, 40_000)
    assert old["mode"] == "closed"
    new = latency_plot.with_microseconds({"p50_ms": 0.087, "p50_us": 87, "mode": "open"})
    assert (new["p50_us"], new["mode"]) == (87, "open")


def test_the_knee_is_the_first_load_whose_p99_doubles_the_lightest_ones():
    points = [open_record("epoll", f, p99) for f, p99 in
              ((0.25, 1000), (0.5, 1900), (0.75, 2100), (1.0, 90_000))]  # fmt: skip
    assert latency_plot.knee(points)["offered_fraction"] == 0.75
    assert latency_plot.knee(points[:2]) is None
    assert latency_plot.knee(points[:1]) is None


def test_the_knee_sentence_names_each_server_and_where_its_tail_gave_way():
    records = [open_record("poll", 0.25, 1000), open_record("poll", 0.5, 5000),
               open_record("epoll", 0.25, 800), open_record("epoll", 1.1, 900)]  # fmt: skip
    sentence = latency_plot.knee_sentence(records)
    assert "poll from 50% of its capacity" in sentence and "5.00 ms" in sentence
    # the lightest load's p99 is named: "kept within 2×" of an already slow tail says little
    assert "epoll kept its p99 within 2× of its 25% value (800 µs) up to 110% (900 µs)" in sentence
    assert sentence.index("poll from") < sentence.index("epoll kept")  # model order


def test_a_section_per_scenario_with_its_plot_and_every_cell_in_its_table(tmp_path: Path):
    records = [
        open_record("poll", 0.25, 1000), open_record("poll", 1.1, 80_000, flags=["late"]),
        open_record("threaded", 0.5, 1500), open_record("epoll", 0.5, 900, scenario="io"),
        {**open_record("fork", 0.5, 1), "p99_us": None, "flags": ["failed"]},
    ]  # fmt: skip
    rank = ["plaintext", "io"].index
    sections = latency_plot.latency_sections(tmp_path, records, rank)
    assert [s["name"] for s in sections] == ["plaintext", "io"]
    plaintext = sections[0]
    assert (tmp_path / plaintext["plot"]).read_bytes().startswith(PNG_SIGNATURE)
    assert len(plaintext["rows"]) == 4 and plaintext["row_flags"][-1] == ["failed"]
    assert plaintext["rows"][0][:3] == ["poll", "open", "25%"]
    assert "80.0 ms" in plaintext["rows"][1] and "late" in plaintext["rows"][1]
    assert plaintext["header"][1] == "mode"


def test_a_scenario_whose_every_cell_failed_gets_its_table_and_no_plot(tmp_path: Path):
    """A user's scenario whose closed-loop cells were all untrusted offers no load to anyone:
    its open-loop cells all fail, and the section says why instead of drawing empty log axes."""
    why = "no trusted closed-loop cell of this server and scenario ran before it"
    records = [
        {**open_record(server, fraction, 1), "p99_us": None, "p50_us": None, "p999_us": None,
         "rps": None, "flags": ["failed"], "error": why, "scenario": "visitor"}
        for server in ("poll", "epoll") for fraction in (0.25, 0.5)
    ]  # fmt: skip
    (section,) = latency_plot.latency_sections(tmp_path, records, ["visitor"].index)
    assert section["plot"] is None and not list(tmp_path.glob("*.png"))
    assert len(section["rows"]) == 4 and all(f == ["failed"] for f in section["row_flags"])
    assert section["paragraph"] == f"No open-loop cell of this scenario measured anything: {why}."
