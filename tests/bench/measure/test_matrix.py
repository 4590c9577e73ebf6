"""The matrix of a load run: cells from profiles and the command line's narrowing, peers, and the
open-loop sweep that offers a fraction of each server's measured capacity.
"""

from __future__ import annotations

import dataclasses

import pytest

from bench.catalogue import SCENARIOS
from bench.measure import (
    matrix,
)
from bench.measure.profiles import PROFILES
from bench.serving.registry import ServerSpec, all_servers


def test_smoke_matrix_has_app_and_raw_cells_for_each_model():
    cells = matrix.build_matrix(PROFILES["smoke"], [])
    names = [cell.name for cell in cells]
    assert len(names) == len(set(names)) == 12
    assert "epoll--raw--plaintext--u8" in names
    assert "poll--app--fortunes--u8" in names


def test_overrides_narrow_the_matrix_and_reference_apps_keep_their_endpoints():
    cells = matrix.build_matrix(
        PROFILES["smoke"], [], servers=["epoll"], scenarios=["fortunes", "plaintext"], users=[2, 4]
    )
    names = {cell.name for cell in cells}
    assert "epoll--app--fortunes--u2" in names
    assert "epoll--raw--plaintext--u4" in names
    assert not any(name.startswith("epoll--raw--fortunes") for name in names)
    assert len(names) == 2 * 2 + 2


def test_the_servers_of_one_scenario_and_level_run_back_to_back_peers_among_them():
    cells = matrix.build_matrix(PROFILES["quick"], ["null"], servers=["poll", "epoll"])
    closed = [(cell.app, cell.scenario.name, cell.users, cell.server.name) for cell in cells
              if cell.mode == "closed"]  # fmt: skip
    assert closed[:6] == [
        ("app", "plaintext", 1, "poll"), ("app", "plaintext", 1, "epoll"),
        ("app", "plaintext", 16, "poll"), ("app", "plaintext", 16, "epoll"),
        ("app", "plaintext", 16, "null"), ("app", "fortunes", 1, "poll"),
    ]  # fmt: skip
    groups = [group for *group, _ in closed]
    # each group is one unbroken stretch of the run, in the order it first appears
    assert groups == sorted(groups, key=groups.index)
    assert closed[-2:] == [("raw", "plaintext", 16, "poll"), ("raw", "plaintext", 16, "epoll")]
    # the sweep stays last: it offers fractions of the closed-loop cells' rates
    assert [cell.mode for cell in cells[len(closed) :]] == ["open"] * (len(cells) - len(closed))


def test_unknown_names_are_a_usage_error_that_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"--servers: unknown pol \(valid: poll, threaded"):
        matrix.build_matrix(PROFILES["smoke"], [], servers=["pol"])
    with pytest.raises(ValueError, match=r"--scenarios: unknown nosuch \(valid: plaintext, json"):
        matrix.build_matrix(PROFILES["smoke"], [], scenarios=["nosuch"])


def test_peers_join_only_profiles_with_a_peers_part():
    peers = [name for name, spec in all_servers().items() if spec.kind != "ours"][:1]
    if not peers:
        pytest.skip("bench.serving.peers is not available")
    quick = matrix.build_matrix(PROFILES["quick"], peers)
    assert any(cell.server.name == peers[0] for cell in quick)
    assert matrix.select_peers("none", PROFILES["quick"]) == ([], {})


def test_smoke_runs_only_the_null_reference_beside_our_models_by_default():
    if "null" not in all_servers():
        pytest.skip("bench.serving.peers is not available")
    peer_names, _ = matrix.select_peers(None, PROFILES["smoke"])
    assert peer_names == ["null"]
    cells = matrix.build_matrix(PROFILES["smoke"], peer_names)
    assert [cell.name for cell in cells if cell.server.kind != "ours"] == [
        "null--app--plaintext--u8"
    ]


def test_named_peers_on_a_profile_without_a_peers_part_run_on_its_scenarios_and_users(
    monkeypatch,
):
    bare = dataclasses.replace(PROFILES["smoke"], peers=None)
    monkeypatch.setitem(PROFILES, "smoke", bare)
    cells, _ = matrix.plan("smoke", peers="null,werkzeug-base")  # was: silently no peer at all
    peer_cells = sorted(cell.name for cell in cells if cell.server.kind != "ours")
    assert peer_cells == [
        "null--app--plaintext--u8",
        "werkzeug-base--app--fortunes--u8",
        "werkzeug-base--app--plaintext--u8",
    ]


