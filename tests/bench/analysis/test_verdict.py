"""The verdict table: ranking by requests/s per CPU at each server's best level, the gap against
the measured spread, how sure each gap is (bench.analysis.evidence, through the rows), the reason
per model, and the fallback basis without a budget."""

from __future__ import annotations

import pytest

from bench.analysis import reasons, stats, verdict
from bench.analysis.evidence import ALPHA, Evidence, look_evidence, of_look


def cell(server: str, users: int, rps: float, **extra) -> dict:
    """A summary record as report.summary_record makes it, under a 0.25-CPU budget."""
    model = {"tornado": "epoll", "bjoern": "epoll", "granian": "threaded", "null": "null"}
    model = model.get(server, server)
    kind = "ours" if server in ("poll", "threaded", "fork", "epoll") else "peer"
    base = {"server": server, "model": model, "kind": "reference" if server == "null" else kind,
            "app": "app", "scenario": "plaintext", "users": users, "rps": rps,
            "rps_low": rps * 0.95, "rps_high": rps * 1.05, "budget_cpus": 0.25,
            "budget_period_us": 10_000, "rps_per_cpu": rps / 0.25, "cpu_s_per_1k": 0.1,
            "flags": []}  # fmt: skip
    return {**base, **extra}


def test_each_server_is_ranked_at_its_best_level_by_requests_per_cpu():
    records = [
        cell("epoll", 16, 2600), cell("epoll", 64, 2800), cell("threaded", 16, 2400),
        cell("threaded", 64, 2300), cell("fork", 64, 700), cell("bjoern", 64, 5600),
        cell("null", 64, 9000), cell("epoll", 64, 9999, app="raw"),
    ]  # fmt: skip
    rows = verdict.verdict_rows(records, "plaintext")
    # the null reference and the raw app are not ranked
    ranking = [("bjoern", 64), ("epoll", 64), ("threaded", 16), ("fork", 64)]
    assert [(row["server"], row["users"]) for row in rows] == ranking
    assert [row["rank"] for row in rows] == [1, 2, 3, 4]
    assert rows[0]["ratio"] == 1.0 and rows[1]["ratio"] == pytest.approx(2800 / 5600)
    assert rows[1]["rps_per_cpu"] == pytest.approx(2800 / 0.25)


def steady(rate: float, seconds: int = 10, wobble: float = 0.02) -> list[float]:
    """Per-second rates that alternate ±wobble around ``rate``: no spells, a little spread."""
    return [rate * (1 + wobble * (-1) ** second) for second in range(seconds)]


def test_a_gap_is_sure_when_batch_means_of_the_seconds_say_so():
    leader = cell("epoll", 64, 1000, rps_seconds=[steady(1000)])
    clear = cell("threaded", 64, 800, rps_seconds=[steady(800)])
    close = cell("poll", 64, 990, rps_seconds=[steady(990, wobble=0.05)])
    untested = cell("fork", 64, 500)
    rows = verdict.verdict_rows([leader, clear, close, untested], "plaintext")
    evidence = {row["server"]: row["evidence"] for row in rows}
    assert evidence["epoll"] is None
    assert evidence["threaded"].sure and evidence["threaded"].p < 0.001
    assert "batch means of 1 s" in evidence["threaded"].basis
    assert evidence["poll"].sure is False and evidence["poll"].p > ALPHA
    assert evidence["fork"] == Evidence(None, None, "no per-second rates to test with")
    table = {line[1]: line[6] for line in verdict.table_rows(rows)}
    assert table["epoll"] == "best" and table["threaded"].startswith("yes, p = 0.000")
    assert table["poll"].startswith("no, p = ") and table["fork"].startswith("cannot tell")


