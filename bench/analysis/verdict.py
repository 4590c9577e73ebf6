"""The verdict the report and the console open with: per scenario, the servers ranked by
requests/s per CPU, and one line saying who wins, by how much and how sure that is.

It reads summary records only (one dict per cell, as the report builds them) and ranks each
server at its best user level. Under a CPU budget that is requests/s ÷ the budget: what a server
serves on the CPU it is given. Without one (no writable cgroup, or ``--server-cpus off``) it is
requests per CPU-second the server used, the CPU-per-request ranking, which holds even when Locust
set the pace. Every scenario of the run gets a verdict, the user's own included; a cell with too
few samples, errors or no numbers is listed below the ranking with the reason.

How sure: a gap is called only when a test says it would survive a repeat
(``bench.analysis.evidence``). Each row says why its server lands where it does
(``bench.analysis.reasons``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import flags
from bench.analysis.evidence import (
    Evidence,
    gap_evidence,
    look_evidence,
    of_look,
    per_cpu,
    wide_apart,
)
from bench.analysis.reasons import WAITING_SCENARIOS, reason

#: a user's scenario waits when even its busiest server used less than this share of its CPU
WAITING_CPU_SHARE = 0.5


def scenario_waits(records: list[dict], scenario: str) -> bool:
    """Our waiting scenarios, or any other on which even the busiest ranked server used under
    WAITING_CPU_SHARE of the CPU it had (its budget, else one core): its requests wait on
    something other than the server's CPU."""
    if scenario in WAITING_SCENARIOS or scenario == "cpu":
        return scenario in WAITING_SCENARIOS
    shares = [
        record["server_cpu_pct"] / 100 / (record.get("budget_cpus") or 1)
        for record in records
        if record.get("scenario") == scenario and ranked(record) and record.get("server_cpu_pct")
    ]
    return bool(shares) and max(shares) < WAITING_CPU_SHARE


# --- the measured spread ----------------------------------------------------------------------


def measured_range(cell: dict) -> tuple[float | None, float | None]:
    """The range a cell's requests/s was measured in: min–max over its repeats when it has two or
    more, else min–max of the one repeat's per-second requests/s."""
    repeats = cell.get("repeats") or []
    if len(repeats) >= 2:
        values = [repeat.get("rps") for repeat in repeats]
    else:
        values = repeats[0].get("rps_series") or [] if repeats else []
    values = [value for value in values if value is not None]
    return (min(values), max(values)) if values else (None, None)


def rate_samples(cell: dict) -> dict:
    """What the significance test needs of a cell file, for its summary record: each repeat's
    requests/s, per-second requests/s and look (1, or 2 for a second look's repeat)."""
    repeats = [r for r in cell.get("repeats") or [] if r.get("rps") is not None]
    return {
        "repeat_rps": [r["rps"] for r in repeats],
        "rps_seconds": [list(r.get("rps_series") or []) for r in repeats],
        "repeat_looks": [r.get("look", 1) for r in repeats],
    }


# --- ranking ----------------------------------------------------------------------------------


def in_scope(record: dict) -> bool:
    """A server serving the framework app (or the user's): what a verdict is about."""
    return record.get("app") == "app" and record.get("kind") != "reference"


def ranked(record: dict) -> bool:
    return (
        in_scope(record)
        and record.get("rps") is not None
        and per_cpu(record) is not None
        and not flags.UNRANKED & set(record.get("flags") or [])
    )


def best_cells(records: list[dict], scenario: str) -> list[dict]:
    """Each server's cell with the most requests/s per CPU on ``scenario``, best first."""
    best: dict[str, dict] = {}
    for record in records:
        if record.get("scenario") == scenario and ranked(record):
            current = best.get(record["server"])
            if current is None or per_cpu(record) > per_cpu(current):
                best[record["server"]] = record
    return sorted(best.values(), key=per_cpu, reverse=True)


