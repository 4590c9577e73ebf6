"""Pair rows compare cells under the same load; the null bound flags cells near the ceiling."""

from __future__ import annotations

import pytest

from bench.analysis.pairs import GENERATOR_BOUND, apply_null_bound, pair_rows


def cell(server: str, model: str, kind: str, rps: float | None, p99_ms: float | None = 10.0,
         scenario: str = "plaintext", users: int = 50, app: str = "app",
         flags: list[str] | None = None) -> dict:  # fmt: skip
    return {
        "server": server,
        "model": model,
        "kind": kind,
        "app": app,
        "scenario": scenario,
        "users": users,
        "rps": rps,
        "p99_ms": p99_ms,
        "flags": list(flags or []),
    }


def test_each_model_is_paired_with_each_of_its_peers_under_the_same_load() -> None:
    records = [
        cell("threaded", "threaded", "ours", 3000, 20),
        cell("waitress", "threaded", "peer", 2000, 40),
        cell("gunicorn-gthread", "threaded", "peer", 4000, 10),
        cell("epoll", "epoll", "ours", 3900, 8),
        cell("tornado", "epoll", "peer", 3000, 16),
        cell("tornado", "epoll", "peer", 100, 16, users=10),  # another load: no ours cell
        cell("werkzeug-base", "poll", "peer", 2500),  # ours poll not run: no row
    ]
    rows = pair_rows(records)
    assert [(row["ours"], row["peer"]) for row in rows] == [
        ("threaded", "gunicorn-gthread"),
        ("threaded", "waitress"),
        ("epoll", "tornado"),
    ]
    gthread, waitress, tornado = rows
    assert waitress["rps_ratio"] == pytest.approx(1.5)
    assert waitress["p99_ratio"] == pytest.approx(0.5)
    assert waitress["meets_target"] is True
    assert gthread["rps_ratio"] == pytest.approx(0.75)
    assert gthread["p99_ratio"] == pytest.approx(2.0)
    assert gthread["meets_target"] is False
    assert tornado["rps_ratio"] == pytest.approx(1.3)
    assert (tornado["target"], tornado["meets_target"]) == (1.3, True)
    assert (tornado["scenario"], tornado["users"], tornado["app"]) == ("plaintext", 50, "app")


def test_pairs_never_cross_scenarios_users_or_apps() -> None:
    records = [
        cell("poll", "poll", "ours", 1000, scenario="fortunes"),
        cell("werkzeug-base", "poll", "peer", 500, scenario="plaintext"),
        cell("poll", "poll", "ours", 1000, users=10),
        cell("werkzeug-base", "poll", "peer", 500, users=50),
        cell("poll", "poll", "ours", 1000, app="raw", users=7),
        cell("werkzeug-base", "poll", "peer", 500, app="app", users=7),
    ]
    assert pair_rows(records) == []


def test_rows_carry_flags_and_a_failed_peer_shows_without_a_ratio() -> None:
    records = [
        cell("fork", "fork", "ours", 900, flags=["noisy"]),
        cell("werkzeug-forking", "fork", "peer", 300, flags=["errors", "noisy"]),
        cell("gunicorn-sync", "fork", "peer", None, None, flags=["failed"]),
    ]
    forking, sync = pair_rows(records)
    assert forking["rps_ratio"] == pytest.approx(3.0)
    assert forking["meets_target"] is True
    assert forking["ours_flags"] == ["noisy"]
    assert forking["peer_flags"] == ["errors", "noisy"]
    assert forking["flags"] == ["noisy", "errors"]
    assert sync["rps_ratio"] is None and sync["p99_ratio"] is None
    assert sync["meets_target"] is None  # no target for gunicorn sync, and no number anyway
    assert sync["flags"] == ["noisy", "failed"]


