"""Regression tracking: compare two runs by ratios measured inside each run, never by absolute time.

A CI machine that is twice as slow makes every timing twice as long, and a shared runner drifts by
10-25% from run to run. Both shift a case and the reference measured beside it in the same run
together, so this module compares only in-run ratios:

- micro: each of our own cases' per-round times ÷ the median of each reference it names
  (``extra_info["compare_to"]``), e.g. full request cycle ÷ werkzeug, ÷ Flask, ÷ raw WSGI;
- load, framework cost: a ``bench.apps.app`` cell's requests/s (each second of the measured
  window) and p99 (one per repeat) ÷ the same server serving ``bench.apps.rawapp`` in the same run;
- load, server cost: each of our servers' raw-app requests/s ÷ the null server of the same run
  when there is one (it does not share our HTTP layer, so a regression there shows), otherwise ÷
  the geometric mean of our other models (a server falling behind its siblings);
- load, shared-layer cost: each of our cells' server CPU per request (each second: CPU% ÷
  requests/s) ÷ the null server's at the same scenario and users, and, when cells record the CPU
  budget they ran in (``budget_cpus``), requests/s per CPU ÷ the null server's. The null server
  shares no code with ours, so a slower HTTP layer, which all four models share, shows here
  even when Locust set the pace.

A row regresses only when its median ratio moved past the threshold in the bad direction AND a
one-sided Mann-Whitney U test on the ratio samples says p < alpha; fewer than MIN_SAMPLES samples
on either side is "not enough data", never a guess. A micro case regresses only against every one
of its references, and `regress` re-measures a regressed case before it believes it.

Beside the timed rows, when both runs hold ``instructions.json`` (``bench.micro.instructions``):
instructions per request of each workload, counted by cachegrind. Counts of unchanged code are
deterministic, so these rows have no test: a change past INSTRUCTION_THRESHOLD is the verdict,
provided both were counted on the same Python and libraries.

Commands: ``compare BASELINE CURRENT`` (exit 0 ok, 1 regressed, 2 unusable input or nothing
judged), ``baseline`` (refresh results/baseline from a smoke run) and ``regress`` (smoke run +
compare with it).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.analysis.stats import bootstrap_ratio_ci, mann_whitney_u
from bench.cli import Parser
from bench.flags import GENERATOR_BOUND
from bench.micro.results import MicroCase, load_micro
from bench.rundir import BASELINE_NAME, RESULTS_ROOT

BASELINE_DIR = RESULTS_ROOT / BASELINE_NAME

#: a change smaller than this is "ok" however significant: rounds of one run share the machine's
#: state, so with hundreds of samples a test finds tiny shifts "significant"; the threshold is
#: what decides whether a shift matters
DEFAULT_THRESHOLD = 0.10
#: what `regress` takes as the least change a load row can count as, whatever its threshold:
#: a 10-s cell on this shared 2-core VM moves far more than a micro case, because the machine's
#: speed moves between cells measured a minute apart. Measured over 5 consecutive smoke runs of
#: the unchanged tree under a 0.5-CPU budget: fork's app/raw requests/s -28% and -46%;
#: cpu-per-request/null +42%, +50%, +66% and +134%; under regress's 0.1-CPU budget, over 10
#: unchanged regress runs: the largest move of any load row per run 19-53%. So in regress a load row
#: flags only a gross change — a server that stopped serving, or costs well over twice its CPU
#: per request — and the fine signals are the micro rows (25%, confirmed) and the instruction
#: counts (2%). `compare` takes no floor unless asked.
LOAD_FLOOR = 1.5
#: what `bench regress` uses: its smoke micro run times each case for only 0.25 s on a shared
#: machine. Measured here over 8 unchanged smoke runs: a case's ratio moved by up to 40% against
#: every reference (a neighbour's burst during its rounds), 6 of 56 run pairs crossed 25% in one
#: pass and none both in the pass and in its confirming re-measurement (see confirm_micro)
REGRESS_THRESHOLD = 0.25
#: micro measurements in a baseline: one measurement can catch a case in a fast or slow moment
#: (measured: a case's ratio ranged by up to 18% across 8 unchanged runs); the baseline's ratio
#: is the median over its measurements
BASELINE_MICRO_RUNS = 3
#: a strict level: one smoke run judges ~40 micro rows, and a false alarm fails CI
DEFAULT_ALPHA = 0.01
#: the smallest samples with which the exact one-sided test can reach p < 0.01 at all
#: (5 vs 5: p = 1/252); fewer is "not enough data"
MIN_SAMPLES = 5
#: instructions per request of two counts of unchanged code differed by at most 0.03% here
#: (five workloads, two runs), so a few percent is a change of the code, never noise
INSTRUCTION_THRESHOLD = 0.02
#: samples kept per case and measurement (chosen evenly over the rounds): what the committed
#: baseline stores, and what a current run is thinned to so no side is weighed by its round count
MAX_SAMPLES = 200

VERDICTS = ("ok", "improved", "REGRESSED", "not enough data", "not significant")
#: the verdict of a row the test could not judge
NOT_JUDGED = "not enough data"
#: where regress puts its confirming re-measurements of the regressed micro cases, in order: a
#: verdict stands only if every one repeats it. Two, because one was not enough: in one of five
#: unchanged runs here a case (the framework's request proxy) timed 294-297 ns in the first pass
#: and in the confirmation three minutes later, against 160-170 ns in 10 other processes, while
#: its references did not move — a slow mode of whole processes, not a burst
CONFIRM_DIRS = ("confirm", "confirm-2")


class UnusableInput(Exception):
    """The inputs cannot be compared (missing, unreadable, or measuring different things)."""


# --- loading: a run dir, a micro.json, a cells/ dir or one cell file -----------------------------


@dataclass
class Run:
    #: what the user named: a run dir or a JSON file
    source: Path
    #: the micro cases, or None when the input has no micro.json
    micro: list[MicroCase] | None = None
    #: more measurements of the same cases (``micro-*/micro.json``): the baseline keeps several
    micro_repeats: list[list[MicroCase]] = field(default_factory=list)
    #: load cell records by cell name, or None when the input has no cells
    cells: dict[str, dict] | None = None
    #: the run's meta.json, when there is one
    meta: dict = field(default_factory=dict)
    #: instructions.json (instructions per request of each workload), or None
    instructions: dict | None = None
    #: a single cell compared by itself: only its own ratios are rows (its references come
    #: from the cell files beside it)
    focus: str | None = None
    #: a regress run's confirming re-measurements of its regressed micro cases, in order
    confirmations: list[list[MicroCase]] = field(default_factory=list)


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise UnusableInput(f"{path}: cannot read ({error.strerror})") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UnusableInput(f"{path}: not valid JSON ({error})") from error


def read_micro(path: Path) -> list[MicroCase]:
    read_json(path)  # a clear message for unreadable or invalid JSON first
    try:
        return load_micro(path)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UnusableInput(f"{path}: not a pytest-benchmark JSON file ({error!r})") from error


def read_cells(paths: list[Path]) -> dict[str, dict]:
    cells = {}
    for path in paths:
        record = read_json(path)
        if not isinstance(record, dict) or "cell" not in record:
            raise UnusableInput(f"{path}: not a load cell (no 'cell' key)")
        cells[record["cell"]] = record
    return cells


def read_instructions(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("per_request"), dict):
        raise UnusableInput(f"{path}: not an instruction count file (no 'per_request')")
    return data


def load_run(path: Path) -> Run:
    """Read what ``path`` holds: a run directory, a cells/ directory, micro.json or a cell file."""
    path = Path(path)
    if not path.exists():
        raise UnusableInput(f"{path}: no such file or directory")
    if path.is_file():
        data = read_json(path)
        if isinstance(data, dict) and "benchmarks" in data:
            return Run(path, micro=read_micro(path))
        if isinstance(data, dict) and "cell" in data:
            return single_cell_run(path, data)
        if isinstance(data, dict) and "per_request" in data:
            return Run(path, instructions=read_instructions(path))
        raise UnusableInput(
            f"{path}: neither a pytest-benchmark micro.json nor a load cell (nor instructions.json)"
        )
    run = Run(path)
    if (path / "micro.json").is_file():
        run.micro = read_micro(path / "micro.json")
        run.micro_repeats = [
            read_micro(repeat) for repeat in sorted(path.glob("micro-*/micro.json"))
        ]
    cells_dir = path / "cells" if (path / "cells").is_dir() else path
    cell_files = sorted(cells_dir.glob("*--*.json"))
    if cell_files:
        run.cells = read_cells(cell_files)
    if (path / "instructions.json").is_file():
        run.instructions = read_instructions(path / "instructions.json")
    if (path / "meta.json").is_file():
        meta = read_json(path / "meta.json")
        run.meta = meta if isinstance(meta, dict) else {}
    run.confirmations = [
        read_micro(path / directory / "micro.json")
        for directory in CONFIRM_DIRS
        if (path / directory / "micro.json").is_file()
    ]
    return run


def single_cell_run(path: Path, cell: dict) -> Run:
    """One cell file, with the reference cells its ratios need, found beside it."""
    read_cells([path])  # the same check as any cell
    siblings = read_cells([p for p in sorted(path.parent.glob("*--*.json")) if p != path])
    references, needed = reference_cells(cell, siblings)
    if not references:
        raise UnusableInput(
            f"{path}: a cell alone gives no in-run ratio and its reference ({needed}) is not "
            "beside it; pass the run directory or its cells/ directory instead"
        )
    cells = {cell["cell"]: cell, **{ref["cell"]: ref for ref in references}}
    return Run(path, cells=cells, focus=cell["cell"])


def reference_cells(cell: dict, siblings: dict[str, dict]) -> tuple[list[dict], str]:
    """The cells ``cell``'s ratios divide by, from ``siblings``, and a description of them."""
    index = {cell_key(other): other for other in siblings.values()}
    server, app, scenario, users = cell_key(cell)
    if app == "app":
        raw = raw_reference(index, server, scenario, users)
        return [raw] if raw else [], f"{server}--raw--{scenario}--u{users}.json"
    if app == "raw" and cell.get("kind") == "ours":
        same_load = [other for key, other in index.items() if key[2:] == (scenario, users)]
        null = [other for other in same_load if other.get("model") == "null"]
        siblings_raw = [other for other in same_load if other.get("kind") == "ours"
                        and other["app"] == "raw"]  # fmt: skip
        return null or siblings_raw, f"null--raw--{scenario}--u{users}.json or our other models"
    return [], "none: only our servers' cells have in-run ratios"


