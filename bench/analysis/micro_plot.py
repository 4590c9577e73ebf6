"""micro.png: per group, one horizontal bar per case (median, IQR whiskers), ratio labels on bars.

Our own cases (the framework's, and the servers' HTTP layer's) are drawn in colour, references in
grey with hatching, so the eye finds our code first and reads its distance to each reference.
The x axis is logarithmic: one group spans a bare ContextVar (tens of ns) to a rendered template
(tens of µs).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bench.analysis.micro_table import GROUP_ORDER, ratio_text, sorted_cases
from bench.microcases import MicroCase, by_name

FRAMEWORK_COLOUR = "tab:blue"
REFERENCE_COLOUR = "0.7"


def quartiles(case: MicroCase) -> tuple[float, float]:
    """First and third quartile from the samples; median ± IQR/2 when the samples are missing."""
    if len(case.samples_s) >= 4:
        first, _, third = statistics.quantiles(case.samples_s, n=4)
        return first, third
    return case.median_s - case.iqr_s / 2, case.median_s + case.iqr_s / 2


def label_twos_and_fives(value: float, _position: int) -> str:
    """Minor tick labels at 2× and 5× each power of ten only: more would overlap."""
    if value <= 0:
        return ""
    leading_digit = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if leading_digit in (2, 5) else ""


def groups_of(cases: list[MicroCase]) -> list[str]:
    present = {case.group for case in cases}
    return [group for group in GROUP_ORDER if group in present] + sorted(present - set(GROUP_ORDER))


def draw_group(axes, group: str, cases: list[MicroCase], cases_by_name: dict) -> None:
    rows = [case for case in sorted_cases(cases) if case.group == group]
    medians_us = [case.median_s * 1e6 for case in rows]
    spreads = [quartiles(case) for case in rows]
    # error bars are distances from the median, never negative
    lower = [
        max(case.median_s - first, 0) * 1e6 for case, (first, _) in zip(rows, spreads, strict=True)
    ]
    upper = [
        max(third - case.median_s, 0) * 1e6 for case, (_, third) in zip(rows, spreads, strict=True)
    ]
    positions = range(len(rows))
    bars = axes.barh(
        positions,
        medians_us,
        xerr=[lower, upper],
        color=[REFERENCE_COLOUR if case.is_reference else FRAMEWORK_COLOUR for case in rows],
        capsize=2,
    )
    for bar, case, (_, third) in zip(bars, rows, spreads, strict=True):
        if case.is_reference:
            bar.set_hatch("//")
        axes.annotate(
            f" {ratio_text(case, cases_by_name)}",
            (max(case.median_s, third) * 1e6, bar.get_y() + bar.get_height() / 2),
            va="center",
            fontsize=7,
        )
    axes.set_yticks(list(positions), [f"{case.operation} · {case.subject}" for case in rows])
    axes.tick_params(axis="y", labelsize=7)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(FuncFormatter(label_twos_and_fives))
    axes.tick_params(axis="x", which="minor", labelsize=6)
    axes.set_xlabel("median µs per call (log scale; whiskers: IQR)")
    axes.set_title(group, loc="left", fontweight="bold")
    axes.margins(x=0.35)


def draw_micro_chart(cases: list[MicroCase], out_png: Path, title: str = "") -> Path:
    """Draw every group of ``cases`` into ``out_png`` and return its path."""
    groups = groups_of(cases)
    heights = [max(1, sum(case.group == group for case in cases)) for group in groups]
    figure = Figure(figsize=(10, 1.2 + 0.28 * sum(heights) + 0.6 * len(groups)))
    axes_list = figure.subplots(
        len(groups), 1, gridspec_kw={"height_ratios": heights}, squeeze=False
    )
    cases_by_name = by_name(cases)
    for axes, group in zip(axes_list[:, 0], groups, strict=True):
        draw_group(axes, group, cases, cases_by_name)
    figure.suptitle(title or "microbenchmarks: our code (blue) beside references (grey, hatched)")
    figure.tight_layout(rect=(0, 0, 1, 0.98))  # leave room for the title
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=110)
    return out_png
