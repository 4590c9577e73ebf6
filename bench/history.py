"""History of runs: one JSON line per run in ``results/history.jsonl``, and a plot of its trend.

Each line holds where and when a run was measured and its in-run ratios (the same ratios, under
the same names, that `bench compare` judges), so a slow drift that never crosses the regression
threshold in one step still shows as a slope across runs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from bench.compare import in_run_ratios, load_run
from bench.rundir import machine_meta

#: fields copied from meta.json into each history line
META_FIELDS = ("commit", "date", "machine", "cpu_model", "python", "profile")


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


def run_label(entry: dict) -> str:
    commit = (entry.get("commit") or "?")[:7]
    return f"{(entry.get('date') or '')[:10]}\n{commit}"


def plot_series(axis, entries: list[dict], names: list[str], title: str) -> None:
    positions = range(len(entries))
    for name in names:
        values = [entry.get("ratios", {}).get(name, math.nan) for entry in entries]
        axis.plot(positions, values, marker="o", linewidth=1, markersize=3, label=name)
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(ScalarFormatter())
    axis.yaxis.set_minor_formatter(ScalarFormatter())
    axis.set_title(title)
    axis.set_ylabel("ratio (log scale)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))


def plot_trend(history_path: Path, out_png: Path) -> Path | None:
    """Draw every key ratio across runs (micro above, load below); None with fewer than 2 runs."""
    if not Path(history_path).is_file():
        return None
    entries = read_history(history_path)
    if len(entries) < 2:
        return None
    names = sorted({name for entry in entries for name in entry.get("ratios", {})})
    # p99 ratios stay in the history but not in the plot: one value per repeat is too noisy a line
    panels = [
        ("micro: time of a case ÷ its in-run reference", [n for n in names if n[:6] == "micro "]),
        ("load: requests/s ÷ the in-run reference cell", [n for n in names if n[-4:] == " rps"]),
    ]
    panels = [(title, group) for title, group in panels if group]
    rows = max(len(panels), 1)
    # a bare Figure draws with Agg and leaves no pyplot state behind
    figure = Figure(figsize=(12, 4 * rows))
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)
    for axis, (title, group) in zip(axes[:, 0], panels, strict=False):
        plot_series(axis, entries, group, title)
    axes[-1, 0].set_xticks(range(len(entries)), [run_label(entry) for entry in entries], fontsize=7)
    figure.suptitle("trend of in-run ratios across runs")
    figure.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=100)
    return Path(out_png)
