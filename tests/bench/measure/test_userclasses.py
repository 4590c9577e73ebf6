"""Listing a locustfile's user classes in a subprocess, the way the runner does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "bench" / "fixtures" / "byoapp"


def listing(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.measure.userclasses", str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_every_user_class_with_its_probe_and_description():
    done = listing(FIXTURES / "scenarios.py")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {
            "class": "GreeterUser",
            "probe": ["/greet", "hello"],
            "description": "Asks for a greeting, and once in a while for a page that lacks it.",
        },
        {
            "class": "Greeter2User",
            "probe": None,
            "description": "The same greeting through Locust's requests-based client; no probe: "
            "any answer will do.",
        },
    ]


def test_abstract_classes_are_not_listed():
    done = listing(FIXTURES / "empty.py")
    assert (done.returncode, json.loads(done.stdout)) == (0, [])


def test_our_own_locustfile_lists_its_scenarios_without_the_abstract_base():
    done = listing(REPO_ROOT / "bench" / "measure" / "scenarios.py")
    names = {user["class"] for user in json.loads(done.stdout)}
    assert "PlaintextUser" in names and "CheckedUser" not in names


def test_a_file_that_does_not_import_is_one_line_and_exit_2(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    done = listing(broken)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ModuleNotFoundError: No module named 'no_such_module_here'"
    ]
