"""``python -m bench bisect GOOD BAD --workload NAME``: the first commit that made one workload
execute more instructions per request.

Instruction counts are deterministic, so one count a commit decides it. GOOD is counted first;
then ``git bisect run`` walks from BAD to GOOD in a temporary worktree (the user's checkout is
never touched), counting each commit with that commit's own ``python -m bench instructions``,
and calls a commit bad when its count is past GOOD's by more than the threshold. A commit that
cannot be counted (no such workload yet, a broken tree) is skipped, as ``git bisect`` skips.
The worktree goes away afterwards, also on Ctrl-C.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.analysis.compare import INSTRUCTION_THRESHOLD
from bench.cli import Parser, fail
from bench.commands import sides
from bench.commands.compare import threshold_arg
from bench.commands.sides import BadReference, Side
from bench.micro.instructions import valgrind

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


def count(side: Side, workload: str, scratch: Path) -> float | None:
    """Instructions per request of ``workload`` at ``side``'s commit, or None if it cannot be
    counted there."""
    run_dir = scratch / f"count-{side.commit[:12]}"
    code = side.bench(["instructions", "--only", workload, "--run-dir", str(run_dir)])
    path = run_dir / "instructions.json"
    if code != 0 or not path.is_file():
        return None
    return json.loads(path.read_text())["per_request"].get(workload)


def step(argv: list[str]) -> int:
    """One commit of ``git bisect run``: WORKLOAD LIMIT LOG (cwd: the checked-out tree)."""
    workload, limit, log = argv[0], float(argv[1]), Path(argv[2])
    tree = Path.cwd()
    side = Side("bisect", tree, sides.head_commit(tree))
    counted = count(side, workload, log.parent)
    with log.open("a") as file:
        file.write(json.dumps({"commit": side.commit, "count": counted}) + "\n")
    if counted is None:
        return SKIP
    print(f"{side.commit[:12]}: {counted:,.0f} instructions/request (limit {limit:,.0f})")
    return BAD if counted > limit else GOOD


def bisect_run(tree: Path, good: str, bad: str, step_args: list[str]) -> str:
    """``git bisect`` between the commits in ``tree``; the first bad commit."""
    started = sides.git("bisect", "start", bad, good, repo=tree)
    if started.returncode != 0:
        raise BadReference(f"git bisect start failed: {started.stderr.strip()}")
    env = {**Side("ours", sides.REPO_ROOT, "").env()}
    command = ["git", "bisect", "run", sys.executable, "-c", STEP_CODE, *step_args]
    finished = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    print(finished.stdout[-3000:].rstrip(), flush=True)
    found = FIRST_BAD.search(finished.stdout)
    if found is None:
        raise BadReference(f"git bisect found no first bad commit: {finished.stderr.strip()}")
    return found[1]


def counts_by_commit(log: Path) -> dict[str, float | None]:
    lines = log.read_text().splitlines() if log.is_file() else []
    return {entry["commit"]: entry["count"] for entry in map(json.loads, lines)}


def parent(commit: str) -> str:
    return sides.git("rev-parse", f"{commit}^").stdout.strip()


def bisect(good: str, bad: str, workload: str, threshold: float) -> int:
    if valgrind() is None:
        raise BadReference("valgrind is not installed (apt-get install valgrind)")
    good_commit = sides.resolve(good, option="GOOD")
    bad_commit = sides.resolve(bad, option="BAD")
    with tempfile.TemporaryDirectory(prefix="bench-bisect-") as scratch:
        log = Path(scratch) / "counts.jsonl"
        worktree = sides.default_worktree(good_commit).with_name(f"bench-bisect-{bad_commit[:12]}")
        with sides.reference_side(good_commit, worktree) as tree:
            reference = count(tree, workload, Path(scratch))
            if reference is None:
                raise BadReference(f"{good}: cannot count workload {workload!r} there")
            limit = reference * (1 + threshold)
            print(f"good {good_commit[:12]}: {reference:,.0f} instructions/request", flush=True)
            first = bisect_run(worktree, good_commit, bad_commit, [workload, str(limit), str(log)])
            sides.git("bisect", "reset", repo=worktree)
        counts = {good_commit: reference, **counts_by_commit(log)}
    before = parent(first)
    print(f"first bad commit: {first} — {counts.get(first, 0):,.0f} instructions/request")
    print(f"its parent:       {before} — {counts.get(before) or 0:,.0f} (good: {reference:,.0f}, "
          f"limit +{threshold:.0%})")  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    parser = Parser(
        prog="python -m bench bisect",
        description="Find the first commit between GOOD and BAD that made one workload cost "
        "more instructions per request (counted under valgrind, one count a commit).",
    )
    parser.add_argument("good", help="a commit, branch or tag with the old count")
    parser.add_argument("bad", help="a later commit with the new count")
    parser.add_argument(
        "--workload", required=True, help="an instruction workload, e.g. servers-raw-plaintext"
    )
    parser.add_argument(
        "--threshold",
        type=threshold_arg,
        default=INSTRUCTION_THRESHOLD,
        help="a commit is bad when its count is past GOOD's by more than this",
    )
    args = parser.parse_args(argv)
    try:
        return bisect(args.good, args.bad, args.workload, args.threshold)
    except BadReference as error:
        return fail("python -m bench bisect", str(error))
    except KeyboardInterrupt:
        print("bisect: interrupted; its worktree is removed", file=sys.stderr)
        return 130
