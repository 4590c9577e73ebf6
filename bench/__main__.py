"""`python -m bench COMMAND ...`: one entry point, each command living in its own module.

The table maps a command to ``module:function``; the function takes the remaining argv and returns
the process exit code. Modules are imported only when their command runs, so `bench compare` never
pays for matplotlib and nothing here ever imports Locust (it monkey-patches with gevent).
"""

from __future__ import annotations

import importlib
import sys

from bench.cli import plain

COMMANDS = {
    "run": (
        "bench.commands.run:run_main",
        "the main job: micro + load + report (what `tox -e bench` runs)",
    ),
    "load": ("bench.commands.run:load_main", "the Locust load matrix only"),
    "micro": ("bench.micro.cli:main", "pytest-benchmark microbenchmarks of the hot path"),
    "instructions": (
        "bench.micro.instructions:main",
        "instructions per request under valgrind's cachegrind",
    ),
    "report": (
        "bench.analysis.report:main",
        "build report.html, plots and summaries for a run directory",
    ),
    "compare": (
        "bench.commands.compare:main",
        "compare two runs by in-run ratios; exit 1 on a regression",
    ),
    "baseline": (
        "bench.commands.baseline:baseline_main",
        "refresh results/baseline from a smoke run",
    ),
    "regress": (
        "bench.commands.regress:regress_main",
        "HEAD measured beside a reference commit; exit 1 on a regression",
    ),
    "bisect": (
        "bench.commands.bisect:main",
        "the first commit that made an instruction workload or a micro case dearer",
    ),
    "worker": (
        "bench.commands.worker:main",
        "a Locust worker on another machine for a run with --expect-workers",
    ),
}


def usage() -> str:
    lines = ["usage: python -m bench COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<12} {plain(help_)}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] not in COMMANDS:
        print(
            f"python -m bench: error: unknown command {argv[0]!r} "
            f"(commands: {', '.join(COMMANDS)}; see --help)",
            file=sys.stderr,
        )
        return 2
    module_name, function_name = COMMANDS[argv[0]][0].split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    return int(function(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
