"""``python -m bench bisect GOOD BAD (--workload NAME | --case CASE)``: the first commit that made
one instruction workload, or one timed micro case, dearer.

GOOD is measured first, then BAD (which must be past GOOD by more than the threshold, or there is
nothing to find); then ``git bisect run`` walks from BAD to GOOD in a temporary worktree (the
user's checkout is never touched), measuring each commit with that commit's own ``python -m
bench``, and calls a commit bad when its measure is past GOOD's by more than the threshold. A
commit that cannot be measured (no such workload or case yet, a broken tree) is skipped, as
``git bisect`` skips. The worktree goes away afterwards, also on Ctrl-C.

Two measures, one code path:

- ``--workload``: instructions per request under valgrind (``bench instructions --only``).
  Deterministic, so one count a commit decides it; the default threshold is compare's
  INSTRUCTION_THRESHOLD.
- ``--case``: a micro case timed beside its references (``bench micro -k`` at the smoke profile),
  in ``--repeats`` fresh processes a commit. It is judged by its in-run ratio, never by its time:
  the references are installed libraries, the same at every commit, so dividing by them cancels
  the machine's speed. A process's ratio is the geometric mean of the case's median ÷ each
  reference's median; a commit's is the median of its processes', so one process a busy
  neighbour disturbed does not decide it. The default threshold is compare's REGRESS_THRESHOLD.

Why the geometric mean, not "past the threshold against every reference" as ``compare`` judges:
compare asks whether we fell behind the alternatives, so a case must lose to all of them. Here the
references are only rulers, identical at every commit: a change in our code moves the ratio to
each of them by the same factor, so it moves their geometric mean by that factor too, while one
ruler's noise is averaged instead of vetoing. And a commit gets one number to print and compare,
as a count is in the instruction mode.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
from argparse import ArgumentTypeError
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bench.analysis.compare import INSTRUCTION_THRESHOLD, REGRESS_THRESHOLD
from bench.analysis.ratios import geometric_mean
from bench.cli import Parser, fail
from bench.commands import sides
from bench.commands.ab import PROFILE
from bench.commands.compare import threshold_arg
from bench.commands.sides import BadReference, Side
from bench.micro.cli import collecting
from bench.micro.instructions import valgrind
from bench.microcases import MicroCase, by_name, load_micro, ratios
from bench.rundir import MICRO_FILE

#: ``git bisect run``'s answers: this commit is good, bad, or cannot be tested
GOOD, BAD, SKIP = 0, 1, 125
#: where git names its conclusion
FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.MULTILINE)
#: the step git runs at each commit: this tree's code (the checked-out tree is the working
#: directory, first on sys.path for -c, so it is dropped before ``bench`` is imported)
STEP_CODE = (
    "import sys; del sys.path[0]; from bench.commands.bisect import step; "
    "sys.exit(step(sys.argv[1:]))"
)
#: fresh processes a commit's micro case is timed in, unless --repeats says otherwise
REPEATS = 3
#: what a micro case is called in micro.json and compare's rows
CASE_NAME = re.compile(r"test_\w+\[[\w.-]+\]")


# --- what is measured at a commit ---------------------------------------------------------------


@dataclass(frozen=True)
class Instructions:
    """One workload's instructions per request under valgrind: one count a commit."""

    KIND: ClassVar[str] = "workload"
    #: how far past GOOD's count a commit is bad: counts of unchanged code agree to far less
    THRESHOLD: ClassVar[float] = INSTRUCTION_THRESHOLD
    #: why a commit may give no count
    UNMEASURED: ClassVar[str] = "its count failed (its output is above)"
    #: the instruction workload, e.g. servers-raw-plaintext
    name: str

    def args(self) -> list[str]:
        return [self.KIND, self.name]

    def check_tools(self) -> None:
        if valgrind() is None:
            raise BadReference("valgrind is not installed (apt-get install valgrind)")

    def check_tree(self, side: Side, ref: str) -> None:
        """Nothing to check before counting: a missing workload fails the count itself."""

    def measure(self, side: Side, scratch: Path) -> float | None:
        """Instructions per request at ``side``'s commit, or None if it cannot be counted there."""
        run_dir = scratch / f"count-{side.commit[:12]}"
        code = side.bench(["instructions", "--only", self.name, "--run-dir", str(run_dir)])
        path = run_dir / "instructions.json"
        if code != 0 or not path.is_file():
            return None
        return json.loads(path.read_text())["per_request"].get(self.name)

    def number(self, value: float) -> str:
        return f"{value:,.0f}"

    def shown(self, value: float) -> str:
        return f"{self.number(value)} instructions/request"


