"""bench.analysis.history: one line per run in history.jsonl, and the trend plot of key ratios."""

from __future__ import annotations

import json
import math

from bench.analysis.history import append_run, key_series, plot_trend, read_history
from bench.analysis.ratios import in_run_ratios
from bench.rundir import load_run
from tests.bench.analysis.test_compare import write_cells, write_micro, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_each_run_appends_one_line_beside_the_runs(tmp_path):
    first = write_run(tmp_path / "results" / "20261121-190000-abc", seed=1)
    second = write_run(tmp_path / "results" / "20261121-191000-abc", seed=2)
    entry = append_run(first)
    append_run(second)
    lines = (tmp_path / "results" / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == entry
    assert entry["run"] == "20261121-190000-abc"
    assert (entry["commit"], entry["machine"], entry["profile"]) == ("c0ffee1", "ci", "smoke")


def test_the_line_holds_the_ratios_compare_judges(tmp_path):
    run_dir = write_run(tmp_path / "run", seed=1)
    entry = append_run(run_dir, tmp_path / "history.jsonl")
    ratios = {r.name: r.value for r in in_run_ratios(load_run(run_dir))}
    assert entry["ratios"] == ratios
    framework = entry["ratios"]["micro test_full_cycle_plaintext[framework] / raw"]
    assert 29 < framework < 31  # 18 µs ÷ 0.6 µs with ±2% noise
    assert 0.55 < entry["ratios"]["load threaded plaintext u10 app/raw rps"] < 0.65


def test_a_run_without_meta_json_records_this_machine(tmp_path):
    run_dir = tmp_path / "run"
    write_micro(run_dir / "micro.json")
    entry = append_run(run_dir, tmp_path / "history.jsonl")
    assert entry["commit"] and entry["date"] and entry["python"]
    assert entry["profile"] is None
    assert len(entry["ratios"]) == 5


def test_trend_needs_two_runs(tmp_path):
    history = tmp_path / "history.jsonl"
    assert plot_trend(history, tmp_path / "trend.png") is None  # no file yet
    append_run(write_cells(tmp_path / "one"), history)
    assert plot_trend(history, tmp_path / "trend.png") is None
    assert not (tmp_path / "trend.png").exists()


def test_trend_plot_of_several_runs_is_a_png(tmp_path):
    history = tmp_path / "history.jsonl"
    for seed in range(3):
        append_run(write_run(tmp_path / f"run{seed}", seed=seed), history)
    out = plot_trend(history, tmp_path / "plots" / "trend.png")
    assert out == tmp_path / "plots" / "trend.png"
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_a_damaged_line_is_skipped_not_fatal(tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    append_run(write_run(tmp_path / "a", seed=1), history)
    with history.open("a") as file:
        file.write('{"run": "interrupted", "rat\n\n')
    append_run(write_run(tmp_path / "b", seed=2), history)
    assert [entry["run"] for entry in read_history(history)] == ["a", "b"]
    assert "history.jsonl:2: skipping a damaged line" in capsys.readouterr().err
    assert plot_trend(history, tmp_path / "trend.png") is not None


def test_trend_draws_only_the_key_ratios_one_load_line_per_server():
    entries = [
        {
            "ratios": {
                "micro test_full_cycle_plaintext[framework] / werkzeug": 1.1,
                "micro test_match_static[framework] / flask": 0.7,  # kept in history, not drawn
                "load epoll plaintext u16 app/raw rps": 0.9,
                "load epoll plaintext u64 app/raw rps": 0.5,  # a higher level of the same run
                "load epoll fortunes u16 app/raw rps": 0.4,
            }
        },
        {"ratios": {"load epoll plaintext u8 app/raw rps": 0.8}},  # smoke's level
    ]
    micro, load = key_series(entries)
    assert list(micro) == ["test_full_cycle_plaintext / werkzeug"]
    assert micro["test_full_cycle_plaintext / werkzeug"][0] == 1.1
    assert math.isnan(micro["test_full_cycle_plaintext / werkzeug"][1])  # a gap, not a zero
    assert load == {"epoll plaintext app/raw rps": [0.9, 0.8]}