def test_seconds_that_drift_in_spells_are_batched_and_the_gap_is_not_called():
    # a slow spell, then a less slow one: the seconds resemble their neighbours, so they are two
    # pieces of evidence, not ten, though every second is below every second of the leader's
    drifting = [900.0] * 5 + [990.0] * 5
    steady = [1000.0 + (-1) ** s for s in range(10)]
    assert stats.mann_whitney_u(steady, drifting).p < 0.001  # the per-second test calls it
    leader = cell("epoll", 64, 1000, rps_seconds=[steady])
    other = cell("threaded", 64, 945, rps_seconds=[drifting])
    (_, row) = verdict.verdict_rows([leader, other], "plaintext")
    assert row["evidence"].basis == "2 and 2 batch means of 5 s"
    assert row["evidence"].sure is False


def test_a_window_of_a_few_seconds_tells_no_gap_however_steady():
    leader = cell("epoll", 64, 1000, rps_seconds=[steady(1000, seconds=3)])
    other = cell("threaded", 64, 700, rps_seconds=[steady(700, seconds=3)])
    (_, row) = verdict.verdict_rows([leader, other], "plaintext")
    assert row["evidence"].sure is None
    assert row["evidence"].basis.startswith("3 s of rates a side, too short to see")
    assert "--duration 6 or --repeats 3" in row["evidence"].basis


def test_with_three_repeats_a_side_the_test_is_over_the_repeats():
    leader = cell("epoll", 64, 1000, repeat_rps=[1000, 1010, 990], rps_seconds=[steady(1000)])
    # the seconds alone would call this gap sure; the repeats disagree among themselves
    other = cell("threaded", 64, 950, repeat_rps=[800, 950, 1100], rps_seconds=[steady(950)])
    (_, row) = verdict.verdict_rows([leader, other], "plaintext")
    assert row["evidence"].basis == "3 and 3 repeats" and row["evidence"].sure is False


def test_failed_and_erroring_cells_are_left_out_but_generator_bound_stays_flagged():
    records = [
        cell("epoll", 64, 2800, flags=["generator-bound"]),
        cell("threaded", 64, 2400, flags=["errors"]),
        {**cell("fork", 64, 0.0), "rps": None, "flags": ["failed"]},
    ]
    rows = verdict.verdict_rows(records, "plaintext")
    assert [(row["server"], row["flags"]) for row in rows] == [("epoll", ["generator-bound"])]


def test_without_a_budget_the_ranking_is_by_cpu_per_request():
    records = [
        cell("epoll", 64, 6000, budget_cpus=None, rps_per_cpu=None, cpu_s_per_1k=0.1),
        cell("threaded", 64, 6000, budget_cpus=None, rps_per_cpu=None, cpu_s_per_1k=0.125),
    ]
    rows = verdict.verdict_rows(records, "plaintext")
    assert [row["server"] for row in rows] == ["epoll", "threaded"]
    assert rows[0]["rps_per_cpu"] == pytest.approx(10_000) and rows[1]["ratio"] == 0.8
    assert "CPU per request" in verdict.basis(records)
    assert "0.25 CPU" in verdict.basis([cell("epoll", 64, 1000)])


def test_a_leader_is_never_described_by_its_weakness():
    # fork first at one user over keep-alive: the fork is paid once per user
    records = [cell("fork", 1, 900, rps_seconds=[steady(900)]),
               cell("threaded", 1, 600, rps_seconds=[steady(600)])]  # fmt: skip
    fork, threaded = verdict.verdict_rows(records, "plaintext")
    assert "one fork per user" in fork["why"] and "pays a fork" not in fork["why"]
    assert "switches between them under the GIL" in threaded["why"]
    # a gap the run cannot call: both read as leaders
    records[1] = cell("threaded", 1, 890, rps_seconds=[steady(890, wobble=0.05)])
    _, threaded = verdict.verdict_rows(records, "plaintext")
    assert "no event-loop bookkeeping" in threaded["why"]
    # a gap it could not test: described by the rank
    records[1] = cell("threaded", 1, 890)
    _, threaded = verdict.verdict_rows(records, "plaintext")
    assert threaded["evidence"].sure is None and "under the GIL" in threaded["why"]


