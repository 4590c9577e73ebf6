"""``bench bisect`` on a real throwaway clone: a slowdown planted a few commits back is found by
its instruction count, and by a timed micro case; a bad argument is one line and exit 2."""

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


#: 100 µs of CPU per request head read, past any noise of a timed case that parses one
PLANTED_WAIT = (
    "        raw = bytes(buf[: end + 2])\n",
    "        until = __import__('time').perf_counter() + 100e-6\n"
    "        while __import__('time').perf_counter() < until:\n"
    "            pass\n"
    "        raw = bytes(buf[: end + 2])\n",
)
#: a timed case that parses a request line per call, and the -k its references share
CYCLE = "test_server_cycle[servers]"


def harmless(repo: Path, number: int) -> str:
    return commit_edit(repo, "servers/http.py", "\n", f"\n# note {number}\n", f"note {number}")


def planted_three_back(repo: Path, edit: tuple[str, str]) -> tuple[str, str]:
    """GOOD, then a harmless commit, ``edit`` (its sha is returned), three harmless commits."""
    good = git(repo, "rev-parse", "HEAD")
    harmless(repo, 1)
    planted = commit_edit(repo, "servers/http.py", *edit, "a slowdown per request line")
    for number in (2, 3, 4):
        harmless(repo, number)
    return good, planted


def reported(lines: list[str], prefix: str) -> tuple[str, str]:
    """The commit and the measure printed on the line starting with ``prefix``."""
    line = next(line for line in lines if line.startswith(prefix))
    commit, _, rest = line.removeprefix(prefix).strip().partition(" — ")
    return commit, rest.split(" ")[0]


def number(shown: str) -> float:
    """A measure as printed: ``12,345`` instructions or a ``0.512×`` ratio."""
    return float(shown.replace(",", "").rstrip("×"))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "edit, measure, least",
    [
        pytest.param(PLANTED_LOOP, ["--workload", SERVER], 1.02, marks=needs_valgrind,
                     id="instructions"),
        pytest.param(PLANTED_WAIT, ["--case", CYCLE], 1.25, id="timed-case"),
    ],
)  # fmt: skip
def test_bisect_finds_a_slowdown_planted_three_commits_back(tmp_path, edit, measure, least):
    repo = clone_of_this_tree(tmp_path / "clone")
    good, planted = planted_three_back(repo, edit)
    finished = bisect(repo, good, "HEAD", *measure, timeout=850)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr
    lines = finished.stdout.splitlines()
    first, after = reported(lines, "first bad commit:")
    assert first == planted
    parent, before = reported(lines, "its parent:")
    assert parent == git(repo, "rev-parse", f"{planted}^")
    assert number(after) > number(before) * least
    assert worktrees(repo) == [str(repo)]
    assert git(repo, "rev-parse", "HEAD") != good  # the user's checkout was never moved


def test_an_unknown_case_is_one_line_naming_it_and_nothing_is_left(tmp_path):
    repo = clone_of_this_tree(tmp_path / "clone")
    finished = bisect(repo, "HEAD~1", "HEAD", "--case", "test_no_such_case[servers]")
    assert finished.returncode == 2
    (line,) = finished.stderr.strip().splitlines()
    assert "test_no_such_case[servers]" in line and "no such micro case" in line
    assert worktrees(repo) == [str(repo)]


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["no-such-commit", "HEAD", "--workload", SERVER], "GOOD no-such-commit"),
        (["HEAD~1", "HEAD", "--workload", SERVER, "--threshold", "lots"], "threshold"),
        (["HEAD~1", "HEAD", "--workload", SERVER, "--case", CYCLE], "not allowed with"),
        (["HEAD~1", "HEAD"], "--workload --case is required"),
        (["HEAD~1", "HEAD", "--case", "server_cycle"], "'server_cycle' is not a micro case"),
        (["HEAD~1", "HEAD", "--case", CYCLE, "--repeats", "0"], "--repeats 0"),
        (["HEAD~1", "HEAD", "--workload", SERVER, "--repeats", "2"], "--case only"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path, args, phrase):
    finished = bisect(Path(__file__).resolve().parents[3], *args)
    assert finished.returncode == 2
    assert len(finished.stderr.strip().splitlines()) == 1
    assert phrase in finished.stderr