# --- in-run ratios --------------------------------------------------------------------------------


@dataclass
class Ratio:
    #: the row label, also the key in results/history.jsonl
    name: str
    #: median of the case ÷ median of its reference; None when either is missing
    value: float | None
    #: the case's samples each divided by the reference's median
    samples: list[float]
    #: True for times (a rise is a regression), False for requests/s
    higher_is_worse: bool
    #: what is measured: the ratios of one micro case to each of its references share it, and
    #: the case regresses only when it does against every one of them
    case: str = ""
    #: why the ratio cannot be judged even with enough samples ("" when it can)
    caveat: str = ""
    #: the load cell whose numbers are the numerator ("" for micro ratios)
    cell: str = ""
    #: the least change that can count for this ratio, when its own run-to-run spread is wider
    #: than the run's threshold (None: the run's threshold)
    floor: float | None = None


def thin(samples: list[float], keep: int = MAX_SAMPLES) -> list[float]:
    """At most ``keep`` samples, chosen evenly over the sequence (rounds drift during a run, so
    keeping the first ``keep`` would favour the warm start)."""
    if len(samples) <= keep:
        return list(samples)
    step = (len(samples) - 1) / (keep - 1)
    return [samples[round(index * step)] for index in range(keep)]


def ratio(name: str, case: list[float], reference: list[float], higher_is_worse: bool) -> Ratio:
    if not case or not reference:
        return Ratio(name, None, [], higher_is_worse, case=name)
    reference_median = statistics.median(reference)
    samples = [value / reference_median for value in thin(case)]
    median = statistics.median(case) / reference_median
    return Ratio(name, median, samples, higher_is_worse, case=name)


