"""``python -m bench worker``: a Locust worker for a run on another machine, cell after cell.

A run with ``--locust-master-bind HOST:PORT --expect-workers N`` starts one Locust master per
cell and repeat, and each master tells its workers to quit when it ends. A plain
``locust --worker`` would therefore serve one cell only. This command restarts the worker every
time its master lets it go, so one command per machine serves the whole run:

    python -m bench worker --master HOST:PORT --scenarios myscenarios.py

A worker that finds no master keeps trying for Locust's own connection timeout (5 s × 60
retries); when that runs out (the run has ended) or the worker fails, this command stops with its
exit code. Ctrl-C or SIGTERM stops it and its worker at once.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from bench.commands.elsewhere import host_port
from bench.measure.childenv import REPO_ROOT, child_env
from bench.measure.locustrun import INSTRUMENT_FILE
from bench.measure.workload import SCENARIOS_FILE


def worker_argv(master: tuple[str, int], scenario_file: Path, processes: int) -> list[str]:
    """The same locustfiles as the master (instrument.py beside the scenarios), as a worker."""
    host, port = master
    argv = [
        sys.executable, "-m", "locust", "--worker", "--master-host", host,
        "--master-port", str(port), "-f", f"{INSTRUMENT_FILE},{scenario_file.resolve()}",
        # failed requests are data for the master, not a reason to stop serving masters
        "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    return argv + (["--processes", str(processes)] if processes > 1 else [])


def serve_masters(argv: list[str]) -> int:
    """Run the worker again each time a master releases it (exit 0); return any other code."""
    while True:
        code = subprocess.run(argv, cwd=REPO_ROOT, env=child_env()).returncode
        if code != 0:
            return code
        print("master finished; waiting for the next one", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--master", type=host_port, required=True, metavar="HOST:PORT")
    parser.add_argument(
        "--scenarios", type=Path, default=SCENARIOS_FILE, help="the run's locustfile (default ours)"
    )
    parser.add_argument("--processes", type=int, default=1, help="worker processes on this host")
    args = parser.parse_args(argv)
    if not args.scenarios.is_file():
        parser.error(f"--scenarios {args.scenarios}: no such file")
    if args.processes < 1:
        parser.error(f"--processes {args.processes}: must be at least 1")
    # SIGTERM ends it the Ctrl-C way: subprocess.run then kills the worker it is waiting for
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return serve_masters(worker_argv(args.master, args.scenarios, args.processes))
    except KeyboardInterrupt:
        return 130
