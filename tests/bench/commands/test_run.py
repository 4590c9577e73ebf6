"""``run`` and ``load``: arguments checked before a run starts, and a run interrupted mid-cell."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench import rundir
from bench.commands import run
from bench.measure import matrix, sampled_window
from bench.measure.sampling_profiler import find_py_spy
from bench.serving.registry import ServerSpec, all_servers

REPO_ROOT = Path(__file__).resolve().parents[3]


def locust_running(process: subprocess.Popen) -> list[psutil.Process]:
    """The run's processes when one of them is Locust, else []."""
    descendants = psutil.Process(process.pid).children(recursive=True)
    with contextlib.suppress(psutil.Error):
        if any("locust" in " ".join(child.cmdline()) for child in descendants):
            return descendants
    return []


def wait_for(observed, process: subprocess.Popen, timeout: float = 90):
    """Poll until ``observed()`` returns something true (an event, not an amount of time); the
    deadline only turns a hang into a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        seen = observed()
        if seen:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"never observed (run exit code {process.poll()})")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_keeps_finished_cells_and_leaves_no_process(tmp_path, signum):
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "bench", "load", "--profile", "smoke", "--servers", "threaded,epoll",
        "--scenarios", "fortunes", "--users", "2", "--duration", "2", "--warmup", "0.5",
        "--peers", "none", "--run-dir", str(run_dir), "--no-progress",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    first = run_dir / "cells" / "threaded--app--fortunes--u2.json"
    # the second cell is under load once its Locust log exists and its Locust process runs
    second_locust = run_dir / "logs" / "epoll--app--fortunes--u2.r0.locust.out"
    descendants = wait_for(lambda: second_locust.exists() and locust_running(process), process)
    assert first.exists(), "the first cell did not finish before the second began"
    process.send_signal(signum)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert sorted(path.name for path in (run_dir / "cells").glob("*.json")) == [first.name]
    assert (run_dir / "report.html").exists() and str(run_dir / "report.html") in stdout
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "interrupted"
    _, alive = psutil.wait_procs(descendants, timeout=5)
    assert alive == []


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--servers", "nosuch"], "nosuch"),
        (["--scenarios", "nosuch"], "nosuch"),
        (["--peers", "nosuch"], "nosuch"),
        (["--users", "0"], "--users"),
        (["--users", "8,x"], "--users"),
        (["--duration", "-1"], "--duration"),
        (["--duration", "0"], "--duration"),
        (["--warmup", "-0.5"], "--warmup"),
        (["--repeats", "0"], "--repeats"),
        (["--locust-workers", "-2"], "--locust-workers"),
        (["--server-cpus", "0.05"], "'0.05': give 'off' or CPUs from 0.1"),
        (["--server-cpus", "half"], "'half': give 'off' or CPUs"),
        (["--server-cpus", "999"], "--server-cpus"),
    ],
)
def test_bad_arguments_stop_the_command_before_a_run_starts(argv, complaint, tmp_path, capsys):
    run_dir = tmp_path / "never"
    for main in (run.load_main, run.run_main):
        with pytest.raises(SystemExit) as stopped:
            main([*argv, "--run-dir", str(run_dir)])
        assert stopped.value.code == 2
        assert complaint in capsys.readouterr().err
        assert not run_dir.exists()


@pytest.mark.parametrize(("text", "value"), [("off", "off"), ("0.3", 0.3), ("1", 1.0)])
def test_server_cpus_is_off_or_a_number_of_cpus(text, value):
    assert run.server_cpus(text) == value


def error_line(main, argv: list[str], capsys) -> str:
    """The one line a refused command prints (exit code 2)."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--servers", "pol"], "--servers: unknown pol (valid: poll, threaded, fork, epoll"),
        (["--users", "1,,2"], "--users: '1,,2' has an empty item"),
        (["--servers", "poll,,epoll"], "--servers: 'poll,,epoll' has an empty item"),
        (["--users", "8,x"], "--users: '8,x' is not a list of whole numbers"),
        (["--repeats", "0"], "--repeats 0: must be at least 1"),
        (["--resume"], "--resume needs the --run-dir"),
        (["--profile", "smoke", "--scenarios", "fortunes", "--peers", "null"],
         "null serves only plaintext"),
        (["--target", "http://127.0.0.1:9", "--server-cpus", "0.5"],
         "--target measures a server you started, on the CPU you gave it: --server-cpus does "
         "not apply"),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_line_naming_it_and_what_is_valid(argv, complaint, capsys):
    for main in (run.load_main, run.run_main):
        assert complaint in error_line(main, argv, capsys)


