"""The report of a run directory: plots, report.html, summary.md, summary.json, results/index.html.

It reads only what the runner and the micro benchmarks wrote in the run directory (``meta.json``,
``cells/*.json``, ``micro.json``/``micro.png``) and never measures; it writes only into that
directory, plus ``results/index.html`` (the runs and their trend) when the run lives in results/.
It opens with the verdict per scenario (``bench.analysis.verdict``). Every table and plot shows
the honesty flags; the per-scenario paragraphs are composed from the measured numbers, so they
say what this run showed, including when it showed nothing trustworthy.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path

import jinja2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

from bench import flags  # noqa: E402
from bench.analysis import latency_plot  # noqa: E402
from bench.analysis.pairs import apply_null_bound, pair_rows  # noqa: E402
from bench.analysis.story import banners, cell_fields, unmeasured  # noqa: E402
from bench.analysis.verdict import (  # noqa: E402
    WAITING,
    basis,
    latency_note,
    measured_range,
    verdict_tables,
)
from bench.cli import Parser, fail  # noqa: E402
from bench.flags import IO_WAIT_MS  # noqa: E402
from bench.rundir import (  # noqa: E402
    RESULTS_ROOT,
    cell_files,
    holds_run,
    is_baseline,
    read_meta,
    read_record,
    shared_root,
    write_json,
)
from bench.serving.spec import MODELS  # noqa: E402

REPORT_TEMPLATE = Path(__file__).resolve().parent / "report_template.html"

FLAG_NOTE = "hollow marker = flagged cell: " + ", ".join(
    f"{letter} {flag}" for flag, letter in flags.LETTERS.items()
)

#: the summary record of a cell: these keys, in this order, in summary.json and the tables
RECORD_KEYS = (
    "server", "model", "kind", "app", "scenario", "users", "rps", "rps_min", "rps_max", "p50_ms",
    "p90_ms", "p99_ms", "max_ms", "fail_ratio", "server_cpu_pct", "server_rss_mb", "server_procs",
    "server_threads", "generator_cpu_pct", "cpu_s_per_1k", "flags", "repeats", "status", "error",
    "cell", "budget_cpus", "budget_period_us", "rps_per_cpu", "throttled_share", "rps_low",
    "rps_high", "mode", "offered_fraction", "offered_rps", "p50_us", "p90_us", "p99_us", "p999_us",
    "max_us", "late_ratio",
)  # fmt: skip


# --- reading the run --------------------------------------------------------------------------


def read_cells(run_dir: Path) -> list[dict]:
    """The run's cell records; a damaged cell file is left out, and said so."""
    cells = []
    for path in cell_files(run_dir).values():
        record = read_record(path)
        if record is None:
            print(f"{path}: not valid JSON, left out of the report", file=sys.stderr)
        else:
            cells.append(record)
    return cells


def summary_record(cell: dict) -> dict:
    """One flat record per cell: identity, the summary numbers, flags and the repeat count."""
    summary = cell.get("summary") or {}
    record = {key: summary.get(key) for key in RECORD_KEYS}
    record.update({key: cell.get(key) for key in ("server", "model", "kind", "app", "scenario")})
    record.update(users=cell.get("users"), status=cell.get("status"), error=cell.get("error"))
    record.update(cell=cell.get("cell"), flags=list(cell.get("flags") or []))
    record["repeats"] = len(cell.get("repeats") or [])
    record["server_measured"] = cell.get("server_measured", True)
    record["rps_low"], record["rps_high"] = measured_range(cell)
    record["budget_period_us"] = (cell.get("budget") or {}).get("period_us")
    record.update({key: cell.get(key) for key in ("mode", "offered_fraction", "offered_rps")})
    return latency_plot.with_microseconds(record)


def server_order(records: list[dict]) -> list[str]:
    """Ours in model order, then peers, then references, each by name."""
    rank = {"ours": 0, "peer": 1, "reference": 2}

    def key(name: str) -> tuple:
        record = next(r for r in records if r["server"] == name)
        model = MODELS.index(record["model"]) if record["model"] in MODELS else len(MODELS)
        return rank.get(record["kind"], 3), model, name

    return sorted({record["server"] for record in records}, key=key)


