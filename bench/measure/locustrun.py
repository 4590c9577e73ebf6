"""Locust against a running server: its command line, one run of one or more measured windows
while the sampler watches both process trees, and reading the result the locustfile wrote.

Locust runs as a separate process per repeat (``bench/measure/scenarios.py`` or the user's
locustfile, behind ``instrument.py``'s measured window): a warm-up that is excluded, then the
window. An open-loop sweep runs its offered rates as the steps of one Locust run.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from bench.measure.childenv import child_env
from bench.measure.matrix import Cell
from bench.measure.processes import CellFailed, ProcessGroup, free_port
from bench.measure.records import repeat_record
from bench.measure.sampler import Sampler
from bench.measure.sampling_profiler import WindowRecording
from bench.measure.settings import HOST, Settings

#: the measured window, loaded beside the scenario file
INSTRUMENT_FILE = Path(__file__).resolve().parent / "instrument.py"
#: loaded in front of the scenario file for open-loop cells: requests on a fixed schedule
OPENLOOP_FILE = Path(__file__).resolve().parent / "openloop.py"

#: seconds Locust may run beyond warm-up + duration (start-up, shutdown) before it counts as hung
LOCUST_GRACE_S = 30.0
#: seconds a Locust master waits for --expect-workers remote workers to join before it gives up
WORKERS_WAIT_S = 120
#: seconds the first window may wait beyond its warm-up for every user's on_start (a login) to
#: finish; measuring starts when they have, or when this runs out
ON_START_TIMEOUT_S = 120.0


def locust_argv(
    cell: Cell, port: int, settings: Settings, csv_prefix: Path, steps: int = 1
) -> list[str]:
    # a safety net only: the locustfile ends the test after warm-up, on_start and duration itself
    run_time = math.ceil(
        steps * (settings.warmup_s + settings.duration_s) + ON_START_TIMEOUT_S + 10
    )
    files = [INSTRUMENT_FILE, *([OPENLOOP_FILE] if cell.mode == "open" else []),
             settings.workload.scenario_file]  # fmt: skip
    argv = [
        sys.executable, "-m", "locust", "-f", ",".join(map(str, files)), "--headless",
        "--host", settings.base_url(port),
        "--users", str(cell.users),
        # all users within a quarter of a second: the warm-up is for the server, not for spawning
        "--spawn-rate", str(cell.users * 4),
        "--run-time", f"{run_time}s",
        "--csv", str(csv_prefix),
        "--only-summary", "--loglevel", "WARNING",
        # failures are data here, not a reason for a non-zero exit
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    if settings.expect_workers:
        argv += remote_workers_argv(settings)
    elif settings.locust_workers:
        # master on loopback and a free port: parallel runs must not meet on Locust's 5557
        port = free_port()
        argv += ["--processes", str(settings.locust_workers), "--master-bind-host", HOST,
                 "--master-bind-port", str(port), "--master-port", str(port)]  # fmt: skip
    return [*argv, cell.scenario.user_class]


def remote_workers_argv(settings: Settings) -> list[str]:
    """A master that waits for workers from other hosts (``python -m bench worker``)."""
    host, port = settings.master_bind  # set with expect_workers, never without
    return ["--master", "--master-bind-host", host, "--master-bind-port", str(port),
            "--expect-workers", str(settings.expect_workers),
            "--expect-workers-max-wait", str(WORKERS_WAIT_S)]  # fmt: skip


def run_repeat(
    cell: Cell, server: ProcessGroup, port: int, settings: Settings, logs_dir: Path, index: int
) -> dict:
    """One Locust run against the running server, sampled; the repeat's record."""
    (record,) = run_steps([cell], server, port, settings, logs_dir / f"{cell.name}.r{index}")
    return record


def run_steps(
    cells: list[Cell], server: ProcessGroup, port: int, settings: Settings, prefix: Path,
    profiler: WindowRecording | None = None,
) -> list[dict]:  # fmt: skip
    """One Locust run of a window per cell (each after its own warm-up; open-loop cells offer
    their rates in turn) against the running server, sampled; a repeat record per cell. A
    ``profiler`` samples the server's stacks while the window is open."""
    result_path = Path(f"{prefix}.result.json")
    result_path.unlink(missing_ok=True)
    env = child_env(
        BENCH_WARMUP_S=str(settings.warmup_s),
        BENCH_DURATION_S=str(settings.duration_s),
        BENCH_RESULT_FILE=str(result_path),
        BENCH_STEPS=str(len(cells)),
        BENCH_ON_START_TIMEOUT_S=str(ON_START_TIMEOUT_S),
    )
    if profiler is not None:
        env["BENCH_WINDOW_MARKS"] = str(profiler.marks)
    if cells[0].mode == "open":
        env["BENCH_OPEN_RATES"] = ",".join(str(cell.offered_rps) for cell in cells)
    cpus = settings.pinning["generator_cpus"] if settings.pinning else None
    argv = locust_argv(cells[0], port, settings, prefix, steps=len(cells))
    with (
        ProcessGroup(argv, Path(f"{prefix}.locust"), cpus, env) as locust,
        Sampler(server.pid, locust.pid, counters=server.cgroup and server.cgroup.read) as sampler,
    ):
        wait_for_locust(locust, server, settings, len(cells), profiler)
    if server.exit_code() is not None:
        raise CellFailed(f"server died under load (exit code {server.exit_code()})")
    results = read_locust_result(result_path, locust, steps=len(cells))
    return [repeat_record(result, sampler.samples, sampler.counter_readings) for result in results]


def wait_for_locust(
    locust: ProcessGroup, server: ProcessGroup, settings: Settings, steps: int = 1,
    profiler: WindowRecording | None = None,
) -> None:  # fmt: skip
    deadline = time.monotonic() + steps * (settings.warmup_s + settings.duration_s)
    deadline += LOCUST_GRACE_S + ON_START_TIMEOUT_S
    deadline += WORKERS_WAIT_S if settings.expect_workers else 0
    while locust.process.poll() is None:
        if profiler is not None:
            profiler.poll()
        if server.exit_code() is not None:
            return  # the caller reports the dead server
        if time.monotonic() > deadline:
            raise CellFailed(f"Locust did not finish within {LOCUST_GRACE_S:.0f} s of its run time")
        time.sleep(0.1)


def read_locust_result(path: Path, locust: ProcessGroup, steps: int = 1) -> list[dict]:
    """The result of every window (a run of several steps writes ``{"steps": [...]}``)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        tail = locust.stderr_tail()
        raise CellFailed(f"Locust wrote no result ({error}); its stderr:\n{tail}") from error
    results = result.get("steps", [result])
    complete = [r for r in results if "measure_start" in r and "measure_stop" in r]
    if len(complete) < steps:
        raise CellFailed(f"Locust stopped after {len(complete)} of {steps} measured windows "
                         "(a warm-up did not end)")  # fmt: skip
    return complete