def load_ratio(
    name: str, cell: dict, case: list[float], reference: list[float], higher_is_worse: bool
) -> Ratio:
    """A ratio whose numerator is ``cell``: when Locust was the bottleneck there, the cell
    measured the load generator, not the server or the framework."""
    result = ratio(name, case, reference, higher_is_worse)
    result.cell = cell.get("cell", "")
    if GENERATOR_BOUND in cell.get("flags", []):
        result.caveat = "Locust was the bottleneck"
    return result


def micro_ratios(cases: list[MicroCase]) -> list[Ratio]:
    """Each of our own cases (references are not our code) ÷ each of its references in the run:
    per-round times ÷ the reference's median."""
    by_name = {case.name: case for case in cases}
    ratios = []
    for case in cases:
        if case.is_reference:
            continue
        references = [by_name[name] for name in case.compare_to if name in by_name]
        for reference in references:
            ratios.append(
                Ratio(
                    f"micro {case.name} / {reference.subject}",
                    case.median_s / reference.median_s,
                    [sample / reference.median_s for sample in thin(case.samples_s)],
                    higher_is_worse=True,
                    case=case.name,
                )
            )
    return ratios


def rps_series(cell: dict | None) -> list[float]:
    """Requests/s of every second of every repeat; nothing for a failed or missing cell."""
    if not cell or cell.get("status") != "ok":
        return []
    return [rps for repeat in cell.get("repeats", []) for rps in repeat.get("rps_series", [])]


