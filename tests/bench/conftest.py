"""Fixtures shared by the tests of bench/: a small pytest-benchmark micro.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def benchmark_entry(name, group, median, subject, reference=None, compare_to=(), data=None):
    """One entry the way pytest-benchmark writes it to --benchmark-json."""
    return {
        "name": name,
        "group": group,
        "extra_info": {
            "subject": subject,
            "is_reference": subject != "framework",
            "reference": reference,
            "compare_to": list(compare_to),
        },
        "stats": {"median": median, "iqr": median / 10, "data": data or [median] * 5},
    }


@pytest.fixture
def fixture_json(tmp_path) -> Path:
    """A micro.json of two groups: our cases beside their references, one reference missing."""
    plaintext = "test_full_cycle_plaintext[{}]"
    entries = [
        benchmark_entry(
            plaintext.format("framework"), "full-cycle", 19e-6, "framework",
            plaintext.format("werkzeug"),
            [plaintext.format("werkzeug"), plaintext.format("flask")],
            data=[18e-6, 19e-6, 19e-6, 20e-6, 25e-6],
        ),
        benchmark_entry(plaintext.format("werkzeug"), "full-cycle", 10e-6, "werkzeug"),
        benchmark_entry(
            plaintext.format("flask"), "full-cycle", 42e-6, "flask",
            plaintext.format("werkzeug"), [plaintext.format("werkzeug")],
        ),
        benchmark_entry("test_push_top_pop[werkzeug]", "stack", 450e-9, "werkzeug"),
        benchmark_entry(
            "test_push_top_pop[framework]", "stack", 150e-9, "framework",
            "test_push_top_pop[werkzeug]",
            ["test_push_top_pop[werkzeug]", "test_push_top_pop[missing]"],
        ),
    ]  # fmt: skip
    path = tmp_path / "micro.json"
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": entries}))
    return path