def apply_pairs(records: list[dict]) -> list[dict]:
    """Apply the null-server bound to the flags and return the pairs table."""
    apply_null_bound(records)
    return pair_rows(records)


# --- plots ------------------------------------------------------------------------------------


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


def colours_for(records: list[dict]) -> dict[str, str]:
    """One distinct colour per server (up to 18), the null reference in black."""
    palette = [*plt.get_cmap("tab10").colors, *plt.get_cmap("Dark2").colors]
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


def plot_scenario(records: list[dict], scenario: str, description: str, out_png: Path) -> Path:
    """Requests/s (min–max band), p50 and p99 latency and server CPU per request against users;
    the failure ratio gets a fourth panel only when some request failed."""
    colours = colours_for(records)
    failed = any(r.get("fail_ratio") for r in records)
    figure, axes = plt.subplots(1, 4 if failed else 3, figsize=(22 if failed else 17, 4.8))
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
    per_cpu_axis(rps_axis, records)
    stalls = "\nincluding CPU-budget throttling stalls" if latency_note(records) else ""
    latency_axis.set(
        title=f"latency: p50 (solid) and p99 (dashed), closed loop{stalls}", ylabel="ms"
    )
    if any(r.get("p50_ms") for r in records):
        latency_axis.set_yscale("log")
        latency_axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        latency_axis.yaxis.set_major_formatter(ScalarFormatter())
        latency_axis.yaxis.set_minor_formatter(NullFormatter())
    cost_axis.set(title="server CPU per request", ylabel="ms of CPU per request")
    if any(r.get("cpu_s_per_1k") for r in records):
        cost_axis.set_yscale("log")  # fork can cost many times the rest; keep the rest readable
        cost_axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        cost_axis.yaxis.set_major_formatter(ScalarFormatter())
        cost_axis.yaxis.set_minor_formatter(NullFormatter())
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
    figure.text(0.01, 0.01, FLAG_NOTE + "; ✕ = no numbers (failed); dotted = reference app; "
                "● ours, ■ peers, ◆ null reference" + ("; latencies under 1 ms (0 in Locust's "
                "whole-ms percentiles of this older run) are not drawn" if whole_ms else ""),
                fontsize=8)  # fmt: skip
    figure.tight_layout(rect=(0, 0.04, 0.86, 1))
    figure.savefig(out_png, dpi=90)
    plt.close(figure)
    return out_png


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
    figure, axes = plt.subplots(1, 2, figsize=(15, 4.6))
    width = 0.8 / max(len(scenarios), 1)
    palette = plt.get_cmap("Set2").colors
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
        axis.set_yscale("log")  # a forking peer can cost 100× the rest; keep the rest readable
        axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.grid(axis="y", alpha=0.3)
    legend = [Patch(color=palette[i % 8], label=name) for i, name in enumerate(scenarios)]
    axes[0].legend(handles=legend, fontsize=8)
    figure.text(0.01, 0.01, "each server's cells at their highest user level; hatched bar = "
                "flagged cell (see the table for which flag)", fontsize=8)  # fmt: skip
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    figure.savefig(out_png, dpi=90)
    plt.close(figure)
    return out_png


def scenario_ranker(meta: dict) -> Callable[[str], int]:
    """Scenarios in the order the run declared them (meta.json's scenarios); any other last."""
    order = list(meta.get("scenarios") or {})
    return lambda name: order.index(name) if name in order else len(order)


# --- plain-language paragraphs -----------------------------------------------------------------


def fmt_rps(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} req/s"


def trusted(record: dict) -> bool:
    return record.get("rps") is not None and not flags.UNRANKED & set(record["flags"])


def at_level(records: list[dict], users: int) -> list[dict]:
    return [r for r in records if r["users"] == users and trusted(r)]


def compared_level(records: list[dict]) -> int | None:
    """The highest user level at which at least two servers have trusted numbers."""
    levels = sorted({r["users"] for r in records}, reverse=True)
    return next((level for level in levels if len(at_level(records, level)) >= 2), None)


