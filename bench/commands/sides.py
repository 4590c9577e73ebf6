"""The two sides of an A/B regression run: this checkout, and a reference commit checked out into
a temporary git worktree.

Each side is measured by its own code: its own ``python -m bench`` CLI, run in its own tree with
the same interpreter and libraries, the tree first on ``PYTHONPATH`` (ahead of this checkout's
editable install, which Python consults only after ``sys.path``). Before anything is measured,
each side proves which tree it imports.

A reference that cannot be measured (it does not resolve, a shallow clone lacks it, it predates
the benchmarks, its worktree path is taken) is a ``BadReference``: one line naming the problem and
what to do. The worktree goes away afterwards, also on Ctrl-C, SIGTERM or a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.rundir import META_FILE, read_meta

#: the repository this code runs from: HEAD's side, and where the reference is looked up
REPO_ROOT = Path(__file__).resolve().parents[2]
#: what a tree must hold for its micro benchmarks to run through the CLI
BENCHMARK_ENTRY = "bench/micro/cli.py"
#: the packages whose origin each side proves before it is measured
OWN_PACKAGES = ("bench", "servers", "framework")
#: how long an interrupted command may take to stop its servers before it is killed
STOP_TIMEOUT_S = 60
#: ``--against`` naming no commit: judge against the stored numbers of results/baseline
STORED = "none"


class BadReference(Exception):
    """The reference cannot be measured; the message names the problem and what to do."""


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a tree and the commit it holds."""

    #: "ref" or "head": also the side's directory in the run
    name: str
    #: the source tree whose ``python -m bench`` measures this side
    tree: Path
    #: the commit checked out there (``+dirty`` for a checkout with changes)
    commit: str

    def env(self) -> dict[str, str]:
        """Our environment with this side's tree first on the import path."""
        rest = os.environ.get("PYTHONPATH")
        path = os.pathsep.join(filter(None, [str(self.tree), rest]))
        return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}

    def bench(self, args: list[str]) -> int:
        """``python -m bench ARGS`` in this side's tree; its exit code.

        The command runs in a session of its own, so an interrupt reaches it once, from here:
        one SIGINT, which it answers as it answers Ctrl-C (a load run stops its servers)."""
        print(f"[{self.name} {self.commit[:12]}] bench {' '.join(args)}", flush=True)
        command = [sys.executable, "-m", "bench", *args]
        child = None
        try:  # an interrupt may come at any moment, even before the command starts
            child = subprocess.Popen(command, cwd=self.tree, env=self.env(), start_new_session=True)
            return child.wait()
        except KeyboardInterrupt:
            if child is not None:
                stop(child)
            raise

    def imported_from(self) -> dict[str, str]:
        """Where this side's processes import our packages from."""
        code = f"import json, {', '.join(OWN_PACKAGES)}; print(json.dumps({{m.__name__: " \
               f"m.__file__ for m in ({', '.join(OWN_PACKAGES)},)}}))"  # fmt: skip
        found = subprocess.run([sys.executable, "-c", code], cwd=self.tree, env=self.env(),
                               capture_output=True, text=True)  # fmt: skip
        if found.returncode != 0:
            raise BadReference(f"{self.name} side cannot import its packages: "
                               f"{found.stderr.strip().splitlines()[-1:]}")  # fmt: skip
        return json.loads(found.stdout)

    def check_imports(self) -> None:
        """Refuse to measure a side that would run another tree's code."""
        for package, path in self.imported_from().items():
            if not Path(path).resolve().is_relative_to(self.tree.resolve()):
                raise BadReference(
                    f"the {self.name} side imports {package} from {path}, not from {self.tree}; "
                    "install the project editable (pip install -e .), not as a copy"
                )


def stop(child: subprocess.Popen) -> None:
    """One SIGINT, as a terminal's Ctrl-C; killed if it has not stopped in STOP_TIMEOUT_S."""
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


# --- git ------------------------------------------------------------------------------------------