@dataclass(frozen=True)
class TimedCase:
    """One micro case's time ÷ its references', timed in ``repeats`` fresh processes."""

    KIND: ClassVar[str] = "case"
    #: how far past GOOD's ratio a commit is bad: what regress judges micro cases by
    THRESHOLD: ClassVar[float] = REGRESS_THRESHOLD
    #: why a commit may give no ratio
    UNMEASURED: ClassVar[str] = (
        "a reference case has no ratio to bisect; otherwise its micro run failed (output above)"
    )
    #: the case as micro.json names it, e.g. test_server_cycle[servers]
    name: str
    #: processes a commit is timed in; the median of their ratios is its measure
    repeats: int = REPEATS

    @property
    def operation(self) -> str:
        """The ``-k`` that selects the case and its references: the name without its subject."""
        return self.name.split("[", 1)[0]

    def args(self) -> list[str]:
        return [self.KIND, self.name, str(self.repeats)]

    def check_tools(self) -> None:
        """pytest-benchmark comes with the bench extra: nothing to check."""

    def check_tree(self, side: Side, ref: str) -> None:
        """Refuse a case ``side``'s tree does not define, before anything is timed."""
        known = micro_cases(side)
        if self.name not in known:
            similar = sorted(name for name in known if name.startswith(self.operation))
            hint = ", ".join(similar) or "test_server_cycle[servers]"
            raise BadReference(f"--case {self.name}: no such micro case at {ref} "
                               f"({side.commit[:12]}); names look like {hint}")  # fmt: skip

    def measure(self, side: Side, scratch: Path) -> float | None:
        """The median ratio of ``repeats`` processes, or None if one could not time the case."""
        values = []
        for number in range(1, self.repeats + 1):
            value = self.ratio_once(side, scratch / f"micro-{side.commit[:12]}-{number}")
            if value is None:
                return None
            values.append(value)
        print(f"{side.commit[:12]}: ratios {', '.join(map(self.number, values))}", flush=True)
        return statistics.median(values)

    def ratio_once(self, side: Side, run_dir: Path) -> float | None:
        code = side.bench(["micro", "-k", self.operation, "--profile", PROFILE,
                           "--run-dir", str(run_dir)])  # fmt: skip
        if code != 0 or not (run_dir / MICRO_FILE).is_file():
            return None
        try:
            return case_ratio(load_micro(run_dir / MICRO_FILE), self.name)
        except (KeyError, TypeError, ValueError):
            return None

    def number(self, value: float) -> str:
        return f"{value:.3f}×"

    def shown(self, value: float) -> str:
        return f"{self.number(value)} its references (geometric mean)"


def case_ratio(cases: list[MicroCase], name: str) -> float | None:
    """Our case ``name``'s median ÷ each of its references' medians, as one geometric mean; None
    when the run has no such case of ours, or none of its references."""
    known = by_name(cases)
    case = known.get(name)
    if case is None or case.is_reference:
        return None
    found = [value for _, value in ratios(case, known)]
    return geometric_mean(found) if found else None


def micro_cases(side: Side) -> set[str]:
    """The micro cases ``side``'s tree defines (pytest --collect-only: nothing is timed)."""
    with tempfile.TemporaryDirectory(prefix="bench-bisect-") as storage:
        command = [*collecting(storage, side.tree / "bench" / "micro"), "--collect-only", "-q"]
        listed = subprocess.run(command, cwd=side.tree, env=side.env(), capture_output=True,
                                text=True)  # fmt: skip
    return {line.rsplit("::", 1)[1] for line in listed.stdout.splitlines() if "::" in line}


