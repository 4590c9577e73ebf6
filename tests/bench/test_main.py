"""`python -m bench`: the command table and what an unknown command gets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.__main__ import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def test_an_unknown_command_is_named_with_the_valid_ones():
    command = [sys.executable, "-m", "bench", "foo"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [
        "python -m bench: error: unknown command 'foo' (commands: run, load, micro, instructions, "
        "report, compare, baseline, regress, bisect, worker; see --help)"
    ]


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)