def test_a_run_dir_holding_a_run_is_refused_unless_resumed(tmp_path, capsys):
    run_dir = tmp_path / "run1"
    (run_dir / "cells").mkdir(parents=True)
    (run_dir / "cells" / "poll--app--plaintext--u8.json").write_text("{}")
    for main in (run.load_main, run.run_main):
        err = error_line(main, ["--run-dir", str(run_dir)], capsys)
        assert f"--run-dir {run_dir} is not empty" in err and "--resume" in err
    err = error_line(run.load_main, ["--run-dir", str(run_dir), "--resume"], capsys)
    assert "holds no run to resume (no meta.json)" in err
    (run_dir / "meta.json").write_text("{}")
    argv = ["--run-dir", str(run_dir), "--resume", "--profile", "smoke", "--servers", "epoll"]
    err = error_line(run.load_main, argv, capsys)
    assert "holds cells this run does not plan (poll--app--plaintext--u8)" in err
    assert sorted(p.name for p in run_dir.rglob("*")) == [
        "cells", "meta.json", "poll--app--plaintext--u8.json"
    ]  # fmt: skip


@pytest.mark.parametrize("where", ["file", "proc"])
def test_a_run_dir_that_cannot_be_created_is_one_line(tmp_path, capsys, where):
    (tmp_path / "a-file").write_text("")
    run_dir = tmp_path / "a-file" / "run" if where == "file" else Path("/proc/bench-run")
    err = error_line(run.load_main, ["--run-dir", str(run_dir)], capsys)
    assert f"--run-dir {run_dir}: cannot create it" in err


def test_the_committed_baseline_is_no_run_dir(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(rundir, "RESULTS_ROOT", tmp_path)
    err = error_line(run.load_main, ["--run-dir", str(tmp_path / "baseline"), "--resume"], capsys)
    assert "is the committed baseline" in err


def test_help_shows_defaults_as_plain_text(capsys):
    with pytest.raises(SystemExit):
        run.load_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: quick)" in text and "quick ≤ 8 min" in text
    assert "(default: the profile's: smoke 10, quick 6, full 10)" in text
    assert "(default: 0)" in text  # --locust-workers
    assert "``" not in text


#: a server that fails at start: a failed cell in a second, without load
DIES_AT_START = "import sys; sys.stderr.write('cannot bind: boom\\n'); sys.exit(3)"


@pytest.fixture
def dying_server(monkeypatch):
    spec = ServerSpec(
        "dies-at-start", "poll", "ours",
        lambda app, host, port: [sys.executable, "-c", DIES_AT_START], prints_listening=True,
    )  # fmt: skip
    monkeypatch.setattr(matrix, "all_servers", lambda: {**all_servers(), spec.name: spec})


def test_a_run_whose_every_cell_failed_exits_non_zero_as_failed(
    tmp_path, dying_server, monkeypatch, capsys
):
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setattr(rundir, "RESULTS_ROOT", results)
    site = tmp_path / "site"
    run_dir = site / "run1"
    argv = ["--profile", "smoke", "--servers", "dies-at-start", "--scenarios", "fortunes",
            "--run-dir", str(run_dir), "--no-progress"]  # fmt: skip
    assert run.load_main(argv) == 1  # was: 0 with status "finished"
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "failed"
    captured = capsys.readouterr()
    assert "failed: no cell of the framework app gave numbers" in captured.err
    # the console shows the reason, as the report's "Why cells failed" does
    assert "- req/s [failed] server exited with code 3 at start" in captured.out
    # nothing beside the run: no index.html, no history, no latest, in site/ or results/
    assert [p.name for p in site.iterdir()] == ["run1"]
    assert list(results.iterdir()) == []


