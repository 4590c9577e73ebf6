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
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import jinja2

from bench import flags
from bench.analysis import latency_plot
from bench.analysis.compare import REGRESSED
from bench.analysis.cpu_profiles import READING_NOTE, profile_sections, side_by_side
from bench.analysis.endpoints import (
    ENDPOINT_HEADER,
    FAILURE_HEADER,
    endpoint_rows,
    failure_rows,
)
from bench.analysis.pairs import apply_null_bound, pair_rows
from bench.analysis.report_figures import plot_costs, plot_scenario, server_order
from bench.analysis.report_prose import looks_sentence, scenario_paragraph
from bench.analysis.report_tables import (
    FLAGS_COLUMN,
    TABLE_COLUMNS,
    budget_sentence,
    markdown_table,
    meta_rows,
    micro_table,
    pair_table,
    settings_text,
    table_rows,
)
from bench.analysis.story import banners, cell_fields, unmeasured
from bench.analysis.timeline import plot_timelines
from bench.analysis.verdict import (
    basis,
    latency_note,
    measured_range,
    rate_samples,
    second_look_cells,
    verdict_tables,
)
from bench.catalogue import SCENARIOS
from bench.cli import Parser, fail
from bench.rundir import (
    RESULTS_ROOT,
    cell_files,
    holds_run,
    is_baseline,
    read_meta,
    read_record,
    shared_root,
    write_json,
)

#: the pages' jinja2 templates: report.html of a run, index.html of results/
TEMPLATES = Path(__file__).resolve().parent / "templates"


