"""The ratio table printed at the end of a micro run: case, median, IQR, ratio to its references.

A ratio reads "this case takes N× the time of that reference, measured in the same run":
``full_cycle_plaintext · framework  …  1.9× werkzeug, 0.45× flask``.
"""

from __future__ import annotations

from bench.microcases import MicroCase, by_name, ratios

GROUP_ORDER = ("stack", "routing", "dispatch", "full-cycle", "servers")


def format_duration(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    return f"{seconds * 1e3:.3g} ms"


def format_ratio(value: float) -> str:
    return f"{value:.2f}×" if value < 10 else f"{value:.0f}×"


def ratio_text(case: MicroCase, cases_by_name: dict[str, MicroCase]) -> str:
    found = ratios(case, cases_by_name)
    if not found:
        return "reference"
    return ", ".join(f"{format_ratio(value)} {other.subject}" for other, value in found)


def sorted_cases(cases: list[MicroCase]) -> list[MicroCase]:
    """By group (in GROUP_ORDER), then operation, then the framework before its references."""

    def order(case: MicroCase) -> tuple:
        group_rank = (
            GROUP_ORDER.index(case.group) if case.group in GROUP_ORDER else len(GROUP_ORDER)
        )
        return group_rank, case.group, case.operation, case.is_reference

    return sorted(cases, key=order)


def ratio_table(cases: list[MicroCase]) -> str:
    cases_by_name = by_name(cases)
    rows = [("group", "case", "median", "IQR", "ratio (this case's time ÷ the reference's)")]
    rows += [
        (
            case.group,
            f"{case.operation} · {case.subject}",
            format_duration(case.median_s),
            format_duration(case.iqr_s),
            ratio_text(case, cases_by_name),
        )
        for case in sorted_cases(cases)
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[2].rjust(widths[2]), row[3].rjust(widths[3]), row[4]]
        lines.append("  ".join(cells))
    return "\n".join(lines)
