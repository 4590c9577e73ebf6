"""Locust's command line: the user class, the workers, the open-loop schedule and remote workers."""

from __future__ import annotations

from pathlib import Path

from bench.catalogue import SCENARIOS
from bench.measure import (
    locustrun,
    matrix,
)
from bench.measure.settings import Settings
from bench.serving.registry import all_servers


def test_locust_argv_names_the_user_class_and_the_workers():
    cell = matrix.Cell(all_servers()["poll"], "app", SCENARIOS["io"], 16)
    settings = Settings("smoke", 1.0, 2.0, 1, locust_workers=3, pinning=None)
    argv = locustrun.locust_argv(cell, 8000, settings, Path("/tmp/x"))
    assert argv[-1] == "IoUser"
    assert argv[argv.index("--users") + 1] == "16"
    assert argv[argv.index("--processes") + 1] == "3"
    assert argv[argv.index("--host") + 1] == "http://127.0.0.1:8000"


def test_an_open_cell_loads_the_schedule_before_the_scenarios():
    cell = matrix.Cell(all_servers()["poll"], "app", SCENARIOS["io"], 32, offered_fraction=0.5)
    settings = Settings("quick", 0.5, 1.0, 1, locust_workers=0, pinning=None)
    files = locustrun.locust_argv(cell, 8000, settings, Path("/tmp/x"))
    files = files[files.index("-f") + 1].split(",")
    assert [Path(f).name for f in files] == ["instrument.py", "openloop.py", "scenarios.py"]
    closed_cell = matrix.Cell(cell.server, "app", cell.scenario, 1)
    closed = locustrun.locust_argv(closed_cell, 8000, settings, Path("/tmp/x"))
    assert "openloop.py" not in closed[closed.index("-f") + 1]


def test_a_master_for_remote_workers_binds_where_asked_and_waits_for_them():
    settings = Settings("smoke", 1.0, 2.0, 1, 0, None, master_bind=("0.0.0.0", 6000),
                        expect_workers=3)  # fmt: skip
    cell = matrix.Cell(all_servers()["epoll"], "app", SCENARIOS["plaintext"], 8)
    argv = locustrun.locust_argv(cell, 8000, settings, Path("/tmp/x"))
    assert argv[argv.index("--master-bind-host") + 1] == "0.0.0.0"
    assert argv[argv.index("--master-bind-port") + 1] == "6000"
    assert argv[argv.index("--expect-workers") + 1] == "3"
    assert "--master" in argv and "--processes" not in argv
    assert argv[-1] == "PlaintextUser"
