"""The report's paragraphs, written from the numbers: each sentence said only when they show it."""

from __future__ import annotations

from bench.analysis import report_prose
from bench.catalogue import IO_WAIT_MS


def record(server: str, users: int, rps: float, scenario: str = "io", **extra) -> dict:
    model = server if server in ("poll", "threaded", "fork", "epoll") else "null"
    base = {"server": server, "model": model, "kind": "ours", "app": "app", "scenario": scenario,
            "users": users, "rps": rps, "rps_min": rps, "rps_max": rps, "flags": [],
            "server_rss_mb": 30.0, "server_procs": 1, "server_cpu_pct": 50.0,
            "repeats": 1}  # fmt: skip
    return {**base, **extra}


def test_io_paragraph_explains_a_serial_ceiling_only_when_measured():
    ceiling = 1000 / IO_WAIT_MS
    serial = [record("poll", 16, ceiling * 0.97), record("threaded", 16, ceiling * 12)]
    text = report_prose.scenario_paragraph(serial, "io")
    assert "threaded led" in text and "serial ceiling" in text and "overlapped the waits" in text
    overlapping = [record("poll", 16, ceiling * 8), record("threaded", 16, ceiling * 12)]
    assert "serial ceiling" not in report_prose.scenario_paragraph(overlapping, "io")


def test_fast_path_paragraph_credits_epoll_only_when_it_led():
    epoll_ahead = [record("epoll", 8, 5000, "plaintext"), record("threaded", 8, 4000, "plaintext")]
    assert "epoll served 1.25× threaded" in report_prose.scenario_paragraph(
        epoll_ahead, "plaintext"
    )
    threaded_ahead = [
        record("epoll", 8, 3000, "plaintext"),
        record("threaded", 8, 4000, "plaintext"),
    ]
    assert "epoll served" not in report_prose.scenario_paragraph(threaded_ahead, "plaintext")
    level = [record("epoll", 8, 4200, "plaintext"), record("threaded", 8, 4000, "plaintext")]
    assert "epoll served" not in report_prose.scenario_paragraph(level, "plaintext")


def test_a_ranking_set_by_locust_is_called_that():
    flagged = ["generator-bound"]
    bound = [
        record("epoll", 8, 11000, "plaintext", flags=flagged),
        record("threaded", 8, 10900, "plaintext", flags=flagged),
        record("poll", 8, 9000, "plaintext"),
    ]
    text = report_prose.scenario_paragraph(bound, "plaintext")
    assert "Locust was the bottleneck for epoll, threaded" in text
    assert "epoll served" not in text  # no architectural story for Locust's limit
    assert "Generator-bound figures are lower bounds: Locust, not the server" in text


def test_when_locust_set_the_pace_cpu_per_request_ranks_the_servers():
    flagged = ["generator-bound"]
    bound = [
        record("epoll", 8, 11000, "plaintext", flags=flagged, cpu_s_per_1k=0.05),
        record("threaded", 8, 10900, "plaintext", flags=flagged, cpu_s_per_1k=0.04),
        record("poll", 8, 9000, "plaintext", cpu_s_per_1k=0.08),
    ]
    text = report_prose.scenario_paragraph(bound, "plaintext")
    assert "threaded 0.04 ms, epoll 0.05 ms, poll 0.08 ms" in text
    assert "poll spent 2.0× what threaded did per request" in text
    unbound = [{**r, "flags": []} for r in bound]
    assert "Server CPU per request" not in report_prose.scenario_paragraph(unbound, "plaintext")


def test_paragraph_leaves_untrusted_cells_out_and_says_so():
    records = [
        record("epoll", 8, 9000, "plaintext", flags=["errors"]),
        record("threaded", 8, 4000, "plaintext"),
        record("poll", 8, 3000, "plaintext"),
    ]
    text = report_prose.scenario_paragraph(records, "plaintext")
    assert "threaded led" in text
    assert "epoll at 8 users: errors" in text
    none_trusted = [record("epoll", 8, None, "plaintext", flags=["failed"])]
    assert "nothing is compared" in report_prose.scenario_paragraph(none_trusted, "plaintext")


def test_a_close_race_is_called_one():
    close = [record("epoll", 8, 1000, "cpu", repeats=1), record("poll", 8, 950, "cpu", repeats=1)]
    text = report_prose.scenario_paragraph(close, "cpu")
    assert "within 5% of each other" in text and "within noise" in text
    apart = [record("epoll", 8, 1000, "cpu", repeats=3), record("poll", 8, 700, "cpu", repeats=3)]
    assert "of each other" not in report_prose.scenario_paragraph(apart, "cpu")


def test_a_run_says_how_many_looks_its_sure_gaps_rest_on():
    looks_sentence = report_prose.looks_sentence
    assert looks_sentence({"looks": 2, "looked_again": ["a", "b", "c"]}).startswith(
        "This run looked twice: 3 cells"
    )
    assert "1 cell (" in looks_sentence({"looks": 2, "looked_again": ["a"]})
    assert "3 times behind or more was not measured again" in looks_sentence(
        {"looks": 2, "looked_again": ["a"]}
    )
    assert "no cell was measured again" in looks_sentence({"looks": 2, "looked_again": []})
    once = looks_sentence({"looks": 1})
    assert once == looks_sentence({}) and once.startswith("This run looked once")
    assert "--second-look" in once