def users_text(users: int) -> str:
    return f"{users} user" if users == 1 else f"{users} users"


def leader_sentence(records: list[dict], users: int) -> str:
    ranked = sorted(at_level(records, users), key=lambda r: r["rps"], reverse=True)
    leader, others = ranked[0], ranked[1:]
    comparisons = ", ".join(
        f"{r['server']} {fmt_rps(r['rps'])} ({r['rps'] / leader['rps']:.2f}×)" for r in others
    )
    sentence = (f"At {users_text(users)} {leader['server']} led with {fmt_rps(leader['rps'])}; "
                f"then {comparisons}.")  # fmt: skip
    bound = [r["server"] for r in ranked if flags.GENERATOR_BOUND in r["flags"]]
    if leader["server"] in bound:
        sentence += (f" Locust was the bottleneck for {', '.join(bound)}: their order is "
                     "Locust's, not the servers'.")  # fmt: skip
    return sentence


def cpu_cost_sentence(records: list[dict], users: int) -> str:
    """When Locust set the pace, rank by what its ceiling does not hide: server CPU per request."""
    level = at_level(records, users)
    if not any(flags.GENERATOR_BOUND in r["flags"] for r in level):
        return ""
    costed = sorted((r for r in level if r.get("cpu_s_per_1k")), key=lambda r: r["cpu_s_per_1k"])
    if len(costed) < 2:
        return ""
    cheapest, dearest = costed[0], costed[-1]
    # CPU-seconds per 1,000 requests are milliseconds per request
    listing = ", ".join(f"{r['server']} {r['cpu_s_per_1k']:.3g} ms" for r in costed)
    return (f"Server CPU per request does not depend on how fast Locust could send, so it ranks "
            f"them where requests/s cannot: {listing}; {dearest['server']} spent "
            f"{dearest['cpu_s_per_1k'] / cheapest['cpu_s_per_1k']:.1f}× what "
            f"{cheapest['server']} did per request.")  # fmt: skip


def null_sentence(references: list[dict], records: list[dict]) -> str:
    """How close the leader came to the null server (the most this load generator can send), at
    the highest user level where both have trusted numbers."""
    # under a CPU budget the null server is held to it too: its rate no longer bounds Locust
    nulls = [r for r in references if r["server"] == "null" and trusted(r) and r["rps"]
             and r.get("budget_cpus") is None]  # fmt: skip
    nulls = [r for r in nulls if at_level(records, r["users"])]
    if not nulls:
        return ""
    null = max(nulls, key=lambda r: r["users"])
    users = null["users"]
    leader = max(at_level(records, users), key=lambda r: r["rps"])
    return (f"The null server (a canned answer, no app) took {fmt_rps(null['rps'])} at "
            f"{users_text(users)}, about the most this Locust setup can send: {leader['server']} "
            f"reached {leader['rps'] / null['rps']:.0%} of it.")  # fmt: skip


def close_race_sentence(records: list[dict], users: int) -> str:
    """Say so when our models finished too close together for one ranking to mean much."""
    ours = [r for r in at_level(records, users) if r["kind"] == "ours"]
    if len(ours) < 2:
        return ""
    rates = [r["rps"] for r in ours]
    spread = (max(rates) - min(rates)) / max(rates)
    if spread >= 0.10:
        return ""
    repeats = min(r["repeats"] for r in ours)
    advice = " with one repeat each, the order is within noise" if repeats < 2 else ""
    return f"Our {len(ours)} models were within {spread:.0%} of each other here{advice}."


def flags_sentence(records: list[dict]) -> str:
    flagged = [r for r in records if r["flags"]]
    if not flagged:
        return "No cell was flagged."
    listed = "; ".join(f"{r['server']} at {users_text(r['users'])}: {', '.join(r['flags'])}"
                       for r in flagged)  # fmt: skip
    notes = []
    if any(flags.GENERATOR_BOUND in r["flags"] for r in flagged):
        notes.append("generator-bound figures are lower bounds: Locust, not the server, was busy")
    if any(flags.UNRANKED & set(r["flags"]) for r in flagged):
        notes.append("failed or erroring cells are left out of the comparison above")
    note = "; ".join(notes)
    return f"Flags — {listed}. " + (note[0].upper() + note[1:] + "." if note else "")