#: the summary record of a cell: these keys, in this order, in summary.json and the tables
RECORD_KEYS = (
    "server", "model", "kind", "app", "scenario", "users", "rps", "rps_min", "rps_max", "p50_ms",
    "p90_ms", "p99_ms", "max_ms", "fail_ratio", "server_cpu_pct", "server_rss_mb", "server_procs",
    "server_threads", "generator_cpu_pct", "cpu_s_per_1k", "flags", "repeats", "status", "error",
    "cell", "budget_cpus", "budget_period_us", "rps_per_cpu", "throttled_share", "rps_low",
    "rps_high", "mode", "offered_fraction", "offered_rps", "p50_us", "p90_us", "p99_us", "p999_us",
    "max_us", "late_ratio", "requests", "seconds", "workers_cpu_pct",
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
    record.update(rate_samples(cell))  # what the verdict's significance test needs
    record["budget_period_us"] = (cell.get("budget") or {}).get("period_us")
    record.update({key: cell.get(key) for key in ("mode", "offered_fraction", "offered_rps")})
    return latency_plot.with_microseconds(record)


def verdicts_of(meta: dict, every: list[dict], records: list[dict]) -> list[dict]:
    """The verdict of every scenario of the run; one missing planned cells ranks nobody (the
    ranking would crown whoever ran)."""
    missing = unmeasured(meta, [r["cell"] for r in every])
    incomplete = Counter(cell_fields(name)["scenario"] for name in missing)
    scenarios = list(meta.get("scenarios") or {})
    return verdict_tables(records, scenarios, incomplete, meta.get("looks", 1))


def second_look(cells: list[dict]) -> list[str]:
    """The cells of a finished load part that a second look measures again: those of the gaps
    the verdict's first look calls sure (``verdict.second_look_cells``), read from the cell
    records as the report reads them."""
    records = [summary_record(cell) for cell in cells]
    return second_look_cells([record for record in records if record["mode"] == "closed"])


def closed_loop_records(cells: list[dict], meta: dict) -> tuple[list[dict], list[dict]]:
    """Every cell's summary record, and the closed-loop ones in report order with the null-server
    bound applied to their flags."""
    every = [summary_record(cell) for cell in cells]
    records = [r for r in every if r["mode"] == "closed"]
    return every, sorted_records(records, scenario_ranker(meta))


def console_verdict(run_dir: Path) -> list[str]:
    """The verdict's one-line answers, as the console prints them after a run."""
    meta = read_meta(run_dir)
    every, records = closed_loop_records(read_cells(run_dir), meta)
    apply_null_bound(records)
    return [table["answer"].text for table in verdicts_of(meta, every, records)]


def apply_pairs(records: list[dict]) -> list[dict]:
    """Apply the null-server bound to the flags and return the pairs table."""
    apply_null_bound(records)
    return pair_rows(records)


# --- plots ------------------------------------------------------------------------------------


def ranker(order: list[str]) -> Callable[[str], int]:
    """A sort key: a name's place in ``order``; any other name last."""
    return lambda name: order.index(name) if name in order else len(order)


def scenario_ranker(meta: dict) -> Callable[[str], int]:
    """Scenarios in the order the run declared them (a user's own included), then the
    catalogue's."""
    return ranker(list(dict.fromkeys([*(meta.get("scenarios") or {}), *SCENARIOS])))


# --- plain-language paragraphs -----------------------------------------------------------------


# --- tables and pages -------------------------------------------------------------------------


def sorted_records(records: list[dict], scenario_rank: Callable[[str], int]) -> list[dict]:
    order = {name: index for index, name in enumerate(server_order(records))}
    return sorted(records, key=lambda r: (scenario_rank(r["scenario"]), r["app"] != "app",
                                          r["users"], order[r["server"]]))  # fmt: skip


def write_summary_md(run_dir: Path, context: dict) -> Path:
    meta = context["meta"]
    heading = f"Profile `{meta.get('profile')}`, commit `{meta.get('commit')}`, {meta.get('date')}."
    parts = [f"# Run {run_dir.name}", "", heading, ""]
    if context["verdicts"]:
        looks = [context["looks_sentence"], ""] if context["looks_sentence"] else []
        parts += ["## Verdict", "", *[f"- {line}" for line in context["answers"]], "",
                  context["budget_sentence"], "", f"Ranked by {context['verdict_basis']}.", "",
                  *looks]  # fmt: skip
        for verdict in context["verdicts"]:
            parts += [f"### {verdict['scenario']}", ""]
            if verdict["rows"]:
                parts += [markdown_table(verdict["header"], verdict["rows"]), ""]
            if verdict["unranked"]:
                table = markdown_table(verdict["unranked_header"], verdict["unranked"])
                parts += ["Not ranked:", "", table, ""]
    for scenario in context["scenarios"]:
        parts += [f"## {scenario['name']}", "", scenario["paragraph"], ""]
    parts += ["## Every cell", "", markdown_table(context["header"], context["rows"]), ""]
    if context["failure_rows"]:
        table = markdown_table(context["failure_header"], context["failure_rows"])
        parts += ["## What failed", "", table, ""]
    for section in context["latency_sections"]:
        parts += [f"## {section['name']}: latency against offered load", "",
                  latency_plot.OPEN_LOOP + ". " + section["paragraph"], "",
                  markdown_table(section["header"], section["rows"]), ""]  # fmt: skip
    for section in context["cpu_sections"]:
        parts += [f"## Where each server's CPU goes: {section['title']}", "",
                  "Functions by self time (share of samples), from py-spy; flame graphs in"
                  " profiles/.", "", markdown_table(*side_by_side(section)), ""]  # fmt: skip
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
                "cells": len(cell_files(run_dir)),
            })  # fmt: skip
    path = results_root / "index.html"
    trend = trend_uri(results_root / "history.jsonl")
    path.write_text(template("index.html").render(runs=runs, trend=trend, regressed=REGRESSED))
    return path


def trend_uri(history: Path) -> str | None:
    """The trend plot as a data: URI, so index.html stays one file and nothing else is written."""
    from bench.analysis.history import trend_png

    png = trend_png(history)
    return f"data:image/png;base64,{base64.b64encode(png).decode()}" if png else None


def template(name: str) -> jinja2.Template:
    """A page template of ``templates/``: escaped, and strict about a value the page lacks."""
    loader = jinja2.FileSystemLoader(TEMPLATES)
    environment = jinja2.Environment(
        loader=loader, autoescape=True, undefined=jinja2.StrictUndefined
    )
    return environment.get_template(name)


def draw_plots(
    run_dir: Path, records: list[dict], descriptions: dict, cells: list[dict]
) -> dict[str, str]:
    """Every PNG of the report; name → file name relative to the run directory (a scenario's
    small multiples over time under ``timeline-<scenario>``)."""
    plots = {}
    by_name = {cell.get("cell"): cell for cell in cells}
    for scenario in dict.fromkeys(r["scenario"] for r in records):  # records come sorted
        chosen = [r for r in records if r["scenario"] == scenario]
        plots[scenario] = plot_scenario(
            chosen, scenario, descriptions.get(scenario, ""), run_dir / f"load-{scenario}.png"
        ).name
        in_order = [by_name[r["cell"]] for r in chosen if r["cell"] in by_name]
        timeline = plot_timelines(in_order, scenario, run_dir / f"timeline-{scenario}.png")
        if timeline is not None:
            plots[f"timeline-{scenario}"] = timeline.name
    if records:
        plots["costs"] = plot_costs(records, run_dir / "costs.png").name
    if (run_dir / "micro.png").exists():
        plots["micro"] = "micro.png"
    return plots


