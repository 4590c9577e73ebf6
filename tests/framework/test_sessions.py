"""framework.sessions: the signed-cookie session, through the app and directly."""

from http.cookies import SimpleCookie

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from framework import Flask, Request, _request_ctx_stack, session
from framework.sessions import (
    NO_SECRET_KEY,
    NullSession,
    SecureCookieSession,
    cookie_serializer,
    open_session,
)


def make_app(secret_key="s3cret"):
    app = Flask(__name__)
    app.secret_key = secret_key

    @app.route("/set/<key>/<value>")
    def set_value(key, value):
        session[key] = value
        return "set"

    @app.route("/get/<key>")
    def get_value(key):
        return session.get(key, "<missing>")

    @app.route("/clear")
    def clear():
        session.clear()
        return "cleared"

    @app.route("/plain")
    def plain():
        return "plain"

    return app


def set_cookie_headers(response):
    return response.headers.getlist("Set-Cookie")


def session_cookie_of(response):
    (header,) = set_cookie_headers(response)
    cookie = SimpleCookie()
    cookie.load(header)
    return cookie["session"]


def request_with_cookie(value):
    return Request(EnvironBuilder("/", headers={"Cookie": f"session={value}"}).get_environ())


def test_a_value_survives_between_requests():
    client = make_app().test_client()
    assert client.get("/set/user/ada").data == b"set"
    assert client.get("/get/user").data == b"ada"


def test_the_cookie_is_signed_http_only_same_site_lax_path_root():
    response = make_app().test_client().get("/set/user/ada")
    morsel = session_cookie_of(response)
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert len(morsel.value.split(".")) == 3  # payload, timestamp, signature
    assert cookie_serializer("s3cret").loads(morsel.value) == {"user": "ada"}


def test_set_cookie_only_when_the_session_changed():
    client = make_app().test_client()
    assert set_cookie_headers(client.get("/set/user/ada"))
    assert set_cookie_headers(client.get("/get/user")) == []  # read only
    assert set_cookie_headers(client.get("/plain")) == []


def test_a_route_that_never_touches_the_session_never_opens_it():
    app = make_app()
    opened = []

    @app.after_request
    def record(response):
        opened.append(_request_ctx_stack.top.opened_session)
        return response

    app.test_client().get("/plain", headers={"Cookie": "session=not-even-base64!"})
    assert opened == [None]


@pytest.mark.parametrize("where", ["before_request", "after_request", "errorhandler"])
def test_a_session_first_touched_outside_the_view_is_still_saved(where):
    """The session opens on first use; a hook or an error handler may be that first use."""
    app = make_app()

    @app.before_request
    def before():
        if where == "before_request":
            session["seen_by"] = where

    @app.after_request
    def after(response):
        if where == "after_request":
            session["seen_by"] = where
        return response

    @app.errorhandler(404)
    def missing(error):
        if where == "errorhandler":
            session["seen_by"] = where
        return "missing", 404

    client = app.test_client()
    first = client.get("/plain" if where != "errorhandler" else "/nowhere")
    assert cookie_serializer("s3cret").loads(session_cookie_of(first).value) == {"seen_by": where}
    assert client.get("/get/seen_by").data == where.encode()


def test_clearing_the_session_deletes_the_cookie():
    client = make_app().test_client()
    client.get("/set/user/ada")
    response = client.get("/clear")
    morsel = session_cookie_of(response)
    assert morsel.value == ""
    assert morsel["max-age"] == "0"
    assert client.get("/get/user").data == b"<missing>"


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "",
        "a.b.c",
        "eyJ1c2VyIjoiYWRtaW4ifQ",  # {"user":"admin"} without a signature
        "eyJ1c2VyIjoiYWRtaW4ifQ.ZZZZZZ.invalidsignature",
        "%00%ff",
        "....",
        "x" * 5000,
    ],
)
def test_garbage_cookies_give_an_empty_session_not_a_500(cookie):
    client = make_app().test_client()
    response = client.get("/get/user", headers={"Cookie": f"session={cookie}"})
    assert response.status_code == 200
    assert response.data == b"<missing>"


def test_a_tampered_cookie_gives_an_empty_session():
    good = cookie_serializer("s3cret").dumps({"user": "ada"})
    payload, timestamp, signature = good.split(".")
    forged_payload = cookie_serializer("s3cret").dumps({"user": "admin"}).split(".")[0]
    for tampered in (
        f"{forged_payload}.{timestamp}.{signature}",  # payload swapped
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # signature flipped
        good[: len(good) // 2],  # truncated
    ):
        response = (
            make_app().test_client().get("/get/user", headers={"Cookie": f"session={tampered}"})
        )
        assert (response.status_code, response.data) == (200, b"<missing>")


def test_a_cookie_signed_with_another_key_gives_an_empty_session():
    foreign = cookie_serializer("another key").dumps({"user": "admin"})
    response = make_app().test_client().get("/get/user", headers={"Cookie": f"session={foreign}"})
    assert response.data == b"<missing>"


def test_a_signed_non_dict_payload_gives_an_empty_session():
    signed_list = cookie_serializer("s3cret").dumps(["user", "admin"])
    assert dict(open_session("s3cret", "session", request_with_cookie(signed_list))) == {}


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=255), max_size=200))
def test_no_cookie_value_makes_opening_the_session_fail(value):
    opened = open_session("s3cret", "session", request_with_cookie(value))
    assert isinstance(opened, SecureCookieSession)
    assert dict(opened) == {}


def test_the_cookie_name_is_configurable():
    app = make_app()
    app.session_cookie_name = "sid"
    client = app.test_client()
    response = client.get("/set/user/ada")
    assert response.headers["Set-Cookie"].startswith("sid=")
    assert client.get("/get/user").data == b"ada"


# -- without a secret key --------------------------------------------------------------------------


def test_without_a_secret_key_reading_gives_an_empty_session():
    response = make_app(secret_key=None).test_client().get("/get/user")
    assert (response.status_code, response.data) == (200, b"<missing>")


def test_without_a_secret_key_writing_raises_a_runtime_error_naming_the_secret_key():
    app = make_app(secret_key=None)
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="secret key"):
        session["user"] = "ada"


def test_without_a_secret_key_a_write_in_a_view_is_a_500_and_the_app_keeps_serving():
    client = make_app(secret_key=None).test_client()
    assert client.get("/set/user/ada").status_code == 500
    assert client.get("/plain").data == b"plain"


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.__setitem__("k", 1),
        lambda s: s.__delitem__("k"),
        lambda s: s.clear(),
        lambda s: s.pop("k", None),
        lambda s: s.popitem(),
        lambda s: s.update(k=1),
        lambda s: s.setdefault("k", 1),
    ],
)
def test_every_write_to_the_null_session_raises(write):
    with pytest.raises(RuntimeError, match="secret key"):
        write(NullSession())
    assert "secret_key" in NO_SECRET_KEY


# -- the session dict ----------------------------------------------------------------------------


def test_modified_tracks_writes_not_reads():
    opened = SecureCookieSession({"a": 1})
    assert opened["a"] == 1 and opened.get("b") is None and not opened.modified
    opened.setdefault("a", 2)
    assert not opened.modified  # key existed: nothing changed
    opened["b"] = 2
    assert opened.modified