def by_model(records: list[dict], model: str, users: int) -> dict | None:
    """Our server of ``model`` at ``users`` with trusted numbers."""
    return next((r for r in at_level(records, users) if r["kind"] == "ours"
                 and r["model"] == model), None)  # fmt: skip


def io_explanation(records: list[dict], users: int) -> list[str]:
    """Why serial models sit at 1000/wait req/s on /io, stated only when the numbers show it."""
    ceiling = 1000 / IO_WAIT_MS
    sentences = []
    for model in ("poll", "epoll"):
        why = WAITING[model]
        record = by_model(records, model, users)
        if record and users > 1 and record["rps"] <= 1.3 * ceiling:
            sentences.append(
                f"{model} stayed at {fmt_rps(record['rps'])}, the serial ceiling of "
                f"1000 ms / {IO_WAIT_MS} ms = {ceiling:.0f} req/s: {why}."
            )
    for model in ("threaded", "fork"):
        record = by_model(records, model, users)
        if record and record["rps"] > 2 * ceiling:
            sentences.append(
                f"{model} overlapped the waits: {fmt_rps(record['rps'])} of an ideal "
                f"{users} × {ceiling:.0f} = {users * ceiling:.0f} req/s, because a waiting "
                f"{'thread' if model == 'threaded' else 'process'} does not hold up the others."
            )
    return sentences


def fast_path_explanation(records: list[dict], users: int) -> list[str]:
    """epoll vs threaded and the price of fork, on cheap endpoints."""
    sentences = []
    epoll, threaded = by_model(records, "epoll", users), by_model(records, "threaded", users)
    clear_lead = epoll and threaded and epoll["rps"] > 1.10 * threaded["rps"]
    if clear_lead and flags.GENERATOR_BOUND not in epoll["flags"] + threaded["flags"]:
        sentences.append(
            f"epoll served {epoll['rps'] / threaded['rps']:.2f}× threaded's requests/s: with a "
            "handler this short, one thread woken by one epoll call beats handing every "
            "connection to its own thread and switching between them under the GIL."
        )
    fork = by_model(records, "fork", users)
    if fork and threaded and fork.get("server_rss_mb") and threaded.get("server_rss_mb"):
        sentences.append(
            f"fork ran up to {fork['server_procs']:.0f} processes with "
            f"{fork['server_rss_mb']:.0f} MB of summed RSS (an upper bound: pages shared after "
            f"fork count in every process) against threaded's {threaded['server_rss_mb']:.0f} MB: "
            f"it pays a fork and a process per connection; Locust keeps connections alive, so "
            f"that price is paid once per user, not per request "
            f"({fork['rps'] / threaded['rps']:.2f}× threaded's requests/s here)."
        )
    return sentences


def cpu_explanation(records: list[dict], users: int) -> list[str]:
    busy = [r for r in at_level(records, users) if (r.get("server_cpu_pct") or 0) >= 80]
    if not busy:
        return []
    names = ", ".join(f"{r['server']} {r['server_cpu_pct']:.0f}%" for r in busy)
    return [f"The server core was nearly saturated ({names} CPU): the work itself, not the "
            "concurrency model, set the limit — on one core, threads and processes only "
            "take turns."]  # fmt: skip


