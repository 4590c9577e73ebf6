"""Reading pytest-benchmark's micro.json into one MicroCase per case, and ratios between them."""

from __future__ import annotations

import json

from bench.microcases import MicroCase, load_micro, ratios


def test_load_micro_reads_every_field(fixture_json):
    cases = load_micro(fixture_json)
    assert [case.name for case in cases][:2] == [
        "test_full_cycle_plaintext[framework]",
        "test_full_cycle_plaintext[werkzeug]",
    ]
    framework_case = cases[0]
    assert framework_case == MicroCase(
        name="test_full_cycle_plaintext[framework]",
        group="full-cycle",
        is_reference=False,
        reference="test_full_cycle_plaintext[werkzeug]",
        median_s=19e-6,
        iqr_s=19e-7,
        samples_s=[18e-6, 19e-6, 19e-6, 20e-6, 25e-6],
        compare_to=["test_full_cycle_plaintext[werkzeug]", "test_full_cycle_plaintext[flask]"],
        subject="framework",
    )
    assert framework_case.operation == "full_cycle_plaintext"
    assert cases[1].reference is None and cases[1].is_reference


def test_load_micro_of_a_file_without_extra_info(tmp_path):
    entry = {"name": "test_x[flask]", "group": None, "stats": {"median": 1.0, "iqr": 0.5}}
    (tmp_path / "micro.json").write_text(json.dumps({"benchmarks": [entry]}))
    (case,) = load_micro(tmp_path / "micro.json")
    assert (case.group, case.reference, case.compare_to, case.samples_s) == ("", None, [], [])
    assert case.subject == "flask" and not case.is_reference


def test_ratios_skip_references_missing_from_the_run(fixture_json):
    cases = {case.name: case for case in load_micro(fixture_json)}
    found = ratios(cases["test_push_top_pop[framework]"], cases)
    assert [(other.subject, round(value, 6)) for other, value in found] == [("werkzeug", 0.333333)]
