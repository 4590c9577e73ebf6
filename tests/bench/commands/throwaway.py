"""Throwaway git repositories holding the tree under test, for the commands that check out other
commits (regress's reference side, bisect): real clones, real worktrees, real history.

``clone_of_this_tree`` clones this repository's history and commits the working tree on top, so
the clone's HEAD is exactly the code being tested, uncommitted changes included.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: an identity for the clone's commits, whatever the machine's git config holds
IDENTITY = ["-c", "user.name=bench tests", "-c", "user.email=bench-tests@example.invalid"]


def git(repo: Path, *args: str) -> str:
    finished = subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return finished.stdout.strip()


def tree_files() -> list[str]:
    """The tracked and untracked-but-not-ignored files of this checkout."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def clone_of_this_tree(dest: Path, depth: int | None = None) -> Path:
    """A clone of this repository whose HEAD commit is the working tree under test."""
    depth_args = ["--depth", str(depth)] if depth else []
    source = ROOT.as_uri() if depth else str(ROOT)  # --depth is ignored for a local path
    subprocess.run(
        ["git", "clone", "-q", "--no-checkout", *depth_args, source, str(dest)], check=True
    )
    for name in tree_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "--allow-empty", "-m", "the tree under test")
    return dest


def commit_edit(repo: Path, path: str, old: str, new: str, message: str) -> str:
    """Replace ``old`` with ``new`` in ``path`` (once, and it must be there), commit; the sha."""
    file = repo / path
    text = file.read_text()
    assert text.count(old) >= 1, f"{old!r} is not in {path}"
    file.write_text(text.replace(old, new, 1))
    git(repo, "commit", "-q", "-am", message)
    return git(repo, "rev-parse", "HEAD")


def worktrees(repo: Path) -> list[str]:
    """The worktree paths git has registered for ``repo`` (its own checkout first)."""
    listed = git(repo, "worktree", "list", "--porcelain")
    return [line.split(" ", 1)[1] for line in listed.splitlines() if line.startswith("worktree ")]
