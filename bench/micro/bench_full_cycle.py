"""full-cycle: ``app(environ, start_response)`` with the body consumed, per route and per app.

Environs are built once with werkzeug's EnvironBuilder and copied per call, as a server would hand
over a fresh one. The session cases send the cookie each app set on a first request, so every call
is a real read-modify-write of a signed cookie.
"""

from __future__ import annotations

import json

import pytest
from werkzeug.test import EnvironBuilder

from bench.apps.app import app
from bench.apps.rawapp import app as raw_app
from bench.micro.harness import call_wsgi, describe
from bench.micro.references import flask_app, werkzeug_app

GROUP = "full-cycle"
APPS = {"framework": app, "werkzeug": werkzeug_app, "flask": flask_app, "raw": raw_app}
#: every subject is compared with bare werkzeug first; the framework also with Flask and raw WSGI
COMPARE_TO = {
    "framework": ("werkzeug", "flask", "raw"),
    "flask": ("werkzeug",),
    "raw": ("werkzeug",),
}


def environ_for(path: str, cookie: str | None = None) -> dict:
    headers = {"Cookie": cookie} if cookie else {}
    return EnvironBuilder(path=path, headers=headers).get_environ()


def session_cookie(wsgi_app) -> str:
    """The cookie ``wsgi_app`` sets on a first /session request, as ``session=<value>``."""
    _, headers, _ = call_wsgi(wsgi_app, environ_for("/session"))
    set_cookie = dict(headers)["Set-Cookie"]
    return set_cookie.split(";", 1)[0]


def run_case(benchmark, subject: str, environ: dict) -> tuple[str, dict, bytes]:
    describe(benchmark, GROUP, COMPARE_TO)
    status, headers, body = benchmark(call_wsgi, APPS[subject], environ)
    return status, dict(headers), body


@pytest.mark.parametrize("subject", ["framework", "werkzeug", "flask", "raw"])
def test_full_cycle_plaintext(benchmark, subject):
    status, headers, body = run_case(benchmark, subject, environ_for("/plaintext"))
    assert status == "200 OK"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == b"Hello, World!"


@pytest.mark.parametrize("subject", ["framework", "werkzeug", "flask", "raw"])
def test_full_cycle_json(benchmark, subject):
    status, headers, body = run_case(benchmark, subject, environ_for("/json"))
    assert status == "200 OK"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "Hello, World!"}


@pytest.mark.parametrize("subject", ["framework", "werkzeug", "flask"])
def test_full_cycle_fortunes(benchmark, subject):
    status, headers, body = run_case(benchmark, subject, environ_for("/fortunes"))
    assert status == "200 OK"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    html = body.decode()
    assert html.count("<tr><td>") == 13
    assert "Additional fortune added at request time." in html
    assert "&lt;script&gt;" in html and "<script>" not in html


@pytest.mark.parametrize("subject", ["framework", "werkzeug", "flask"])
def test_full_cycle_session(benchmark, subject):
    cookie = session_cookie(APPS[subject])
    status, headers, body = run_case(benchmark, subject, environ_for("/session", cookie))
    assert status == "200 OK"
    assert json.loads(body) == {"count": 2}
    assert headers["Set-Cookie"].startswith("session=")