@pytest.mark.parametrize(
    ("ours_flags", "peer_flags", "ours_rps", "meets", "note"),
    [
        ([], [], 1300, True, "met"),
        ([GENERATOR_BOUND], [], 1300, True, "met by a lower bound (ours was generator-bound)"),
        ([GENERATOR_BOUND], [], 1100, None, "undecided: ours was generator-bound"),
        ([], [GENERATOR_BOUND], 1300, None, "undecided: the peer was generator-bound"),
        ([GENERATOR_BOUND], [GENERATOR_BOUND], 1300, None, "undecided: the peer was"),
    ],
)
def test_a_generator_bound_cell_never_decides_a_target_it_cannot_support(
    ours_flags, peer_flags, ours_rps, meets, note
) -> None:
    ours = cell("poll", "poll", "ours", ours_rps, flags=ours_flags) | {"cpu_s_per_1k": 0.1}
    peer = cell("werkzeug-base", "poll", "peer", 1000, flags=peer_flags) | {"cpu_s_per_1k": 0.25}
    (row,) = pair_rows([ours, peer])
    assert row["meets_target"] is meets
    assert row["target_note"].startswith(note)
    assert row["peer_cpu_per_request_ratio"] == pytest.approx(2.5)


def test_missed_target_is_reported_as_missed() -> None:
    rows = pair_rows(
        [cell("poll", "poll", "ours", 1100), cell("werkzeug-base", "poll", "peer", 1000)]
    )
    assert rows[0]["target"] == 1.2
    assert rows[0]["meets_target"] is False


@pytest.mark.parametrize(
    ("rps", "flagged"),
    [(10_000, True), (9_100, True), (9_000, True), (8_900, False), (12_000, True), (100, False)],
)
def test_cells_within_ten_percent_of_the_null_server_are_generator_bound(
    rps: float, flagged: bool
) -> None:
    records = [cell("null", "null", "reference", 10_000), cell("epoll", "epoll", "ours", rps)]
    apply_null_bound(records)
    assert (GENERATOR_BOUND in records[1]["flags"]) is flagged
    assert records[0]["flags"] == []  # the null server is the yardstick, never flagged itself


def test_null_bound_compares_only_the_same_scenario_and_users() -> None:
    records = [
        cell("null", "null", "reference", 10_000, scenario="plaintext", users=50),
        cell("epoll", "epoll", "ours", 9_950, scenario="fortunes", users=50),
        cell("epoll", "epoll", "ours", 9_950, scenario="plaintext", users=10),
        cell("waitress", "threaded", "peer", 9_950, scenario="plaintext", users=50, app="raw"),
    ]
    apply_null_bound(records)
    assert [GENERATOR_BOUND in record["flags"] for record in records] == [False, False, False, True]


def test_null_bound_keeps_existing_flags_and_adds_its_own_once() -> None:
    records = [
        cell("null", "null", "reference", 10_000),
        cell("tornado", "epoll", "peer", 9_500, flags=["noisy", GENERATOR_BOUND]),
        cell("poll", "poll", "ours", 9_500, flags=["errors"]),
    ]
    apply_null_bound(records)
    assert records[1]["flags"] == ["noisy", GENERATOR_BOUND]
    assert records[2]["flags"] == ["errors", GENERATOR_BOUND]


def test_a_failed_null_cell_or_cell_flags_nothing() -> None:
    records = [
        cell("null", "null", "reference", None, flags=["failed"]),
        cell("poll", "poll", "ours", 9_500),
        cell("null", "null", "reference", 1_000, scenario="fortunes"),
        cell("epoll", "epoll", "ours", None, scenario="fortunes", flags=["failed"]),
    ]
    apply_null_bound(records)
    assert records[1]["flags"] == []
    assert records[3]["flags"] == ["failed"]


def test_a_null_server_under_a_cpu_budget_bounds_nothing() -> None:
    # its rate is what the budget allows, not Locust's ceiling: bjoern may well pass it
    records = [
        {**cell("null", "null", "reference", 3_000), "budget_cpus": 0.25},
        {**cell("bjoern", "epoll", "peer", 5_800), "budget_cpus": 0.25},
    ]
    apply_null_bound(records)
    assert records[1]["flags"] == []


def test_native_peers_are_references_without_a_target() -> None:
    (row,) = pair_rows(
        [cell("epoll", "epoll", "ours", 2_000), cell("bjoern", "epoll", "peer", 5_000)]
    )
    assert row["target"] is None and row["target_note"] == "native reference (C, libev)"
