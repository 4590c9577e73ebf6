"""The banners of a run's page, from meta.json and the cells on disk."""

from __future__ import annotations

from bench.analysis.story import banners, cell_fields, unmeasured

PLANNED = ["poll--app--plaintext--u8", "epoll--app--plaintext--u8", "epoll--raw--plaintext--u8"]


def test_a_finished_run_without_injections_has_no_banner():
    assert banners({"status": "finished", "cells_planned": PLANNED}, PLANNED) == []


def test_the_verdict_comes_first_then_the_injection_then_what_is_missing():
    meta = {
        "status": "interrupted",
        "cells_planned": PLANNED,
        "injections": {"BENCH_INJECT_SERVER_DELAY_US": "50"},
        "regress": {"baseline": "results/baseline", "verdict": "REGRESSED", "threshold": 0.25,
                    "alpha": 0.01, "regressed": 3, "judged": 40, "not_judged": 20},
    }  # fmt: skip
    found = banners(meta, PLANNED[:1])
    assert [banner.kind for banner in found] == ["alarm", "alarm", "alarm"]
    assert "REGRESSED (3 regressed, 40 judged, 20 not judged" in found[0].text
    assert "BENCH_INJECT_SERVER_DELAY_US=50" in found[1].text
    assert "2 of 3 planned cells were not measured" in found[2].text
    assert "epoll--app--plaintext--u8, epoll--raw--plaintext--u8" in found[2].text


def test_a_passing_check_is_a_note_not_an_alarm():
    meta = {"status": "finished", "regress": {"verdict": "no regression", "threshold": 0.25}}
    (banner,) = banners(meta, [])
    assert banner.kind == "note" and "no regression" in banner.text


def test_unmeasured_keeps_plan_order_and_cell_fields_parse_a_name():
    assert unmeasured({"cells_planned": PLANNED}, [PLANNED[1]]) == [PLANNED[0], PLANNED[2]]
    assert cell_fields("werkzeug-base--app--io--u16") == {
        "server": "werkzeug-base", "app": "app", "scenario": "io", "users": 16
    }  # fmt: skip
