"""Epoll beside the native peers under wrk: rounds rotate, medians and ratios are what the samples
say, and a real round measures every installed server."""

from __future__ import annotations

import shutil

import pytest

from tools import wrk_peers
from tools.wrk_peers import Sample, Table


def test_each_round_starts_with_another_server():
    names = ["epoll", "granian", "bjoern"]
    assert [wrk_peers.rotated(names, r) for r in range(4)] == [
        ["epoll", "granian", "bjoern"],
        ["granian", "bjoern", "epoll"],
        ["bjoern", "epoll", "granian"],
        ["epoll", "granian", "bjoern"],
    ]
    assert wrk_peers.rotated([], 2) == []


def test_the_table_gives_medians_of_the_rounds_and_ratios_of_medians():
    table = Table()
    for epoll, bjoern in ((9000, 10000), (12000, 20000), (3000, 16000)):
        table.add("/plaintext", "epoll", Sample(epoll, 50.0))
        table.add("/plaintext", "bjoern", Sample(bjoern, 30.0))
    assert table.median_rps("/plaintext", "epoll") == 9000
    lines = table.lines()
    assert lines[0].startswith("/plaintext  epoll        9,000 req/s (9,000, 12,000, 3,000)")
    assert "epoll ÷ bjoern 0.56" in lines[1]  # 9,000 ÷ 16,000, not a ratio of one round's
    assert "µs CPU/request" in lines[1]


def test_a_bad_argument_is_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        wrk_peers.main(["--rounds", "0"])
    assert exited.value.code == 2
    assert "--rounds 0" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_a_short_round_measures_every_installed_server(capsys):
    assert wrk_peers.main(["--rounds", "1", "--duration", "1", "--paths", "/plaintext"]) == 0
    out = capsys.readouterr().out
    assert "/plaintext  epoll" in out and "epoll ÷ granian" in out
