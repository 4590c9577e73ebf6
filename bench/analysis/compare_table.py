"""The comparison as a terminal shows it: one line per row, then the tally of what was judged."""

from __future__ import annotations

from bench.analysis.compare import (
    INSTRUCTION_THRESHOLD,
    MIN_SAMPLES,
    NOT_COMPARABLE,
    NOT_JUDGED,
    REGRESSED,
    Row,
    judged,
)
from bench.analysis.ratios import RowKind
from bench.rundir import Run


def tally(rows: list[Row]) -> str:
    """How many rows regressed, how many were judged and how many could not be."""
    regressed = sum(row.verdict == REGRESSED for row in rows)
    not_comparable = sum(row.verdict == NOT_COMPARABLE for row in rows)
    not_judged = len(rows) - len(judged(rows)) - not_comparable
    text = f"{regressed} regressed of {len(judged(rows))} judged rows, "
    text += f"{not_judged} not judged: {NOT_JUDGED}"
    return text + (f", {not_comparable} {NOT_COMPARABLE}" if not_comparable else "")


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def table_cells(row: Row) -> list[str]:
    interval = "-" if row.change_ci is None else f"{row.change_ci[0]:+.0%}..{row.change_ci[1]:+.0%}"
    p = "-" if row.p is None else f"{row.p:.2g}"
    verdict = f"{row.verdict} ({row.note})" if row.note else row.verdict
    return [
        row.name,
        number(row.baseline),
        number(row.current),
        percent(row.change),
        interval,
        p,
        verdict,
    ]


def format_table(
    rows: list[Row],
    threshold: float,
    alpha: float,
    instruction_threshold: float = INSTRUCTION_THRESHOLD,
) -> str:
    header = ["ratio", "baseline", "current", "change", "95% CI", "p", "verdict"]
    lines = [header] + [table_cells(row) for row in rows]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header) - 1)]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        + "  "
        + line[-1]
        for line in lines
    ]
    counted = [row for row in rows if row.kind is RowKind.INSTRUCTIONS]
    timed = [row for row in rows if row not in counted]
    text.append(
        f"threshold {threshold:.0%}, one-sided Mann-Whitney U p < {alpha:g}, "
        f"at least {MIN_SAMPLES} samples a side: {tally(timed)}"
    )
    if counted:
        text.append(
            f"instructions per request: threshold {instruction_threshold:.0%}, no test (counts "
            f"are deterministic): {tally(counted)}"
        )
    if not judged(rows):
        text.append(
            f"nothing was judged, so this comparison cannot pass: load rows need at least "
            f"{MIN_SAMPLES} samples a side (seconds of rps, repeats of p99: e.g. --duration 5, "
            f"or --repeats {MIN_SAMPLES} for p99) and cells that are not generator-bound"
        )
    return "\n".join(text)


def describe(run: Run) -> str:
    meta = run.meta
    details = ", ".join(str(meta[key]) for key in ("commit", "date", "machine") if meta.get(key))
    return f"{run.source}" + (f" ({details})" if details else "")


def print_comparison(
    baseline: Run,
    current: Run,
    rows: list[Row],
    threshold: float,
    alpha: float,
    instruction_threshold: float = INSTRUCTION_THRESHOLD,
) -> None:
    print(f"baseline: {describe(baseline)}\ncurrent:  {describe(current)}\n")
    print(format_table(rows, threshold, alpha, instruction_threshold))