def scenario_paragraph(records: list[dict], scenario: str, missing: list[str] = ()) -> str:
    """What this run showed for one scenario of the framework app, from its numbers; with cells
    of the scenario ``missing`` (planned, never measured) it ranks nothing."""
    chosen = [r for r in records if r["scenario"] == scenario and r["app"] == "app"]
    records = [r for r in chosen if r["kind"] != "reference"]
    references = [r for r in chosen if r["kind"] == "reference"]
    if not records:
        return ""
    absent = [name for name in missing if cell_fields(name)["scenario"] == scenario]
    if absent:
        return (f"Not ranked: the run ended before measuring {', '.join(absent)}, and a ranking "
                "without them would crown whichever servers happened to run. "
                + flags_sentence(chosen))  # fmt: skip
    users = compared_level(records)
    if users is None:
        return ("No two servers produced trusted numbers at the same user level, so nothing is "
                "compared. " + flags_sentence(chosen))  # fmt: skip
    sentences = [leader_sentence(records, users), cpu_cost_sentence(records, users)]
    sentences.append(null_sentence(references, records))
    sentences.append(close_race_sentence(records, users))
    if scenario in ("io", "mixed"):
        sentences += io_explanation(records, users)
    if scenario in ("plaintext", "json", "fortunes", "session"):
        sentences += fast_path_explanation(records, users)
    if scenario == "cpu":
        sentences += cpu_explanation(records, users)
    sentences.append(flags_sentence(chosen))
    return " ".join(sentence for sentence in sentences if sentence)


# --- tables and pages -------------------------------------------------------------------------


def format_value(key: str, value) -> str:
    """How a record's value reads in a table."""
    if value is None:
        return "–"
    if key == "flags":
        return flags.shown(value)
    if key in ("fail_ratio", "throttled_share"):
        return f"{value:.1%}"
    if key.endswith("_us"):
        return latency_plot.format_cell(key, value)
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


TABLE_COLUMNS = (
    ("server", "server"), ("app", "app"), ("scenario", "scenario"), ("users", "users"),
    ("mode", "mode"), ("rps", "req/s"), ("rps_min", "min"), ("rps_max", "max"), ("p50_us", "p50"),
    ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max"),
    ("fail_ratio", "failed"),
    ("rps_per_cpu", "req/s per CPU"), ("throttled_share", "throttled"),
    ("server_cpu_pct", "server CPU %"), ("cpu_s_per_1k", "CPU s/1k"),
    ("server_rss_mb", "RSS MB"), ("server_procs", "procs"), ("server_threads", "threads"),
    ("generator_cpu_pct", "Locust CPU %"), ("repeats", "repeats"), ("flags", "flags"),
)  # fmt: skip


#: the columns of a server's own process tree: a --target without --target-pid has none of them
SERVER_COLUMNS = {"server_cpu_pct", "cpu_s_per_1k", "server_rss_mb", "server_procs",
                  "server_threads"}  # fmt: skip


def table_rows(records: list[dict]) -> list[list[str]]:
    return [[table_text(r, key) for key, _ in TABLE_COLUMNS] for r in records]


def table_text(record: dict, key: str) -> str:
    if key in SERVER_COLUMNS and record.get("server_measured") is False:
        return "not measured"
    return format_value(key, record.get(key))


def sorted_records(records: list[dict], scenario_rank: Callable[[str], int]) -> list[dict]:
    order = {name: index for index, name in enumerate(server_order(records))}
    return sorted(records, key=lambda r: (scenario_rank(r["scenario"]), r["app"] != "app",
                                          r["users"], order[r["server"]]))  # fmt: skip


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def pair_table(pairs: list[dict]) -> tuple[list[str], list[list[str]]]:
    if not pairs:
        return [], []
    keys = [key for key in pairs[0] if key not in ("ours_flags", "peer_flags")]
    rows = [[format_value(key, row.get(key)) for key in keys] for row in pairs]
    return [key.replace("_", " ") for key in keys], rows


def micro_table(run_dir: Path) -> str:
    """The micro benchmarks' ratio table, when this run has them."""
    path = run_dir / "micro.json"
    if not path.exists():
        return ""
    from bench.analysis.micro_table import ratio_table
    from bench.microcases import load_micro

    try:
        return ratio_table(load_micro(path))
    except (OSError, ValueError, KeyError) as error:  # unfinished or damaged: the rest still counts
        print(
            f"{path}: unreadable ({error!r}); the report leaves the micro table out",
            file=sys.stderr,
        )
        return ""


