"""Which cases of an A/B run are comparable: those both sides measured with the same benchmark
code. A case measured on one side only, or whose benchmark code differs between the two trees
(the micro test function's source, the workloads module, the load scenario file), is left out
with the reason, and never judged.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import replace
from pathlib import Path

from bench.commands.sides import Side
from bench.rundir import META_FILE, Run, read_meta


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def benchmark_functions(tree: Path) -> dict[str, str]:
    """Each micro benchmark function of ``tree`` (``test_*`` in bench/**/bench_*.py) → a digest
    of its source with its decorators: the code that measures, not the code measured."""
    found = {}
    for module in sorted(tree.glob("bench/**/bench_*.py")):
        source = module.read_text()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                lines = source.splitlines()[first - 1 : node.end_lineno]
                found[node.name] = digest("\n".join(lines))
    return found


def workloads_digest(tree: Path) -> str | None:
    """The module that defines the counted workloads, wherever the tree keeps it."""
    modules = sorted(tree.glob("bench/**/workloads.py"))
    return digest(modules[0].read_text()) if modules else None


def scenario_digests(side_dir: Path) -> set[str | None]:
    """The scenario files a side's load runs recorded having run."""
    return {
        read_meta(meta.parent).get("scenario_file_sha256")
        for meta in side_dir.glob(f"load-*/{META_FILE}")
    }


def set_exclusions(kind: str, ref_names: set[str], head_names: set[str]) -> dict:
    return {f"{kind} {name}": f"measured on the {'ref' if name in ref_names else 'head'} side only"
            for name in sorted(ref_names ^ head_names)}  # fmt: skip


def micro_exclusions(ref_cases: set[str], head_cases: set[str], ref: Side, head: Side) -> dict:
    code = {side.name: benchmark_functions(side.tree) for side in (ref, head)}
    reasons = set_exclusions("micro", ref_cases, head_cases)
    for name in sorted(ref_cases & head_cases):
        function = name.split("[", 1)[0]
        if code["ref"].get(function) != code["head"].get(function):
            reasons[f"micro {name}"] = "its benchmark function differs between the trees"
    return reasons


def comparable(ref_run: Run, head_run: Run, ref: Side, head: Side, dirs: dict[str, Path]) -> tuple:
    """The two runs restricted to what both measured with the same benchmark code, and the
    reasons for everything left out."""
    ref_cases = {case.name for case in ref_run.micro or []}
    head_cases = {case.name for case in head_run.micro or []}
    reasons = micro_exclusions(ref_cases, head_cases, ref, head)
    keep = {name for name in ref_cases & head_cases if f"micro {name}" not in reasons}
    ref_run, head_run = (only_micro(run, keep) for run in (ref_run, head_run))
    ref_run, head_run, why = comparable_cells(ref_run, head_run, dirs)
    reasons.update(why)
    ref_run, head_run, why = comparable_instructions(ref_run, head_run, ref, head)
    reasons.update(why)
    return ref_run, head_run, reasons


def comparable_cells(ref_run: Run, head_run: Run, dirs: dict[str, Path]) -> tuple:
    """The cells both sides measured, when both ran the same scenario file."""
    ref_cells, head_cells = set(ref_run.cells or {}), set(head_run.cells or {})
    reasons = set_exclusions("load", ref_cells, head_cells)
    shared = ref_cells & head_cells
    scenarios = [scenario_digests(dirs[name]) for name in ("ref", "head")]
    if scenarios[0] != scenarios[1] or None in scenarios[0]:
        differs = "its scenario file differs between the trees"
        reasons.update({f"load {name}": differs for name in sorted(shared)})
        shared = set()
    ref_run, head_run = (
        replace(run, cells={n: c for n, c in (run.cells or {}).items() if n in shared} or None)
        for run in (ref_run, head_run)
    )
    return ref_run, head_run, reasons


def only_micro(run: Run, keep: set[str]) -> Run:
    def pick(cases):
        return [case for case in cases if case.name in keep]

    if run.micro is None:
        return run
    return replace(
        run,
        micro=pick(run.micro),
        micro_repeats=[pick(cases) for cases in run.micro_repeats],
        confirmations=[pick(cases) for cases in run.confirmations],
    )


def comparable_instructions(ref_run: Run, head_run: Run, ref: Side, head: Side) -> tuple:
    counts = [run.instructions for run in (ref_run, head_run)]
    if None in counts:
        return replace(ref_run, instructions=None), replace(head_run, instructions=None), {}
    names = [set(record["per_request"]) for record in counts]
    reasons = set_exclusions("instructions", *names)
    if workloads_digest(ref.tree) != workloads_digest(head.tree):
        reasons.update({f"instructions {name}": "its workload module differs between the trees"
                        for name in sorted(names[0] & names[1])})  # fmt: skip
        return replace(ref_run, instructions=None), replace(head_run, instructions=None), reasons
    shared = names[0] & names[1]
    trimmed = [
        {**record, "per_request": {n: v for n, v in record["per_request"].items() if n in shared}}
        for record in counts
    ]
    ref_run, head_run = (
        replace(run, instructions=t) for run, t in zip((ref_run, head_run), trimmed, strict=True)
    )
    return ref_run, head_run, reasons
