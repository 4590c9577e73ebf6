"""Imports run one way: the layering of bench/ that the README states, read from the source.

Commands sequence a run and may import any room; what measures and what reads run directories
are siblings that never import each other; what serves and what is served sit below them; the
shared facts (flags, run directories, units, micro cases, the parser) import no room at all.
``framework/`` is the product, so it imports nothing from the harness.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: each room of bench/ and the rooms it may import ("base": the modules directly in bench/)
ALLOWED = {
    "commands": {"commands", "micro", "measure", "analysis", "serving", "apps", "base"},
    "micro": {"micro", "analysis", "serving", "apps", "base"},
    "measure": {"measure", "serving", "apps", "base"},
    "analysis": {"analysis", "serving", "base"},
    "serving": {"serving", "base"},
    "apps": {"apps", "base"},
    "base": {"base"},
}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def room(module: str) -> str | None:
    """The room of a ``bench.…`` module name; None outside bench."""
    parts = module.split(".")
    if parts[0] != "bench":
        return None
    if len(parts) > 1 and parts[1] in ALLOWED and parts[1] != "base":
        return parts[1]
    return "base"


def bench_modules() -> list[Path]:
    return sorted((ROOT / "bench").rglob("*.py"))


@pytest.mark.parametrize("path", bench_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_bench_module_imports_only_rooms_below_it(path):
    own = room(".".join(path.relative_to(ROOT).with_suffix("").parts))
    if path.name == "__main__.py" and path.parent.name == "bench":
        return  # the entry point names every command, by string
    wrong = {
        module
        for module in imported_modules(path)
        if room(module) is not None and room(module) not in ALLOWED[own]
        and module not in ("bench", "bench.analysis", "bench.measure", "bench.micro")
    }  # fmt: skip
    assert not wrong, f"{path.relative_to(ROOT)} ({own}) imports {sorted(wrong)}"


def test_the_framework_imports_nothing_from_the_harness():
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if room(m))
        for path in sorted((ROOT / "framework").rglob("*.py"))
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_the_check_sees_a_wrong_import(tmp_path):
    wrong = tmp_path / "report.py"
    wrong.write_text("def f():\n    from bench.measure.runner import run_load\n")
    assert room(next(iter(imported_modules(wrong)))) == "measure"
    assert "measure" not in ALLOWED["analysis"]
