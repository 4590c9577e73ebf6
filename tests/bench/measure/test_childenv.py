"""The runner's children import what ``python -m bench`` imports: a user's app beside them first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.measure.childenv import REPO_ROOT, child_env
from bench.measure.workload import WorkloadError, check_app

USER_APP = "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'']\n"


def test_the_current_directory_comes_first_then_the_checkout_then_pythonpath(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    path = child_env()["PYTHONPATH"].split(os.pathsep)
    assert path == [str(tmp_path), str(REPO_ROOT), "/somewhere/else"]


def test_the_checkout_is_listed_once_when_started_in_it(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert child_env()["PYTHONPATH"] == str(REPO_ROOT)


def test_a_users_app_beside_them_passes_the_import_check_and_imports_in_a_server(
    tmp_path, monkeypatch
):
    (tmp_path / "myapp.py").write_text(USER_APP)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with pytest.raises(WorkloadError, match="does not import"):
        check_app("myapp:app")  # started elsewhere, the app is nowhere to be found
    monkeypatch.chdir(tmp_path)
    check_app("myapp:app")
    # a server starts from the checkout, as the runner starts it, and still finds the app
    done = subprocess.run(
        [sys.executable, "-c", "import myapp, servers; print(myapp.__file__)"],
        cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == tmp_path / "myapp.py"
