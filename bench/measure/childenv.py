"""What the runner's children import from: the user's directory, this checkout, their PYTHONPATH.

Servers, Locust and the import checks run from this checkout (``cwd=REPO_ROOT``), so that a user
can start ``python -m bench`` anywhere; they must still import what ``python -m bench`` itself
imports, which starts with the directory it was started in.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the checkout the children run from
REPO_ROOT = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict:
    """Our environment, with the import path of ``python -m bench`` run here: the current
    directory first (a user's app next to them imports), then this checkout, then PYTHONPATH."""
    parts = [os.getcwd(), str(REPO_ROOT), os.environ.get("PYTHONPATH")]
    path = os.pathsep.join(dict.fromkeys(filter(None, parts)))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}
