"""Latency in the report: µs percentiles of any run, and latency against offered load (open loop).

The open-loop cells of a run offer each of our servers a constant arrival rate, a fraction of the
requests/s its closed-loop cells reached in the same run, and count latency from each request's
intended send time (``bench/measure/openloop.py``). Per scenario this module draws p50, p99 and
p99.9 against the offered load with each server's knee marked, tabulates the cells and says in a
sentence where each server's tail gave way. It reads summary records only.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

from bench import flags
from bench.serving.spec import MODELS
from bench.units import format_us

#: the knee: the lightest offered load whose p99 exceeds this many times the p99 at the lightest
KNEE_FACTOR = 2.0
#: percentile key → line style, in the order drawn
LINES = {"p50_us": "-", "p99_us": "--", "p999_us": ":"}
#: what the plots and tables say about how their numbers were produced
OPEN_LOOP = (
    "open loop: a constant arrival rate per cell, latency from each request's intended send time "
    "(coordinated omission corrected)"
)
CLOSED_LOOP = "closed loop: each user sends its next request when the last one answered"

TABLE_COLUMNS = (
    ("server", "server"), ("mode", "mode"), ("offered_fraction", "offered"),
    ("offered_rps", "offered req/s"), ("rps", "achieved req/s"), ("users", "in flight ≤"),
    ("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9"),
    ("max_us", "max"), ("late_ratio", "late"), ("fail_ratio", "failed"), ("flags", "flags"),
)  # fmt: skip


# --- µs keys for any run ------------------------------------------------------------------------


def with_microseconds(record: dict) -> dict:
    """A summary record with µs percentiles; a run from before the histograms has only Locust's
    whole milliseconds, so its µs keys come from those (0 ms means "under 1 ms": left empty)."""
    for name in ("p50", "p90", "p99", "max"):
        milliseconds = record.get(f"{name}_ms")
        if record.get(f"{name}_us") is None and milliseconds:
            record[f"{name}_us"] = milliseconds * 1000
    record["mode"] = record.get("mode") or "closed"
    return record


def format_cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key.endswith("_us"):
        return format_us(value)
    if key in ("late_ratio", "fail_ratio", "offered_fraction"):
        return f"{value:.0%}" if key == "offered_fraction" else f"{value:.1%}"
    if key == "flags":
        return ", ".join(value) or "–"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return str(value)


# --- knees --------------------------------------------------------------------------------------


def server_lines(records: list[dict]) -> dict[str, list[dict]]:
    """Our servers in model order → their open-loop cells with numbers, lightest load first."""
    order = {model: index for index, model in enumerate(MODELS)}
    servers = sorted({r["server"] for r in records}, key=lambda s: (order.get(s, len(order)), s))
    return {
        server: sorted(
            (r for r in records if r["server"] == server and r.get("p99_us") is not None),
            key=lambda r: r["offered_fraction"],
        )
        for server in servers
    }


def knee(points: list[dict]) -> dict | None:
    """The lightest offered load whose p99 exceeds KNEE_FACTOR × the p99 at the lightest load."""
    if len(points) < 2:
        return None
    base = points[0]["p99_us"]
    return next((p for p in points[1:] if p["p99_us"] > KNEE_FACTOR * base), None)


def knee_sentence(records: list[dict]) -> str:
    """Where each server's p99 gave way, in one sentence per scenario."""
    parts = []
    for server, points in server_lines(records).items():
        if not points:
            continue
        found = knee(points)
        if found is None:
            top, first = points[-1], points[0]
            lightest = f"{first['offered_fraction']:.0%} value ({format_us(first['p99_us'])})"
            highest = f"{top['offered_fraction']:.0%} ({format_us(top['p99_us'])})"
            parts.append(f"{server} kept its p99 within {KNEE_FACTOR:g}× of its {lightest} "
                         f"up to {highest}")  # fmt: skip
        else:
            parts.append(
                f"{server} from {found['offered_fraction']:.0%} of its capacity "
                f"({found['offered_rps']:,.0f} req/s offered: p99 {format_us(found['p99_us'])} "
                f"against {format_us(points[0]['p99_us'])} at {points[0]['offered_fraction']:.0%})"
            )
    if not parts:
        return ""
    return (f"The knee, where p99 first exceeds {KNEE_FACTOR:g}× its value at the lightest load: "
            f"{'; '.join(parts)}.")  # fmt: skip


# --- plot ---------------------------------------------------------------------------------------


def plot_offered_load(records: list[dict], scenario: str, out_png: Path) -> Path:
    """p50/p99/p99.9 against offered load: as a share of each server's own capacity (left) and
    in requests/s (right); the knee ringed; flagged cells hollow and lettered."""
    palette = matplotlib.colormaps["tab10"].colors
    figure = Figure(figsize=(15, 4.8))
    axes = figure.subplots(1, 2, sharey=True)
    for index, (server, points) in enumerate(server_lines(records).items()):
        colour = palette[index % len(palette)]
        for axis, x_key in zip(axes, ("offered_fraction", "offered_rps"), strict=True):
            draw_server(axis, points, x_key, colour, server)
    axes[0].set(xlabel="offered load, share of the server's closed-loop capacity",
                ylabel="latency, ms (log scale)")  # fmt: skip
    axes[0].xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0%}"))
    axes[1].set(xlabel="offered load, requests/s (log scale)")
    axes[1].set_xscale("log")
    axes[1].xaxis.set_major_formatter(ScalarFormatter())
    axes[1].xaxis.set_minor_formatter(NullFormatter())
    for axis in axes:
        axis.set_yscale("log")
        axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{scenario}: latency against offered load — {OPEN_LOOP}", fontsize=10)
    figure.text(0.01, 0.01, f"solid p50, dashed p99, dotted p99.9; ringed: the knee (p99 over "
                f"{KNEE_FACTOR:g}× its value at the lightest load); hollow lettered marker = "
                "flagged cell: " + ", ".join(f"{letter} {flag}" for flag, letter in
                                             flags.LETTERS.items()), fontsize=8)  # fmt: skip
    figure.tight_layout(rect=(0, 0.04, 1, 0.95))
    figure.savefig(out_png, dpi=90)
    return out_png


def draw_server(axis, points: list[dict], x_key: str, colour, server: str) -> None:
    """One server's three percentile lines, its flagged points and its knee."""
    xs = [p[x_key] for p in points]
    for key, style in LINES.items():
        ys = [p[key] / 1000 if p.get(key) else None for p in points]
        label = server if key == "p50_us" and x_key == "offered_fraction" else None
        axis.plot(xs, ys, style, color=colour, marker="o", markersize=3, label=label)
    for point in points:
        if point["flags"]:
            axis.plot(point[x_key], point["p99_us"] / 1000, "o", markersize=9,
                      markerfacecolor="white", markeredgecolor=colour, zorder=3)  # fmt: skip
            letters = "".join(flags.LETTERS.get(flag, "?") for flag in point["flags"])
            axis.annotate(letters, (point[x_key], point["p99_us"] / 1000), fontsize=7,
                          textcoords="offset points", xytext=(5, 5), color=colour)  # fmt: skip
    found = knee(points)
    if found is not None:
        axis.plot(found[x_key], found["p99_us"] / 1000, "o", markersize=14, fillstyle="none",
                  color=colour, markeredgewidth=2, zorder=4)  # fmt: skip
        axis.axvline(found[x_key], color=colour, alpha=0.25, linewidth=1)


# --- the report's section -----------------------------------------------------------------------


def nothing_measured(records: list[dict]) -> str:
    """Why no open-loop cell of a scenario has numbers: each distinct reason once."""
    reasons = dict.fromkeys((r.get("error") or "no numbers").splitlines()[0] for r in records)
    return f"No open-loop cell of this scenario measured anything: {'; '.join(reasons)}."


def latency_sections(run_dir: Path, records: list[dict], scenario_rank) -> list[dict]:
    """Per scenario with open-loop cells: its plot, knee sentence, table header and rows."""
    sections = []
    for scenario in sorted({r["scenario"] for r in records}, key=scenario_rank):
        chosen = [r for r in records if r["scenario"] == scenario]
        measured = [p for points in server_lines(chosen).values() for p in points]
        failed = [r for r in chosen if r.get("p99_us") is None]  # no numbers to draw
        ordered = measured + failed
        # when every cell failed, say why rather than draw empty log-scaled axes
        plot = plot_offered_load(chosen, scenario, run_dir / f"latency-{scenario}.png") \
            if measured else None  # fmt: skip
        sections.append({
            "name": scenario,
            "plot": plot.name if plot else None,
            "paragraph": knee_sentence(chosen) if measured else nothing_measured(chosen),
            "header": [title for _, title in TABLE_COLUMNS],
            "rows": [[format_cell(key, r.get(key)) for key, _ in TABLE_COLUMNS] for r in ordered],
            "row_flags": [r["flags"] for r in ordered],
        })  # fmt: skip
    return sections