def git(*args: str, repo: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def head_commit(repo: Path = REPO_ROOT) -> str:
    commit = git("rev-parse", "HEAD", repo=repo).stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no", repo=repo).stdout.strip()
    return commit + ("+dirty" if dirty else "")


def is_shallow(repo: Path) -> bool:
    return git("rev-parse", "--is-shallow-repository", repo=repo).stdout.strip() == "true"


def resolve(ref: str, repo: Path = REPO_ROOT, option: str = "--against") -> str:
    """The full commit ``ref`` (given as ``option``) names, or BadReference saying why not."""
    if git("rev-parse", "--git-dir", repo=repo).returncode != 0:
        raise BadReference(f"{repo} is not a git checkout, so no reference can be checked out; "
                           "clone the repository, or pass --against none")  # fmt: skip
    found = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", repo=repo)
    if found.returncode == 0:
        return found.stdout.strip()
    if is_shallow(repo):
        raise BadReference(
            f"{option} {ref}: not in this shallow clone; fetch the history (git fetch "
            "--unshallow, or actions/checkout with fetch-depth: 0)"
        )
    raise BadReference(f"{option} {ref}: no such commit, branch or tag here; give one that "
                       "`git rev-parse` knows")  # fmt: skip


def check_has_benchmarks(commit: str, ref: str, repo: Path = REPO_ROOT) -> None:
    if git("cat-file", "-e", f"{commit}:{BENCHMARK_ENTRY}", repo=repo).returncode != 0:
        raise BadReference(
            f"--against {ref}: commit {commit[:12]} has no micro benchmarks ({BENCHMARK_ENTRY}) "
            "to run; choose a later reference"
        )


def merge_base(base_branch: str, repo: Path = REPO_ROOT) -> str:
    """The merge-base of HEAD with ``origin/BRANCH`` (or ``BRANCH``): what a pull request
    changes is measured against."""
    for candidate in (f"origin/{base_branch}", base_branch):
        found = git("merge-base", "HEAD", candidate, repo=repo)
        if found.returncode == 0:
            return found.stdout.strip()
    raise BadReference(
        f"no merge-base of HEAD with {base_branch} (GITHUB_BASE_REF): fetch the base branch "
        "with full history (fetch-depth: 0), or pass --against"
    )


def baseline_commit(baseline_dir: Path) -> str:
    """The commit results/baseline was measured on, without its ``+dirty`` mark."""
    meta = read_meta(baseline_dir)
    if not meta:
        raise BadReference(
            f"{baseline_dir}/{META_FILE}: cannot read the baseline's commit; pass --against REF"
        )
    commit = str(meta.get("commit") or "")
    if not commit or commit == "unknown":
        raise BadReference(f"{baseline_dir}/{META_FILE} names no commit; pass --against REF")
    return commit.removesuffix("+dirty")


def default_reference(baseline_dir: Path, repo: Path = REPO_ROOT) -> tuple[str, str]:
    """The reference when ``--against`` is not given, and why it is that one."""
    base_branch = os.environ.get("GITHUB_BASE_REF")
    if base_branch:
        return merge_base(base_branch, repo), f"the merge-base with {base_branch} (a pull request)"
    shown = baseline_dir.relative_to(repo) if baseline_dir.is_relative_to(repo) else baseline_dir
    return baseline_commit(baseline_dir), f"the commit {shown} was measured on"


# --- the reference's worktree --------------------------------------------------------------------


def default_worktree(commit: str, repo: Path = REPO_ROOT) -> Path:
    """A path of its own for each repository and reference, outside the checkout."""
    owner = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"bench-ref-{commit[:12]}-{owner}"


def raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def reference_side(commit: str, path: Path, repo: Path = REPO_ROOT) -> Iterator[Side]:
    """REF checked out (detached) at ``path`` for the duration; removed however the block ends.

    SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C, so a cancelled CI job or a closed
    terminal unwinds through the same ``finally``.
    """
    if path.exists():
        raise BadReference(
            f"{path} already exists (left by an interrupted run?); remove it with "
            f"`git worktree remove --force {path}` (or rm -r it), or pass --worktree elsewhere"
        )
    previous = {sig: signal.signal(sig, raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        added = git("worktree", "add", "--detach", str(path), commit, repo=repo)
        if added.returncode != 0:
            raise BadReference(f"cannot check {commit[:12]} out at {path}: "
                               f"{added.stderr.strip().splitlines()[-1:]}")  # fmt: skip
        print(f"reference tree: {path} ({commit[:12]})", flush=True)
        yield Side("ref", path, commit)
    finally:
        remove_worktree(path, repo)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def remove_worktree(path: Path, repo: Path = REPO_ROOT) -> None:
    """Remove the worktree and git's record of it, whatever state it was left in."""
    if repo.is_dir():  # (a checkout deleted under a running command has no record to update)
        git("worktree", "remove", "--force", str(path), repo=repo)
    if path.exists():  # not registered (add failed half way): a plain directory of ours
        shutil.rmtree(path, ignore_errors=True)
    if repo.is_dir():
        git("worktree", "prune", repo=repo)
