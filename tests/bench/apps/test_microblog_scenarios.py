"""The worked example: the microblog served by our models under its own locustfile.

``bench/apps/microblog/scenarios.py`` is a plain Locust file; these tests run it the way
``python -m bench run --app bench.apps.microblog:app --scenarios ...`` does, against the
fork model (several processes on one sqlite file) and the threaded one.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure import runner
from bench.measure.settings import LoadRequest
from bench.measure.workload import user_workload

ROOT = Path(__file__).resolve().parents[3]
APP = "bench.apps.microblog:app"
SCENARIOS = ROOT / "bench" / "apps" / "microblog" / "scenarios.py"


def import_microblog(database: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", "import bench.apps.microblog"],
        cwd=ROOT, env={**os.environ, "MICROBLOG_DATABASE": str(database)}, check=True, timeout=60,
    )  # fmt: skip


def test_importing_the_app_creates_a_missing_database_and_keeps_an_existing_one(tmp_path):
    database = tmp_path / "fresh.db"
    import_microblog(database)
    with sqlite3.connect(database) as db:
        db.execute("insert into user (username, pw_hash) values ('ada', 'x')")
    import_microblog(database)  # a second server start must not wipe the users
    with sqlite3.connect(database) as db:
        assert db.execute("select username from user").fetchall() == [("ada",)]


def test_each_user_class_is_a_scenario_probed_on_the_timeline():
    workload = user_workload(APP, SCENARIOS)
    assert list(workload.scenarios) == ["blogger", "reader"]
    for scenario in workload.scenarios.values():
        assert (scenario.probe_path, scenario.marker) == ("/", "Public timeline")


@pytest.mark.slow
def test_register_log_in_post_and_read_on_fork_and_threaded(tmp_path, monkeypatch):
    database = tmp_path / "microblog.db"
    monkeypatch.setenv("MICROBLOG_DATABASE", str(database))  # the servers inherit it
    records = runner.run_load(
        tmp_path / "run",
        LoadRequest(
            "smoke",
            servers=["fork", "threaded"],
            users=[4],
            duration=1.5,
            warmup=3,
            workload=user_workload(APP, SCENARIOS),
            server_cpus="off",
        ),
        progress=False,
    )
    assert sorted(record["cell"] for record in records) == [
        "fork--app--blogger--u4", "fork--app--reader--u4",
        "threaded--app--blogger--u4", "threaded--app--reader--u4",
    ]  # fmt: skip
    for record in records:
        assert record["status"] == "ok", record["error"]
        (measured,) = record["repeats"]
        assert measured["requests"] > 0
        assert measured["failures"] == 0, measured["errors"]
    with sqlite3.connect(database) as db:
        users = db.execute("select count(*) from user").fetchone()[0]
        posts = db.execute("select count(distinct author_id) from message").fetchone()[0]
    assert users == 8  # four bloggers per blogger cell, each under a fresh name
    assert posts >= 1
