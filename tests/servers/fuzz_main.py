"""``python -m tests.servers.fuzz_main --minutes N``: fuzz every model for N minutes (tox -e fuzz).

The property is the one ``test_fuzz.py`` runs bounded (see ``fuzzing.py``), here with fresh random
seeds, batch after batch, round-robin over the models, until the time is up; the batch in
progress then finishes, so a run overshoots by at most one batch. Each failing input, shrunk,
is written to ``tests/servers/fuzz-failures/<model>-<digest>.bin``, which the next ``tox -e py``
replays against all four models. It prints how many inputs each model was sent, and exits 1 when
anything failed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

from tests.servers.fuzz_grammar import streams
from tests.servers.fuzzing import MODELS, Disagreement, ServerProcess, check_example, running_server

FAILURES_DIR = Path(__file__).with_name("fuzz-failures")
#: inputs per batch: a few seconds to a minute, depending on the model
BATCH = 500


def fuzz_settings(max_examples: int, *, derandomize: bool, shrink: bool = True) -> settings:
    """Settings for one run; without ``shrink`` a failure is reported as found, at once (hypothesis
    may otherwise spend up to five minutes making it minimal)."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(
        max_examples=max_examples,
        derandomize=derandomize,
        phases=phases,
        database=None,
        deadline=None,  # a fork or a restart takes what it takes; hangs are the timeout's job
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        report_multiple_bugs=False,
        print_blob=False,
    )


def fuzz(
    server: ServerProcess, fuzz_settings_: settings, on_input: Callable[[bytes], None]
) -> None:
    """Run the property on ``server``; ``on_input`` sees every input, failing ones included."""

    @fuzz_settings_
    @given(streams())
    def property_holds(raw: bytes) -> None:
        on_input(raw)
        check_example(server, raw)

    property_holds()


class Campaign:
    """Counts what was sent to each model and keeps the last input that failed."""

    def __init__(self, models: list[str]) -> None:
        #: model → inputs sent (the examples hypothesis generated, plus its shrinking steps)
        self.sent = dict.fromkeys(models, 0)
        #: model → files written for failing inputs
        self.failures: dict[str, list[Path]] = {}
        self.last_input = b""

    def batch(self, server: ServerProcess, size: int) -> None:
        def record(raw: bytes) -> None:
            self.sent[server.model] += 1
            self.last_input = raw

        try:
            fuzz(server, fuzz_settings(size, derandomize=False), record)
        except Disagreement as err:
            # hypothesis replays the shrunk failing input last, so last_input is that one
            path = save_failure(server.model, self.last_input)
            self.failures.setdefault(server.model, []).append(path)
            print(f"FAILED, saved {path}:\n{err}\n", flush=True)

    def report(self, elapsed: float) -> str:
        lines = [f"fuzzed for {elapsed / 60:.1f} min"]
        for model, count in self.sent.items():
            failed = len(set(self.failures.get(model, [])))  # a file per distinct input
            lines.append(f"  {model:9} {count:7} inputs sent, {failed} failing saved")
        return "\n".join(lines)


def save_failure(model: str, raw: bytes) -> Path:
    FAILURES_DIR.mkdir(exist_ok=True)
    path = FAILURES_DIR / f"{model}-{hashlib.sha256(raw).hexdigest()[:12]}.bin"
    path.write_bytes(raw)
    return path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.fuzz_main", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to fuzz (10)")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated ({','.join(MODELS)})"
    )
    parser.add_argument("--batch", type=int, default=BATCH, help=f"inputs per batch ({BATCH})")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    if args.minutes <= 0 or args.batch <= 0:
        parser.error("--minutes and --batch must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    models = args.models.split(",")
    campaign = Campaign(models)
    with ExitStack() as stack:
        servers = [stack.enter_context(running_server(model)) for model in models]
        start = time.monotonic()  # the clock runs once every server listens
        deadline = start + args.minutes * 60
        while time.monotonic() < deadline:
            for server in servers:
                if time.monotonic() >= deadline:
                    break
                campaign.batch(server, args.batch)
    print(campaign.report(time.monotonic() - start))
    return 1 if campaign.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