def test_one_user_on_a_waiting_scenario_says_nothing_overlaps():
    row, *_ = verdict.verdict_rows([cell("poll", 1, 45, scenario="io")], "io")
    assert row["why"] == reasons.ONE_USER


def test_a_costly_peer_that_trails_is_not_said_to_have_led():
    # the test cannot call the gap, so it ties the leader: its sentence must not claim first place
    records = [cell("epoll", 16, 1000, rps_seconds=[steady(1000)]),
               cell("gunicorn-sync", 16, 990, rps_seconds=[steady(990, wobble=0.05)])]  # fmt: skip
    _, trailing = verdict.verdict_rows(records, "plaintext")
    assert trailing["evidence"].sure is False and "yet it led" not in trailing["why"]
    assert "gap to the leader is not sure" in trailing["why"]
    (first,) = verdict.verdict_rows(records[1:], "plaintext")
    assert first["why"].endswith("yet it led")


def test_a_users_scenario_waits_when_even_the_busiest_server_idled():
    idle = [cell("epoll", 8, 40, scenario="login", server_cpu_pct=5.0),
            cell("threaded", 8, 300, scenario="login", server_cpu_pct=10.0)]  # fmt: skip
    busy = [cell("epoll", 8, 900, scenario="browse", server_cpu_pct=24.0)]
    assert verdict.scenario_waits(idle, "login") is True
    assert verdict.scenario_waits(busy, "browse") is False  # 24% of a 0.25-CPU budget
    assert verdict.scenario_waits(idle, "plaintext") is False
    rows = verdict.verdict_rows(idle, "login")
    assert "overlaps the waits" in rows[0]["why"]


def test_every_scenario_gets_a_verdict_the_users_own_after_ours():
    records = [cell("epoll", 16, 900, scenario="io"), cell("epoll", 16, 2000),
               cell("null", 16, 9000, scenario="json"), cell("epoll", 8, 50, scenario="visitor"),
               cell("fork", 8, 0.3, scenario="blogger", flags=["too-few"], requests=1,
                    seconds=3, repeats=1)]  # fmt: skip
    tables = verdict.verdict_tables(records, ["plaintext", "json", "io"])
    # json has only the null reference: nothing a verdict is about
    assert [t["scenario"] for t in tables] == ["plaintext", "io", "visitor", "blogger"]
    assert tables[0]["header"][4] == "req/s per CPU" and len(tables[0]["rows"]) == 1
    blogger = tables[-1]
    assert blogger["rows"] == [] and blogger["answer"].winner is None
    assert blogger["answer"].text == "blogger: no server could be ranked (too-few)"
    (unranked,) = blogger["unranked"]
    assert unranked[:3] == ["fork", "8", "too-few"]
    assert unranked[3] == "1 request in 3 s: run with --duration 334 or more"


def test_the_answer_names_the_winner_the_margin_and_how_sure():
    records = [cell("epoll", 64, 1000, rps_seconds=[steady(1000)]),
               cell("threaded", 64, 800, rps_seconds=[steady(800)])]  # fmt: skip
    (table,) = verdict.verdict_tables(records)
    answer = table["answer"]
    assert (answer.winner, answer.runner_up, answer.sure) == ("epoll", "threaded", True)
    assert answer.margin == pytest.approx(1.25)
    assert answer.text.startswith("plaintext: epoll serves 1.25× threaded's requests per CPU, sure")
    records[1] = cell("threaded", 64, 990, rps_seconds=[steady(990, wobble=0.05)])
    (table,) = verdict.verdict_tables(records)
    assert "a repeat could swap them" in table["answer"].text
    assert table["answer"].sure is False
    (table,) = verdict.verdict_tables(records[:1])
    assert table["answer"].text == "plaintext: epoll, the only server ranked"