PROBES = {probe.KIND: probe for probe in (Instructions, TimedCase)}
Probe = Instructions | TimedCase


def probe_from_args(args: list[str]) -> Probe:
    """The probe ``Probe.args()`` stands for: how the step learns what to measure."""
    kind, name, *rest = args
    return PROBES[kind](name, *map(int, rest))


# --- one commit ----------------------------------------------------------------------------------


def measure_here(probe: Probe, tree: Path, log: Path, limit: float) -> float | None:
    """``probe`` at the commit checked out in ``tree``, logged (None: cannot be measured)."""
    side = Side("bisect", tree, sides.head_commit(tree))
    value = probe.measure(side, log.parent)
    with log.open("a") as file:
        file.write(json.dumps({"commit": side.commit, "value": value}) + "\n")
    if value is not None:
        print(f"{side.commit[:12]}: {probe.shown(value)} (limit {probe.number(limit)})", flush=True)
    return value


def step(argv: list[str]) -> int:
    """One commit of ``git bisect run``: LIMIT LOG PROBE-ARGS (cwd: the checked-out tree)."""
    limit, log, probe = float(argv[0]), Path(argv[1]), probe_from_args(argv[2:])
    value = measure_here(probe, Path.cwd(), log, limit)
    if value is None:
        return SKIP
    return BAD if value > limit else GOOD


# --- the walk ------------------------------------------------------------------------------------


def measure_good(probe: Probe, tree: Side, good: str, scratch: Path) -> float:
    probe.check_tree(tree, f"GOOD {good}")
    reference = probe.measure(tree, scratch)
    if reference is None:
        raise BadReference(
            f"GOOD {good}: cannot measure {probe.KIND} {probe.name!r} there: {probe.UNMEASURED}"
        )
    print(f"good {tree.commit[:12]}: {probe.shown(reference)}", flush=True)
    return reference


def check_bad(probe: Probe, worktree: Path, bad: str, bad_commit: str, limit: float,
              log: Path) -> None:  # fmt: skip
    """BAD must be past the limit: otherwise ``git bisect`` would blame it unmeasured."""
    sides.git("checkout", "-q", "--detach", bad_commit, repo=worktree)
    value = measure_here(probe, worktree, log, limit)
    if value is None:
        raise BadReference(
            f"BAD {bad}: cannot measure {probe.KIND} {probe.name!r} there: {probe.UNMEASURED}"
        )
    if value <= limit:
        raise BadReference(f"BAD {bad}: {probe.shown(value)} is within the limit "
                           f"{probe.number(limit)}; nothing to bisect")  # fmt: skip


def bisect_run(tree: Path, good: str, bad: str, step_args: list[str]) -> str:
    """``git bisect`` between the commits in ``tree``; the first bad commit."""
    started = sides.git("bisect", "start", bad, good, repo=tree)
    if started.returncode != 0:
        raise BadReference(f"git bisect start failed: {started.stderr.strip()}")
    env = {**Side("ours", sides.REPO_ROOT, "").env()}
    command = ["git", "bisect", "run", sys.executable, "-c", STEP_CODE, *step_args]
    output = passed_through(command, tree, env)
    found = FIRST_BAD.search(output)
    if found is None:
        last = [line for line in output.splitlines() if line.strip()][-1:]
        raise BadReference(f"git bisect found no first bad commit: {' '.join(last)}")
    return found[1]


