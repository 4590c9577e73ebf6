"""What a run's page must say before any number: the banners at the top of report.html.

A number read without its story misleads: a regress run that failed its check, a run with a
slowdown injected on purpose, a run interrupted before half its cells, a run whose every server
failed. Each of those is a banner built from meta.json and the cells alone, in the order a reader
needs them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Banner:
    #: "alarm" (the numbers are not what they seem) or "note"
    kind: str
    text: str


def cell_fields(name: str) -> dict:
    """server, app, scenario and users from a cell name ``server--app--scenario--uN``."""
    server, app, scenario, users = name.split("--")
    return {"server": server, "app": app, "scenario": scenario, "users": int(users[1:])}


def unmeasured(meta: dict, measured: list[str]) -> list[str]:
    """The planned cells that have no cell file, in plan order."""
    return [name for name in meta.get("cells_planned") or [] if name not in set(measured)]


def verdict_banner(meta: dict) -> Banner | None:
    check = meta.get("regress")
    if not check:
        return None
    counts = (
        f"{check.get('regressed', 0)} regressed, {check.get('judged', 0)} judged, "
        f"{check.get('not_judged', 0)} not judged"
    )
    text = (
        f"Regression check against {check.get('baseline')}: {check.get('verdict')} ({counts}; "
        f"threshold {check.get('threshold', 0):.0%}, p < {check.get('alpha')}, regressed micro "
        "cases confirmed by a second measurement). Every row is in compare.json."
    )
    return Banner("alarm" if check.get("verdict") != "no regression" else "note", text)


def injection_banner(meta: dict) -> Banner | None:
    knobs = meta.get("injections") or {}
    if not knobs:
        return None
    listed = ", ".join(f"{name}={value}" for name, value in sorted(knobs.items()))
    return Banner(
        "alarm",
        f"Slowdown injected on purpose: {listed}. These numbers include it; they do not "
        "describe the code.",
    )


def status_banner(meta: dict, measured: list[str]) -> Banner | None:
    status = meta.get("status")
    missing = unmeasured(meta, measured)
    if status == "failed":
        return Banner(
            "alarm",
            "Failed: no cell of the framework app gave numbers (see Why cells failed).",
        )
    if not missing:
        return None
    planned = len(meta.get("cells_planned") or [])
    return Banner(
        "alarm",
        f"Run {status or 'incomplete'}: {len(missing)} of {planned} planned cells were not "
        f"measured ({', '.join(missing)}). No ranking below includes them; scenarios that miss "
        "one are not ranked.",
    )


def resume_banner(meta: dict) -> Banner | None:
    resumes = meta.get("resumes") or []
    if not resumes:
        return None
    sittings = "; ".join(
        f"resumed {entry.get('date')} keeping {len(entry.get('cells_kept') or [])} cells "
        f"measured at commit {entry.get('previous_commit')}"
        for entry in resumes
    )
    return Banner("note", f"Measured in {len(resumes) + 1} sittings: {sittings}.")


def banners(meta: dict, measured: list[str]) -> list[Banner]:
    """The run's banners, most important first; ``measured`` names the cells on disk."""
    found = [
        verdict_banner(meta),
        injection_banner(meta),
        status_banner(meta, measured),
        resume_banner(meta),
    ]
    return [banner for banner in found if banner is not None]
