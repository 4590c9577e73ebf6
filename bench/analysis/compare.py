"""Regression tracking: judge two runs by their in-run ratios (``bench.analysis.ratios``).

A row regresses only when its median ratio moved past the threshold in the bad direction AND a
one-sided Mann-Whitney U test on the ratio samples says p < alpha; fewer than MIN_SAMPLES samples
on either side is "not enough data", never a guess. A micro case regresses only against every one
of its references, and `regress` re-measures a regressed case before it believes it. A ratio with
a rate of zero on either side is "not comparable": a crash is not a regression.

Beside the timed rows, when both runs hold ``instructions.json`` (``bench.micro.instructions``):
instructions per request of each workload, counted by cachegrind. Counts of unchanged code are
deterministic, so these rows have no test: a change past INSTRUCTION_THRESHOLD is the verdict,
provided both were counted on the same Python and libraries.

Everything here is a pure function of runs read by ``bench.rundir``; the table is
``bench.analysis.compare_table`` and the command line ``bench.commands.compare``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bench.analysis.ratios import (
    ZERO_RATE,
    Ratio,
    RowKind,
    focused,
    in_run_ratios,
    load_ratios,
    micro_ratios,
    run_micro_ratios,
)
from bench.analysis.stats import bootstrap_ratio_ci, mann_whitney_u
from bench.flags import ERRORS
from bench.microcases import MicroCase
from bench.rundir import BASELINE_NAME, RESULTS_ROOT, Run, UnusableInput

BASELINE_DIR = RESULTS_ROOT / BASELINE_NAME

#: a change smaller than this is "ok" however significant: rounds of one run share the machine's
#: state, so with hundreds of samples a test finds tiny shifts "significant"; the threshold is
#: what decides whether a shift matters
DEFAULT_THRESHOLD = 0.10
#: what `regress` takes as the least change a load row can count as, whatever its threshold: a
#: short load cell on a shared machine moves far more than a micro case, so in regress a load row
#: flags only a gross change — a server that stopped serving, or costs well over twice its CPU
#: per request — and the fine signals are the micro rows and the instruction counts. `compare`
#: takes no floor unless asked.
LOAD_FLOOR = 1.5
#: what `bench regress` uses: its smoke micro run times each case for only 0.25 s on a shared
#: machine, where a neighbour's burst can move one case's ratio against every reference in one
#: pass (see confirm_micro)
REGRESS_THRESHOLD = 0.25
#: micro measurements in a baseline: one measurement can catch a case in a fast or slow moment;
#: the baseline's ratio is the median over its measurements
BASELINE_MICRO_RUNS = 3
#: a strict level: one smoke run judges ~40 micro rows, and a false alarm fails CI
DEFAULT_ALPHA = 0.01
#: the smallest samples with which the exact one-sided test can reach p < 0.01 at all
#: (5 vs 5: p = 1/252); fewer is "not enough data"
MIN_SAMPLES = 5
#: two counts of unchanged code agree far closer than this, so a few percent is a change of the
#: code, never noise
INSTRUCTION_THRESHOLD = 0.02

#: the verdicts of a row
OK, IMPROVED, REGRESSED = "ok", "improved", "REGRESSED"
NOT_JUDGED, NOT_SIGNIFICANT, NOT_COMPARABLE = "not enough data", "not significant", "not comparable"
VERDICTS = (OK, IMPROVED, REGRESSED, NOT_JUDGED, NOT_SIGNIFICANT, NOT_COMPARABLE)


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
    #: a micro case, a load cell or an instruction count
    kind: RowKind = RowKind.LOAD


def judge(base: Ratio, current: Ratio, threshold: float, alpha: float) -> Row:
    """The verdict of one ratio: past the threshold in the bad direction and significant."""
    row = Row(base.name, base.value, current.value, NOT_JUDGED, case=base.case, kind=base.kind)
    unusable = base.unusable or current.unusable
    if unusable:
        row.verdict, row.note = NOT_COMPARABLE, unusable
        return row
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
    # how much worse, as a factor either way: a rate that halves is 100% worse, as a time that
    # doubles is (a plain −50% could never pass a floor over 100%, so a server that stopped
    # serving would never count)
    worse_by = change if base.higher_is_worse else base.value / max(current.value, 1e-12) - 1
    if abs(worse_by) <= max(threshold, base.floor or 0):
        row.verdict = OK
    elif p >= alpha:
        row.verdict = NOT_SIGNIFICANT
    else:
        row.verdict = REGRESSED if worse_by > 0 else IMPROVED
    return row


def require_agreement(case_rows: list[Row], threshold: float, alpha: float) -> None:
    """A case counts as regressed (or improved) only when its references agree: each of them past
    the threshold, or, for a timed case, each of them significant and past half the threshold in
    the same direction, with the geometric mean of the changes past the threshold.

    Our code's change moves a case against every reference by the same factor, so the geometric
    mean measures it with the rulers' noise averaged (a 30% slower case read +31%, +21% and +29%
    against its three references once). A reference disturbed during its own rounds moves only
    the ratio to itself: it cannot pass alone, and it cannot carry the mean while the others sit
    below half the threshold.
    """
    combined = combined_change(case_rows, threshold / 2, alpha)
    for verdict in (REGRESSED, IMPROVED):
        agreeing = [row for row in case_rows if row.verdict == verdict]
        if agreeing and len(agreeing) == len(case_rows):
            continue
        moved = combined is not None and (combined > 0) == (verdict == REGRESSED)
        if moved and abs(combined) > threshold:
            for row in case_rows:
                row.verdict = verdict
                row.note = f"{combined:+.1%} by the geometric mean of its references"
            continue
        for row in agreeing:
            row.verdict = NOT_SIGNIFICANT
            row.note = f"{verdict} against this reference only"


def combined_change(case_rows: list[Row], least: float, alpha: float) -> float | None:
    """A timed case's change as the geometric mean over its references, when every reference saw
    a significant change beyond ``least`` in one direction; else None."""
    if not case_rows or any(row.kind is not RowKind.MICRO for row in case_rows):
        return None
    if any(row.change is None or row.p is None or row.p >= alpha for row in case_rows):
        return None
    if len({row.change > 0 for row in case_rows}) != 1:
        return None
    if any(abs(row.change) <= least for row in case_rows):
        return None
    return math.prod(1 + row.change for row in case_rows) ** (1 / len(case_rows)) - 1


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
        require_agreement([row for row in rows if row.case == case], threshold, alpha)
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
    """A cell that ran in the baseline and fails now is a regression: the server stopped serving;
    so is one that answers now with more failed requests than the errors flag allows, where the
    baseline's did not."""
    rows = []
    for name, cell in sorted((current.cells or {}).items()):
        if current.focus is not None and name != current.focus:
            continue
        before = baseline.cells[name]
        if cell.get("status") != "ok" and before.get("status") == "ok":
            reason = (cell.get("error") or "failed").splitlines()[0]
            rows.append(Row(f"load {name} status", None, None, REGRESSED, note=reason))
        elif ERRORS in (cell.get("flags") or []) and ERRORS not in (before.get("flags") or []):
            now, then = fail_ratio(cell), fail_ratio(before)
            note = f"{now:.1%} of its requests failed, {then:.1%} in the baseline"
            rows.append(Row(f"load {name} failures", None, None, REGRESSED, note=note))
    return rows