def passed_through(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``command``, printing its output as it comes (a bisect takes minutes); its output."""
    lines = []
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as child:  # fmt: skip
        for line in child.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    if lines and not lines[-1].endswith("\n"):  # git's last line has none
        print(flush=True)
    return "".join(lines)


def values_by_commit(log: Path) -> dict[str, float | None]:
    lines = log.read_text().splitlines() if log.is_file() else []
    return {entry["commit"]: entry["value"] for entry in map(json.loads, lines)}


def parent(commit: str) -> str:
    return sides.git("rev-parse", f"{commit}^").stdout.strip()


def print_first_bad(probe: Probe, first: str, measured: dict, reference: float,
                    threshold: float) -> None:  # fmt: skip
    before = parent(first)
    shown = {commit: probe.number(value) if value is not None else "not measured"
             for commit, value in measured.items()}  # fmt: skip
    print(f"first bad commit: {first} — {probe.shown(measured[first])}")
    print(f"its parent:       {before} — {shown.get(before, 'not measured')} "
          f"(good: {probe.number(reference)}, limit +{threshold:.0%})")  # fmt: skip


def bisect(good: str, bad: str, probe: Probe, threshold: float) -> int:
    probe.check_tools()
    good_commit = sides.resolve(good, option="GOOD")
    bad_commit = sides.resolve(bad, option="BAD")
    with tempfile.TemporaryDirectory(prefix="bench-bisect-") as scratch:
        log = Path(scratch) / "measured.jsonl"
        worktree = sides.default_worktree(good_commit).with_name(f"bench-bisect-{bad_commit[:12]}")
        with sides.reference_side(good_commit, worktree) as tree:
            reference = measure_good(probe, tree, good, Path(scratch))
            limit = reference * (1 + threshold)
            check_bad(probe, worktree, bad, bad_commit, limit, log)
            first = bisect_run(worktree, good_commit, bad_commit, [str(limit), str(log),
                                                                    *probe.args()])  # fmt: skip
            sides.git("bisect", "reset", repo=worktree)
        measured = {good_commit: reference, **values_by_commit(log)}
    print_first_bad(probe, first, measured, reference, threshold)
    return 0


# --- the command ---------------------------------------------------------------------------------


def case_arg(value: str) -> str:
    if not CASE_NAME.fullmatch(value):
        raise ArgumentTypeError(f"{value!r} is not a micro case name; names look like "
                                "test_server_cycle[servers], as in micro.json")  # fmt: skip
    return value


def main(argv: list[str]) -> int:
    parser = Parser(
        prog="python -m bench bisect",
        description="Find the first commit between GOOD and BAD that made one instruction "
        "workload cost more instructions per request (one count a commit), or one micro case "
        "slower against its references (timed in fresh processes, the median kept).",
    )
    parser.add_argument("good", help="a commit, branch or tag with the old cost")
    parser.add_argument("bad", help="a later commit with the new cost")
    measured = parser.add_mutually_exclusive_group(required=True)
    measured.add_argument("--workload", help="an instruction workload, e.g. servers-raw-plaintext")
    measured.add_argument(
        "--case",
        type=case_arg,
        help="a micro case as micro.json names it, e.g. test_server_cycle[servers]",
    )
    parser.add_argument(
        "--repeats", type=int, help=f"--case: processes a commit is timed in (default: {REPEATS})"
    )
    parser.add_argument(
        "--threshold",
        type=threshold_arg,
        help=f"a commit is bad when it is past GOOD by more than this (default: "
        f"{INSTRUCTION_THRESHOLD:.0%} for --workload, {REGRESS_THRESHOLD:.0%} for --case)",
    )
    args = parser.parse_args(argv)
    if args.workload and args.repeats is not None:
        parser.error("--repeats applies to --case only: an instruction count does not vary")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: must be at least 1")
    if args.workload:
        probe = Instructions(args.workload)
    else:
        probe = TimedCase(args.case, args.repeats or REPEATS)
    threshold = probe.THRESHOLD if args.threshold is None else args.threshold
    try:
        return bisect(args.good, args.bad, probe, threshold)
    except BadReference as error:
        return fail("python -m bench bisect", str(error))
    except KeyboardInterrupt:
        print("bisect: interrupted; its worktree is removed", file=sys.stderr)
        return 130
