"""dispatch: the steps between "a request context exists" and "a response object exists".

Each step runs inside a pushed request context (as in a real request) and is timed alone:
``dispatch_request`` for the hello view (URL match + view call), ``make_response`` for a str, a
tuple and a dict, a session opened and saved (without and with an incoming cookie) and
``render_template`` of the 13-row fortunes page. The references do the same step the bare way
(werkzeug ``Map``/``Response``, itsdangerous, jinja2) and the Flask 3 way.
"""

from __future__ import annotations

import contextlib
import json

import flask
import pytest
from itsdangerous import BadData
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

import framework
from bench.apps.app import app
from bench.apps.fortunes import sorted_fortunes
from bench.micro.harness import describe
from bench.micro.references import flask_app, werkzeug_app

GROUP = "dispatch"
COMPARE_TO = {"framework": ("werkzeug", "flask"), "flask": ("werkzeug",)}
SUBJECTS = ["framework", "werkzeug", "flask"]
FORTUNE_ROWS = sorted_fortunes()


def request_context(subject: str, path: str = "/plaintext", cookie: str | None = None):
    """The request context a step runs in; the bare werkzeug reference has none."""
    headers = {"Cookie": cookie} if cookie else {}
    if subject == "framework":
        return app.test_request_context(path, headers=headers)
    if subject == "flask":
        return flask_app.test_request_context(path, headers=headers)
    return contextlib.nullcontext()


def environ_for(path: str, cookie: str | None = None) -> dict:
    return EnvironBuilder(path=path, headers={"Cookie": cookie} if cookie else {}).get_environ()


# -- dispatch_request: match the URL and call the view ---------------------------------------------


def flask_dispatch() -> flask.Response:
    # Flask 3 matches on push: match again here so it does what the others do
    flask.globals.request_ctx.match_request()
    return flask_app.dispatch_request()


def werkzeug_dispatch(adapter) -> Response:
    view, arguments = adapter.match()
    return view(None, **arguments)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_dispatch_hello(benchmark, subject):
    describe(benchmark, GROUP, COMPARE_TO)
    with request_context(subject):
        if subject == "framework":
            response = benchmark(app.dispatch_request)
        elif subject == "flask":
            response = benchmark(flask_dispatch)
        else:
            adapter = werkzeug_app.url_map.bind_to_environ(environ_for("/plaintext"))
            response = benchmark(werkzeug_dispatch, adapter)
    assert response.status_code == 200
    assert response.get_data() == b"Hello, World!"


# -- make_response: a view's return value into a response object -----------------------------------

RETURN_VALUES = {
    "str": "Hello, World!",
    "tuple": ("Created", 201),
    "dict": {"message": "Hello, World!"},
}


def werkzeug_make_response(rv) -> Response:
    """What a bare werkzeug app writes by hand for each kind of return value."""
    if isinstance(rv, dict):
        return Response(json.dumps(rv), mimetype="application/json")
    if isinstance(rv, tuple):
        return Response(rv[0], status=rv[1], mimetype="text/html")
    return Response(rv, mimetype="text/html")


MAKE_RESPONSE = {
    "framework": app.make_response,
    "werkzeug": werkzeug_make_response,
    "flask": flask_app.make_response,
}


def run_make_response(benchmark, subject: str, kind: str) -> Response:
    describe(benchmark, GROUP, COMPARE_TO)
    with request_context(subject):
        return benchmark(MAKE_RESPONSE[subject], RETURN_VALUES[kind])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_make_response_str(benchmark, subject):
    response = run_make_response(benchmark, subject, "str")
    assert (response.status_code, response.get_data()) == (200, b"Hello, World!")
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("subject", SUBJECTS)
def test_make_response_tuple(benchmark, subject):
    response = run_make_response(benchmark, subject, "tuple")
    assert (response.status_code, response.get_data()) == (201, b"Created")


@pytest.mark.parametrize("subject", SUBJECTS)
def test_make_response_dict(benchmark, subject):
    response = run_make_response(benchmark, subject, "dict")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_data()) == {"message": "Hello, World!"}


# -- session: open the signed cookie, bump a counter, save it on a fresh response ----------------


def framework_session_round_trip() -> Response:
    session = app.open_session(framework.request)
    session["count"] = session.get("count", 0) + 1
    response = app.response_class("ok")
    app.save_session(session, response)
    return response


def flask_session_round_trip() -> flask.Response:
    interface = flask_app.session_interface
    session = interface.open_session(flask_app, flask.request)
    session["count"] = session.get("count", 0) + 1
    response = flask_app.response_class("ok")
    interface.save_session(flask_app, session, response)
    return response


def werkzeug_session_round_trip(request: Request) -> Response:
    signer = werkzeug_app.signer
    try:
        data = signer.loads(request.cookies.get("session", ""))
    except BadData:  # a missing or bad cookie starts a new session
        data = {}
    data["count"] = data.get("count", 0) + 1
    response = Response("ok")
    response.set_cookie("session", signer.dumps(data), httponly=True)
    return response


def session_cookie(subject: str) -> str:
    """A valid ``session=…`` cookie holding count=1, signed the way ``subject`` signs it."""
    with request_context(subject):
        if subject == "framework":
            response = framework_session_round_trip()
        elif subject == "flask":
            response = flask_session_round_trip()
        else:
            response = werkzeug_session_round_trip(Request(environ_for("/session")))
    return response.headers["Set-Cookie"].split(";", 1)[0]


def run_session(benchmark, subject: str, with_cookie: bool) -> int:
    describe(benchmark, GROUP, COMPARE_TO)
    cookie = session_cookie(subject) if with_cookie else None
    with request_context(subject, "/session", cookie):
        if subject == "framework":
            response = benchmark(framework_session_round_trip)
        elif subject == "flask":
            response = benchmark(flask_session_round_trip)
        else:
            request = Request(environ_for("/session", cookie))
            response = benchmark(werkzeug_session_round_trip, request)
    return count_in(subject, response.headers["Set-Cookie"].split(";", 1)[0])


def count_in(subject: str, cookie: str) -> int:
    """Read the counter back from a cookie the way ``subject`` reads it."""
    with request_context(subject, "/session", cookie):
        if subject == "framework":
            return app.open_session(framework.request)["count"]
        if subject == "flask":
            return flask_app.session_interface.open_session(flask_app, flask.request)["count"]
        return werkzeug_app.signer.loads(cookie.split("=", 1)[1])["count"]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_session_new(benchmark, subject):
    assert run_session(benchmark, subject, with_cookie=False) == 1


@pytest.mark.parametrize("subject", SUBJECTS)
def test_session_with_cookie(benchmark, subject):
    assert run_session(benchmark, subject, with_cookie=True) == 2


# -- render_template: the fortunes page ------------------------------------------------------------


def jinja2_render(rows) -> str:
    return werkzeug_app.jinja_env.get_template("fortunes.html").render(fortunes=rows)


RENDER = {
    "framework": lambda rows: framework.render_template("fortunes.html", fortunes=rows),
    "werkzeug": jinja2_render,
    "flask": lambda rows: flask.render_template("fortunes.html", fortunes=rows),
}


@pytest.mark.parametrize("subject", SUBJECTS)
def test_render_template(benchmark, subject):
    describe(benchmark, GROUP, COMPARE_TO)
    with request_context(subject, "/fortunes"):
        html = benchmark(RENDER[subject], FORTUNE_ROWS)
    assert html.count("<tr><td>") == len(FORTUNE_ROWS) == 13
    assert "&lt;script&gt;" in html and "<script>" not in html
