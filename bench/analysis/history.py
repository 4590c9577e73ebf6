"""History of runs: one JSON line per run in ``results/history.jsonl``, and a plot of its trend.

Each line holds where and when a run was measured and its in-run ratios (the same ratios, under
the same names, that `bench compare` judges), so a slow drift that never crosses the regression
threshold in one step still shows as a slope across runs.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from pathlib import Path

from matplotlib.figure import Figure

from bench.analysis.ratios import in_run_ratios
from bench.rundir import load_run, machine_meta

#: fields copied from meta.json into each history line
META_FIELDS = ("commit", "date", "machine", "cpu_model", "python", "profile", "injections")


def history_path_for(run_dir: Path) -> Path:
    """Runs live in ``results/<run-id>/``, so the history sits beside them in ``results/``."""
    return Path(run_dir).parent / "history.jsonl"


def history_entry(run_dir: Path) -> dict:
    run = load_run(run_dir)
    meta = run.meta or machine_meta()
    entry = {"run": Path(run_dir).name, **{key: meta.get(key) for key in META_FIELDS}}
    entry["ratios"] = {
        ratio.name: ratio.value for ratio in in_run_ratios(run) if ratio.value is not None
    }
    return entry


def append_run(run_dir: Path, history_path: Path | None = None) -> dict:
    """Append one line for ``run_dir`` to the history (``results/history.jsonl`` by default)."""
    entry = history_entry(run_dir)
    path = history_path or history_path_for(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as history:  # one short write: lines of concurrent runs do not interleave
        history.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def read_history(history_path: Path) -> list[dict]:
    """The entries in order; a damaged line (an interrupted write) is skipped with a warning."""
    entries = []
    for number, line in enumerate(Path(history_path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"{history_path}:{number}: skipping a damaged line", file=sys.stderr)
    return entries


#: the ratios the trend shows: the hot path against its floors, and each model's framework cost.
#: Every other ratio stays in the history (and in `bench compare`); dozens of lines help no one.
KEY_MICRO_RATIOS = (
    "micro test_full_cycle_plaintext[framework] / werkzeug",
    "micro test_full_cycle_plaintext[framework] / flask",
    "micro test_full_cycle_fortunes[framework] / werkzeug",
    "micro test_push_top_pop[framework] / contextvar",
    "micro test_proxy_request_method[framework] / werkzeug",
)
#: profiles load plaintext at different user levels (smoke 8, quick 16), so one line per server
#: takes whichever level a run has, the lowest when it has several
KEY_LOAD_RATIO = re.compile(r"load (?P<server>\S+) plaintext u(?P<users>\d+) app/raw rps")
#: the trend shows the newest runs only, so labels stay legible
TREND_RUNS = 30


def run_label(entry: dict) -> str:
    commit = (entry.get("commit") or "?")[:7]
    return f"{(entry.get('date') or '')[:10]}\n{commit}"


def key_load_ratios(entry: dict) -> dict[str, float]:
    by_server: dict[str, tuple[int, float]] = {}
    for name, value in entry.get("ratios", {}).items():
        match = KEY_LOAD_RATIO.fullmatch(name)
        if match:
            users = int(match["users"])
            if match["server"] not in by_server or users < by_server[match["server"]][0]:
                by_server[match["server"]] = (users, value)
    return {f"{server} plaintext app/raw rps": value for server, (_, value) in by_server.items()}


def key_series(entries: list[dict]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """The micro and load key ratios per entry; NaN where a run lacks one (a gap in its line)."""
    micro = {
        name.removeprefix("micro ").replace("[framework]", ""): [
            entry.get("ratios", {}).get(name, math.nan) for entry in entries
        ]
        for name in KEY_MICRO_RATIOS
        if any(name in entry.get("ratios", {}) for entry in entries)
    }
    per_entry = [key_load_ratios(entry) for entry in entries]
    load_names = sorted({name for ratios in per_entry for name in ratios})
    load = {name: [ratios.get(name, math.nan) for ratios in per_entry] for name in load_names}
    return micro, load


def plot_series(axis, series: dict[str, list[float]], title: str, ylabel: str) -> None:
    for name, values in series.items():
        axis.plot(range(len(values)), values, marker="o", linewidth=1, markersize=3, label=name)
    axis.set_title(title)
    axis.set_ylabel(ylabel)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))


def plot_trend(history_path: Path, out_png: Path) -> Path | None:
    """Draw the key ratios across the newest runs into ``out_png``; None with fewer than 2 runs."""
    png = trend_png(history_path)
    if png is None:
        return None
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    Path(out_png).write_bytes(png)
    return Path(out_png)


def trend_png(history_path: Path) -> bytes | None:
    """The trend plot's PNG bytes (results/index.html inlines them); None with fewer than 2
    runs or no key ratio."""
    if not Path(history_path).is_file():
        return None
    entries = read_history(history_path)[-TREND_RUNS:]
    if len(entries) < 2:
        return None
    micro, load = key_series(entries)
    panels = [
        (micro, "micro: time of a case ÷ its in-run reference", "× reference (lower is faster)"),
        (load, "load: framework app ÷ raw WSGI app, same server", "requests/s ratio"),
    ]
    panels = [panel for panel in panels if panel[0]]
    if not panels:
        return None
    # a bare Figure draws with Agg and leaves no pyplot state behind
    figure = Figure(figsize=(12, 3.6 * len(panels)))
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)
    for axis, (series, title, ylabel) in zip(axes[:, 0], panels, strict=True):
        plot_series(axis, series, title, ylabel)
    axes[-1, 0].set_xticks(range(len(entries)), [run_label(entry) for entry in entries], fontsize=7)
    figure.suptitle(f"trend of the key in-run ratios over the last {len(entries)} runs")
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100)
    return png.getvalue()
