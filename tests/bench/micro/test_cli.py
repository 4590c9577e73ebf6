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

from bench.micro import cli
from bench.microcases import load_micro

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
