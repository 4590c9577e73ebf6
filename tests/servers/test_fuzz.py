"""Differential fuzzing of the whole server, every model, over real sockets (see fuzzing.py).

Here it runs bounded and derandomized, so ``tox -e py`` is repeatable and takes seconds per model;
``tox -e fuzz -- --minutes N`` (fuzz_main.py) runs the same property for as long as asked and
writes each failing input to ``fuzz-failures/``, which :func:`test_recorded_input` replays.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.servers import fuzz_main
from tests.servers.fuzz_main import FAILURES_DIR, fuzz, fuzz_settings
from tests.servers.fuzz_reference import reference_parse
from tests.servers.fuzzing import (
    MODELS,
    Exchange,
    check_example,
    judge,
    running_server,
)

#: examples per model in the default run: a few seconds each on a 2-core machine
BOUNDED_EXAMPLES = 400


@pytest.fixture(scope="module", params=MODELS)
def server(request):
    with running_server(request.param) as server:
        yield server


def test_generated_and_mutated_requests(server):
    seen: list[bytes] = []
    fuzz(server, fuzz_settings(BOUNDED_EXAMPLES, derandomize=True, shrink=False), seen.append)
    assert len(seen) >= BOUNDED_EXAMPLES


def recorded_inputs() -> list:
    return [pytest.param(path, id=path.stem) for path in sorted(FAILURES_DIR.glob("*.bin"))]


@pytest.mark.parametrize("path", recorded_inputs())
def test_recorded_input(server, path: Path):
    check_example(server, path.read_bytes())


# -- tox -e fuzz ------------------------------------------------------------------------------


def test_fuzz_main_runs_until_the_time_is_up_and_says_how_much_it_sent(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(fuzz_main, "FAILURES_DIR", tmp_path)
    status = fuzz_main.main(["--minutes", "0.01", "--models", "threaded", "--batch", "20"])
    out = capsys.readouterr().out
    report = re.search(r"^ +threaded +(\d+) inputs sent, (\d+) failing saved$", out, re.M)
    assert report and int(report[1]) >= 1, out
    # what it saved is what it reported, and the exit status says whether anything failed
    saved = list(tmp_path.glob("threaded-*.bin"))
    assert int(report[2]) == len(saved)
    assert status == (1 if saved else 0)


def test_fuzz_main_names_a_bad_model(capsys):
    with pytest.raises(SystemExit) as exit_:
        fuzz_main.main(["--models", "threaded,nope"])
    assert exit_.value.code == 2
    assert (
        "unknown model 'nope'; choose from poll, threaded, fork, epoll" in capsys.readouterr().err
    )


# -- the judge itself: it must be able to fail --------------------------------------------------

GET = b"GET /a?b=1 HTTP/1.1\r\nHost: t\r\n\r\n"
ECHO_CALL = {
    "body": "",
    "headers": {"HTTP_HOST": "t"},
    "method": "GET",
    "path": "/a",
    "protocol": "HTTP/1.1",
    "query": "b=1",
    "target": "/a?b=1",
}
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbad\n"


def answer(call: dict) -> bytes:
    """What the echo app sends for ``call``."""
    echo = base64.b64encode(json.dumps(call, sort_keys=True).encode()).decode()
    return f"HTTP/1.1 200 OK\r\nX-Echo: {echo}\r\nContent-Length: 2\r\n\r\nok".encode()


OK = answer(ECHO_CALL)
FOO = {**ECHO_CALL, "method": "FOO", "target": "/", "path": "/", "query": ""}
ABSOLUTE = {**ECHO_CALL, "target": "http://h:1/a?b=1", "headers": {"HTTP_HOST": "h:1"}}
CLOSE = {**ECHO_CALL, "headers": {"HTTP_HOST": "t", "HTTP_CONNECTION": "close"}}


@pytest.mark.parametrize(
    "raw, data, calls",
    [
        (GET, OK, [ECHO_CALL]),
        # RFC 9110 section 9.1: any token is a method; llhttp refuses FOO
        (b"FOO / HTTP/1.1\r\nHost: t\r\n\r\n", answer(FOO), [FOO]),
        # RFC 9112 section 3.2.4: asterisk-form only with OPTIONS; llhttp takes it
        (b"GET * HTTP/1.1\r\nHost: t\r\n\r\n", BAD, []),
        # RFC 9112 section 3.2.2: the target's host replaces the Host field
        (b"GET http://h:1/a?b=1 HTTP/1.1\r\nHost: t\r\n\r\n", answer(ABSOLUTE), [ABSOLUTE]),
        # RFC 9112 section 2.2: a bare CR is invalid; llhttp skips one before a request
        (b"\r" + GET, BAD, []),
    ],
    ids=["same", "unknown-method", "asterisk", "absolute-form-host", "bare-cr"],
)
def test_judge_lets_pass(raw, data, calls):
    assert judge(raw, Exchange(data, "eof"), calls) == []


@pytest.mark.parametrize(
    "raw, data, calls, complaint",
    [
        (GET, OK, [], "app calls"),
        (GET, BAD, [], "where llhttp accepted"),
        (GET, b"", [], "got no answer"),
        (GET, OK + b"junk", [ECHO_CALL], "malformed status line"),
        (GET, OK, [ECHO_CALL], "no close"),
        (GET.replace(b"/a?b=1", b"/a?b=2"), OK, [ECHO_CALL], "target"),
        (GET + b"GET / HTTP/1.1\r\n", OK + OK, [ECHO_CALL] * 2, "did not find"),
        (b"GET / HTTP/1.1\r\nA: \x7f\r\n\r\n", OK, [ECHO_CALL], "llhttp failed"),
        (b"GET /a?b=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + GET,
         answer(CLOSE) + OK, [CLOSE, ECHO_CALL], "ends the"),
    ],
    ids=[
        "unlogged", "wrong-reject", "silent", "garbage", "timeout", "field", "boundary", "accept",
        "keep-alive",
    ],
)  # fmt: skip
def test_judge_finds(raw, data, calls, complaint):
    end = "timeout" if complaint == "no close" else "eof"
    problems = judge(raw, Exchange(data, end), calls)
    assert any(complaint in problem for problem in problems), problems


def test_reference_splits_a_pipeline_where_llhttp_does():
    raw = b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\r\nGET /x HTTP/1.1\r\n\r\n"
    reference = reference_parse(raw)
    assert [(m.method, m.target, m.body) for m in reference.messages] == [
        ("POST", b"/", b"hi"),
        ("GET", b"/x", b""),
    ]
    assert (reference.messages[1].skipped_from, reference.messages[1].start) == (40, 42)
    assert reference.end == "clean"
