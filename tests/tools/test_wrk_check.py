"""The wrk cross-check's arithmetic: wrk's report read, ratios within a scenario, agreement with a
run's own ratios. (Measuring is the lead's job on a quiet machine; nothing here runs wrk.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import wrk_check

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/plaintext
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.31ms    2.10ms  30.00ms   80.00%
    Req/Sec     3.01k   100.00     3.20k    70.00%
  30100 requests in 10.00s, 4.13MB read
Requests/sec:   3010.00
Transfer/sec:    422.00KB
"""


def test_wrk_rate_is_read_and_errors_are_refused():
    assert wrk_check.wrk_rps(WRK_OUTPUT) == 3010.0
    with pytest.raises(ValueError, match="12 non-2xx"):
        wrk_check.wrk_rps(WRK_OUTPUT + "  Non-2xx or 3xx responses: 12\n")
    with pytest.raises(ValueError, match="no Requests/sec"):
        wrk_check.wrk_rps("unable to connect to 127.0.0.1:8000 Connection refused\n")


def test_ratios_and_agreement_within_fifteen_percent():
    assert wrk_check.ratios({"epoll": 3000.0, "fork": 750.0}) == {"epoll": 1.0, "fork": 0.25}
    assert wrk_check.ratios({}) == {}
    assert wrk_check.agrees(0.25, 0.28) and not wrk_check.agrees(0.25, 0.30)


def test_a_runs_own_rates_at_the_same_concurrency(tmp_path: Path):
    cells = tmp_path / "cells"
    cells.mkdir()
    made = (("epoll--app--plaintext--u16", "ours", 2800.0, [2700, 2900]),
            ("epoll--app--plaintext--u64", "ours", 9.0, [9]),
            ("tornado--app--plaintext--u16", "peer", 9.0, [9]),
            ("fork--app--plaintext--u16", "ours", 700.0, [600, 800]))  # fmt: skip
    for name, kind, rps, series in made:
        model = name.split("--")[0]
        cell = {"kind": kind, "model": model, "scenario": "plaintext", "summary": {"rps": rps},
                "repeats": [{"rps": rps, "rps_series": series}]}  # fmt: skip
        (cells / f"{name}.json").write_text(json.dumps(cell))
    run = wrk_check.run_rates(tmp_path)
    assert run == {("epoll", "plaintext"): wrk_check.Rate(2800.0, 2700, 2900),
                   ("fork", "plaintext"): wrk_check.Rate(700.0, 600, 800)}  # fmt: skip
    lines = wrk_check.report_lines({"plaintext": {"epoll": 3000.0, "fork": 780.0}}, 0.3, run)
    assert lines[1].split()[-5:] == ["2,800", "1.00", "0.93–1.07", "yes", "yes"]
    # 0.25 against wrk's 0.26: within 15%; the run's spread 600/2900 .. 800/2700 holds 0.26
    assert lines[2].split()[-5:] == ["700", "0.25", "0.21–0.30", "yes", "yes"]
    far = wrk_check.report_lines({"plaintext": {"epoll": 3000.0, "fork": 1200.0}}, 0.3, run)
    assert far[2].split()[-2:] == ["NO", "NO"]  # wrk's 0.40 is outside 0.21–0.30
