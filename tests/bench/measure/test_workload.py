"""A user's app and locustfile: checked in subprocesses, turned into scenarios, run for real."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bench.analysis.report import build_report
from bench.catalogue import SCENARIOS
from bench.measure import matrix, runner
from bench.measure.profiles import PROFILES
from bench.measure.settings import LoadRequest
from bench.measure.workload import (
    DEFAULT_PROBE,
    OURS,
    WorkloadError,
    probe_refused,
    scenario_name,
    scenarios_of,
    user_workload,
)
from bench.serving.spec import MODELS

REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURES = REPO_ROOT / "tests" / "bench" / "fixtures" / "byoapp"
USER_APP = "tests.bench.fixtures.byoapp.app:app"


@pytest.fixture(scope="module")
def workload():
    return user_workload(USER_APP, FIXTURES / "scenarios.py")


def test_each_user_class_is_a_scenario_named_after_it(workload):
    assert workload.apps == {"app": USER_APP}
    assert workload.scenario_file == (FIXTURES / "scenarios.py").resolve()
    greeter, greeter2 = workload.scenarios.values()
    assert (greeter.name, greeter.user_class) == ("greeter", "GreeterUser")
    assert (greeter.probe_path, greeter.marker) == ("/greet", "hello")
    assert greeter.description.startswith("Asks for a greeting")
    assert (greeter2.name, (greeter2.probe_path, greeter2.marker)) == ("greeter2", DEFAULT_PROBE)


def test_a_failed_probe_names_itself_and_how_to_set_it(workload):
    message = probe_refused(workload.scenarios["greeter"], 302)
    assert message.startswith("GET /greet answered 302 without 'hello', which ")
    assert "GreeterUser.probe = ('/greet', 'hello')" in message
    assert "remove it" in message and "\n" not in message


@pytest.mark.parametrize(
    ("class_name", "name"),
    [("VisitorUser", "visitor"), ("User", "user"), ("Shopper", "shopper"), ("APIUser", "api")],
)
def test_scenario_names(class_name, name):
    assert scenario_name(class_name) == name


def user(class_name: str, probe=None) -> dict:
    return {"class": class_name, "probe": probe, "description": ""}


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([], "has no user class"),
        ([user("ShopUser"), user("Shop")], "two user classes are both named 'shop'"),
        ([user("ShopUser", probe="/")], "ShopUser.probe is '/'"),
        ([user("ShopUser", probe=["shop", "x"])], "ShopUser.probe is ['shop', 'x']"),
        ([user("ShopUser", probe=["/", 3])], 'expected ("/path", "body marker")'),
    ],
)
def test_unusable_user_classes_are_one_line_errors(classes, message):
    with pytest.raises(WorkloadError) as raised:
        scenarios_of(classes, Path("shop.py"))
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("app", "scenario_file", "message"),
    [
        ("no_such_package.wsgi:app", "scenarios.py", "does not import: ModuleNotFoundError"),
        ("tests.bench.fixtures.byoapp.app:nothing", "scenarios.py", "AttributeError"),
        ("tests.bench.fixtures.byoapp.app:NOT_AN_APP", "scenarios.py", "not a WSGI callable"),
        ("not a target", "scenarios.py", "not a module:attr target"),
        (USER_APP, "empty.py", "has no user class"),
        (USER_APP, "missing.py", "no such file"),
    ],
)
def test_a_bad_app_or_scenario_file_fails_fast_in_one_line(app, scenario_file, message):
    with pytest.raises(WorkloadError) as raised:
        user_workload(app, FIXTURES / scenario_file)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_users_profile_loads_the_app_parts_with_every_user_scenario(workload):
    for profile in PROFILES.values():
        mapped = workload.profile(profile)
        assert [part.app for part in mapped.parts] == ["app"] * len(mapped.parts)
        assert {part.scenarios for part in mapped.parts} == {("greeter", "greeter2")}
        assert [part.users for part in mapped.parts] == [
            part.users for part in profile.parts if part.app == "app"
        ]
        if profile.peers:
            assert mapped.peers.scenarios == ("greeter", "greeter2")
    assert OURS.profile(PROFILES["quick"]) is PROFILES["quick"]


def test_plan_of_a_users_workload(workload):
    cells, skipped = matrix.plan("smoke", workload=workload)
    assert sorted(cell.name for cell in cells) == sorted(
        f"{model}--app--{name}--u8" for model in MODELS for name in ("greeter", "greeter2")
    )
    # smoke runs the null server beside ours; its canned answer fits none of the user's scenarios
    assert skipped == {"null": "answers only our own scenarios"}
    cells, skipped = matrix.plan("quick", servers=["epoll"], peers="null", workload=workload)
    assert {cell.server.name for cell in cells} == {"epoll"}
    assert skipped == {"null": "answers only our own scenarios"}
    with pytest.raises(ValueError, match="plaintext"):
        matrix.plan("smoke", scenarios=["plaintext"], workload=workload)


def test_the_record_names_the_app_and_the_file_with_its_hash(workload):
    record = workload.record()
    digest = hashlib.sha256((FIXTURES / "scenarios.py").read_bytes()).hexdigest()
    assert record == {
        "app": USER_APP,
        "scenario_file": str((FIXTURES / "scenarios.py").resolve()),
        "scenario_file_sha256": digest,
        "users_own_workload": True,
    }
    assert OURS.record()["app"] == "bench.apps.app:app"
    assert set(SCENARIOS) == set(OURS.scenarios)


@pytest.mark.slow
def test_a_users_app_and_locustfile_run_through_the_smoke_matrix(tmp_path, workload):
    records = runner.run_load(
        tmp_path,
        LoadRequest("smoke", users=[2], duration=1.5, warmup=0.5, workload=workload),
        progress=False,
    )
    assert sorted(record["cell"] for record in records) == sorted(
        f"{model}--app--{name}--u2" for model in MODELS for name in ("greeter", "greeter2")
    )
    for record in records:
        assert record["status"] == "ok", record["error"]
        assert record["app_target"] == USER_APP
        (measured,) = record["repeats"]
        assert measured["requests"] > 0
        if record["scenario"] == "greeter":  # one task in ten asks for the page without "hello"
            assert 0 < measured["failures"] < measured["requests"]
            assert set(measured["errors"]) == {"body lacks 'hello'"}
        else:
            assert measured["failures"] == 0, measured["errors"]
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["status"] == "finished"
    assert meta["app"] == USER_APP and meta["scenario_file"] == str(workload.scenario_file)
    assert meta["scenario_file_sha256"] == workload.record()["scenario_file_sha256"]
    assert set(meta["scenarios"]) == {"greeter", "greeter2"}
    # the report reads the user's scenarios from the run, not from our table
    build_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "## greeter\n" in summary and "## greeter2\n" in summary
    assert "Asks for a greeting" in (tmp_path / "report.html").read_text()


SLOWLOGIN = REPO_ROOT / "tests" / "bench" / "fixtures" / "slowlogin"


@pytest.mark.slow
def test_an_app_we_did_not_write_with_a_redirecting_root_and_a_slow_login(tmp_path):
    """A plain locustfile (no probe, nothing of ours) against an app whose / only redirects and
    whose login is an scrypt check: every server counts as ready, logins stay out of the window,
    and the report gives every scenario a verdict."""
    workload = user_workload("tests.bench.fixtures.slowlogin.app:app", SLOWLOGIN / "locustfile.py")
    assert [(s.probe_path, s.marker) for s in workload.scenarios.values()] == [DEFAULT_PROBE] * 2
    records = runner.run_load(
        tmp_path,
        LoadRequest("smoke", users=[4], duration=2, warmup=0.2, workload=workload,
                    server_cpus="off"),
        progress=False,
    )  # fmt: skip
    for record in records:
        assert record["status"] == "ok", record["error"]
        (measured,) = record["repeats"]
        if record["scenario"] == "member":
            # four scrypt logins took longer than the 0.2 s warm-up: the window waited for them
            assert measured["setup_s"] > 0.2
            logins = [e for e in measured["endpoints"] if e["name"] == "/login"]
            assert all(e["requests"] == 0 for e in logins)
        assert {e["name"] for e in measured["endpoints"] if e["requests"]} <= {
            "/", "/public", "/favicon.ico"
        }  # fmt: skip
    build_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    verdict = summary.split("## Verdict")[1].split("\n## ")[0]
    assert "- member: " in verdict and "- visitor: " in verdict


@pytest.mark.slow
def test_a_second_look_measures_the_chosen_cells_again_in_reverse_order(tmp_path):
    """The real runner with a choice of every cell (which cells the verdict chooses is
    test_verdict's): each gets a second repeat, from a new server start at the end of the run,
    marked look 2."""
    workload = user_workload("tests.bench.fixtures.slowlogin.app:app", SLOWLOGIN / "locustfile.py")
    records = runner.run_load(
        tmp_path,
        LoadRequest("smoke", servers=["threaded", "epoll"], scenarios=["visitor"], users=[4],
                    duration=3, warmup=0.2, peers="none", workload=workload, server_cpus="off",
                    second_look=True),
        progress=False,
        choose_second_look=lambda cells: [cell["cell"] for cell in cells],
    )  # fmt: skip
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["looks"] == 2 and meta["status"] == "finished"
    # measured again in the reverse of the run's order: epoll's cell ran last, so first again
    assert meta["looked_again"] == ["epoll--app--visitor--u4", "threaded--app--visitor--u4"]
    for record in records:
        assert record["status"] == "ok", record["error"]
        assert [repeat.get("look", 1) for repeat in record["repeats"]] == [1, 2]
        on_disk = json.loads((tmp_path / "cells" / f"{record['cell']}.json").read_text())
        assert on_disk["repeats"][1]["rps"] == record["repeats"][1]["rps"] > 0
        assert record["summary"]["requests"] == sum(r["requests"] for r in record["repeats"])
    assert list((tmp_path / "logs" / "second-look").glob("epoll--app--visitor--u4.*"))
    # the verdict tests each look on its own: three seconds a look is too short to call a gap
    build_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "- visitor: " in summary.split("## Verdict")[1]
    assert "This run looked twice: 2 cells" in summary
    html = (tmp_path / "report.html").read_text()
    assert "This run looked twice: 2 cells" in html
    # with one repeat a cell, only the looked-again cells have a spread that noisy can judge
    assert "noisy</code> flag cannot" not in html and "only they can be flagged" in html
