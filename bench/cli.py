"""The argument parser every ``python -m bench`` command uses: one-line errors, plain-text help.

A bad argument is one line on stderr naming the value and what is valid (no usage block to scroll
past), exit code 2. Help shows each option's default, and descriptions taken from docstrings lose
their reStructuredText backticks so they read as plain text in a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn


def plain(text: str | None) -> str | None:
    """Docstring text as a terminal shows it: no ``literal`` or `code` backticks."""
    return text.replace("``", "").replace("`", "") if text else text


class HelpFormatter(argparse.HelpFormatter):
    """An option's help ends with its default when it has a meaningful one (None and False mean
    "not given", and say so in the help text itself)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = plain(action.help) or ""
        default = action.default
        unset = default is None or default is False or default == argparse.SUPPRESS
        shown = not unset and action.option_strings
        if shown and "%(default)" not in text and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line errors and plain-text help showing defaults."""

    def __init__(self, prog: str, description: str | None = None, **kwargs) -> None:
        super().__init__(
            prog=prog, description=plain(description), formatter_class=HelpFormatter, **kwargs
        )

    def error(self, message: str) -> NoReturn:
        """One line: what is wrong, then where to read more."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str) -> int:
    """Print a one-line error for a check made after parsing; the exit code of unusable input."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


# --- the options every measuring command shares -------------------------------------------------


def add_profile(parser: argparse.ArgumentParser, profiles: Iterable[str], measures: str) -> None:
    """``--profile``: how long and how much to measure; ``measures`` says what it sets here."""
    parser.add_argument(
        "--profile",
        choices=sorted(profiles),
        default="quick",
        help=f"how much to measure — {measures}",
    )


def add_run_dir(parser: argparse.ArgumentParser) -> None:
    """``--run-dir``: where the command writes (a new ``results/<run-id>`` by default)."""
    parser.add_argument(
        "--run-dir", type=Path, help="the directory to write into (default: a new results/<run-id>)"
    )


def add_resume(parser: argparse.ArgumentParser, keeps: str) -> None:
    """``--resume``: finish the run in ``--run-dir``, keeping what ``keeps`` says."""
    parser.add_argument(
        "--resume", action="store_true", help=f"finish the run in --run-dir: keep {keeps}"
    )
