"""``python -m bench compare``'s options: a share reads as 10% or 0.1, anything else is refused in
one line naming the value (exit 2). What it judges is tested in tests/bench/analysis."""

from __future__ import annotations

import pytest

from bench.commands.compare import floor_arg, main, threshold_arg


@pytest.mark.parametrize(("text", "value"), [("10%", 0.1), ("0.1", 0.1), ("25%", 0.25)])
def test_threshold_accepts_percent_or_fraction(text, value):
    assert threshold_arg(text) == pytest.approx(value)


@pytest.mark.parametrize(("text", "value"), [("150%", 1.5), ("0", 0.0), ("2.5", 2.5)])
def test_the_load_floor_may_be_zero_or_past_100_percent(text, value):
    assert floor_arg(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("option", "text", "says"),
    [
        *(("--threshold", text, "threshold must look like 10% or 0.1") for text in
          ("10", "0", "-5%", "abc", "%", "150%")),
        *(("--alpha", text, "alpha must look like 0.01 (a level between 0 and 1)") for text in
          ("2", "0", "-0.1", "x", "nan")),
        ("--load-floor", "-1", "load floor must look like 150% or 1.5"),
    ],
)  # fmt: skip
def test_a_bad_share_is_refused_in_one_line_naming_it(capsys, option, text, says):
    with pytest.raises(SystemExit) as stopped:
        main(["a", "b", f"{option}={text}"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"{option}: {says}, not {text!r}" in err