def test_failed_cells_are_listed_with_the_first_line_of_their_error():
    failed = {**cell("fork", 8, 0.0), "rps": None, "flags": ["failed"],
              "error": "GET / did not answer\n--- server stderr ---"}  # fmt: skip
    erroring = cell("poll", 8, 10.0, flags=["errors"], fail_ratio=0.25)
    (table,) = verdict.verdict_tables([failed, erroring])
    assert [row[3] for row in table["unranked"]] == [
        "GET / did not answer", "25.0% of requests failed"
    ]  # fmt: skip


def test_measured_range_uses_repeats_or_else_the_per_second_series():
    repeats = [{"rps": 90.0, "rps_series": [1.0]}, {"rps": 110.0}, {"rps": 100.0}]
    assert verdict.measured_range({"repeats": repeats}) == (90.0, 110.0)
    one = [{"rps": 100.0, "rps_series": [96.0, 104.0, 99.0]}]
    assert verdict.measured_range({"repeats": one}) == (96.0, 104.0)
    assert verdict.measured_range({"repeats": []}) == (None, None)


def test_latency_note_only_under_a_budget():
    assert "up to 10 ms" in verdict.latency_note([cell("epoll", 16, 100)])
    assert verdict.latency_note([cell("epoll", 16, 100, budget_period_us=None)]) == ""


def test_a_scenario_missing_planned_cells_is_ranked_nowhere_and_says_so():
    records = [cell("epoll", 16, 2000), cell("poll", 16, 900)]
    (table,) = verdict.verdict_tables(records, ["plaintext"], {"plaintext": 2})
    assert table["rows"] == [] and table["answer"].winner is None
    assert table["answer"].text.startswith("plaintext: not ranked, 2 planned cell(s)")


def looked(server: str, rps: float, *looks: float, wobble: float = 0.02) -> dict:
    """A cell measured once per rate in ``looks``, the first look first, ten seconds each."""
    numbers = list(range(1, len(looks) + 1))
    return cell(server, 64, rps, repeat_rps=list(looks), repeat_looks=numbers,
                rps_seconds=[steady(rate, wobble=wobble) for rate in looks])  # fmt: skip


def test_in_a_run_that_looks_twice_a_gap_is_sure_only_when_both_looks_say_so():
    leader = looked("epoll", 1000, 1000, 1000)
    repeated = looked("threaded", 800, 800, 800)
    reversed_ = looked("poll", 950, 900, 1050)  # behind on the first look, ahead on the second
    once = cell("fork", 64, 700, rps_seconds=[steady(700)])  # the second look never reached it
    rows = verdict.verdict_rows([leader, repeated, reversed_, once], "plaintext", looks=2)
    evidence = {row["server"]: row["evidence"] for row in rows}
    assert evidence["threaded"].sure is True
    assert evidence["threaded"].basis.endswith("and again on a second look")
    assert evidence["poll"].sure is False and "not on a second" in evidence["poll"].basis
    assert evidence["fork"].sure is None and "not measured a second time" in evidence["fork"].basis
    # a run that looks once judges the first look alone, as before
    (_, once_only) = verdict.verdict_rows([leader, reversed_], "plaintext")
    assert once_only["evidence"].sure is True


def test_a_gap_both_looks_call_is_not_sure_when_the_looks_overlap():
    # measured: cpu at 16 users, epoll 97.7 then 104.6 req/s, threaded 92.7 then 98.3, each
    # window steady; the next identical run put threaded ahead
    leader = looked("epoll", 101, 97.7, 104.6)
    other = looked("threaded", 95, 92.7, 98.3)
    for look in (1, 2):
        each = look_evidence(of_look(leader, look), of_look(other, look))
        assert each.sure
    (_, row) = verdict.verdict_rows([leader, other], "plaintext", looks=2)
    assert row["evidence"].sure is False
    assert row["evidence"].basis == ("ahead on both looks, but they overlap: epoll 391–418 "
                                     "against threaded 371–393 req/s per CPU")  # fmt: skip
    # the same gap with looks that stay apart is sure
    (_, apart) = verdict.verdict_rows([leader, looked("threaded", 93, 92.7, 94.0)], "plaintext",
                                      looks=2)  # fmt: skip
    assert apart["evidence"].sure is True