def p99s(cell: dict | None) -> list[float]:
    if not cell or cell.get("status") != "ok":
        return []
    return [repeat["p99_ms"] for repeat in cell.get("repeats", []) if repeat.get("p99_ms")]


def cell_key(cell: dict) -> tuple[str, str, str, int]:
    return cell["server"], cell["app"], cell["scenario"], cell["users"]


def raw_reference(index: dict, server: str, scenario: str, users: int) -> dict | None:
    """The same server serving bench.apps.rawapp: same scenario if measured, else raw plaintext (the
    raw app serves only /plaintext and /json)."""
    return index.get((server, "raw", scenario, users)) or index.get(
        (server, "raw", "plaintext", users)
    )


def framework_ratios(index: dict) -> list[Ratio]:
    ratios = []
    for (server, app, scenario, users), cell in sorted(index.items()):
        if app != "app" or cell.get("model") == "null":  # the null server never calls the app
            continue
        raw = raw_reference(index, server, scenario, users)
        label = f"load {server} {scenario} u{users} app/raw"
        ratios.append(load_ratio(f"{label} rps", cell, rps_series(cell), rps_series(raw), False))
        ratios.append(load_ratio(f"{label} p99", cell, p99s(cell), p99s(raw), True))
    return ratios


def geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(value) for value in values))


def server_reference(index: dict, server: str, scenario: str, users: int) -> tuple[str, list]:
    """The null server's rps series at the same scenario and users; without one, the geometric
    mean of the other models' median raw rps (one value: the reference of a single run)."""
    peers = [cell for (_, _, *where), cell in index.items() if where == [scenario, users]]
    null = [cell for cell in peers if cell.get("model") == "null"]
    if null:
        return "null", rps_series(null[0])
    siblings = [
        statistics.median(rps_series(cell))
        for cell in peers
        if cell.get("kind") == "ours"
        and cell["app"] == "raw"
        and cell["server"] != server
        and rps_series(cell)
    ]
    return "others", [geometric_mean(siblings)] if siblings else []


def server_ratios(index: dict) -> list[Ratio]:
    """Each of our servers' raw-app rps ÷ the reference server of the same run."""
    ratios = []
    for (server, app, scenario, users), cell in sorted(index.items()):
        if app == "raw" and cell.get("kind") == "ours":
            name, reference = server_reference(index, server, scenario, users)
            label = f"load {server} {scenario} u{users} raw/{name} rps"
            ratios.append(load_ratio(label, cell, rps_series(cell), reference, False))
    return ratios


def model_ratios(index: dict) -> list[Ratio]:
    """For a run without the raw reference app (the user's own app, ``--app``): each of our
    servers' requests/s ÷ the geometric mean of the other models' median on the same scenario and
    users, so a model falling behind its siblings on that app still shows."""
    ratios = []
    for (server, app, scenario, users), cell in sorted(index.items()):
        if cell.get("kind") != "ours":
            continue
        others = [
            statistics.median(rps_series(other))
            for (name, *where), other in index.items()
            if where == [app, scenario, users] and name != server
            and other.get("kind") == "ours" and rps_series(other)
        ]  # fmt: skip
        reference = [geometric_mean(others)] if others else []
        label = f"load {server} {scenario} u{users} {app}/others rps"
        ratios.append(load_ratio(label, cell, rps_series(cell), reference, False))
    return ratios


