"""Requests/s and p99 over each cell's measured window: small multiples, one panel per cell.

A mean hides a window that stalled for two seconds or warmed up late; this draws what the
runner recorded once a second (``rps_series`` and ``p99_ms_series`` of each repeat, repeats side
by side), one panel per server and user level of a scenario, on shared axes so panels compare at
a glance. A failed cell gets a panel with its error instead of empty axes. It reads cell records
only and writes one PNG per scenario.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from bench import flags  # noqa: E402

#: panels per row of the figure
COLUMNS = 4
#: inches per panel
PANEL_SIZE = (3.1, 1.9)
RPS_COLOUR, P99_COLOUR = "#1f77b4", "#d62728"


def seconds_of(cell: dict) -> list[tuple[int, float, float | None]]:
    """(repeat, requests/s, p99 ms) of each recorded second, repeats one after another."""
    points = []
    for index, repeat in enumerate(cell.get("repeats") or []):
        rates = repeat.get("rps_series") or []
        p99s = repeat.get("p99_ms_series") or []
        p99s = p99s + [None] * (len(rates) - len(p99s))
        points += [(index, rate, p99) for rate, p99 in zip(rates, p99s, strict=False)]
    return points


def panel_title(cell: dict) -> str:
    letters = "".join(flags.LETTERS.get(flag, "?") for flag in cell.get("flags") or [])
    title = f"{cell.get('server')} · {cell.get('users')} users"
    return f"{title} [{letters}]" if letters else title


def draw_error(axis, cell: dict) -> None:
    """A failed cell's panel: its error's first line, not empty axes."""
    error = (cell.get("error") or "no numbers").splitlines()[0]
    axis.text(0.5, 0.5, "failed:\n" + wrap(error, 38), ha="center", va="center", fontsize=7,
              color="#a00", transform=axis.transAxes)  # fmt: skip
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_facecolor("#fff3f3")


def wrap(text: str, width: int) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line][:4])


def draw_cell(axis, cell: dict, rps_top: float, p99_top: float) -> None:
    """One cell: requests/s (solid, left axis) and p99 (dashed, right axis) per second."""
    points = seconds_of(cell)
    if cell.get("status") != "ok" or not points:
        draw_error(axis, cell)
        return
    x = range(len(points))
    axis.plot(x, [rate for _, rate, _ in points], color=RPS_COLOUR, linewidth=1.2)
    axis.set_ylim(0, rps_top)
    for boundary in (i for i in range(1, len(points)) if points[i][0] != points[i - 1][0]):
        axis.axvline(boundary - 0.5, color="#999", linewidth=0.6, linestyle=":")
    right = axis.twinx()
    p99 = [math.nan if value is None else value for _, _, value in points]
    right.plot(x, p99, color=P99_COLOUR, linewidth=1.0, linestyle="--")
    right.set_ylim(0, p99_top)
    right.tick_params(labelsize=6, colors=P99_COLOUR)
    axis.tick_params(labelsize=6)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_timelines(cells: list[dict], scenario: str, out_png: Path) -> Path | None:
    """Small multiples of ``scenario``'s closed-loop cells (in the order given); None when it
    has none."""
    chosen = [
        c for c in cells if c.get("scenario") == scenario and c.get("mode", "closed") == "closed"
    ]
    if not chosen:
        return None
    rates = [rate for cell in chosen for _, rate, _ in seconds_of(cell)]
    p99s = [p99 for cell in chosen for _, _, p99 in seconds_of(cell) if p99 is not None]
    rps_top = max(rates, default=1.0) * 1.1 or 1.0
    p99_top = max(p99s, default=1.0) * 1.1 or 1.0
    columns = min(COLUMNS, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    size = (PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.5)
    figure, axes = plt.subplots(rows, columns, squeeze=False, figsize=size)
    for axis, cell in zip(axes.flat, chosen, strict=False):
        draw_cell(axis, cell, rps_top, p99_top)
        axis.set_title(panel_title(cell), fontsize=8)
    for axis in list(axes.flat)[len(chosen) :]:
        axis.set_visible(False)
    figure.suptitle(f"{scenario}: requests/s (solid, left) and p99 ms (dashed, right) each "
                    "second of the window; dotted lines separate repeats", fontsize=9)  # fmt: skip
    figure.tight_layout()
    figure.savefig(out_png, dpi=90)
    plt.close(figure)
    return out_png