def test_a_look_that_puts_the_two_the_other_way_round_says_so():
    # the leader is first on both looks together, but its first look was behind
    leader = looked("epoll", 1000, 800, 1200)
    other = looked("threaded", 950, 950, 950)
    (_, row) = verdict.verdict_rows([leader, other], "plaintext", looks=2)
    assert row["evidence"].sure is False and row["evidence"].p < ALPHA
    assert row["evidence"].basis.endswith("which put the two the other way round")


def test_both_looks_must_pass_so_the_larger_p_is_reported():
    leader = looked("epoll", 1000, 1000, 1000)
    narrow = looked("threaded", 960, 900, 970, wobble=0.03)
    (_, row) = verdict.verdict_rows([leader, narrow], "plaintext", looks=2)
    first = look_evidence(of_look(leader, 1), of_look(narrow, 1))
    second = look_evidence(of_look(leader, 2), of_look(narrow, 2))
    assert first.sure and second.sure and second.p > first.p
    assert row["evidence"].p == second.p


def test_the_second_look_is_the_leader_and_each_server_the_first_look_calls_surely_behind():
    def seconds(rate: float) -> dict:
        return {"rps_seconds": [steady(rate)]}

    records = [
        cell("epoll", 16, 2600, cell="epoll-16", **seconds(2600)),
        cell("epoll", 64, 2800, cell="epoll-64", **seconds(2800)),
        cell("threaded", 16, 2400, cell="threaded-16", **seconds(2400)),  # surely behind
        cell("poll", 16, 2790, cell="poll-16", **seconds(2790)),  # within the wobble: a tie
        cell("bjoern", 64, 5600, cell="bjoern-64", flags=["errors"]),  # not ranked
        cell("null", 64, 9000, cell="null-64"),  # a reference, never ranked
        cell("fork", 64, 700, scenario="io", cell="fork-io", **seconds(700)),  # alone
        cell("epoll", 16, 900, scenario="cpu", cell="epoll-cpu", **seconds(900)),
        cell("poll", 16, 899, scenario="cpu", cell="poll-cpu", **seconds(899)),  # no sure gap
    ]  # fmt: skip
    assert verdict.second_look_cells(records) == ["epoll-64", "threaded-16"]
    # a server 3 times behind or more is left out: no second look could close that gap; with
    # nothing else to confirm, the leader needs no second look either
    far = cell("gunicorn-sync", 16, 900, cell="sync-16", **seconds(900))
    assert verdict.second_look_cells([*records, far]) == ["epoll-64", "threaded-16"]
    assert verdict.second_look_cells([records[1], far]) == []


def test_a_gap_too_wide_for_a_second_look_to_close_is_sure_on_the_first():
    leader = looked("epoll", 1000, 1000, 1000)
    far = looked("tornado", 300, 300)  # 3.3 times behind, measured once
    near = looked("fork", 400, 400)  # 2.5 times behind, and the second look never reached it
    rows = verdict.verdict_rows([leader, far, near], "plaintext", looks=2)
    evidence = {row["server"]: row["evidence"] for row in rows}
    assert evidence["tornado"].sure is True
    assert evidence["tornado"].basis.endswith("3.3× apart, too wide a gap for a second look to "
                                              "close")  # fmt: skip
    assert evidence["fork"].sure is None
    assert "not measured a second time" in evidence["fork"].basis
    # the leader's slower look is what counts: 1000 then 800 over 300 is 2.7 times, not wide
    slowed = looked("epoll", 900, 1000, 800)
    (_, row) = verdict.verdict_rows([slowed, far], "plaintext", looks=2)
    assert row["evidence"].sure is None
