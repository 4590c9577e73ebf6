"""The console: one line per finished cell, with its flags and why it failed."""

from __future__ import annotations

from bench.catalogue import SCENARIOS
from bench.measure import (
    matrix,
    progress,
)
from bench.measure.settings import Settings
from bench.serving.registry import all_servers


def test_the_console_shows_flags_and_why_a_cell_failed_as_the_report_does(capsys):
    from bench.analysis.report_tables import format_value

    cells = [matrix.Cell(all_servers()["poll"], "app", SCENARIOS["plaintext"], 8)]
    settings = Settings("smoke", 1.0, 2.0, 1, locust_workers=0, pinning=None)
    bound = {"cell": "threaded--app--plaintext--u8", "summary": {"rps": 8024.0},
             "flags": ["generator-bound", "noisy"], "status": "ok", "error": None}  # fmt: skip
    error = "server exited with code 3 at start\n--- server stderr (tail) ---"
    failed = {"cell": "fork--app--plaintext--u8", "summary": {"rps": None}, "flags": ["failed"],
              "status": "failed", "error": error}  # fmt: skip
    with progress.CellProgress(cells, settings, enabled=False) as bar:
        bar.finished(bound)  # rich markup used to eat "[generator-bound]"
        bar.finished(failed)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"8024 req/s [{format_value('flags', bound['flags'])}]")
    assert lines[0].endswith("[generator-bound, noisy]")
    assert lines[1].endswith("- req/s [failed] server exited with code 3 at start")
