"""The micro benchmarks' guard rail: every case runs once, untimed, and checks its own result.

A case that answers wrongly (a 500, a wrong body, a broken reference) fails here, in the normal
test run, not only when someone looks at a benchmark. Then the JSON reader, the ratio table and
the chart, on a fixture and on one real (tiny) run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from bench.analysis.micro_plot import draw_micro_chart
from bench.analysis.micro_table import ratio_table
from bench.micro import cli
from bench.microcases import MicroCase, load_micro, ratios

ROOT = Path(__file__).resolve().parents[3]
MICRO_DIR = ROOT / "bench" / "micro"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cases_untimed(tmp_path: Path) -> tuple[subprocess.CompletedProcess, list]:
    report = tmp_path / "junit.xml"
    command = [
        sys.executable, "-m", "pytest", str(MICRO_DIR), "-o", "python_files=bench_*.py",
        "-p", "no:cacheprovider", "-q", "--benchmark-disable", f"--junitxml={report}",
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110)
    testcases = ElementTree.parse(report).getroot().iter("testcase")
    return finished, list(testcases)


@pytest.fixture(scope="module")
def untimed_run(tmp_path_factory):
    return run_cases_untimed(tmp_path_factory.mktemp("micro"))


def test_every_case_runs_and_checks_its_result(untimed_run):
    finished, testcases = untimed_run
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    problems = [case.get("name") for case in testcases if len(case)]  # failure/error/skipped
    assert problems == []


def test_every_group_has_framework_cases_and_references(untimed_run):
    _, testcases = untimed_run
    names = {case.get("name") for case in testcases}
    modules = {case.get("classname").rsplit(".", 1)[-1] for case in testcases}
    assert modules == {
        "bench_stack", "bench_routing", "bench_dispatch", "bench_full_cycle", "bench_servers"
    }  # fmt: skip
    for operation in ("full_cycle_plaintext", "full_cycle_json"):
        for subject in ("framework", "werkzeug", "flask", "raw"):
            assert f"test_{operation}[{subject}]" in names
    for operation in ("push_top_pop", "match_static", "dispatch_hello", "session_with_cookie"):
        assert f"test_{operation}[framework]" in names
        assert f"test_{operation}[werkzeug]" in names
    for operation in ("parse_head", "parse_head_split", "parse_chunked", "server_cycle"):
        for subject in ("servers", "h11", "httptools"):
            assert f"test_{operation}[{subject}]" in names
    assert len(names) >= 50


def test_cases_are_not_collected_by_a_plain_pytest_run():
    command = [sys.executable, "-m", "pytest", str(MICRO_DIR), "--collect-only", "-q",
               "-p", "no:cacheprovider"]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "no tests collected" in finished.stdout + finished.stderr


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


def test_ratio_table_shows_median_iqr_and_each_ratio(fixture_json):
    table = ratio_table(load_micro(fixture_json)).splitlines()
    framework_row = next(line for line in table if "full_cycle_plaintext · framework" in line)
    assert "19 µs" in framework_row and "1.9 µs" in framework_row
    assert framework_row.endswith("1.90× werkzeug, 0.45× flask")
    assert next(line for line in table if "plaintext · werkzeug" in line).endswith("reference")
    stack_row = next(line for line in table if "push_top_pop · framework" in line)
    assert "150 ns" in stack_row and stack_row.endswith("0.33× werkzeug")
    groups = [line.split()[0] for line in table[1:]]
    assert groups == ["stack", "stack", "full-cycle", "full-cycle", "full-cycle"]


def test_chart_is_a_png(fixture_json, tmp_path):
    out = draw_micro_chart(load_micro(fixture_json), tmp_path / "out" / "micro.png")
    assert out == tmp_path / "out" / "micro.png"
    assert out.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.slow
def test_a_real_tiny_run_writes_json_table_and_chart(tmp_path, capsys):
    exit_code = cli.run_micro(tmp_path, "smoke", select="full_cycle_plaintext")
    assert exit_code == 0
    cases = {case.subject: case for case in load_micro(tmp_path / "micro.json")}
    assert set(cases) == {"framework", "werkzeug", "flask", "raw"}
    assert all(case.median_s > 0 and len(case.samples_s) >= 5 for case in cases.values())
    assert cases["framework"].reference == "test_full_cycle_plaintext[werkzeug]"
    assert (tmp_path / "micro.png").read_bytes().startswith(PNG_MAGIC)
    assert json.loads((tmp_path / "meta.json").read_text())["profile"] == "smoke"
    printed = capsys.readouterr().out
    assert "full_cycle_plaintext · framework" in printed and "× werkzeug" in printed


def test_cli_rejects_an_unknown_profile(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["--profile", "fastest"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
def test_the_servers_group_is_our_code_beside_h11_and_httptools(tmp_path, capsys):
    from bench.analysis.ratios import micro_ratios

    assert cli.run_micro(tmp_path, "smoke", select="server_cycle") == 0
    cases = {case.subject: case for case in load_micro(tmp_path / "micro.json")}
    assert set(cases) == {"servers", "h11", "httptools"}
    assert not cases["servers"].is_reference and cases["h11"].is_reference
    assert cases["servers"].compare_to == ["test_server_cycle[h11]", "test_server_cycle[httptools]"]
    names = {ratio.name for ratio in micro_ratios(list(cases.values()))}
    assert names == {"micro test_server_cycle[servers] / h11",
                     "micro test_server_cycle[servers] / httptools"}  # fmt: skip
    assert "server_cycle · servers" in capsys.readouterr().out


# --- the command line ---------------------------------------------------------------------------


def micro_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_selection_that_matches_no_case_is_refused_before_a_run_dir_exists(tmp_path, capsys):
    run_dir = tmp_path / "never"
    err = micro_error(["-k", "nomatch", "--run-dir", str(run_dir)], capsys)
    assert "-k 'nomatch': no benchmark matched" in err  # was: "pytest exited 5"
    assert not run_dir.exists()


def test_a_run_dir_holding_a_run_is_refused_unless_resumed(tmp_path, capsys):
    (tmp_path / "micro.json").write_text("{}")
    err = micro_error(["--run-dir", str(tmp_path)], capsys)
    assert "is not empty" in err and "--resume" in err
    (tmp_path / "meta.json").write_text("{}")
    assert cli.main(["--run-dir", str(tmp_path), "--resume"]) == 0  # nothing left to measure
    assert "already measured" in capsys.readouterr().out
    assert (tmp_path / "micro.json").read_text() == "{}"