def fail_ratio(cell: dict) -> float:
    return (cell.get("summary") or {}).get("fail_ratio") or 0.0


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
        row = Row(f"instructions {name} / request", before, after, OK, case=name,
                  kind=RowKind.INSTRUCTIONS)  # fmt: skip
        if not before or not after:
            row.verdict, row.note = NOT_COMPARABLE, ZERO_RATE
            rows.append(row)
            continue
        row.change = change = after / before - 1
        if differs:
            row.verdict, row.note = NOT_JUDGED, f"counted on different software: {differs}"
        elif abs(change) > threshold:
            row.verdict = REGRESSED if change > 0 else IMPROVED
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
    baseline, current = focused(baseline), focused(current)
    check_comparable(baseline, current)
    base, now = (with_load_floor(in_run_ratios(run), load_floor) for run in (baseline, current))
    rows = judge_all(base, now, threshold, alpha)
    for again in current.confirmations:
        apply_confirmation(rows, baseline, again, threshold, alpha)
    rows += failed_cell_rows(baseline, current)
    return rows + instruction_rows(baseline, current, instruction_threshold)


def with_load_floor(ratios: list[Ratio], floor: float) -> list[Ratio]:
    """The load ratios (those with a cell) with ``floor`` as the least change that can count."""
    return [replace(r, floor=floor) if r.kind is RowKind.LOAD and floor else r for r in ratios]


