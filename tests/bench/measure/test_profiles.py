"""Profiles and scenarios: every name resolves, budgets hold, and the smoke profile has what the
regression compare needs."""

from __future__ import annotations

import dataclasses

import pytest

from bench.catalogue import APPS, IO_WAIT_MS, SCENARIOS
from bench.flags import MIN_REQUESTS
from bench.measure.profiles import (
    OFFERED_FRACTIONS,
    PROFILES,
    REPEAT_OVERHEAD_S,
    cell_seconds,
    estimate_seconds,
    sweep_seconds,
)
from bench.serving.registry import OUR_SERVERS
from bench.serving.spec import MODELS


@pytest.mark.parametrize("profile", PROFILES.values(), ids=lambda p: p.name)
def test_profile_parts_name_known_servers_scenarios_and_apps(profile):
    our_names = {spec.name for spec in OUR_SERVERS}
    parts = [*profile.parts, *([profile.peers] if profile.peers else [])]
    for part in parts:
        assert set(part.servers) <= our_names
        assert set(part.scenarios) <= set(SCENARIOS)
        assert part.app in APPS
        assert part.users and all(level >= 1 for level in part.users)
    assert profile.repeats >= 1 and profile.duration_s > 0 and profile.warmup_s >= 0


@pytest.mark.parametrize("profile", PROFILES.values(), ids=lambda p: p.name)
def test_profile_fits_its_budget(profile):
    assert estimate_seconds(profile) <= profile.budget_s


def test_budgets_are_the_promised_ones():
    assert PROFILES["smoke"].budget_s <= 180
    assert PROFILES["quick"].budget_s <= 7.5 * 60


def test_smoke_covers_four_models_two_scenarios_and_raw_references():
    smoke = PROFILES["smoke"]
    app_cells = {
        (s, sc) for p in smoke.parts if p.app == "app" for s in p.servers for sc in p.scenarios
    }
    assert app_cells == {
        (model, scenario) for model in MODELS for scenario in ("plaintext", "fortunes")
    }
    raw_servers = {
        s for p in smoke.parts if p.app == "raw" and "plaintext" in p.scenarios for s in p.servers
    }
    assert raw_servers == set(MODELS)


def test_raw_parts_only_ask_for_what_the_raw_app_serves():
    for profile in PROFILES.values():
        for part in profile.parts:
            if part.app == "raw":
                assert set(part.scenarios) <= {"plaintext", "json"}


def test_quick_sweeps_the_issue_scenarios_at_two_or_more_levels():
    quick = PROFILES["quick"]
    for scenario in ("plaintext", "fortunes", "io", "cpu", "session"):
        levels = {
            lvl
            for p in quick.parts
            if scenario in p.scenarios and p.app == "app"
            for lvl in p.users
        }
        assert len(levels) >= 2, scenario


def test_full_runs_every_scenario_from_1_to_256_users_three_times():
    full = PROFILES["full"]
    scenarios = {sc for p in full.parts for sc in p.scenarios}
    levels = {lvl for p in full.parts for lvl in p.users}
    assert scenarios == set(SCENARIOS)
    assert min(levels) == 1 and max(levels) == 256
    assert full.repeats == 3


def test_cell_seconds_grows_with_repeats_and_duration():
    assert cell_seconds(1, 2, 2) > cell_seconds(1, 2, 1)
    assert cell_seconds(1, 5, 1) > cell_seconds(1, 2, 1)


@pytest.mark.parametrize("profile", [p for p in PROFILES.values() if p.sweep], ids=lambda p: p.name)
def test_a_sweep_fits_its_budget_and_offers_up_to_past_capacity(profile):
    sweep = profile.sweep
    assert sweep_seconds(sweep) <= sweep.budget_s
    assert set(sweep.servers) == set(MODELS) and set(sweep.scenarios) <= set(SCENARIOS)
    assert max(sweep.fractions) > 1.0 and sweep.users >= 1


def test_quick_sweeps_plaintext_and_full_sweeps_every_scenario():
    assert OFFERED_FRACTIONS == (0.25, 0.50, 0.75, 0.90, 1.00, 1.10)
    # quick keeps the light end and both sides of capacity, where the knee is found
    quick = PROFILES["quick"].sweep.fractions
    assert min(quick) == 0.25 and any(f < 1 <= g for f, g in zip(quick, quick[1:], strict=False))
    # quick sweeps plaintext only: at the io scenario's serial ceiling (50 req/s) no step of
    # poll or epoll can hold MIN_REQUESTS in its window
    assert PROFILES["quick"].sweep.scenarios == ("plaintext",)
    io_ceiling = 1000 / IO_WAIT_MS * max(PROFILES["quick"].sweep.fractions)
    assert io_ceiling * PROFILES["quick"].sweep.duration_s < MIN_REQUESTS
    assert set(PROFILES["full"].sweep.scenarios) == set(SCENARIOS)
    assert PROFILES["smoke"].sweep is None  # the regression check stays closed loop


def test_only_full_profiles_the_servers_and_its_estimate_counts_the_sampled_windows():
    assert [p.name for p in PROFILES.values() if p.profile_servers] == ["full"]
    full = PROFILES["full"]
    unsampled = dataclasses.replace(full, profile_servers=False)
    windows = {(s, p.app, sc) for p in full.parts for s in p.servers for sc in p.scenarios}
    extra = len(windows) * (full.warmup_s + full.duration_s + REPEAT_OVERHEAD_S)
    assert estimate_seconds(full) == estimate_seconds(unsampled) + extra


def test_quick_and_full_look_twice_and_smoke_once():
    # smoke is the three-minute check that everything runs; the runs that answer
    # "which model" confirm every gap they call sure from a second server start
    assert {p.name: p.second_look for p in PROFILES.values()} == {
        "smoke": False, "quick": True, "full": True
    }  # fmt: skip
