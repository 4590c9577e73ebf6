"""``bench bisect`` on a real throwaway clone: a slowdown planted a few commits back is found by
its instruction count, and a bad argument is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.commands.test_ab import PLANTED_LOOP
from tests.bench.commands.throwaway import clone_of_this_tree, commit_edit, git, worktrees
from tests.bench.micro.test_instructions import SERVER, needs_valgrind


def bisect(repo: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "bisect", *args],
        cwd=repo, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def harmless(repo: Path, number: int) -> str:
    return commit_edit(repo, "servers/http.py", "\n", f"\n# note {number}\n", f"note {number}")


@needs_valgrind
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bisect_finds_a_slowdown_planted_three_commits_back(tmp_path):
    repo = clone_of_this_tree(tmp_path / "clone")
    good = git(repo, "rev-parse", "HEAD")
    harmless(repo, 1)
    planted = commit_edit(repo, "servers/http.py", *PLANTED_LOOP, "a loop per request line")
    for number in (2, 3, 4):
        harmless(repo, number)
    finished = bisect(repo, good, "HEAD", "--workload", SERVER, timeout=850)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr
    lines = finished.stdout.splitlines()
    first = next(line for line in lines if line.startswith("first bad commit:"))
    assert planted in first
    parent = next(line for line in lines if line.startswith("its parent:"))
    before = int(parent.split("— ")[1].split(" ")[0].replace(",", ""))
    after = int(first.split("— ")[1].split(" ")[0].replace(",", ""))
    assert after > before * 1.02
    assert worktrees(repo) == [str(repo)]
    assert git(repo, "rev-parse", "HEAD") != good  # the user's checkout was never moved


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["no-such-commit", "HEAD", "--workload", SERVER], "GOOD no-such-commit"),
        (["HEAD~1", "HEAD", "--workload", SERVER, "--threshold", "lots"], "threshold"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, args, phrase):
    finished = bisect(Path(__file__).resolve().parents[3], *args)
    assert finished.returncode == 2
    assert len(finished.stderr.strip().splitlines()) == 1
    assert phrase in finished.stderr
