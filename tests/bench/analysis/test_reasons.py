"""The reasons: one sentence per model and per peer, chosen by where the server landed."""

from __future__ import annotations

import pytest

from bench.analysis import reasons
from bench.analysis.pairs import NATIVE_PEERS
from bench.serving.peers import PEER_SERVERS
from tests.bench.analysis.test_verdict import cell


@pytest.mark.parametrize(
    ("server", "scenario", "leads", "words"),
    [
        ("poll", "io", False, "every wait blocks every other connection"),
        ("epoll", "mixed", False, "stalls the loop"),
        ("threaded", "io", True, "a waiting thread does not hold up the others"),
        ("threaded", "io", False, "more CPU per request than the leader"),
        ("fork", "plaintext", False, "a fork and a process per connection"),
        ("fork", "plaintext", True, "one fork per user"),
        ("poll", "fortunes", False, "new connection"),
        ("poll", "fortunes", True, "little to overlap"),
        ("epoll", "cpu", True, "the work itself sets the limit"),
        ("tornado", "io", False, "WSGIContainer calls the app on the loop thread"),
        ("bjoern", "plaintext", True, "only the app itself runs in Python"),
        ("bjoern", "io", False, "stalls every connection"),
        ("granian", "plaintext", False, "hands every request to a Python thread"),
        # a peer is not described by its model's sentence: gunicorn-sync is prefork, not
        # a fork per connection, and closes every connection
        ("gunicorn-sync", "plaintext", False, "closes it after each response"),
        ("gunicorn-sync", "plaintext", True, "new connection, yet its gap to the leader"),
        ("werkzeug-forking", "plaintext", False, "forks a process for every request"),
        ("waitress", "io", False, "at most 4 waits"),
    ],
)
def test_every_row_says_why_in_one_sentence(server: str, scenario: str, leads: bool, words: str):
    assert words in reasons.reason(cell(server, 16, 100, scenario=scenario), leads)


def test_a_costly_peer_is_said_to_lead_only_when_it_ranks_first():
    record = cell("gunicorn-sync", 16, 100, scenario="plaintext")
    assert reasons.reason(record, leads=True, first=True).endswith("yet it led")
    tied = reasons.reason(record, leads=True, first=False)
    assert "led" not in tied and tied.endswith("its gap to the leader is not sure")


def test_every_peer_has_its_own_reasons():
    names = {spec.name for spec in PEER_SERVERS if spec.name != "null"}
    assert set(reasons.PEERS) == names and set(NATIVE_PEERS) <= names
    for server in names:
        computing, waiting = (reasons.reason(cell(server, 16, 100, scenario=scenario))
                              for scenario in ("plaintext", "io"))  # fmt: skip
        assert computing and waiting and computing != waiting
