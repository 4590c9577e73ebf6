"""The parser every bench command uses: one-line errors, defaults in help, plain-text help."""

from __future__ import annotations

import pytest

from bench.cli import Parser, plain


def parser() -> Parser:
    built = Parser("python -m bench demo", description="Reads ``meta.json`` of a `run`.")
    built.add_argument("--count", type=int, default=3, help="how many")
    built.add_argument("--name", help="a name (default: the profile's)")
    built.add_argument("--flag", action="store_true", help="a switch")
    return built


def test_an_error_is_one_line_naming_the_command(capsys):
    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(["--count", "x"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("python -m bench demo: error: argument --count: invalid int value: 'x'")


def test_help_shows_meaningful_defaults_and_no_backticks(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "how many (default: 3)" in text
    assert "a name (default: the profile's)" in text  # said once, not "(default: None)" too
    assert "a switch" in text and "default: False" not in text
    assert "Reads meta.json of a run." in text and "`" not in text


def test_plain_drops_restructuredtext_backticks():
    assert plain("``load`` and `run`") == "load and run"