def test_a_named_peer_with_no_scenario_in_the_run_is_refused_with_why():
    with pytest.raises(ValueError, match="null serves only plaintext"):
        matrix.plan("smoke", scenarios=["fortunes"], peers="null")
    cells, _ = matrix.plan("smoke", scenarios=["fortunes"], peers="all")  # all: null just sits out
    assert not any(cell.server.name == "null" for cell in cells)


def test_the_sweep_follows_the_closed_loop_cells_at_each_fraction():
    cells = matrix.build_matrix(PROFILES["quick"], [])
    sweep = PROFILES["quick"].sweep
    open_cells = [cell for cell in cells if cell.mode == "open"]
    assert cells[len(cells) - len(open_cells) :] == open_cells
    assert len(open_cells) == len(sweep.servers) * len(sweep.scenarios) * len(sweep.fractions)
    names = {cell.name for cell in open_cells}
    assert {"epoll--app--plaintext--o25", "poll--app--plaintext--o110"} <= names
    assert {cell.users for cell in open_cells} == {sweep.users}
    narrowed = matrix.build_matrix(PROFILES["quick"], [], servers=["epoll"], scenarios=["json"])
    assert {c.name for c in narrowed if c.mode == "open"} == {
        f"epoll--app--json--o{fraction:.0%}".rstrip("%") for fraction in sweep.fractions
    }


def finished(server: str, scenario: str, rps: float, flags=(), mode="closed") -> dict:
    return {"server": server, "app": "app", "scenario": scenario, "mode": mode,
            "summary": {"rps": rps}, "flags": list(flags)}  # fmt: skip


def test_an_open_cell_offers_its_fraction_of_the_best_trusted_closed_loop_rate():
    cell = matrix.Cell(all_servers()["poll"], "app", SCENARIOS["io"], 32, offered_fraction=0.5)
    records = [
        finished("poll", "io", 40.0),
        finished("poll", "io", 48.0, flags=["generator-bound"]),  # a lower bound still counts
        finished("poll", "io", 900.0, flags=["errors"]),  # fast errors are no capacity
        finished("poll", "io", 5000.0, mode="open"),
        finished("epoll", "io", 700.0),
        finished("poll", "plaintext", 1500.0),
    ]
    assert matrix.offering(cell, records).offered_rps == 24.0
    assert matrix.offering(cell, records[2:]).offered_rps is None


def test_a_sweep_runs_as_one_batch_per_server_and_scenario():
    cells = matrix.build_matrix(PROFILES["quick"], [], servers=["poll", "epoll"])
    batches = matrix.batches(cells)
    closed = [batch for batch in batches if batch[0].mode == "closed"]
    swept = [batch for batch in batches if batch[0].mode == "open"]
    assert all(len(batch) == 1 for batch in closed)
    assert len(swept) == 2 * len(PROFILES["quick"].sweep.scenarios)
    assert all(len({matrix.sweep_key(c) for c in batch}) == 1 for batch in swept)
    assert [len(batch) for batch in swept] == [len(PROFILES["quick"].sweep.fractions)] * len(swept)


def test_a_server_limited_to_some_scenarios_gets_only_those(monkeypatch):
    canned = ServerSpec("canned", "null", "reference", lambda a, h, p: [], scenarios=("plaintext",))
    monkeypatch.setattr(matrix, "all_servers", lambda: {**all_servers(), "canned": canned})
    cells = matrix.build_matrix(PROFILES["quick"], ["canned"], scenarios=["plaintext", "io"])
    assert {cell.name for cell in cells if cell.server is canned} == {"canned--app--plaintext--u16"}


def test_an_explicit_server_list_runs_no_peers_unless_asked():
    cells, _ = matrix.plan("quick", servers=["epoll"], scenarios=["plaintext"])
    assert {cell.server.name for cell in cells} == {"epoll"}


def test_the_sampled_cell_of_each_server_app_and_scenario_is_its_busiest_closed_loop_one():
    cells = matrix.build_matrix(PROFILES["quick"], [], servers=["poll", "epoll"])
    sampled = matrix.sampled_cells(cells)
    keys = {(c.server.name, c.app, c.scenario.name) for c in cells if c.mode == "closed"}
    assert len(sampled) == len(keys)  # one each; the sweep's open-loop cells never
    assert {
        "poll--app--plaintext--u64",
        "poll--app--io--u16",
        "epoll--raw--plaintext--u16",
    } <= sampled
    assert "poll--app--plaintext--u16" not in sampled
