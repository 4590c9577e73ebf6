"""llhttp's own request tests, replayed over real sockets against every model.

``corpus/llhttp-requests.json`` holds each case's bytes and what we expect: the requests the app
sees (method, target, body), in order, and then either a 4xx/5xx (``reject``) or a close with no
further answer (``close``). Where we differ from llhttp, ``why`` says which RFC clause we follow.
corpus/README.md says where the cases come from and how they were extracted.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.servers.fuzzing import MODELS, exchange, parse_responses, running_server

CORPUS = Path(__file__).with_name("corpus") / "llhttp-requests.json"
CASES = json.loads(CORPUS.read_text())
#: cases where we deliberately answer otherwise than llhttp's strict mode: name → (what the app
#: sees and what follows, the reason); README "What the servers accept and reject" lists them
DELIBERATE = {
    "uri: Disallow UTF-8 in URI path in strict mode": (
        {
            "requests": [
                {
                    "method": "GET",
                    "target": "/\u00ce\u00b4\u00c2\u00b6/\u00ce\u00b4t/pope?q=1#narf",
                    "body": "",
                }
            ],
            "then": "close",
        },
        "bytes above 0x7f cannot move where the request line ends; served, in PATH_INFO as "
        "latin-1 (PEP 3333), as gunicorn does; RFC 9112 section 3 only says SHOULD 400",
    ),
}


def case_params() -> list:
    params = []
    for case in CASES:
        if case["name"] in DELIBERATE:
            case = {**case, "expect": DELIBERATE[case["name"]][0]}
        params.append(pytest.param(case, id=case["name"]))
    return params


@pytest.fixture(scope="module", params=MODELS)
def server(request):
    with running_server(request.param) as server:
        yield server


@pytest.mark.parametrize("case", case_params())
def test_case(server, case: dict):
    server.ensure_running()
    server.new_app_calls()
    result = exchange(server.address, case["raw"].encode("latin-1"))
    assert server.alive(), f"the server died:\n{server.stderr_tail()}"
    assert result.end != "timeout", f"no close; received {result.data!r}"
    responses = parse_responses(result.data)
    echoes = [r.echo() for r in responses if r.echo() is not None]
    assert echoes == server.new_app_calls(), "every app call answered, and nothing else"
    seen = [
        (e["method"], e["target"], base64.b64decode(e["body"]).decode("latin-1")) for e in echoes
    ]
    expected = case["expect"]["requests"]
    # A fragment may be dropped before the app sees the target (RFC 9112 section 3.2 has none).
    targets = [{r["target"], r["target"].partition("#")[0]} for r in expected]
    assert len(seen) == len(expected), f"app saw {seen}, expected {expected}"
    for (method, target, body), want, allowed in zip(seen, expected, targets, strict=True):
        assert (method, body) == (want["method"], want["body"]) and target in allowed, seen
    rest = [r.status for r in responses[len(echoes) :]]
    if case["expect"]["then"] == "reject":
        assert len(rest) == 1 and rest[0] >= 400, f"expected one 4xx/5xx after {seen}: {rest}"
    else:
        assert rest == [], f"expected a close without answer after {seen}: {rest}"


def md_test_input(block: str) -> bytes:
    """The bytes llhttp's test/md-test.ts sends for an ```http block (no ``${...}`` in ours)."""
    text = re.sub(r"\n\Z", "", block + "\n")  # the block's own last line break is not sent
    text = re.sub(r"\\(\r\n|\r|\n)", "", text)  # a backslash joins a line to the next
    text = re.sub(r"\r\n|\r|\n", "\r\n", text)
    for escape, char in (("\\r", "\r"), ("\\n", "\n"), ("\\t", "\t"), ("\\f", "\f")):
        text = text.replace(escape, char)
    text = re.sub(r"\\x([0-9a-fA-F]+)", lambda m: chr(int(m[1], 16)), text)
    text = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m[1], 8)), text)
    return text.encode("utf-8")  # as the JavaScript string reaches the parser


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case_bytes_follow_the_upstream_block(case: dict):
    assert md_test_input(case["http"]) == case["raw"].encode("latin-1")