def scenario_descriptions(meta: dict) -> dict[str, str]:
    """What each scenario does: as the run recorded it, else as the catalogue says."""
    recorded = meta.get("scenarios") or {}
    return {**{name: s.description for name, s in SCENARIOS.items()}, **recorded}


def build_report(run_dir: Path) -> Path:
    """Plots, report.html, summary.md and summary.json of ``run_dir``, from its files alone;
    results/index.html too when the run lives in results/."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    cells = read_cells(run_dir)
    every, records = closed_loop_records(cells, meta)
    open_loop = [r for r in every if r["mode"] == "open"]
    descriptions = scenario_descriptions(meta)
    scenario_rank = scenario_ranker(meta)
    server_rank = ranker(server_order(every))
    missing = unmeasured(meta, [r["cell"] for r in every])
    pairs = apply_pairs(records)  # before anything shows flags: it may add generator-bound
    write_json(run_dir / "summary.json", records + open_loop)
    plots = draw_plots(run_dir, records, descriptions, cells)
    pair_header, pair_body = pair_table(pairs)
    closed_cells = [c for c in cells if c.get("mode", "closed") == "closed"]
    verdicts = verdicts_of(meta, every, records)
    context = {
        "run": run_dir.name,
        "meta": meta,
        "banners": banners(meta, [r["cell"] for r in every]),
        "in_results": shared_root(run_dir) is not None,
        "verdicts": verdicts,
        "answers": [table["answer"].text for table in verdicts],
        "verdict_basis": basis(records),
        "looks_sentence": looks_sentence(meta),
        "budget_sentence": budget_sentence(meta.get("budget")),
        "budget_flag_note": flags.BUDGET_NOTE if (meta.get("budget") or {}).get("cpus") else "",
        "latency_note": latency_note(records),
        "scenarios": scenario_sections(records, descriptions, missing, plots, closed_cells),
        "header": [title for _, title in TABLE_COLUMNS],
        "flags_column": FLAGS_COLUMN,
        "rows": table_rows(records),
        "row_flags": [r["flags"] for r in records],
        "errors": [(r["cell"], r["error"]) for r in records if r.get("error")],
        "endpoint_header": list(ENDPOINT_HEADER),
        "failure_header": list(FAILURE_HEADER),
        "failure_rows": failure_rows(closed_cells),
        "flag_meanings": flags.MEANINGS,
        "plots": plots,
        "pair_header": pair_header,
        "pair_rows": pair_body,
        "micro_table": micro_table(run_dir),
        "cpu_sections": profile_sections(run_dir, cells, server_rank, scenario_rank),
        "cpu_problem": (meta.get("cpu_profiles") or {}).get("problem"),
        "cpu_note": READING_NOTE,
        "latency_sections": latency_plot.latency_sections(run_dir, open_loop, scenario_rank),
        "meta_rows": meta_rows(meta),
        "server_rows": [
            (name, server.get("model"), server.get("kind"), settings_text(server.get("settings")))
            for name, server in (meta.get("servers") or {}).items()
        ],
    }  # fmt: skip
    write_summary_md(run_dir, context)
    report = run_dir / "report.html"
    report.write_text(template("report.html").render(**context))
    results_root = shared_root(run_dir)
    if results_root is not None:
        write_index(results_root)
    return report


def scenario_sections(
    records: list[dict],
    descriptions: dict,
    missing: list[str],
    plots: dict[str, str],
    closed_cells: list[dict],
) -> list[dict]:
    """One section per scenario measured, in the run's order: its words, paragraph, plots and
    per-endpoint table."""
    return [
        {
            "name": name,
            "description": descriptions.get(name, ""),
            "paragraph": scenario_paragraph(records, name, missing),
            "plot": plots.get(name),
            "timeline": plots.get(f"timeline-{name}"),
            "endpoint_rows": endpoint_rows([c for c in closed_cells if c.get("scenario") == name]),
        }
        for name in dict.fromkeys(r["scenario"] for r in records)
    ]


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
