"""In-run ratios: what ``compare`` judges, computed from one run alone.

A CI machine that is twice as slow makes every timing twice as long, and a shared runner drifts
from run to run. Both shift a case and the reference measured beside it in the same run together,
so a run is judged only by ratios measured inside it:

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

A rate of zero (a cell that served nothing) gives no ratio: its ratio is marked not comparable
rather than divided by.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from enum import Enum

from bench.flags import ERROR_RATIO, ERRORS, GENERATOR_BOUND
from bench.microcases import MicroCase
from bench.rundir import Run, UnusableInput

#: samples kept per case and measurement (chosen evenly over the rounds): what the committed
#: baseline stores, and what a current run is thinned to so no side is weighed by its round count
MAX_SAMPLES = 200
#: why a ratio with a zero on either side is not judged
ZERO_RATE = "a rate of zero: nothing to divide by"


class RowKind(str, Enum):
    """What a ratio or a row measures; a row's kind decides how it is judged and tallied."""

    MICRO = "micro"
    LOAD = "load"
    INSTRUCTIONS = "instructions"


def focused(run: Run) -> Run:
    """A single cell compared by itself: only it and the cells its ratios divide by, found
    beside it; the run unchanged when it is not a single cell."""
    if run.focus is None:
        return run
    cell = run.cells[run.focus]
    siblings = {name: other for name, other in run.cells.items() if name != run.focus}
    references, needed = reference_cells(cell, siblings)
    if not references:
        raise UnusableInput(
            f"{run.source}: a cell alone gives no in-run ratio and its reference ({needed}) is not "
            "beside it; pass the run directory or its cells/ directory instead"
        )
    return replace(run, cells={run.focus: cell, **{ref["cell"]: ref for ref in references}})


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
    #: a micro case, a load cell or an instruction count
    kind: RowKind = RowKind.LOAD
    #: why the ratio cannot be compared at all, whatever the samples ("" when it can)
    unusable: str = ""


def thin(samples: list[float], keep: int = MAX_SAMPLES) -> list[float]:
    """At most ``keep`` samples, chosen evenly over the sequence (rounds drift during a run, so
    keeping the first ``keep`` would favour the warm start)."""
    if len(samples) <= keep:
        return list(samples)
    step = (len(samples) - 1) / (keep - 1)
    return [samples[round(index * step)] for index in range(keep)]


def ratio(name: str, case: list[float], reference: list[float], higher_is_worse: bool) -> Ratio:
    """``case``'s samples ÷ the median of ``reference``; no value when either side is missing,
    and not comparable when either median is zero."""
    if not case or not reference:
        return Ratio(name, None, [], higher_is_worse, case=name)
    reference_median = statistics.median(reference)
    if reference_median <= 0 or statistics.median(case) <= 0:
        return Ratio(name, None, [], higher_is_worse, case=name, unusable=ZERO_RATE)
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
    flags = cell.get("flags", [])
    if GENERATOR_BOUND in flags:
        result.caveat = "Locust was the bottleneck"
    if ERRORS in flags:  # fast failures are no throughput, and their latency is no service time
        result.caveat = f"more than {ERROR_RATIO:.0%} of its requests failed"
    return result


def micro_ratios(cases: list[MicroCase]) -> list[Ratio]:
    """Each of our own cases (references are not our code) ÷ each of its references in the run:
    per-round times ÷ the reference's median."""
    by_name = {case.name: case for case in cases}
    return [
        micro_ratio(case, by_name[name])
        for case in cases
        if not case.is_reference
        for name in case.compare_to
        if name in by_name
    ]


def micro_ratio(case: MicroCase, reference: MicroCase) -> Ratio:
    name = f"micro {case.name} / {reference.subject}"
    if reference.median_s <= 0 or case.median_s <= 0:
        return Ratio(name, None, [], True, case=case.name, kind=RowKind.MICRO, unusable=ZERO_RATE)
    samples = [sample / reference.median_s for sample in thin(case.samples_s)]
    value = case.median_s / reference.median_s
    return Ratio(name, value, samples, True, case=case.name, kind=RowKind.MICRO)


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
    """The geometric mean; 0 when any value is 0 (its limit), which no ratio divides by."""
    if min(values) <= 0:
        return 0.0
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
        values = [r.value for r in same]
        pooled_ratios.append(
            replace(
                first,
                value=None if None in values else statistics.median(values),
                samples=[sample for r in same for sample in r.samples],
                unusable=next((r.unusable for r in same if r.unusable), ""),
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
