"""The report's "Where each server's CPU goes": per scenario, the profiled servers side by side,
each with its costliest functions by self time and links to its flame graph and speedscope file.

It reads what the runner recorded in a cell's ``cpu_profile`` (the files py-spy wrote, the
sampled window's numbers, or the one line saying why there is no profile) and ranks the
speedscope file's functions; it never samples.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.speedscope import TOP_N, read_profile

READING_NOTE = (
    "py-spy sampled each server 100 times a second during one extra measured window of its most"
    " loaded cell, without the CPU budget (not one of the cell's repeats: its numbers stay out of"
    " every other table). A sample is a thread the kernel had runnable, running or waiting for a"
    " CPU, so a thread woken by its socket is sampled in the call that woke it until it gets a"
    " CPU: samples in those calls (the event loop's epoll_wait, the iterative model's poll, a"
    " blocking recv) are counted as waiting, and the functions are ranked over the rest. Self % is"
    " the share of those samples in which the function was running, C calls and system calls"
    " included; total % the share in which it was on the stack."
)


def profiled(cells: list[dict]) -> list[dict]:
    """The cells the runner sampled (each has a ``cpu_profile``), in the order given."""
    return [cell for cell in cells if cell.get("cpu_profile")]


def sampling_cost(recorded: dict, cell_rps: float | None) -> str:
    """What the sampled window measured beside the cell, and the CPU the recorders took. Without
    a budget on either, the two rates differ by what sampling cost; with the cell's budget lifted
    for the window, they are not comparable and only the window's own figures are shown."""
    window = recorded.get("window") or {}
    rps, cpu = window.get("rps"), window.get("server_cpu_pct")
    parts = []
    if rps and recorded.get("budget_lifted"):
        at_cpu = f" at {cpu:.0f}% CPU" if cpu is not None else ""
        parts.append(f"sampled window {rps:,.0f} req/s{at_cpu}, without the CPU budget")
    elif rps and cell_rps:
        parts.append(f"sampled window {rps:,.0f} req/s, cell {cell_rps:,.0f} req/s"
                     f" ({rps / cell_rps - 1:+.0%})")  # fmt: skip
    if recorded.get("recorder_cpu_pct") is not None:
        parts.append(f"py-spy took {recorded['recorder_cpu_pct']:.0f}% of a core")
    return "; ".join(parts)


def server_card(run_dir: Path, cell: dict) -> dict:
    """One server's column: its functions, sample count, links, what the sampled window measured
    and cost, or the line saying why nothing was sampled."""
    recorded = cell["cpu_profile"]
    card = {
        "server": cell["server"],
        "users": cell["users"],
        "problem": recorded.get("problem"),
        "svg": recorded.get("svg"),
        "speedscope": recorded.get("speedscope"),
        "cost": sampling_cost(recorded, (cell.get("summary") or {}).get("rps")),
        "samples": 0,
        "waiting_pct": None,
        "functions": [],
    }
    speedscope = run_dir / recorded["speedscope"] if recorded.get("speedscope") else None
    if speedscope is not None and speedscope.is_file():
        summary = read_profile(speedscope, TOP_N)
        card.update(
            samples=summary.samples,
            functions=summary.functions,
            waiting_pct=summary.waiting_pct,
        )
    elif card["problem"] is None:
        card["problem"] = "the profile's files are missing from the run directory"
    return card


def profile_sections(
    run_dir: Path,
    cells: list[dict],
    server_rank: Callable[[str], int],
    scenario_rank: Callable[[str], int],
) -> list[dict]:
    """Per app and scenario that was profiled: a title and one card per server, servers in the
    report's order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for cell in profiled(cells):
        groups.setdefault((cell["app"], cell["scenario"]), []).append(cell)
    sections = []
    for app, scenario in sorted(groups, key=lambda key: (key[0] != "app", scenario_rank(key[1]))):
        chosen = sorted(groups[app, scenario], key=lambda cell: server_rank(cell["server"]))
        cards = [server_card(run_dir, cell) for cell in chosen]
        title = scenario if app == "app" else f"{scenario} ({app} app)"
        sections.append({"title": title, "cards": cards})
    return sections


def side_by_side(section: dict) -> tuple[list[str], list[list[str]]]:
    """A section as one table for summary.md: a column per server, its functions by rank."""
    cards = section["cards"]
    header = ["rank", *(card["server"] for card in cards)]
    depth = max((len(card["functions"]) for card in cards), default=0)
    rows = [
        [str(rank + 1), *(cost_text(card["functions"], rank) for card in cards)]
        for rank in range(depth)
    ]
    return header, rows


def cost_text(functions: list, rank: int) -> str:
    if rank >= len(functions):
        return ""
    cost = functions[rank]
    return f"`{cost.function}` {cost.self_pct:.1f}%"