def cpu_per_request_series(cell: dict | None) -> list[float]:
    """Server CPU-seconds per request of each second of every repeat: the sampler's mean CPU%
    over that second ÷ its requests/s. Unlike requests/s it holds when Locust set the pace."""
    if not cell or cell.get("status") != "ok":
        return []
    series = []
    for repeat in cell.get("repeats", []):
        samples = [s for s in repeat.get("samples") or [] if s.get("server_cpu_pct") is not None]
        for second, rps in enumerate(repeat.get("rps_series", [])):
            cpu = [s["server_cpu_pct"] for s in samples if second < s["t"] <= second + 1]
            if rps > 0 and cpu:
                series.append(statistics.fmean(cpu) / 100 / rps)
    return series


def budget_cpus(cell: dict | None) -> float | None:
    """The CPU budget a cell's server ran in (its record's ``budget``), None: unlimited."""
    return ((cell or {}).get("budget") or {}).get("cpus")


def rps_per_cpu_series(cell: dict | None) -> list[float]:
    """Requests/s per CPU of the budget the server ran in; nothing for a cell without one."""
    budget = budget_cpus(cell)
    return [rps / budget for rps in rps_series(cell)] if budget else []


def null_ratios(index: dict) -> list[Ratio]:
    """Each of our cells ÷ the null server at the same scenario and users, in the same run.

    The null server shares nothing with ours (it parses nothing), so a slower HTTP layer, which
    all four models share and which app/raw and raw/others cancel, shows here: as server CPU per
    request, and, when the run gave every server a CPU budget, as requests/s per CPU.
    """
    ratios = []
    for (server, app, scenario, users), cell in sorted(index.items()):
        null = next(
            (c for (_, _, *where), c in index.items()
             if where == [scenario, users] and c.get("model") == "null"),
            None,
        )  # fmt: skip
        if cell.get("kind") != "ours" or null is None:
            continue
        label = f"load {server} {scenario} u{users} {app}"
        per_request = ratio(  # judged even when Locust set the pace: CPU per request holds
            f"{label} cpu-per-request/null",
            cpu_per_request_series(cell),
            cpu_per_request_series(null),
            higher_is_worse=True,
        )
        per_request.cell = cell.get("cell", "")
        ratios.append(per_request)
        if budget_cpus(cell) and budget_cpus(null):
            ratios.append(
                load_ratio(
                    f"{label} rps-per-cpu/null",
                    cell,
                    rps_per_cpu_series(cell),
                    rps_per_cpu_series(null),
                    higher_is_worse=False,
                )
            )
    return ratios


def load_ratios(cells: dict[str, dict]) -> list[Ratio]:
    # open-loop cells (a sweep) share users with each other and may with a closed-loop cell
    closed = [cell for cell in cells.values() if cell.get("mode", "closed") == "closed"]
    index = {cell_key(cell): cell for cell in closed}
    if not any(app == "raw" for _, app, _, _ in index):  # a user's app has no raw reference
        ratios = model_ratios(index) + null_ratios(index)
    else:
        ratios = framework_ratios(index) + server_ratios(index) + null_ratios(index)
    return ratios


def pooled(per_measurement: list[list[Ratio]]) -> list[Ratio]:
    """One ratio per name over several measurements of a run: the median of their values (one
    measurement that a busy neighbour disturbed does not move it) and all of their samples."""
    pooled_ratios = []
    for first in per_measurement[0]:
        same = [r for ratios in per_measurement for r in ratios if r.name == first.name]
        pooled_ratios.append(
            replace(
                first,
                value=statistics.median(r.value for r in same),
                samples=[sample for r in same for sample in r.samples],
            )
        )
    return pooled_ratios


def run_micro_ratios(run: Run) -> list[Ratio]:
    if run.micro is None:
        return []
    return pooled([micro_ratios(cases) for cases in [run.micro, *run.micro_repeats]])


def in_run_ratios(run: Run) -> list[Ratio]:
    """Every ratio the run can give: micro cases ÷ references, load cells ÷ reference cells;
    for a single cell, only that cell's ratios."""
    ratios = run_micro_ratios(run) + load_ratios(run.cells or {})
    return [ratio for ratio in ratios if run.focus is None or ratio.cell == run.focus]


# --- comparison ----------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    baseline: float | None
    current: float | None
    #: one of VERDICTS
    verdict: str
    #: current ÷ baseline - 1
    change: float | None = None
    #: 95% bootstrap interval of the change
    change_ci: tuple[float, float] | None = None
    #: one-sided Mann-Whitney U p-value, in the direction of the observed change
    p: float | None = None
    #: why a row has no verdict from the test (missing data, failed cell)
    note: str = ""
    #: what is measured (see Ratio.case)
    case: str = ""