def second_look_cells(records: list[dict]) -> list[str]:
    """The cells a second look measures again: of every scenario, the leader's best cell and the
    best cell of each server the first look calls surely behind it, unless so far behind that no
    second look could close the gap (``wide_apart``). A gap the first look does not call stays
    unsure whatever a second look says, so its cells need no second look either."""
    chosen = []
    for scenario in dict.fromkeys(record.get("scenario") for record in records if ranked(record)):
        leader, *others = best_cells(records, scenario)
        behind = [other for other in others
                  if first_look_sure(leader, other) and not wide_apart(leader, other)]  # fmt: skip
        chosen += [record["cell"] for record in ([leader, *behind] if behind else [])]
    return chosen


def first_look_sure(leader: dict, other: dict) -> bool:
    return bool(look_evidence(of_look(leader, 1), of_look(other, 1)).sure)


# --- one scenario's verdict -------------------------------------------------------------------


def verdict_rows(records: list[dict], scenario: str, looks: int = 1) -> list[dict]:
    """The ranking of one scenario: rank, server, its best level, both rates, ratio, evidence,
    why; ``looks`` is how many looks at each ranked cell the run took (its meta's ``looks``)."""
    cells = best_cells(records, scenario)
    if not cells:
        return []
    leader, waiting = cells[0], scenario_waits(records, scenario)
    rows = []
    for rank, record in enumerate(cells, start=1):
        evidence = None if record is leader else gap_evidence(leader, record, looks)
        # a gap the test could not call reads as a tie; one it could not test, as the rank says
        leads = evidence is None or evidence.sure is False
        rows.append({
            "rank": rank,
            "server": record["server"],
            "kind": record.get("kind"),
            "users": record["users"],
            "rps": record["rps"],
            "rps_per_cpu": per_cpu(record),
            "ratio": per_cpu(record) / per_cpu(leader),
            "evidence": evidence,
            "flags": list(record.get("flags") or []),
            "why": reason(record, leads, waiting, first=rank == 1),
        })  # fmt: skip
    return rows


def unranked_rows(records: list[dict], scenario: str) -> list[dict]:
    """The cells of ``scenario`` left out of its ranking, and why (too-few says how long to run)."""
    rows = []
    for record in records:
        if record.get("scenario") != scenario or not in_scope(record) or ranked(record):
            continue
        names = list(record.get("flags") or [])
        rows.append({"server": record["server"], "users": record.get("users"), "flags": names,
                     "why": left_out(record)})  # fmt: skip
    return rows


def left_out(record: dict) -> str:
    names = set(record.get("flags") or [])
    if flags.FAILED in names or record.get("rps") is None:
        return (record.get("error") or "no numbers").splitlines()[0]
    if flags.TOO_FEW in names:
        return flags.too_few_remedy(record, max(1, record.get("repeats") or 1))
    if flags.ERRORS in names:
        return f"{record.get('fail_ratio') or 0:.1%} of requests failed"
    return "no CPU reading to rank by"


@dataclass(frozen=True)
class Answer:
    """The one-line answer of a scenario, and what it rests on."""

    scenario: str
    #: the leading server, None when no cell could be ranked
    winner: str | None
    #: the server in second place, None with fewer than two ranked
    runner_up: str | None
    #: the winner's requests/s per CPU ÷ the runner-up's
    margin: float | None
    #: the gap to the runner-up would survive a repeat (None: not tested)
    sure: bool | None
    #: the line itself
    text: str


def answer(scenario: str, rows: list[dict], unranked: list[dict], missing: int = 0) -> Answer:
    """Who wins ``scenario``, by how much over the runner-up, and how sure; with ``missing``
    planned cells never measured, nobody."""
    if missing:
        return Answer(scenario, None, None, None, None, f"{scenario}: not ranked, {missing} "
                      "planned cell(s) were not measured (--resume finishes the run)")  # fmt: skip
    if not rows:
        why = "; ".join(sorted({", ".join(r["flags"]) or r["why"] for r in unranked}))
        return Answer(scenario, None, None, None, None,
                      f"{scenario}: no server could be ranked ({why or 'no cells'})")  # fmt: skip
    winner = rows[0]
    if len(rows) == 1:
        return Answer(scenario, winner["server"], None, None, None,
                      f"{scenario}: {winner['server']}, the only server ranked")  # fmt: skip
    second = rows[1]
    margin = 1 / second["ratio"] if second["ratio"] else None
    evidence = second["evidence"]
    lead = f"{scenario}: {winner['server']} serves {margin:.2f}× {second['server']}'s requests"
    if evidence.sure:
        how = f"per CPU, sure (p = {evidence.p:.3f}, {evidence.basis})"
    elif evidence.sure is None:
        how = f"per CPU, but this run cannot tell: {evidence.basis}"
    else:
        how = (f"per CPU, but a repeat could swap them (p = {evidence.p:.2f}, "
               f"{evidence.basis}): run longer or with --repeats 3")  # fmt: skip
    return Answer(scenario, winner["server"], second["server"], margin, evidence.sure,
                  f"{lead} {how}")  # fmt: skip


def basis(records: list[dict]) -> str:
    """What "per CPU" means in this run's verdict."""
    budgets = sorted({r["budget_cpus"] for r in records if r.get("budget_cpus")})
    if budgets:
        shown = ", ".join(f"{cpus:g}" for cpus in budgets)
        return (f"requests/s ÷ the CPU budget ({shown} CPU): what each server serves on the CPU "
                "it is given")  # fmt: skip
    return ("requests per CPU-second the server used (no CPU budget in this run): this ranks by "
            "CPU per request, which holds even where Locust set the pace")  # fmt: skip


# --- text -------------------------------------------------------------------------------------

HEADER = ("#", "server", "users", "req/s", "req/s per CPU", "× best", "gap sure?", "flags",
          "why")  # fmt: skip
UNRANKED_HEADER = ("server", "users", "flags", "why not ranked")


def gap_text(evidence: Evidence | None) -> str:
    if evidence is None:
        return "best"
    if evidence.sure is None:
        return f"cannot tell: {evidence.basis}"
    verdict = "yes" if evidence.sure else "no"
    return f"{verdict}, p = {evidence.p:.3f} ({evidence.basis})"


def table_rows(rows: list[dict]) -> list[list[str]]:
    return [
        [
            str(row["rank"]),
            row["server"],
            str(row["users"]),
            f"{row['rps']:,.0f}",
            f"{row['rps_per_cpu']:,.0f}",
            f"{row['ratio']:.2f}",
            gap_text(row["evidence"]),
            flags.shown(row["flags"]),
            row["why"],
        ]
        for row in rows
    ]


def scenario_order(records: list[dict], scenario_names: list[str]) -> list[str]:
    """``scenario_names`` first, in their order, then every other scenario of the records (a
    user's own) in the order they appear."""
    present = list(dict.fromkeys(r.get("scenario") for r in records if in_scope(r)))
    return [name for name in scenario_names if name in present] + [
        name for name in present if name not in scenario_names
    ]


def verdict_tables(
    records: list[dict], scenario_names: list[str] = (), incomplete: dict[str, int] | None = None,
    looks: int = 1,
) -> list[dict]:  # fmt: skip
    """One verdict per scenario of the records: its one-line answer, the ranking table and the
    cells left out of it. A scenario in ``incomplete`` (name → planned cells never measured) is
    ranked nowhere: the ranking would crown whoever happened to run. ``looks``: as verdict_rows."""
    tables = []
    for scenario in scenario_order(records, list(scenario_names)):
        missing = (incomplete or {}).get(scenario, 0)
        rows = [] if missing else verdict_rows(records, scenario, looks)
        unranked = unranked_rows(records, scenario)
        tables.append({
            "scenario": scenario,
            "answer": answer(scenario, rows, unranked, missing),
            "header": list(HEADER),
            "rows": table_rows(rows),
            "unranked_header": list(UNRANKED_HEADER),
            "unranked": [[r["server"], str(r["users"]), flags.shown(r["flags"]), r["why"]]
                         for r in unranked],
        })  # fmt: skip
    return tables


def latency_note(records: list[dict]) -> str:
    """Said next to every latency figure of a run with a CPU budget."""
    periods = sorted({r["budget_period_us"] for r in records if r.get("budget_period_us")})
    if not periods:
        return ""
    longest_ms = periods[-1] / 1000
    return (f"latency under a CPU budget includes throttling stalls: a server that used its "
            f"quota waits for the next period (up to {longest_ms:g} ms)")  # fmt: skip
