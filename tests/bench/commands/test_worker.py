"""``python -m bench worker``: Locust workers joining each cell's master over TCP, cell after cell.

The run and its two workers all live on loopback here, but they meet only through the master's
TCP port, as they would across machines.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bench.commands.worker import worker_argv
from bench.measure import locustrun, processes, runner
from bench.measure.settings import LoadRequest

REPO_ROOT = Path(__file__).resolve().parents[3]
OUR_SCENARIOS = REPO_ROOT / "bench" / "measure" / "scenarios.py"


def test_a_worker_loads_the_same_files_as_the_master():
    argv = worker_argv(("10.0.0.5", 5557), OUR_SCENARIOS, processes=1)
    assert argv[:3] == [sys.executable, "-m", "locust"]
    assert argv[argv.index("-f") + 1] == f"{locustrun.INSTRUMENT_FILE},{OUR_SCENARIOS}"
    assert argv[argv.index("--master-host") + 1] == "10.0.0.5"
    assert argv[argv.index("--master-port") + 1] == "5557"
    assert "--worker" in argv and "--processes" not in argv
    assert worker_argv(("h", 1), OUR_SCENARIOS, processes=4)[-2:] == ["--processes", "4"]


def start_worker(port: int, log: Path, scenarios: Path = OUR_SCENARIOS) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bench", "worker", "--master", f"127.0.0.1:{port}",
             "--scenarios", str(scenarios)],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def test_a_worker_whose_locustfile_fails_stops_instead_of_looping(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit('this locustfile cannot load')\n")
    worker = start_worker(processes.free_port(), tmp_path / "worker.log", broken)
    assert worker.wait(timeout=60) != 0
    assert "master finished" not in (tmp_path / "worker.log").read_text()


@pytest.fixture
def two_workers(tmp_path):
    """Two ``bench worker`` commands waiting for masters on a free loopback port."""
    port = processes.free_port()
    workers = [start_worker(port, tmp_path / f"worker{n}.log") for n in (1, 2)]
    yield port, workers
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)


@pytest.mark.slow
def test_two_tcp_workers_drive_every_cell_and_are_counted(tmp_path, two_workers):
    port, workers = two_workers
    records = runner.run_load(
        tmp_path,
        LoadRequest(
            "smoke",
            servers=["threaded"],
            scenarios=["plaintext"],
            users=[4],
            duration=1.5,
            warmup=0.5,
            peers="none",
            master_bind=("127.0.0.1", port),
            expect_workers=2,
        ),
        progress=False,
    )
    # two cells (framework app and raw app): the workers came back for the second master
    assert [record["cell"] for record in records] == [
        "threaded--app--plaintext--u4", "threaded--raw--plaintext--u4"
    ]  # fmt: skip
    for record in records:
        assert record["status"] == "ok", record["error"]
        (measured,) = record["repeats"]
        assert measured["locust_workers"] == 2
        assert measured["requests"] > 0 and measured["failures"] == 0
        # each worker reported its own CPU: the master here only collected their numbers
        assert len(measured["workers_cpu_pct"]) == 2
        workers_cpu = record["summary"]["workers_cpu_pct"]
        assert 0 < workers_cpu <= 110
        if workers_cpu >= 85:  # at the workers' ceiling: the cell measured them, not the server
            assert "generator-bound" in record["flags"]
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert (meta["locust_master_bind"], meta["expect_workers"]) == (f"127.0.0.1:{port}", 2)
    calibration = (meta["budget"] or {}).get("calibration")
    if calibration:  # cgroups here: the capacity was scaled by the workers' CPU, not the master's
        assert calibration["workers_cpu_pct"] > 0
        assert calibration["generator_capacity"] == pytest.approx(
            calibration["generator_rps"] * max(1, 100 / calibration["workers_cpu_pct"])
        )

    # SIGTERM stops a worker command and the Locust worker it runs
    descendants = [d for w in workers for d in psutil.Process(w.pid).children(recursive=True)]
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [worker.wait(30) for worker in workers] == [130, 130]
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []
