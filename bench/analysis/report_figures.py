"""The report's load figures: per scenario, requests/s, latency and CPU cost against users; and
the cost of one request across scenarios. Drawn on ``matplotlib.figure.Figure`` objects, which
need no pyplot and no backend choice; they read summary records only."""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from bench import flags
from bench.analysis import latency_plot
from bench.analysis.verdict import latency_note
from bench.serving.spec import MODELS

FLAG_NOTE = "hollow marker = flagged cell: " + ", ".join(
    f"{letter} {flag}" for flag, letter in flags.LETTERS.items()
)


def server_order(records: list[dict]) -> list[str]:
    """Ours in model order, then peers, then references, each by name."""
    rank = {"ours": 0, "peer": 1, "reference": 2}

    def key(name: str) -> tuple:
        record = next(r for r in records if r["server"] == name)
        model = MODELS.index(record["model"]) if record["model"] in MODELS else len(MODELS)
        return rank.get(record["kind"], 3), model, name

    return sorted({record["server"] for record in records}, key=key)


def line_label(server: str, app: str) -> str:
    return server if app == "app" else f"{server} ({app} app)"


def lines_of(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(server, app) → its records sorted by users, in server order, the framework app first."""
    order = {name: index for index, name in enumerate(server_order(records))}
    keys = sorted({(r["server"], r["app"]) for r in records},
                  key=lambda k: (k[1] != "app", order[k[0]]))  # fmt: skip
    return {
        key: sorted(
            (r for r in records if (r["server"], r["app"]) == key), key=lambda r: r["users"]
        )
        for key in keys
    }


#: marker per kind of server: ours round, peers square, references diamond
MARKERS = {"ours": "o", "peer": "s", "reference": "D"}
#: a reference app's points (the raw app): a triangle, so they never pass for the framework app's
REFERENCE_APP_MARKER = "^"
#: a reference app's bars: hatched, beside the framework app's plain bar of the same colour
REFERENCE_APP_HATCH = ".."


def colours_for(records: list[dict]) -> dict[str, str]:
    """One distinct colour per server (up to 18), the null reference in black."""
    palette = [*matplotlib.colormaps["tab10"].colors, *matplotlib.colormaps["Dark2"].colors]
    names = [name for name in server_order(records) if name != "null"]
    return {"null": "black", **{name: palette[i % len(palette)] for i, name in enumerate(names)}}


def draw_points(axis, points: list[dict], key: str, colour, style: str, label: str | None) -> None:
    """A line through the cells' values; flagged cells hollow and lettered.

    Zero latencies (Locust rounds under 1 ms to whole milliseconds) have no place on a log axis
    and are left out; the figure's note says so.
    """
    shown = [p for p in points if p.get(key) is not None]
    if key.endswith("_ms"):
        shown = [p for p in shown if p[key] > 0]
    xs, ys = [p["users"] for p in shown], [p[key] for p in shown]
    marker = MARKERS.get(points[0]["kind"], "o") if points else "o"
    if points and points[0].get("app") != "app":
        marker = REFERENCE_APP_MARKER
    axis.plot(xs, ys, style, color=colour, label=label, marker=marker, markersize=4)
    for point in shown:
        if point["flags"]:
            axis.plot(point["users"], point[key], "o", markersize=9, markerfacecolor="white",
                      markeredgecolor=colour, zorder=3)  # fmt: skip
            letters = "".join(flags.LETTERS.get(flag, "?") for flag in point["flags"])
            axis.annotate(letters, (point["users"], point[key]), textcoords="offset points",
                          xytext=(5, 5), fontsize=7, color=colour)  # fmt: skip


def draw_failed(axis, points: list[dict], colour) -> None:
    """Cells with no numbers at all: an x on the axis, so a failure is not silently absent."""
    for point in points:
        if point.get("rps") is None:
            axis.plot(point["users"], 0, "x", color=colour, markersize=9)
            axis.annotate("F", (point["users"], 0), textcoords="offset points", xytext=(5, 5),
                          fontsize=7, color=colour)  # fmt: skip


def users_axis(axis, records: list[dict]) -> None:
    levels = sorted({r["users"] for r in records})
    if len(levels) > 1:
        axis.set_xscale("log", base=2)
    axis.set_xticks(levels)
    axis.set_xticklabels([str(level) for level in levels])
    axis.set_xlabel("concurrent users")


def failed_note(axis, records: list[dict]) -> None:
    """Where no cell gave a number, the first failure's reason on the axes instead of nothing."""
    if any(r.get("rps") is not None for r in records):
        return
    error = next((r.get("error") for r in records if r.get("error")), None) or "no numbers"
    reason = error.splitlines()[0][:80]
    axis.text(0.5, 0.5, f"every cell failed:\n{reason}", ha="center", va="center", fontsize=9,
              color="#a00", transform=axis.transAxes, wrap=True)  # fmt: skip


def log_scale(axis) -> None:
    """A log y axis labelled 1, 2, 5 per decade in plain numbers."""
    axis.set_yscale("log")
    axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.yaxis.set_major_formatter(ScalarFormatter())
    axis.yaxis.set_minor_formatter(NullFormatter())


def plot_scenario(records: list[dict], scenario: str, description: str, out_png: Path) -> Path:
    """Requests/s (min–max band), p50 and p99 latency and server CPU per request against users
    (bars, when the run has one user level); the failure ratio gets a fourth panel only when
    some request failed."""
    if len({r["users"] for r in records}) == 1:
        return plot_scenario_bars(records, scenario, description, out_png)
    colours = colours_for(records)
    failed = any(r.get("fail_ratio") for r in records)
    figure = Figure(figsize=(22 if failed else 17, 4.8))
    axes = figure.subplots(1, 4 if failed else 3)
    rps_axis, latency_axis, cost_axis = axes[:3]
    failure_axis = axes[3] if failed else None
    for (server, app), points in lines_of(records).items():
        colour, style = colours[server], "-" if app == "app" else ":"
        label = line_label(server, app)
        banded = [p for p in points if p.get("rps_min") is not None]
        if len(banded) > 1:
            users = [p["users"] for p in banded]
            low, high = [p["rps_min"] for p in banded], [p["rps_max"] for p in banded]
            rps_axis.fill_between(users, low, high, color=colour, alpha=0.15)
        draw_points(rps_axis, points, "rps", colour, style, label)
        draw_failed(rps_axis, points, colour)
        draw_points(latency_axis, points, "p50_ms", colour, style, None)
        draw_points(latency_axis, points, "p99_ms", colour, "--", None)
        draw_points(cost_axis, points, "cpu_s_per_1k", colour, style, None)
        if failure_axis is not None:
            draw_points(failure_axis, points, "fail_ratio", colour, style, None)
    rps_axis.set(title="requests/s (median; band: min–max of repeats)", ylabel="requests/s")
    rps_axis.set_ylim(bottom=0)
    failed_note(rps_axis, records)
    per_cpu_axis(rps_axis, records)
    stalls = "\nincluding CPU-budget throttling stalls" if latency_note(records) else ""
    latency_axis.set(
        title=f"latency: p50 (solid) and p99 (dashed), closed loop{stalls}", ylabel="ms"
    )
    if any(r.get("p50_ms") for r in records):
        log_scale(latency_axis)
    cost_axis.set(title="server CPU per request", ylabel="ms of CPU per request")
    if any(r.get("cpu_s_per_1k") for r in records):
        log_scale(cost_axis)  # fork can cost many times the rest; keep the rest readable
    if failure_axis is not None:
        failure_axis.set(title="failed requests", ylabel="share of requests")
        failure_axis.set_ylim(-0.02, 1.02)
    for axis in axes:
        users_axis(axis, records)
        axis.grid(alpha=0.3)
    figure.legend(*rps_axis.get_legend_handles_labels(), loc="center right", fontsize=8)
    title = f"{scenario}: {description}" if description else scenario
    figure.suptitle(f"{title} — {latency_plot.CLOSED_LOOP}")
    whole_ms = any(r.get("p50_ms") is not None and r.get("p50_us") is None for r in records)
    figure.text(0.01, 0.01, FLAG_NOTE + "; ✕ = no numbers (failed); dotted ▲ = raw reference "
                "app; ● ours, ■ peers, ◆ null reference" + ("; latencies under 1 ms (0 in "
                "Locust's whole-ms percentiles of this older run) are not drawn" if whole_ms
                else ""), fontsize=8)  # fmt: skip
    figure.tight_layout(rect=(0, 0.04, 0.86, 1))
    figure.savefig(out_png, dpi=90)
    return out_png


BAR_PANELS = (
    ("rps", "requests/s (median of repeats)", "requests/s"),
    ("p99_ms", "p99 latency (p50: the darker inner bar)", "ms"),
    ("cpu_s_per_1k", "server CPU per request", "ms of CPU per request"),
)


def plot_scenario_bars(records: list[dict], scenario: str, description: str, out_png: Path) -> Path:
    """One user level: a bar per server and app for requests/s, p99 (p50 inside) and CPU per
    request; reference-app bars hatched, flagged ones lettered, failed ones an ✕."""
    colours = colours_for(records)
    lines = lines_of(records)
    figure = Figure(figsize=(max(12, 1.2 * len(lines) * 3), 4.8))
    axes = figure.subplots(1, len(BAR_PANELS))
    for axis, (key, title, unit) in zip(axes, BAR_PANELS, strict=True):
        for position, ((server, app), (cell, *_)) in enumerate(lines.items()):
            draw_bar(axis, position, cell, key, colours[server], app != "app")
        axis.set_xticks(range(len(lines)))
        axis.set_xticklabels([line_label(*key) for key in lines], rotation=30, ha="right",
                             fontsize=8)  # fmt: skip
        axis.set(title=title, ylabel=unit)
        axis.grid(axis="y", alpha=0.3)
    failed_note(axes[0], records)
    per_cpu_axis(axes[0], records)
    title = f"{scenario}: {description}" if description else scenario
    figure.suptitle(f"{title} — {records[0]['users']} users, {latency_plot.CLOSED_LOOP}")
    figure.text(0.01, 0.01, "letters over a bar: its flags (" + ", ".join(
        f"{letter} {flag}" for flag, letter in flags.LETTERS.items()) + "); ✕ = failed, no "
        "numbers; dotted bars: the raw reference app", fontsize=8)  # fmt: skip
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(out_png, dpi=90)
    return out_png


def draw_bar(axis, position: int, cell: dict, key: str, colour, reference_app: bool) -> None:
    value = cell.get(key)
    if value is None:
        axis.annotate("✕", (position, 0), ha="center", va="bottom", color=colour, fontsize=12)
        return
    hatch = REFERENCE_APP_HATCH if reference_app else None
    axis.bar(position, value, 0.7, color=colour, hatch=hatch, edgecolor="black", linewidth=0.3,
             alpha=0.55 if key == "p99_ms" else 0.9)  # fmt: skip
    if key == "p99_ms" and cell.get("p50_ms") is not None:
        axis.bar(position, cell["p50_ms"], 0.35, color=colour, edgecolor="black", linewidth=0.3)
    letters = "".join(flags.LETTERS.get(flag, "?") for flag in cell["flags"])
    if letters:
        axis.annotate(letters, (position, value), ha="center", va="bottom", fontsize=8,
                      color="#a35a00")  # fmt: skip


def per_cpu_axis(rps_axis, records: list[dict]) -> None:
    """Under one CPU budget, a right-hand axis reads the requests/s per CPU."""
    budgets = {r.get("budget_cpus") for r in records}
    if len(budgets) != 1 or None in budgets:
        return
    (cpus,) = budgets
    axis = rps_axis.secondary_yaxis("right", functions=(lambda y: y / cpus, lambda y: y * cpus))
    axis.set_ylabel(f"requests/s per CPU (budget {cpus:g} CPU)")


def top_level_records(records: list[dict]) -> list[dict]:
    """Per server and scenario of the framework app, the cell at the highest user level."""
    best: dict[tuple[str, str], dict] = {}
    for record in records:
        key = (record["server"], record["scenario"])
        if record["app"] == "app" and (key not in best or record["users"] > best[key]["users"]):
            best[key] = record
    return list(best.values())


def plot_costs(records: list[dict], out_png: Path) -> Path:
    """CPU-seconds per 1,000 requests and peak RSS per server, one bar per scenario."""
    chosen = top_level_records(records)
    servers = server_order(chosen) if chosen else []
    scenarios = list(dict.fromkeys(r["scenario"] for r in chosen))  # records come sorted
    figure = Figure(figsize=(15, 4.6))
    axes = figure.subplots(1, 2)
    width = 0.8 / max(len(scenarios), 1)
    palette = matplotlib.colormaps["Set2"].colors
    for axis, key, title in (
        (axes[0], "cpu_s_per_1k", "server CPU-seconds per 1,000 requests (log scale)"),
        (axes[1], "server_rss_mb", "peak summed RSS of the server tree, MB (log scale)"),
    ):
        for index, scenario in enumerate(scenarios):
            cells = {r["server"]: r for r in chosen if r["scenario"] == scenario}
            for position, server in enumerate(servers):
                cell = cells.get(server)
                if cell is None or cell.get(key) is None:
                    continue
                axis.bar(position + index * width, cell[key], width, color=palette[index % 8],
                         hatch="//" if cell["flags"] else None, edgecolor="black",
                         linewidth=0.3)  # fmt: skip
        axis.set_xticks([p + 0.4 - width / 2 for p in range(len(servers))])
        axis.set_xticklabels(servers, rotation=30, ha="right")
        axis.set_title(title, fontsize=10)
        log_scale(axis)  # a forking peer can cost 100× the rest; keep the rest readable
        axis.grid(axis="y", alpha=0.3)
    legend = [Patch(color=palette[i % 8], label=name) for i, name in enumerate(scenarios)]
    axes[0].legend(handles=legend, fontsize=8)
    figure.text(0.01, 0.01, "each server's cells at their highest user level; hatched bar = "
                "flagged cell (see the table for which flag)", fontsize=8)  # fmt: skip
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(out_png, dpi=90)
    return out_png
