"""Cross-check the load runner with an independent generator: wrk, under the same CPU budget.

Each of our four models serves plaintext and fortunes, started exactly as the runner starts it
(same app, same pinning, its own cgroup with the same CPU quota, from ``bench.measure.budget``),
while ``wrk -t1 -c16`` drives it from the other core(s). It prints requests/s and requests/s per
CPU per model, each model's ratio to the best of its scenario, and, given a run directory, the
run's own requests/s at the same concurrency with its ratios and whether the two agree within
AGREEMENT (ratios between models within 15% of the independent generator's) and
whether wrk's ratio lies within the run's own spread (each cell's per-second rates, min to max).

    python tools/wrk_check.py                         # budget 0.3 CPU, 10 s per cell
    python tools/wrk_check.py --run results/latest    # that run's budget, ratios compared
    python tools/wrk_check.py --server-cpus off --duration 2
    python tools/wrk_check.py --app raw --scenarios plaintext   # the raw reference app

wrk is a Debian package (``apt-get install wrk``), not a dependency of the suite. Run it on a quiet
machine: it measures for real.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a file from anywhere, like the runner's children

from bench.analysis.verdict import measured_range  # noqa: E402
from bench.catalogue import APPS, SCENARIOS  # noqa: E402
from bench.measure.budget import BUDGET_MIN, Budget  # noqa: E402
from bench.measure.cgroups import BudgetUnavailable, locate  # noqa: E402
from bench.measure.matrix import Cell  # noqa: E402
from bench.measure.processes import CellFailed, start_server  # noqa: E402
from bench.measure.settings import Settings, choose_pinning  # noqa: E402
from bench.rundir import cell_files, read_meta, read_record  # noqa: E402
from bench.serving.registry import all_servers  # noqa: E402
from bench.serving.spec import MODELS  # noqa: E402

#: the budget when neither --server-cpus nor --run gives one
DEFAULT_CPUS = 0.3
#: wrk's connections: the runner's middle user level, one connection per Locust user
CONNECTIONS = 16
#: two ratios agree when they differ by at most this share
AGREEMENT = 0.15


@dataclass(frozen=True)
class Rate:
    """A run's requests/s of one cell and the range it was measured in."""

    rps: float
    low: float
    high: float


REQUESTS_PER_S = re.compile(r"Requests/sec:\s+([\d.]+)")
NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def wrk_rps(output: str) -> float:
    """Requests/s from wrk's report; ValueError when wrk saw errors or printed no rate."""
    bad = NON_2XX.search(output)
    if bad:
        raise ValueError(f"wrk got {bad.group(1)} non-2xx/3xx responses")
    match = REQUESTS_PER_S.search(output)
    if match is None:
        raise ValueError(f"no Requests/sec in wrk's output:\n{output}")
    return float(match.group(1))