def compact_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def meta_rows(meta: dict) -> list[tuple[str, str]]:
    """The metadata a reader weighs a number by, one line each (all of it is in meta.json)."""
    packages = meta.get("packages") or {}
    pinning = meta.get("pinning")
    rows = {
        "commit": meta.get("commit"),
        "date": meta.get("date"),
        "python": f"{meta.get('implementation', '')} {meta.get('python', '')}".strip(),
        "os": meta.get("os"),
        "machine": meta.get("machine"),
        "cpu": f"{meta.get('cpu_model')} × {meta.get('cpu_count')}",
        "pinning": (f"server CPUs {pinning['server_cpus']}, Locust CPUs {pinning['generator_cpus']}"
                    if pinning else "none"),
        "profile": meta.get("profile"),
        "per cell": f"{meta.get('warmup_s')} s warm-up, {meta.get('duration_s')} s measured, "
                    f"{meta.get('repeats')} repeat(s), {meta.get('locust_workers') or 0} Locust "
                    "workers",
        "cells": f"{meta.get('cells_finished')} finished of {len(meta.get('cells_planned') or [])}"
                 f" planned ({meta.get('status')})",
        "packages": ", ".join(f"{name} {version}" for name, version in packages.items()),
        "CPU budget": budget_sentence(meta.get("budget")),
        "skipped": "; ".join(f"{name}: {why}" for name, why in (meta.get("skipped") or {}).items()),
        **workload_rows(meta),
    }  # fmt: skip
    return [(label, str(value)) for label, value in rows.items() if value not in (None, "")]


def workload_rows(meta: dict) -> dict:
    """What was served, by which locustfile, from where the load came and what was measured."""
    rows = {"app": meta.get("app")}
    if meta.get("scenario_file_sha256"):
        rows["scenario file"] = f"{meta['scenario_file']} (sha256 {meta['scenario_file_sha256']})"
    if meta.get("server_host") not in (None, "127.0.0.1"):
        rows["servers bound to"] = meta["server_host"]
    if meta.get("locust_master_bind"):
        rows["generator"] = (f"Locust master on {meta['locust_master_bind']} with "
                             f"{meta.get('expect_workers')} workers on other hosts, whose CPU is "
                             "not measured")  # fmt: skip
    target = meta.get("target")
    if target:
        rows["app"] = None  # the user started the server: what it serves is theirs to say
        measured = (
            f"pid {target['pid']} sampled" if target.get("pid") else "CPU, memory not measured"
        )
        rows["target"] = f"{target['url']}, a server started by the user; {measured}"
    return rows


def budget_sentence(budget: dict | None) -> str:
    """How the run's servers were held to a CPU budget, or why they were not."""
    if not budget:
        return ""
    if budget.get("cpus") is None:
        why = budget.get("reason") or budget.get("source")
        return (f"No CPU budget ({why}): servers ran unlimited, so requests/s may be Locust's "
                "ceiling; the verdict ranks by CPU per request.")  # fmt: skip
    sentence = (f"Every server tree ran in its own cgroup with a CPU budget of {budget['cpus']:g} "
                f"CPU ({budget['period_us'] / 1000:g} ms period, {budget.get('cgroup')}, "
                f"{budget.get('source')}).")  # fmt: skip
    calibration = budget.get("calibration")
    if calibration:
        sentence += (
            f" Calibrated: against the unlimited null server at {calibration['users']} users "
            f"Locust sent {calibration['generator_rps']:,.0f} req/s at "
            f"{calibration.get('generator_cpu_pct') or 0:.0f}% CPU, so generator_capacity = "
            f"{calibration.get('generator_capacity') or calibration['generator_rps']:,.0f} req/s "
            f"with its cores busy; the fastest server of the run ({calibration['fastest']}) "
            "serves up to "
            f"{calibration['fastest_rps_per_cpu']:,} req/s per CPU = fastest_rps_per_cpu; "
            f"{calibration['rule']}."
        )
    return sentence


