"""The reference side of an A/B run, on real throwaway clones: a bad reference is one line and
exit 2 with nothing left behind, through the whole ``python -m bench regress`` command; the
worktree goes away however the run ends, a real SIGINT or SIGTERM included; each side proves it
imports its own tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.commands import sides
from bench.commands.sides import BadReference, Side
from tests.bench.commands.throwaway import clone_of_this_tree, commit_edit, git, worktrees


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """One clone for the tests that leave its history alone."""
    return clone_of_this_tree(tmp_path_factory.mktemp("sides") / "clone")


def regress(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m bench regress ARGS`` run in ``repo`` with ``repo``'s own code."""
    env = {key: value for key, value in os.environ.items() if key != "GITHUB_BASE_REF"}
    return subprocess.run(
        [sys.executable, "-m", "bench", "regress", *args],
        cwd=repo, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def left_behind(repo: Path) -> dict:
    """What a run may have created: run directories, worktrees, reference checkouts."""
    ours = sides.default_worktree("0" * 40, repo).name.rsplit("-", 1)[1]
    return {
        "results": sorted(path.name for path in (repo / "results").iterdir()),
        "worktrees": worktrees(repo),
        "checkouts": sorted(
            p.name for p in Path(sides.tempfile.gettempdir()).glob(f"bench-*-{ours}")
        ),
    }


def assert_refused(repo: Path, args: list[str], *phrases: str) -> None:
    before = left_behind(repo)
    finished = regress(repo, *args)
    assert finished.returncode == 2, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    for phrase in phrases:
        assert phrase in lines[0]
    assert left_behind(repo) == before


def test_a_reference_that_does_not_resolve_is_refused(clone):
    assert_refused(clone, ["--against", "no-such-branch"], "no-such-branch", "git rev-parse")


def test_a_reference_older_than_the_benchmarks_is_refused(clone):
    first = git(clone, "rev-list", "--max-parents=0", "HEAD")
    assert_refused(clone, ["--against", first], first, "no micro benchmarks", "later reference")


def test_a_reference_a_shallow_clone_lacks_is_refused(tmp_path):
    shallow = clone_of_this_tree(tmp_path / "shallow", depth=1)
    assert_refused(shallow, ["--against", "HEAD~3"], "HEAD~3", "shallow clone", "--unshallow")


def test_a_worktree_path_already_present_is_refused_and_kept(clone, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert_refused(clone, ["--against", "HEAD~1", "--worktree", str(taken)], str(taken), "remove")
    assert (taken / "notes.txt").read_text() == "mine"


def test_the_stored_baseline_without_a_commit_is_refused(clone, tmp_path):
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    (baseline / "meta.json").write_text(json.dumps({"commit": "unknown"}))
    assert_refused(clone, ["--baseline", str(baseline)], "names no commit", "--against REF")


def test_the_default_reference_is_the_baselines_commit_without_its_dirty_mark(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"commit": "b1283cd54baa+dirty"}))
    assert sides.baseline_commit(tmp_path) == "b1283cd54baa"


def test_outside_a_pull_request_the_default_reference_is_the_baselines_commit(clone, monkeypatch):
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)
    name, why = sides.default_reference(clone / "results" / "baseline", clone)
    recorded = json.loads((clone / "results" / "baseline" / "meta.json").read_text())["commit"]
    assert name == recorded.removesuffix("+dirty")
    assert why == "the commit results/baseline was measured on"


def test_on_a_pull_request_the_default_reference_is_the_merge_base(tmp_path, monkeypatch):
    repo = clone_of_this_tree(tmp_path / "clone")
    git(repo, "branch", "base")
    fork_point = git(repo, "rev-parse", "HEAD")
    commit_edit(repo, "servers/http.py", "\n", "\n# a change of this pull request\n", "change")
    git(repo, "checkout", "-q", "base")
    commit_edit(repo, "framework/__init__.py", "\n", "\n# base moved on\n", "base moves")
    git(repo, "checkout", "-q", "-")
    monkeypatch.setenv("GITHUB_BASE_REF", "base")
    name, why = sides.default_reference(repo / "results" / "baseline", repo)
    assert name == fork_point
    assert "merge-base with base" in why


def test_the_worktree_goes_away_when_the_run_fails(clone, tmp_path):
    path = tmp_path / "ref"
    with pytest.raises(RuntimeError), sides.reference_side("HEAD~1", path, repo=clone) as ref:
        assert (path / "bench" / "micro" / "cli.py").is_file()
        assert str(path) in worktrees(clone)
        ref.check_imports()
        raise RuntimeError("a crash half way")
    assert not path.exists()
    assert worktrees(clone) == [str(clone)]


#: a run that checks the reference out, says so, and waits to be stopped
HOLD_THE_REFERENCE = """
import signal, sys
from pathlib import Path
from bench.commands import sides
try:
    with sides.reference_side("HEAD~1", Path(sys.argv[1])):
        print("checked out", flush=True)
        signal.pause()
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_worktree_goes_away_on_a_real_signal(clone, tmp_path, sig):
    path = tmp_path / "ref"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_REFERENCE, str(path)],
        cwd=clone, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = iter(child.stdout.readline, "")
    assert "checked out\n" in lines  # reads up to that line: the tree is there now
    assert path.is_dir()
    child.send_signal(sig)
    assert child.wait(timeout=30) == 130
    assert not path.exists()
    assert worktrees(clone) == [str(clone)]


def test_each_side_imports_its_own_tree_not_the_editable_install(clone, tmp_path):
    with sides.reference_side("HEAD~1", tmp_path / "ref", repo=clone) as ref:
        found = ref.imported_from()
    assert set(found) == set(sides.OWN_PACKAGES)
    assert all(Path(path).is_relative_to(tmp_path / "ref") for path in found.values())


def test_a_side_that_would_import_another_tree_is_refused(tmp_path):
    empty = Side("ref", tmp_path, "0" * 40)  # nothing here: the editable install answers
    with pytest.raises(BadReference, match="imports bench from"):
        empty.check_imports()