def run_wrk(port: int, path: str, duration_s: float, cpus: list[int] | None) -> float:
    argv = [
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{duration_s:g}s",
        f"http://127.0.0.1:{port}{path}",
    ]
    if cpus:
        argv = ["taskset", "-c", ",".join(map(str, cpus)), *argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return wrk_rps(done.stdout)


def measure(
    model: str, app: str, scenario: str, settings: Settings, duration_s: float, logs: Path
) -> float:
    """One model serving ``app`` on one scenario under the settings' budget and pinning: wrk's
    requests/s."""
    cell = Cell(all_servers()[model], app, SCENARIOS[scenario], CONNECTIONS)
    server, port = start_server(cell, settings, logs)
    try:
        generator = settings.pinning["generator_cpus"] if settings.pinning else None
        return run_wrk(port, SCENARIOS[scenario].probe_path, duration_s, generator)
    finally:
        server.stop()


def run_rates(run_dir: Path, app: str = "app") -> dict[tuple[str, str], Rate]:
    """(model, scenario) → the run's requests/s of our model serving ``app`` at CONNECTIONS
    users, with the range its per-second rates (or repeats) spread over."""
    rates = {}
    for name, path in cell_files(run_dir).items():
        server, cell_app, _, users = name.split("--")
        if cell_app != app or users != f"u{CONNECTIONS}":
            continue
        cell = read_record(path) or {}
        rps = (cell.get("summary") or {}).get("rps")
        if cell.get("kind") == "ours" and rps:
            low, high = measured_range(cell)
            rates[cell["model"], cell["scenario"]] = Rate(rps, low or rps, high or rps)
    return rates


def ratios(rates: dict[str, float]) -> dict[str, float]:
    """Each model's requests/s over the best model's, within one scenario."""
    best = max(rates.values(), default=0)
    return {model: rps / best for model, rps in rates.items()} if best else {}


def ratio_ranges(rates: dict[str, Rate]) -> dict[str, tuple[float, float]]:
    """Each model's ratio to the best model as far as the run's spread allows: its lowest
    ÷ the best's highest .. its highest ÷ the best's lowest."""
    if not rates:
        return {}
    best = max(rates.values(), key=lambda rate: rate.rps)
    return {model: (rate.low / best.high, rate.high / best.low) for model, rate in rates.items()}


def agrees(wrk_ratio: float, run_ratio: float) -> bool:
    return abs(run_ratio / wrk_ratio - 1) <= AGREEMENT


def budget_from(args: argparse.Namespace) -> float | None:
    """The CPUs to give each server: --server-cpus, else the run's, else DEFAULT_CPUS."""
    if args.server_cpus == "off":
        return None
    if args.server_cpus is not None:
        cpus = float(args.server_cpus)
        if cpus < BUDGET_MIN:
            raise ValueError(f"{cpus:g} is below the kernel's minimum of {BUDGET_MIN} CPU")
        return cpus
    if args.run is not None:
        return (read_meta(args.run).get("budget") or {}).get("cpus")
    return DEFAULT_CPUS


def report_lines(results: dict, cpus: float | None, run: dict) -> list[str]:
    lines = [f"{'scenario':<10} {'model':<9} {'wrk req/s':>10} {'per CPU':>8} {'ratio':>6}"
             + (f" {'run req/s':>10} {'ratio':>6} {'run spread':>11}  within 15%  in spread"
                if run else "")]  # fmt: skip
    for scenario, rates in results.items():
        wrk_ratios = ratios(rates)
        measured = {m: run[m, scenario] for m in rates if (m, scenario) in run}
        run_ratios = ratios({model: rate.rps for model, rate in measured.items()})
        spreads = ratio_ranges(measured)
        for model, rps in rates.items():
            per_cpu = f"{rps / cpus:8,.0f}" if cpus else f"{'–':>8}"
            line = f"{scenario:<10} {model:<9} {rps:10,.0f} {per_cpu} {wrk_ratios[model]:6.2f}"
            if model in run_ratios:
                close = "yes" if agrees(wrk_ratios[model], run_ratios[model]) else "NO"
                low, high = spreads[model]
                inside = "yes" if low <= wrk_ratios[model] <= high else "NO"
                line += (f" {measured[model].rps:10,.0f} {run_ratios[model]:6.2f} "
                         f"{low:5.2f}–{high:<5.2f}  {close:<10}  {inside}")  # fmt: skip
            lines.append(line)
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python tools/wrk_check.py", description=__doc__)
    parser.add_argument("--server-cpus", help=f"CPUs per server, or off (default {DEFAULT_CPUS}"
                        " or the --run's budget)")  # fmt: skip
    parser.add_argument("--run", type=Path, help="a run directory to compare ratios with")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per cell")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--scenarios", default="plaintext,fortunes")
    parser.add_argument(
        "--app",
        choices=sorted(APPS),
        default="app",
        help="the framework app, or the raw reference app (plaintext only)",
    )
    parser.add_argument("--logs", type=Path, default=Path("/tmp/wrk_check"))
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install wrk)")
    models, scenarios = args.models.split(","), args.scenarios.split(",")
    unknown = [m for m in models if m not in MODELS] + [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown model or scenario: {', '.join(unknown)}")
    try:
        cpus = budget_from(args)
        budget = Budget(cpus, locate()) if cpus else None
        if budget:
            budget.check()
    except (ValueError, OSError) as error:
        parser.error(f"--server-cpus or --run: {error}")
    except BudgetUnavailable as why:
        print(f"no CPU budget: {why}; servers run unlimited", file=sys.stderr)
        cpus, budget = None, None
    settings = Settings("wrk", 0, args.duration, 1, 0, choose_pinning(), budget=budget)
    shown = f"{cpus:g} CPU" if cpus else "none"
    print(f"budget: {shown}; pinning: {settings.pinning}; wrk -t1 -c{CONNECTIONS} "
          f"-d{args.duration:g}s", flush=True)  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    for scenario in scenarios:
        for model in models:
            try:
                rps = measure(model, args.app, scenario, settings, args.duration, args.logs)
            except (CellFailed, ValueError, subprocess.CalledProcessError) as error:
                print(f"{scenario} {model}: {error}", file=sys.stderr)
                continue
            results.setdefault(scenario, {})[model] = rps
    run = run_rates(args.run, args.app) if args.run else {}
    print("\n".join(report_lines(results, cpus, run)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