def judge(base: Ratio, current: Ratio, threshold: float, alpha: float) -> Row:
    """The verdict of one ratio: past the threshold in the bad direction and significant."""
    row = Row(base.name, base.value, current.value, "not enough data", case=base.case)
    if base.value is None or current.value is None:
        row.note = "a cell or its reference has no results"
        return row
    row.change = change = current.value / base.value - 1
    caveats = [
        (side, r.caveat) for side, r in (("baseline", base), ("current", current)) if r.caveat
    ]
    if caveats:
        row.note = f"{caveats[0][1]} in the {' and '.join(side for side, _ in caveats)}"
        return row
    if min(len(base.samples), len(current.samples)) < MIN_SAMPLES:
        row.note = f"{len(base.samples)} vs {len(current.samples)} samples, need {MIN_SAMPLES}"
        return row
    direction = "greater" if change > 0 else "less"
    p = mann_whitney_u(current.samples, base.samples, direction).p
    low, high = bootstrap_ratio_ci(base.samples, current.samples)
    row.p, row.change_ci = p, (low - 1, high - 1)
    worse_by = change if base.higher_is_worse else -change
    if abs(worse_by) <= max(threshold, base.floor or 0):
        row.verdict = "ok"
    elif p >= alpha:
        row.verdict = "not significant"
    else:
        row.verdict = "REGRESSED" if worse_by > 0 else "improved"
    return row


def require_agreement(case_rows: list[Row]) -> None:
    """A case counts as regressed (or improved) only against every one of its references: our
    code's change moves the case against all of them, while a reference disturbed during its own
    rounds (a busy neighbour, a frequency change) moves only the ratios to itself."""
    for verdict in ("REGRESSED", "improved"):
        agreeing = [row for row in case_rows if row.verdict == verdict]
        if agreeing and len(agreeing) < len(case_rows):
            for row in agreeing:
                row.verdict = "not significant"
                row.note = f"{verdict} against this reference only"


def judge_all(
    baseline: list[Ratio], current: list[Ratio], threshold: float, alpha: float
) -> list[Row]:
    """Judge every ratio both runs have, then hold each case to all of its references."""
    current_by_name = {ratio.name: ratio for ratio in current}
    rows = [
        judge(base, current_by_name[base.name], threshold, alpha)
        for base in baseline
        if base.name in current_by_name
    ]
    for case in {row.case for row in rows}:
        require_agreement([row for row in rows if row.case == case])
    return rows


def same_names(kind: str, baseline: set[str], current: set[str]) -> None:
    if baseline != current:
        only_base = ", ".join(sorted(baseline - current)) or "-"
        only_current = ", ".join(sorted(current - baseline)) or "-"
        raise UnusableInput(
            f"different {kind} sets: only in baseline: {only_base}; only in current: {only_current}"
        )


def check_comparable(baseline: Run, current: Run) -> None:
    for kind, base_part, current_part in (
        ("micro results", baseline.micro, current.micro),
        ("load cells", baseline.cells, current.cells),
    ):
        if (base_part is None) != (current_part is None):
            lacking = "current" if current_part is None else "baseline"
            raise UnusableInput(f"only one side has {kind}: {lacking} has none")
    if baseline.micro is None and baseline.cells is None and baseline.instructions is None:
        raise UnusableInput(
            f"{baseline.source}: no micro.json and no load cells (nor instructions.json)"
        )
    if baseline.micro is not None:
        names = {c.name for c in baseline.micro}
        for repeat in baseline.micro_repeats:
            same_names("baseline repeat's micro case", names, {c.name for c in repeat})
        for cases in [current.micro, *current.micro_repeats]:
            same_names("micro case", names, {c.name for c in cases})
    if baseline.cells is not None:
        same_names("load cell", set(baseline.cells), set(current.cells))
    if baseline.instructions is not None and current.instructions is not None:
        same_names(
            "instruction workload",
            set(baseline.instructions["per_request"]),
            set(current.instructions["per_request"]),
        )