def suspects(rows: list[Row]) -> set[str]:
    """The micro cases judged regressed: what a confirming re-measurement measures again."""
    return {row.case for row in rows if row.verdict == REGRESSED and row.kind is RowKind.MICRO}


def apply_confirmation(
    rows: list[Row], baseline: Run, again: list[MicroCase], threshold: float, alpha: float
) -> None:
    """Keep a regressed micro case's verdict only if the re-measurement ``again`` repeats it.

    A busy neighbour can slow one case's rounds on a shared machine; it rarely hits the same case
    twice, while a real regression is there every time. In a re-measurement a regression against
    any one reference repeats the verdict: a disturbed reference can only make our case look
    faster, so asking for every reference again would let one slow reference excuse a real
    slowdown. Cases ``again`` did not measure keep their verdict.
    """
    measured = suspects(rows) & {case.name for case in again}
    again_by_name = {ratio.name: ratio for ratio in micro_ratios(again)}
    second = [
        judge(base, again_by_name[base.name], threshold, alpha)
        for base in run_micro_ratios(baseline)
        if base.case in measured and base.name in again_by_name
    ]
    confirmed = {row.case for row in second if row.verdict == REGRESSED}
    for row in rows:
        if row.case in measured and row.verdict == REGRESSED and row.case not in confirmed:
            row.verdict = NOT_SIGNIFICANT
            row.note = "not confirmed by a re-measurement"


def load_suspects(rows: list[Row]) -> set[str]:
    """The load ratios judged regressed: what a confirming re-measurement of their cells judges
    again (a cell that failed only now has no ratio: a server that stopped serving is no noise)."""
    return {
        row.name
        for row in rows
        if row.verdict == REGRESSED and row.kind is RowKind.LOAD and row.change is not None
    }


def apply_load_confirmation(rows: list[Row], baseline_again: Run, current_again: Run,
                            threshold: float, alpha: float, floor: float) -> None:  # fmt: skip
    """Keep a regressed load row's verdict only if its cells, measured again on both sides,
    repeat it. A load cell is seconds long, so a neighbour's burst can cover a whole cell on one
    side (two fork rows read −65% while another job held both cores); it rarely covers the same
    cell twice. Rows the re-measurement has no ratio for keep their verdict."""
    names = load_suspects(rows)
    base, now = (with_load_floor(load_ratios(run.cells or {}), floor)
                 for run in (baseline_again, current_again))  # fmt: skip
    second = judge_all([ratio for ratio in base if ratio.name in names], now, threshold, alpha)
    unconfirmed = {row.name for row in second if row.verdict != REGRESSED}
    for row in rows:
        if row.name in names and row.name in unconfirmed:
            row.verdict = NOT_SIGNIFICANT
            row.note = "not confirmed by a re-measurement of its cells"


def judged(rows: list[Row]) -> list[Row]:
    """The rows a verdict was reached on: not those without enough data or not comparable."""
    return [row for row in rows if row.verdict not in (NOT_JUDGED, NOT_COMPARABLE)]


def exit_code(rows: list[Row]) -> int:
    """1 when a row regressed; 2 when no row could be judged (the comparison says nothing)."""
    if any(row.verdict == REGRESSED for row in rows):
        return 1
    return 0 if judged(rows) else 2
