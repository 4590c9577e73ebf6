"""Reading pytest-benchmark's JSON (``micro.json``) into one record per case.

The regression compare and the table/plot both start here, so what a case *is* is defined once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class MicroCase:
    """One microbenchmark case of a run.

    - ``name``: pytest-benchmark's name, ``test_<operation>[<subject>]``, e.g.
      ``test_full_cycle_plaintext[framework]``; unique within a run and stable across runs.
    - ``group``: ``stack``, ``routing``, ``dispatch`` or ``full-cycle``.
    - ``is_reference``: True for the alternatives the framework is measured against (werkzeug,
      Flask, raw WSGI, ContextVar...), False for the framework's own cases.
    - ``reference``: the name of the case this one is compared against (its main reference), or
      None for a main reference itself.
    - ``median_s``, ``iqr_s``: median and interquartile range of the per-round times, in seconds
      per call.
    - ``samples_s``: every round's time in seconds per call (empty when the JSON has no data).
    - ``compare_to``: every case this one is compared against, main reference first (the ratio
      table shows one ratio per entry).
    - ``subject``: who is measured: ``framework`` or the reference's short name.
    """

    name: str
    group: str
    is_reference: bool
    reference: str | None
    median_s: float
    iqr_s: float
    samples_s: list[float] = field(default_factory=list)
    compare_to: list[str] = field(default_factory=list)
    subject: str = ""

    @property
    def operation(self) -> str:
        """The name without its subject and ``test_`` prefix: ``full_cycle_plaintext``."""
        return self.name.split("[", 1)[0].removeprefix("test_")


def case_from_benchmark(entry: dict) -> MicroCase:
    extra = entry.get("extra_info") or {}
    stats = entry["stats"]
    reference = extra.get("reference")
    return MicroCase(
        name=entry["name"],
        group=entry.get("group") or "",
        is_reference=bool(extra.get("is_reference", False)),
        reference=reference,
        median_s=float(stats["median"]),
        iqr_s=float(stats["iqr"]),
        samples_s=[float(sample) for sample in stats.get("data") or []],
        compare_to=list(extra.get("compare_to") or ([reference] if reference else [])),
        subject=extra.get("subject") or entry["name"].rpartition("[")[2].rstrip("]"),
    )


def load_micro(path: Path | str) -> list[MicroCase]:
    """Every case in a pytest-benchmark JSON file, in the order they ran."""
    document = json.loads(Path(path).read_text())
    return [case_from_benchmark(entry) for entry in document.get("benchmarks", [])]


def by_name(cases: list[MicroCase]) -> dict[str, MicroCase]:
    return {case.name: case for case in cases}


def ratios(case: MicroCase, cases_by_name: dict[str, MicroCase]) -> list[tuple[MicroCase, float]]:
    """``case``'s median divided by each of its references' medians (references missing from the
    run are left out)."""
    found = [cases_by_name[name] for name in case.compare_to if name in cases_by_name]
    return [(other, case.median_s / other.median_s) for other in found if other.median_s > 0]