def write_summary_md(run_dir: Path, context: dict) -> Path:
    meta = context["meta"]
    heading = f"Profile `{meta.get('profile')}`, commit `{meta.get('commit')}`, {meta.get('date')}."
    parts = [f"# Run {run_dir.name}", "", heading, ""]
    if context["verdicts"]:
        parts += ["## Verdict", "", context["budget_sentence"], "",
                  f"Ranked by {context['verdict_basis']}.", ""]  # fmt: skip
        for verdict in context["verdicts"]:
            parts += [f"### {verdict['scenario']}", "",
                      markdown_table(verdict["header"], verdict["rows"]), ""]  # fmt: skip
    for scenario in context["scenarios"]:
        parts += [f"## {scenario['name']}", "", scenario["paragraph"], ""]
    parts += ["## Every cell", "", markdown_table(context["header"], context["rows"]), ""]
    for section in context["latency_sections"]:
        parts += [f"## {section['name']}: latency against offered load", "",
                  latency_plot.OPEN_LOOP + ". " + section["paragraph"], "",
                  markdown_table(section["header"], section["rows"]), ""]  # fmt: skip
    parts += ["Flags: " + "; ".join(f"`{flag}`: {meaning}" for flag, meaning in
                                    flags.MEANINGS.items()), ""]  # fmt: skip
    if context["pair_rows"]:
        parts += ["## Our models beside their peers", "",
                  markdown_table(context["pair_header"], context["pair_rows"]), ""]  # fmt: skip
    path = run_dir / "summary.md"
    path.write_text("\n".join(parts))
    return path


def write_index(results_root: Path) -> Path:
    """``index.html`` beside the runs: every run directory, newest first, linked to its report,
    with a regress run's verdict and any injected slowdown; the trend of results/history.jsonl
    drawn inline (the index is the one page that spans runs)."""
    runs = []
    for run_dir in sorted(results_root.iterdir(), reverse=True):
        meta = read_meta(run_dir) if run_dir.is_dir() and not run_dir.is_symlink() else {}
        if meta:
            runs.append({
                "name": run_dir.name,
                "report": (run_dir / "report.html").exists(),
                "date": meta.get("date"), "profile": meta.get("profile"),
                "commit": meta.get("commit"), "status": meta.get("status"),
                "verdict": (meta.get("regress") or {}).get("verdict", ""),
                "injections": ", ".join(f"{name}={value}" for name, value in
                                        sorted((meta.get("injections") or {}).items())),
                "cells": len(list((run_dir / "cells").glob("*.json"))),
            })  # fmt: skip
    path = results_root / "index.html"
    trend = trend_uri(results_root / "history.jsonl")
    path.write_text(template(INDEX_TEMPLATE).render(runs=runs, trend=trend))
    return path


def trend_uri(history: Path) -> str | None:
    """The trend plot as a data: URI, so index.html stays one file and nothing else is written."""
    from bench.analysis.history import trend_png

    png = trend_png(history)
    return f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else None


INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Benchmark runs</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}</style>
</head><body><h1>Benchmark runs</h1><table>
<tr><th>run</th><th>date</th><th>profile</th><th>commit</th><th>cells</th><th>status</th>
<th>regress verdict</th><th>injected</th></tr>
{% for run in runs %}<tr>
<td>{% if run.report %}<a href="{{ run.name }}/report.html">{{ run.name }}</a>
{%- else %}{{ run.name }}{% endif %}</td>
<td>{{ run.date }}</td><td>{{ run.profile }}</td><td>{{ run.commit }}</td><td>{{ run.cells }}</td>
<td>{{ run.status }}</td><td>{% if run.verdict == "REGRESSED" %}<strong>{{ run.verdict }}</strong>
{%- else %}{{ run.verdict }}{% endif %}</td><td>{{ run.injections }}</td></tr>
{% endfor %}</table>
{% if trend %}<h2>Trend of the key in-run ratios (history.jsonl)</h2>
<img src="{{ trend }}" alt="key ratios across runs" style="max-width:100%">{% endif %}
</body></html>
"""


def template(source: str) -> jinja2.Template:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(source)


def draw_plots(run_dir: Path, records: list[dict], descriptions: dict) -> dict[str, str]:
    """Every PNG of the report; name → file name relative to the run directory."""
    plots = {}
    for scenario in dict.fromkeys(r["scenario"] for r in records):  # records come sorted
        chosen = [r for r in records if r["scenario"] == scenario]
        plots[scenario] = plot_scenario(
            chosen, scenario, descriptions.get(scenario, ""), run_dir / f"load-{scenario}.png"
        ).name
    if records:
        plots["costs"] = plot_costs(records, run_dir / "costs.png").name
    if (run_dir / "micro.png").exists():
        plots["micro"] = "micro.png"
    return plots


def build_report(run_dir: Path) -> Path:
    """Plots, report.html, summary.md and summary.json of ``run_dir``, from its files alone;
    results/index.html too when the run lives in results/."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    every = [summary_record(cell) for cell in read_cells(run_dir)]
    open_loop = [r for r in every if r["mode"] == "open"]
    descriptions = meta.get("scenarios") or {}
    scenario_rank = scenario_ranker(meta)
    records = sorted_records([r for r in every if r["mode"] == "closed"], scenario_rank)
    missing = unmeasured(meta, [r["cell"] for r in every])
    # a scenario missing planned cells is ranked nowhere: the ranking would crown whoever ran
    unranked = {cell_fields(name)["scenario"] for name in missing}
    pairs = apply_pairs(records)  # before anything shows flags: it may add generator-bound
    write_json(run_dir / "summary.json", records + open_loop)
    plots = draw_plots(run_dir, records, descriptions)
    pair_header, pair_body = pair_table(pairs)
    context = {
        "run": run_dir.name,
        "meta": meta,
        "banners": banners(meta, [r["cell"] for r in every]),
        "in_results": shared_root(run_dir) is not None,
        "verdicts": verdict_tables(
            [r for r in records if r["scenario"] not in unranked], list(descriptions)
        ),
        "verdict_basis": basis(records),
        "budget_sentence": budget_sentence(meta.get("budget")),
        "budget_flag_note": flags.BUDGET_NOTE if (meta.get("budget") or {}).get("cpus") else "",
        "latency_note": latency_note(records),
        "scenarios": [
            {
                "name": name,
                "description": descriptions.get(name, ""),
                "paragraph": scenario_paragraph(records, name, missing),
                "plot": plots.get(name),
            }
            for name in dict.fromkeys(r["scenario"] for r in records)
        ],  # fmt: skip
        "header": [title for _, title in TABLE_COLUMNS],
        "rows": table_rows(records),
        "row_flags": [r["flags"] for r in records],
        "errors": [(r["cell"], r["error"]) for r in records if r.get("error")],
        "flag_meanings": flags.MEANINGS,
        "plots": plots,
        "pair_header": pair_header,
        "pair_rows": pair_body,
        "micro_table": micro_table(run_dir),
        "latency_sections": latency_plot.latency_sections(run_dir, open_loop, scenario_rank),
        "meta_rows": meta_rows(meta),
        "server_rows": [
            (name, server.get("model"), server.get("kind"), compact_json(server.get("settings")))
            for name, server in (meta.get("servers") or {}).items()
        ],
    }
    write_summary_md(run_dir, context)
    report = run_dir / "report.html"
    report.write_text(template(REPORT_TEMPLATE.read_text()).render(**context))
    results_root = shared_root(run_dir)
    if results_root is not None:
        write_index(results_root)
    return report


def main(argv: list[str]) -> int:
    """``python -m bench report [RUN_DIR]``: rebuild the report (default: results/latest)."""
    parser = Parser(
        prog="python -m bench report",
        description="Build report.html, plots, summary.md and summary.json of a run directory "
        "from its files alone, into that directory (and results/index.html for a run in "
        "results/).",
    )
    parser.add_argument(
        "run_dir", nargs="?", type=Path, default=RESULTS_ROOT / "latest",
        help="the run directory (default: results/latest)",
    )  # fmt: skip
    run_dir = parser.parse_args(argv).run_dir.resolve()
    if not holds_run(run_dir):
        return fail(parser.prog, f"{run_dir}: not a run directory (no meta.json, no cells/)")
    if is_baseline(run_dir):
        return fail(
            parser.prog,
            f"{run_dir} is the committed baseline, read-only to all but `bench baseline`; "
            f"report on a copy: cp -r {run_dir} /tmp/baseline && python -m bench report "
            "/tmp/baseline",
        )
    print(build_report(run_dir))
    return 0
