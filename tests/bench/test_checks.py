"""The response checks of bench.checks, on answers shaped like Locust's catch_response.

A real Locust run that counts the checks' failures is in test_workload.py (a user's locustfile)
and test_scenarios.py (ours, which go through the same helper).
"""

from __future__ import annotations

import pytest

from bench.checks import check, fetch


class Answer:
    """What ``client.get(..., catch_response=True)`` yields: status, text, ``failure()``."""

    def __init__(self, status_code: int, text: str | None):
        self.status_code, self.text = status_code, text
        #: the failure messages the check recorded
        self.failures: list[str] = []

    def failure(self, message: str) -> None:
        self.failures.append(message)

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *_exc) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "text", "expected_status", "marker", "failures"),
    [
        (200, "Hello, World!", 200, "Hello", []),
        (200, "Hello, World!", 200, None, []),
        (201, "made", 201, "made", []),
        (500, "Hello, World!", 200, "Hello", ["status 500"]),
        (200, "Goodbye", 200, "Hello", ["body lacks 'Hello'"]),
        (200, None, 200, "Hello", ["body lacks 'Hello'"]),
        (302, "", 200, None, ["status 302"]),
    ],
)
def test_check_fails_a_wrong_status_or_a_missing_marker(
    status, text, expected_status, marker, failures
):
    answer = Answer(status, text)
    body = check(answer, expected_status, marker)
    assert answer.failures == failures
    assert body == (None if failures else text)


class Client:
    """Records the request it was asked for and answers with a prepared Answer."""

    def __init__(self, answer: Answer):
        self.answer, self.requests = answer, []

    def request(self, method: str, path: str, **kwargs) -> Answer:
        self.requests.append((method, path, kwargs))
        return self.answer


def test_fetch_sends_the_request_with_catch_response_and_checks_it():
    client = Client(Answer(200, "posted"))
    assert fetch(client, "/add", "posted", method="POST", data={"text": "hi"}) == "posted"
    assert client.requests == [("POST", "/add", {"catch_response": True, "data": {"text": "hi"}})]
    failing = Client(Answer(404, "no"))
    assert fetch(failing, "/missing", "posted") is None
    assert failing.answer.failures == ["status 404"]