@pytest.mark.slow
def test_a_report_that_cannot_be_built_costs_one_line_not_the_run(tmp_path, monkeypatch, capsys):
    def broken_report(run_dir):
        raise ValueError("Data cannot be log-scaled because all values are <= 0.")

    monkeypatch.setattr(run, "build_report", broken_report)
    run_dir = tmp_path / "run"
    argv = ["--profile", "smoke", "--servers", "threaded", "--scenarios", "plaintext",
            "--users", "2", "--duration", "1", "--warmup", "0.5", "--run-dir", str(run_dir),
            "--no-progress"]  # fmt: skip
    assert run.load_main(argv) == 1
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("report:")]
    assert "not built (ValueError: Data cannot be log-scaled" in line
    assert f"python -m bench report {run_dir}" in line and "Traceback" not in err
    assert "broken_report" in (run_dir / run.REPORT_ERROR_LOG).read_text()
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "finished"
    assert (run_dir / "cells" / "threaded--app--plaintext--u2.json").is_file()


@pytest.mark.slow
def test_resume_keeps_finished_cells_and_measures_only_the_missing(tmp_path, capsys):
    run_dir = tmp_path / "run"
    base = ["--profile", "smoke", "--scenarios", "fortunes", "--users", "2", "--duration", "1",
            "--warmup", "0.5", "--run-dir", str(run_dir), "--no-progress"]  # fmt: skip
    assert run.load_main([*base, "--servers", "threaded"]) == 0
    kept = run_dir / "cells" / "threaded--app--fortunes--u2.json"
    first = kept.read_text()
    assert run.load_main([*base, "--servers", "threaded,epoll", "--resume", "--second-look"]) == 0
    out, err = capsys.readouterr()
    assert "threaded--app--fortunes--u2" in out and "(kept from the resumed run)" in out
    # one-second windows call no gap sure, so the second look has nothing to confirm, and says so
    assert "the first look called no gap sure, so no cell was measured again" in err
    assert kept.read_text() == first
    assert (run_dir / "cells" / "epoll--app--fortunes--u2.json").exists()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "finished"
    (resumed,) = meta["resumes"]
    assert resumed["cells_kept"] == ["threaded--app--fortunes--u2"]
    assert resumed["previous_status"] == "finished"
    assert meta["cells_finished"] == len(meta["cells_planned"]) == 2
    assert meta["looks"] == 2 and meta["looked_again"] == []
    # a changed setting: every cell is measured again, and the console says why
    assert run.load_main([*base, "--servers", "threaded,epoll", "--resume", "--duration",
                          "1.5"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "--resume measures 2 cells again: duration 1 s → 1.5 s (2 cells)" in err
    assert json.loads((run_dir / "meta.json").read_text())["cells_finished"] == 2


@pytest.mark.slow
def test_second_look_from_the_command_line_and_a_resume_keeps_it(tmp_path, capsys, monkeypatch):
    # three-second windows are too short for the first look to call a gap, so the verdict's
    # choice would be no cell (test_verdict tests it); here every cell is chosen
    monkeypatch.setattr(run, "second_look", lambda cells: [cell["cell"] for cell in cells])
    run_dir = tmp_path / "run"
    argv = ["--profile", "smoke", "--servers", "threaded,epoll", "--scenarios", "fortunes",
            "--users", "4", "--duration", "3", "--warmup", "0.2", "--peers", "none",
            "--server-cpus", "off", "--run-dir", str(run_dir), "--no-progress"]  # fmt: skip
    assert run.load_main([*argv, "--second-look"]) == 0
    assert "the cells of every gap the first look calls sure" in capsys.readouterr().err
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["looks"] == 2 and len(meta["looked_again"]) == 2
    cells = {path.name: path.read_text() for path in (run_dir / "cells").iterdir()}
    assert all('"look": 2' in text for text in cells.values())
    # resumed: both cells kept as they are, and neither is looked at a third time
    assert run.load_main([*argv, "--second-look", "--resume"]) == 0
    assert {path.name: path.read_text() for path in (run_dir / "cells").iterdir()} == cells
    assert json.loads((run_dir / "meta.json").read_text())["looked_again"] == meta["looked_again"]


def test_history_gets_a_line_only_for_a_run_in_results(tmp_path, monkeypatch):
    from tests.bench.analysis.test_compare import write_run

    results = tmp_path / "results"
    monkeypatch.setattr(rundir, "RESULTS_ROOT", results)
    outside = write_run(tmp_path / "site" / "run1", seed=1)
    run.record_history(outside)
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["run1"]
    inside = write_run(results / "run2", seed=1)
    run.record_history(inside)
    assert len((results / "history.jsonl").read_text().splitlines()) == 1


def test_a_run_stopped_during_micro_says_every_cell_went_unmeasured(tmp_path, monkeypatch):
    def interrupted(run_dir, profile):  # Ctrl-C while the micro benchmarks run
        (run_dir / "meta.json").write_text(json.dumps({"profile": profile}))
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "run_micro", interrupted)
    run_dir = tmp_path / "run"
    argv = ["--profile", "smoke", "--servers", "poll", "--run-dir", str(run_dir), "--no-progress"]
    assert run.run_main(argv) == 130
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    assert meta["cells_planned"] == ["poll--app--plaintext--u8", "poll--app--fortunes--u8",
                                     "poll--raw--plaintext--u8"]  # fmt: skip
    page = (run_dir / "report.html").read_text()
    assert "3 of 3 planned cells were not measured" in page


def test_profile_servers_is_the_profiles_unless_switched(capsys):
    base = ["--profile", "full", "--servers", "epoll"]
    assert run.parse_and_check(run.load_arguments("load", ""), base).profile_servers is None
    for flag, value in (("--profile-servers", True), ("--no-profile-servers", False)):
        args = run.parse_and_check(run.load_arguments("load", ""), [*base, flag])
        assert args.profile_servers is value


#: one short fork cell per app (smoke: the framework and the raw app), sampled
SAMPLED_RUN = ["--profile", "smoke", "--servers", "fork", "--scenarios", "plaintext", "--users",
               "4", "--duration", "2", "--warmup", "0.5", "--server-cpus", "0.5",
               "--profile-servers", "--no-progress"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(find_py_spy() is None, reason="py-spy is not installed")
def test_a_sampled_run_writes_flame_graphs_and_the_report_ranks_them(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run.load_main([*SAMPLED_RUN, "--run-dir", str(run_dir)]) == 0
    for app in ("app", "raw"):
        cell = json.loads((run_dir / "cells" / f"fork--{app}--plaintext--u4.json").read_text())
        sampled = cell["cpu_profile"]
        assert sampled["problem"] is None and sampled["window"]["rps"] > 0
        assert sampled["svg"] == f"profiles/fork--{app}--plaintext.svg"
        assert (run_dir / sampled["svg"]).is_file() and (run_dir / sampled["speedscope"]).is_file()
        # the sampled window is no repeat: the cell's numbers are its repeats' alone
        (repeat,) = cell["repeats"]
        assert cell["summary"]["rps"] == repeat["rps"]
    meta = json.loads((run_dir / "meta.json").read_text())
    # a throttled server would be sampled where its threads wait: the window runs unbudgeted
    assert sampled["budget_lifted"] is (meta["budget"]["cpus"] is not None)
    assert meta["cpu_profiles"]["problem"] is None
    assert meta["cpu_profiles"]["cells"] == ["fork--app--plaintext--u4", "fork--raw--plaintext--u4"]
    html = (run_dir / "report.html").read_text()
    assert "Where each server's CPU goes" in html
    assert 'href="profiles/fork--raw--plaintext.svg"' in html
    assert 'href="profiles/fork--app--plaintext.speedscope.json"' in html
    # the raw app does almost nothing: the forked child's own server path must show
    assert "servers/" in html.split("plaintext (raw app)")[1].split("Every cell")[0]


@pytest.mark.slow
def test_without_py_spy_one_line_says_so_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sampled_window, "find_py_spy", lambda: None)  # as where it is missing
    run_dir = tmp_path / "run"
    argv = [*SAMPLED_RUN, "--servers", "epoll", "--run-dir", str(run_dir)]
    assert run.load_main(argv) == 0
    line = "py-spy not found: install it (pip install py-spy) to profile the servers"
    assert capsys.readouterr().err.splitlines() == [
        f"server CPU profiles: {line}; the run goes on without them"
    ]
    cell = json.loads((run_dir / "cells" / "epoll--app--plaintext--u4.json").read_text())
    assert cell["status"] == "ok" and "cpu_profile" not in cell
    assert json.loads((run_dir / "meta.json").read_text())["cpu_profiles"]["problem"] == line
    assert f"No profiles in this run: {line}." in (run_dir / "report.html").read_text()