def failed_cell_rows(baseline: Run, current: Run) -> list[Row]:
    """A cell that ran in the baseline and fails now is a regression: the server stopped serving."""
    rows = []
    for name, cell in sorted((current.cells or {}).items()):
        if current.focus is not None and name != current.focus:
            continue
        if cell.get("status") != "ok" and baseline.cells[name].get("status") == "ok":
            reason = (cell.get("error") or "failed").splitlines()[0]
            rows.append(Row(f"load {name} status", None, None, "REGRESSED", note=reason))
    return rows


def counting_difference(baseline: dict, current: dict) -> str:
    """What differs between where two counts were made ("" when nothing does): another Python
    or library version runs other instructions, so its counts say nothing about our code."""
    before, after = baseline.get("environment") or {}, current.get("environment") or {}
    return ", ".join(
        f"{key} {before.get(key)} vs {after.get(key)}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    )


def instruction_rows(baseline: Run, current: Run, threshold: float) -> list[Row]:
    """Instructions per request of each workload, judged by the threshold alone: two counts of
    the same code are the same, so there is nothing for a significance test to weigh."""
    if baseline.instructions is None or current.instructions is None:
        return []
    differs = counting_difference(baseline.instructions, current.instructions)
    rows = []
    for name, before in baseline.instructions["per_request"].items():
        after = current.instructions["per_request"][name]
        change = after / before - 1
        row = Row(f"instructions {name} / request", before, after, "ok", change=change, case=name)
        if differs:
            row.verdict, row.note = "not enough data", f"counted on different software: {differs}"
        elif abs(change) > threshold:
            row.verdict = "REGRESSED" if change > 0 else "improved"
        rows.append(row)
    return rows


def compare_runs(
    baseline: Run,
    current: Run,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    instruction_threshold: float = INSTRUCTION_THRESHOLD,
    load_floor: float = 0.0,
) -> list[Row]:
    """One row per in-run ratio, plus one per cell that failed only in ``current``, plus one per
    instruction-counted workload when both runs have counts; a regress run's confirming
    re-measurement is applied as regress applied it."""
    check_comparable(baseline, current)
    base, now = (with_load_floor(in_run_ratios(run), load_floor) for run in (baseline, current))
    rows = judge_all(base, now, threshold, alpha)
    for again in current.confirmations:
        apply_confirmation(rows, baseline, again, threshold, alpha)
    rows += failed_cell_rows(baseline, current)
    return rows + instruction_rows(baseline, current, instruction_threshold)


def with_load_floor(ratios: list[Ratio], floor: float) -> list[Ratio]:
    """The load ratios (those with a cell) with ``floor`` as the least change that can count."""
    return [replace(r, floor=floor) if r.cell and floor else r for r in ratios]


def suspects(rows: list[Row]) -> set[str]:
    """The micro cases judged regressed: what a confirming re-measurement measures again."""
    return {row.case for row in rows if row.verdict == "REGRESSED" and row.name[:6] == "micro "}


def apply_confirmation(
    rows: list[Row], baseline: Run, again: list[MicroCase], threshold: float, alpha: float
) -> None:
    """Keep a regressed micro case's verdict only if the re-measurement ``again`` repeats it.

    A busy neighbour can slow one case's rounds by 30-40% on a shared machine (measured: one
    case in 8 unchanged smoke runs here); it rarely hits the same case twice, while a real
    regression is there every time. In a re-measurement a regression against any one reference
    repeats the verdict: a disturbed reference can only make our case look faster, so asking for
    every reference again let one slow reference excuse a real slowdown (measured: a 30% slower
    server cycle, whose second re-measurement timed httptools at 14.8 µs instead of 10.7).
    Cases ``again`` did not measure keep their verdict.
    """
    measured = suspects(rows) & {case.name for case in again}
    again_by_name = {ratio.name: ratio for ratio in micro_ratios(again)}
    second = [
        judge(base, again_by_name[base.name], threshold, alpha)
        for base in run_micro_ratios(baseline)
        if base.case in measured and base.name in again_by_name
    ]
    confirmed = {row.case for row in second if row.verdict == "REGRESSED"}
    for row in rows:
        if row.case in measured and row.verdict == "REGRESSED" and row.case not in confirmed:
            row.verdict = "not significant"
            row.note = "not confirmed by a re-measurement"


def judged(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.verdict != NOT_JUDGED]


def exit_code(rows: list[Row]) -> int:
    """1 when a row regressed; 2 when no row could be judged (the comparison says nothing)."""
    if any(row.verdict == "REGRESSED" for row in rows):
        return 1
    return 0 if judged(rows) else 2


def tally(rows: list[Row]) -> str:
    """How many rows regressed, how many were judged and how many could not be."""
    regressed = sum(row.verdict == "REGRESSED" for row in rows)
    return (f"{regressed} regressed of {len(judged(rows))} judged rows, "
            f"{len(rows) - len(judged(rows))} not judged: {NOT_JUDGED}")  # fmt: skip


# --- output --------------------------------------------------------------------------------------


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
    counted = [row for row in rows if row.name.startswith("instructions ")]
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


# --- command line --------------------------------------------------------------------------------


def alpha_arg(text: str) -> float:
    """A significance level: a probability strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a level between 0 and 1, e.g. 0.01")
    return value


def threshold_arg(text: str) -> float:
    """``10%`` or ``0.1``: both mean ten percent."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"threshold must look like 10% or 0.1, not {text!r}")
    return value


def floor_arg(text: str) -> float:
    """``150%`` or ``1.5``: a change of any size from 0."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"load floor must look like 150% or 1.5, not {text!r}")
    return value


def add_judging_options(
    parser: argparse.ArgumentParser, default_threshold: float = DEFAULT_THRESHOLD
) -> None:
    parser.add_argument(
        "--threshold",
        type=threshold_arg,
        default=default_threshold,
        help=f"smallest change that counts, e.g. 10%% or 0.1 (default {default_threshold:.0%}%)",
    )
    parser.add_argument(
        "--alpha",
        type=alpha_arg,
        default=DEFAULT_ALPHA,
        help=f"significance level of the Mann-Whitney U test (default {DEFAULT_ALPHA})",
    )
    parser.add_argument(
        "--instruction-threshold",
        type=threshold_arg,
        default=INSTRUCTION_THRESHOLD,
        help="smallest change of instructions per request that counts "
        f"(default {INSTRUCTION_THRESHOLD:.0%}%)",
    )


def fail(command: str, error: Exception) -> int:
    print(f"bench {command}: error: {error}", file=sys.stderr)
    return 2


def recorded_judging(current: Run, threshold: float | None, alpha: float | None) -> tuple:
    """The threshold and alpha to judge with: those given, else those a regress run recorded
    (so its comparison can be repeated exactly), else the defaults."""
    recorded = current.meta.get("regress") or {}
    if recorded and threshold is None:
        print(f"{current.source} is a regress run: judging with its recorded threshold "
              f"{recorded['threshold']:.0%} and its confirming re-measurement")  # fmt: skip
    threshold = threshold if threshold is not None else recorded.get("threshold", DEFAULT_THRESHOLD)
    alpha = alpha if alpha is not None else recorded.get("alpha", DEFAULT_ALPHA)
    return threshold, alpha, recorded.get("load_floor", 0.0)


def main(argv: list[str]) -> int:
    """``python -m bench compare BASELINE CURRENT [--threshold 10%]``"""
    parser = Parser(
        prog="python -m bench compare",
        description="Compare two runs by in-run ratios. Exit 0: no regression, 1: regressed, "
        "2: unusable input, or nothing could be judged. A regress run compared without "
        "--threshold/--alpha is judged with the values it recorded.",
    )
    parser.add_argument(
        "baseline",
        type=Path,
        help="run dir, micro.json, cells/ dir, cell file or instructions.json",
    )
    parser.add_argument("current", type=Path, help="the same kind of input as BASELINE")
    add_judging_options(parser)
    parser.add_argument(
        "--load-floor",
        type=floor_arg,
        help="least change a load row can count as, e.g. 150%% (default: what a regress run "
        f"recorded, else none; regress uses {LOAD_FLOOR:.0%}%)",
    )
    # a regress run compared without --threshold/--alpha is judged as regress judged it
    parser.set_defaults(threshold=None, alpha=None)
    args = parser.parse_args(argv)
    try:
        baseline, current = load_run(args.baseline), load_run(args.current)
        threshold, alpha, floor = recorded_judging(current, args.threshold, args.alpha)
        floor = floor if args.load_floor is None else args.load_floor
        rows = compare_runs(
            baseline, current, threshold, alpha, args.instruction_threshold, load_floor=floor
        )
    except UnusableInput as error:
        return fail("compare", error)
    print_comparison(baseline, current, rows, threshold, alpha, args.instruction_threshold)
    return exit_code(rows)
