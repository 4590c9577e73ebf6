"""framework.app: routing, dispatch, return shapes, errors, hooks, helpers, templates, static."""

import datetime
import json
import logging
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from werkzeug.datastructures import Headers
from werkzeug.exceptions import InternalServerError, MethodNotAllowed, NotFound, SecurityError
from werkzeug.routing import BuildError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from framework import (
    Flask,
    Markup,
    Request,
    Response,
    _request_ctx_stack,
    abort,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    render_template_string,
    request,
    session,
    url_for,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def app(tmp_path):
    """An app whose root folder holds templates/, static/ and a file outside static/."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("<p>{{ name }}</p>")
    (tmp_path / "templates" / "plain.txt").write_text("{{ name }}")
    (tmp_path / "templates" / "context.html").write_text(
        "{{ request.path }}|{{ session.get('user') }}|{{ g.who }}|{{ url_for('index') }}"
        "|{{ extra }}"
    )
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "hello.txt").write_text("static hello")
    (tmp_path / "static" / "sub").mkdir()
    (tmp_path / "static" / "sub" / "deep.css").write_text("body {}")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    app = Flask(__name__)
    app.root_path = str(tmp_path)
    app.secret_key = "test key"

    @app.route("/")
    def index():
        return "Hello World!"

    return app


@pytest.fixture
def client(app):
    return app.test_client()


# -- the app object -------------------------------------------------------------------------------


def test_root_path_is_the_importing_modules_folder():
    assert Flask(__name__).root_path == os.path.dirname(os.path.abspath(__file__))


def test_root_path_of_an_unknown_module_is_the_working_directory():
    assert Flask("no.such.module").root_path == os.getcwd()


def test_flask_01_defaults():
    app = Flask(__name__)
    assert app.debug is False
    assert app.secret_key is None
    assert app.session_cookie_name == "session"
    assert app.static_path == "/static"
    assert app.package_name == app.import_name == __name__
    assert set(app.view_functions) == {"static"}


def test_static_path_none_adds_no_static_route():
    class NoStatic(Flask):
        static_path = None

    assert "static" not in NoStatic(__name__).view_functions


def test_open_resource_reads_relative_to_the_root(app):
    with app.open_resource("secret.txt") as resource:
        assert resource.read() == b"TOP SECRET"


# -- routing and methods --------------------------------------------------------------------------


def test_a_hello_world_request(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.data == b"Hello World!"
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Length"] == "12"


def test_converters_pass_values_to_the_view(app, client):
    @app.route("/post/<int:post_id>/<name>")
    def show(post_id, name):
        return f"{post_id + 1}:{name}:{request.endpoint}:{request.view_args['post_id']}"

    assert client.get("/post/41/x").data == b"42:x:show:41"
    assert client.get("/post/notanint/x").status_code == 404


def test_unknown_path_is_404(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert b"Not Found" in response.data


def test_get_routes_answer_head_without_a_body(client):
    response = client.head("/")
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == "12"


def test_options_is_automatic_and_lists_the_allowed_methods(app, client):
    @app.route("/form", methods=["GET", "POST"])
    def form():
        return "form"

    response = client.options("/form")
    assert response.status_code == 200
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert response.data == b""


def test_a_rule_listing_options_gets_its_own_view(app, client):
    @app.route("/custom", methods=["OPTIONS"])
    def custom():
        return "mine"

    assert client.options("/custom").data == b"mine"


def test_a_wrong_method_is_405_with_allow(client):
    response = client.post("/")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_post_only_routes_refuse_get_and_head(app, client):
    @app.route("/submit", methods=["POST"])
    def submit():
        return request.form["text"]

    assert client.post("/submit", data={"text": "hi"}).data == b"hi"
    assert client.get("/submit").status_code == 405
    assert client.head("/submit").status_code == 405


def test_a_missing_form_field_is_400_not_500(app, client):
    @app.route("/submit", methods=["POST"])
    def submit():
        return request.form["text"]

    assert client.post("/submit", data={}).status_code == 400


def test_a_rule_with_a_trailing_slash_redirects_the_slashless_url(app, client):
    @app.route("/folder/")
    def folder():
        return "folder"

    response = client.get("/folder")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/folder/")


def test_methods_given_as_a_string_are_refused(app):
    with pytest.raises(TypeError, match="list of method names"):
        app.add_url_rule("/x", "x", lambda: "x", methods="POST")


def test_two_views_for_one_endpoint_are_refused(app):
    with pytest.raises(AssertionError, match="already bound"):
        app.add_url_rule("/other", "index", lambda: "other")


def test_an_endpoint_can_be_connected_later_the_flask_01_way(app, client):
    app.add_url_rule("/later", "later")
    app.view_functions["later"] = lambda: "connected"
    assert client.get("/later").data == b"connected"


def test_route_accepts_an_explicit_endpoint(app, client):
    @app.route("/named", endpoint="custom_name")
    def whatever():
        return url_for("custom_name")

    assert client.get("/named").data == b"/named"


def _environ(host=None, scheme="http", server=("localhost", "80")):
    environ = EnvironBuilder("/").get_environ()
    environ["wsgi.url_scheme"] = scheme
    environ.pop("HTTP_HOST", None)
    if host is not None:
        environ["HTTP_HOST"] = host
    environ["SERVER_NAME"], environ["SERVER_PORT"] = server
    return environ


@pytest.mark.parametrize(
    "environ",
    [
        _environ("example.com"),
        _environ("Example.COM:8080"),
        _environ("example.com:80"),
        _environ("example.com:443", scheme="https"),
        _environ("example.com:443"),
        _environ("[::1]:5000"),
        _environ("bad host"),
        _environ("example.com:99999"),
        _environ("évil.com"),
        _environ(""),
        _environ(None, server=("10.0.0.1", "8000")),
        _environ(None, server=("::1", "80")),
    ],
    ids=lambda environ: repr((environ.get("HTTP_HOST"), environ["SERVER_NAME"])),
)
def test_request_host_is_werkzeugs_every_time(environ):
    for _ in range(2):  # the second time comes from the remembered answer
        assert Request(dict(environ)).host == WerkzeugRequest(dict(environ)).host


@pytest.mark.parametrize(
    "cookie",
    [
        None,
        "",
        "session=abc.def; theme=dark",
        'a="quoted \\"value\\""; b=2; a=again',
        "caf\u00c3\u00a9=cr\u00c3\u00a8me",  # UTF-8 bytes as a WSGI server passes them (latin-1)
        "no-equals; =empty-name; x=1",
    ],
)
def test_request_cookies_are_werkzeugs(cookie):
    environ = _environ("example.com")
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    ours, werkzeugs = Request(environ).cookies, WerkzeugRequest(dict(environ)).cookies
    assert type(ours) is type(werkzeugs)
    assert list(ours.items(multi=True)) == list(werkzeugs.items(multi=True))


def test_trusted_hosts_are_still_checked_on_every_request(app):
    class TrustingRequest(Request):
        trusted_hosts = ["example.com"]

    assert TrustingRequest(_environ("example.com")).host == "example.com"
    for _ in range(2):
        with pytest.raises(SecurityError):
            TrustingRequest(_environ("evil.com")).host  # noqa: B018 (the property raises)


def test_redirects_and_external_urls_use_the_requests_host(app, client):
    @app.route("/folder/")
    def folder():
        return url_for("folder", _external=True)

    moved = client.get("/folder", base_url="https://Example.COM:8443/")
    assert moved.headers["Location"] == "https://example.com:8443/folder/"
    assert client.get("/folder/", base_url="http://other.org/").data == b"http://other.org/folder/"


# -- what a view may return -----------------------------------------------------------------------


def wsgi_hello(environ, start_response):
    start_response("202 Accepted", [("Content-Type", "text/plain")])
    return [b"from wsgi"]


@pytest.mark.parametrize(
    ("returned", "status", "body", "content_type", "header"),
    [
        (lambda: Response("resp", status=201), 201, b"resp", "text/html; charset=utf-8", None),
        (lambda: "h\u00e9llo", 200, "h\u00e9llo".encode(), "text/html; charset=utf-8", None),
        (lambda: b"\x00raw", 200, b"\x00raw", "text/html; charset=utf-8", None),
        (lambda: ("made", 201), 201, b"made", "text/html; charset=utf-8", None),
        (lambda: ("made", "299 Custom"), 299, b"made", "text/html; charset=utf-8", None),
        (lambda: ("hdr", {"X-A": "1"}), 200, b"hdr", "text/html; charset=utf-8", ("X-A", "1")),
        (lambda: ("hdr", [("X-A", "1")]), 200, b"hdr", "text/html; charset=utf-8", ("X-A", "1")),
        (lambda: ("all", 202, {"X-A": "1"}), 202, b"all", "text/html; charset=utf-8", ("X-A", "1")),
        (lambda: {"a": 1}, 200, b'{"a":1}\n', "application/json", None),
        (lambda: [1, "two"], 200, b'[1,"two"]\n', "application/json", None),
        (lambda: ({"e": "x"}, 400), 400, b'{"e":"x"}\n', "application/json", None),
        (lambda: wsgi_hello, 202, b"from wsgi", "text/plain", None),
        (lambda: WerkzeugResponse("plain", mimetype="text/plain"), 200, b"plain", None, None),
        (lambda: NotFound(), 404, None, None, None),
    ],
    ids=[
        "Response",
        "str",
        "bytes",
        "body-status",
        "body-status-string",
        "body-headers-dict",
        "body-headers-list",
        "body-status-headers",
        "dict",
        "list",
        "json-status",
        "wsgi-callable",
        "werkzeug-response",
        "http-exception",
    ],
)
def test_every_allowed_return_shape(app, client, returned, status, body, content_type, header):
    app.add_url_rule("/shape", "shape", returned)
    response = client.get("/shape")
    assert response.status_code == status
    if body is not None:
        assert response.data == body
    if content_type is not None:
        assert response.headers["Content-Type"] == content_type
    if header is not None:
        assert response.headers[header[0]] == header[1]


@pytest.mark.parametrize(
    ("returned", "named_type"),
    [
        (lambda: 42, "int"),
        (lambda: None, "NoneType"),
        (lambda: {1, 2}, "set"),
        (lambda: 4.5, "float"),
    ],
)
def test_an_unsupported_return_value_is_a_type_error_naming_view_and_type(
    app, returned, named_type
):
    app.add_url_rule("/bad", "bad_view", returned)
    app.debug = True
    with pytest.raises(TypeError, match=rf"'bad_view'.*returned {named_type}\b"):
        app.test_client().get("/bad")
    assert _request_ctx_stack.top is None


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (lambda: ("a", 200, {}, "extra"), "tuple of 4 items"),
        (lambda: ("alone",), "tuple of 1 items"),
        (lambda: (("nested", 200), 201), "nested a tuple"),
    ],
)
def test_malformed_tuples_are_type_errors(app, returned, message):
    app.add_url_rule("/bad", "bad_tuple", returned)
    app.debug = True
    with pytest.raises(TypeError, match=rf"'bad_tuple'.*{message}"):
        app.test_client().get("/bad")


def test_without_debug_a_bad_return_value_is_a_plain_500(app, client):
    app.add_url_rule("/bad", "bad_view", lambda: 42)
    response = client.get("/bad")
    assert response.status_code == 500
    assert b"bad_view" not in response.data and b"TypeError" not in response.data
    assert client.get("/").status_code == 200


def test_tuple_headers_may_set_the_content_type_and_repeat_a_header(app, client):
    app.add_url_rule("/typed", "typed", lambda: ("plain", {"Content-Type": "text/plain"}))
    app.add_url_rule("/twice", "twice", lambda: (b"two", 201, [("X-A", "1"), ("X-A", "2")]))
    typed = client.get("/typed")
    assert typed.headers.getlist("Content-Type") == ["text/plain"]
    twice = client.get("/twice")
    assert (twice.status_code, twice.data) == (201, b"two")
    assert twice.headers.getlist("X-A") == ["1", "2"]
    assert twice.headers["Content-Type"] == "text/html; charset=utf-8"


def test_a_headers_object_returned_by_views_is_not_changed(app, client):
    shared = Headers({"X-Shared": "yes"})
    app.add_url_rule("/a", "a", lambda: ("a", 200, shared))
    app.add_url_rule("/b", "b", lambda: ("bb", shared))
    assert client.get("/a").headers["X-Shared"] == "yes"
    assert client.get("/b").headers["Content-Length"] == "2"
    assert shared.to_wsgi_list() == [("X-Shared", "yes")]


def test_a_response_class_with_another_mimetype_is_honoured(app, client):
    class TextResponse(Response):
        default_mimetype = "text/plain"

    app.response_class = TextResponse
    app.add_url_rule("/t", "t", lambda: ("text", 202))
    assert client.get("/").headers["Content-Type"] == "text/plain; charset=utf-8"
    response = client.get("/t")
    assert (response.status_code, response.mimetype) == (202, "text/plain")


def test_make_response_works_inside_a_request_context(app):
    with app.test_request_context("/"):
        assert app.make_response("direct").data == b"direct"
        assert app.make_response(("x", 204)).status_code == 204


# -- what goes out: werkzeug's response, to the byte -----------------------------------------------


def _sent(response_class, make, method):
    """(status, headers, body) of a response made by ``make`` and sent through ``response_class``'s
    get_wsgi_response, the body read and closed as a server does."""
    environ = EnvironBuilder(
        "/page/ü", method=method, base_url="http://example.com/app/"
    ).get_environ()
    app_iter, status, headers = response_class.get_wsgi_response(make(), environ)
    try:
        body = b"".join(app_iter)
    finally:
        if hasattr(app_iter, "close"):
            app_iter.close()
    return status, headers, body


def _without_length(response):
    response.headers.remove("Content-Length")
    return response


def _with_headers_as_a_dict(response):
    response.headers = {"Content-Type": "text/plain", "Content-Length": str(len(response.data))}
    return response


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: Response("Hello, World!"),
        lambda: Response(b"bytes", mimetype="text/plain", headers={"X-Extra": "1"}),
        lambda: Response("caf\u00e9", status=201),
        lambda: Response("no body", status=204),
        lambda: Response("not modified", status=304, headers={"ETag": "x"}),
        lambda: Response("switching", status=101),
        lambda: Response("weird", status="0 WEIRD"),
        lambda: Response("moved", status=302, headers={"Location": "/elsewhere/\u00fc"}),
        lambda: Response("here", headers={"Content-Location": "/ici/\u00e9"}),
        lambda: Response("here", headers={"LOCATION": "x"}),
        lambda: Response(["two ", "chunks"]),
        lambda: Response([b"one chunk of bytes"], content_type="application/octet-stream"),
        lambda: Response(["one str chunk"], headers={"Content-Length": "13"}),
        lambda: Response(iter([b"streamed"])),
        lambda: Response(b"passed", direct_passthrough=True),
        lambda: _without_length(Response("length removed")),
        lambda: _with_headers_as_a_dict(Response("headers replaced")),
        lambda: Response(),
    ],
    ids=[
        "str",
        "bytes-extra-header",
        "201",
        "204",
        "304",
        "101",
        "status-without-code",
        "location",
        "content-location",
        "location-upper-case",
        "list-of-str",
        "list-of-bytes-without-length",
        "list-of-str-with-length",
        "iterator",
        "direct-passthrough",
        "length-removed",
        "headers-as-a-dict",
        "empty",
    ],
)
def test_responses_go_out_exactly_as_werkzeug_sends_them(make, method):
    assert _sent(Response, make, method) == _sent(WerkzeugResponse, make, method)


def test_a_response_is_still_closed_when_the_server_closes_its_body(app):
    closed = []

    class ClosingResponse(Response):
        def close(self):
            closed.append("subclass")
            super().close()

    @app.route("/hooked")
    def hooked():
        response = Response("hooked")
        response.call_on_close(lambda: closed.append("call_on_close"))
        return response

    @app.route("/subclass")
    def subclass():
        return ClosingResponse("subclass")

    for path, expected in [("/hooked", ["call_on_close"]), ("/subclass", ["subclass"])]:
        closed.clear()
        environ = EnvironBuilder(path).get_environ()
        body = app(environ, lambda status, headers: None)
        assert b"".join(body) == path[1:].encode() and closed == []
        body.close()
        assert closed == expected


# -- errors ---------------------------------------------------------------------------------------


def test_an_exception_is_a_generic_500_without_traceback_or_text(app, client, caplog):
    @app.route("/boom")
    def boom():
        raise ValueError("secret detail 1234")

    with caplog.at_level(logging.ERROR):
        response = client.get("/boom")
    assert response.status_code == 500
    assert b"Internal Server Error" in response.data
    for leak in (b"secret detail", b"1234", b"Traceback", b"ValueError", b"test_app.py"):
        assert leak not in response.data
    assert "secret detail 1234" in caplog.text  # the operator still learns what happened
    assert client.get("/").status_code == 200


def test_the_500_handler_gets_the_exception(app, client):
    @app.route("/boom")
    def boom():
        raise KeyError("which")

    @app.errorhandler(500)
    def internal_error(error):
        return f"handled {type(error).__name__}", 500

    response = client.get("/boom")
    assert (response.status_code, response.data) == (500, b"handled KeyError")


def test_debug_lets_the_exception_propagate_and_still_pops(app, client):
    @app.route("/boom")
    def boom():
        raise ValueError("in debug")

    app.debug = True
    with pytest.raises(ValueError, match="in debug"):
        client.get("/boom")
    assert _request_ctx_stack.top is None


def test_http_errors_use_their_handler(app, client):
    @app.errorhandler(404)
    def not_found(error):
        return f"custom 404 for {request.path}", 404

    response = client.get("/missing")
    assert (response.status_code, response.data) == (404, b"custom 404 for /missing")


def test_abort_in_a_view_and_without_a_handler(app, client):
    @app.route("/teapot")
    def teapot():
        abort(418)

    assert client.get("/teapot").status_code == 418


def test_abort_with_a_response(app, client):
    @app.route("/conflict")
    def conflict():
        abort(Response("taken", status=409))

    response = client.get("/conflict")
    assert (response.status_code, response.data) == (409, b"taken")


def test_abort_in_before_request_goes_to_the_handler(app, client):
    @app.before_request
    def guard():
        if request.path == "/":
            abort(403)

    @app.errorhandler(403)
    def forbidden(error):
        return "no entry", 403

    response = client.get("/")
    assert (response.status_code, response.data) == (403, b"no entry")


def test_an_exception_in_before_request_is_a_500(app, client):
    @app.before_request
    def broken():
        raise RuntimeError("hook broke")

    response = client.get("/")
    assert response.status_code == 500
    assert b"hook broke" not in response.data


def test_an_exception_in_before_request_goes_to_the_500_handler(app, client):
    @app.before_request
    def broken():
        raise RuntimeError("hook broke")

    @app.errorhandler(500)
    def internal_error(error):
        return f"handled {type(error).__name__}", 500

    response = client.get("/")
    assert (response.status_code, response.data) == (500, b"handled RuntimeError")


def test_an_exception_in_after_request_is_a_generic_500_and_the_app_keeps_serving(app, client):
    torn_down = []
    app.teardown_request(torn_down.append)

    @app.after_request
    def broken(response):
        if request.path == "/":
            raise ValueError("after hook secret")
        return response

    response = client.get("/")
    assert response.status_code == 500
    assert b"Internal Server Error" in response.data and b"secret" not in response.data
    assert client.get("/missing").status_code == 404
    assert torn_down == [None, None]  # handled: teardown is told nothing escaped


def test_an_exception_in_after_request_goes_to_the_500_handler_and_its_hooks(app, client):
    @app.after_request
    def fails_on_success(response):
        if response.status_code == 200:
            raise ValueError("after hook")
        response.headers["X-After"] = "ran"
        return response

    @app.errorhandler(500)
    def internal_error(error):
        return f"handled {error}", 500

    response = client.get("/")
    assert (response.status_code, response.data) == (500, b"handled after hook")
    assert response.headers["X-After"] == "ran"  # the error page went through the hooks too


def test_abort_in_after_request_goes_to_the_handler_for_its_code(app, client):
    @app.after_request
    def guard(response):
        if response.status_code == 200:
            abort(403)
        return response

    app.errorhandler(403)(lambda error: ("forbidden by hook", 403))
    response = client.get("/")
    assert (response.status_code, response.data) == (403, b"forbidden by hook")


def test_an_after_request_hook_failing_on_every_response_gives_the_bare_500(app, client, caplog):
    app.after_request(lambda response: 1 / 0)
    app.errorhandler(500)(lambda error: ("handled", 500))

    with caplog.at_level(logging.ERROR):
        response = client.get("/")
    assert response.status_code == 500
    assert b"Internal Server Error" in response.data and b"ZeroDivision" not in response.data
    assert "ZeroDivisionError" in caplog.text


@pytest.mark.parametrize("failing", [404, 500])
def test_an_error_handler_that_raises_gives_the_bare_500(app, client, failing):
    @app.route("/boom")
    def boom():
        raise ValueError("view")

    @app.errorhandler(failing)
    def broken_handler(error):
        raise KeyError("handler broke")

    path = "/missing" if failing == 404 else "/boom"
    response = client.get(path)
    assert response.status_code == 500
    assert b"handler broke" not in response.data
    assert client.get("/").data == b"Hello World!"


@pytest.mark.parametrize("hook", ["before_request", "after_request"])
def test_debug_lets_a_hook_exception_propagate_and_still_pops(app, client, hook):
    def broken(*response):
        raise ValueError(f"{hook} in debug")

    getattr(app, hook)(broken)
    app.debug = True
    with pytest.raises(ValueError, match=f"{hook} in debug"):
        client.get("/")
    assert _request_ctx_stack.top is None


def test_debug_still_answers_http_errors_from_hooks(app, client):
    app.before_request(lambda: abort(401))
    app.debug = True
    assert client.get("/").status_code == 401


# -- dispatch_request by hand, as in Flask 0.1 ---------------------------------------------------


def test_dispatch_request_returns_routing_errors_instead_of_raising(app):
    with app.test_request_context("/missing"):
        missing = app.dispatch_request()
    assert isinstance(missing, NotFound)
    with app.test_request_context("/", method="POST"):
        wrong_method = app.dispatch_request()
    assert isinstance(wrong_method, MethodNotAllowed)
    assert set(wrong_method.valid_methods) == {"GET", "HEAD", "OPTIONS"}


def test_dispatch_request_returns_the_registered_handlers_answer(app):
    @app.route("/boom")
    def boom():
        raise ValueError("view broke")

    app.errorhandler(404)(lambda error: ("custom 404", 404))
    app.errorhandler(405)(lambda error: f"no {request.method} here")
    app.errorhandler(500)(lambda error: ("handled " + str(error), 500))
    with app.test_request_context("/missing"):
        assert app.dispatch_request() == ("custom 404", 404)
    with app.test_request_context("/", method="DELETE"):
        assert app.dispatch_request() == "no DELETE here"
    with app.test_request_context("/boom"):
        assert app.dispatch_request() == ("handled view broke", 500)


def test_dispatch_request_returns_aborts_from_the_view(app):
    @app.route("/teapot")
    def teapot():
        abort(418)

    with app.test_request_context("/teapot"):
        teapot_error = app.dispatch_request()
        assert teapot_error.code == 418
        assert app.make_response(teapot_error).status_code == 418


def test_dispatch_request_turns_a_view_error_into_a_generic_500_unless_debug(app):
    @app.route("/boom")
    def boom():
        raise ValueError("secret detail")

    with app.test_request_context("/boom"):
        page = app.dispatch_request()
        assert isinstance(page, InternalServerError)
        assert b"secret detail" not in app.make_response(page).get_data()
    app.debug = True
    with app.test_request_context("/boom"), pytest.raises(ValueError, match="secret detail"):
        app.dispatch_request()


# -- hooks ----------------------------------------------------------------------------------------


def test_before_request_may_answer_instead_of_the_view(app, client):
    called = []
    app.view_functions["index"] = lambda: called.append("view") or "view"

    @app.before_request
    def early():
        return "early", 202

    response = client.get("/")
    assert (response.status_code, response.data, called) == (202, b"early", [])


def test_before_request_hooks_run_in_order_until_one_answers(app, client):
    calls = []
    app.before_request(lambda: calls.append(1))
    app.before_request(lambda: calls.append(2) or "stop")
    app.before_request(lambda: calls.append(3))
    assert client.get("/").data == b"stop"
    assert calls == [1, 2]


def test_after_request_hooks_get_and_replace_the_response_in_registration_order(app, client):
    @app.after_request
    def first(response):
        response.headers["X-Order"] = "first"
        return response

    @app.after_request
    def second(response):
        response.headers["X-Order"] += ",second"
        return Response(response.get_data() + b"!", headers=response.headers)

    response = client.get("/")
    assert response.headers["X-Order"] == "first,second"
    assert response.data == b"Hello World!!"


def test_after_request_runs_for_error_responses_too(app, client):
    app.after_request(lambda response: response.headers.set("X-Seen", "yes") or response)
    assert client.get("/missing").headers["X-Seen"] == "yes"


def test_teardown_runs_after_the_view_raised(app, client):
    torn_down = []
    app.teardown_request(torn_down.append)

    @app.route("/boom")
    def boom():
        raise ValueError("x")

    assert client.get("/boom").status_code == 500
    assert torn_down == [None]  # the exception was handled: it became the 500 page

    app.debug = True
    with pytest.raises(ValueError):
        client.get("/boom")
    assert isinstance(torn_down[-1], ValueError)  # in debug it escaped, and teardown saw it
    assert _request_ctx_stack.top is None


def test_teardown_hooks_run_newest_first_with_g_still_available(app, client):
    order = []

    @app.before_request
    def open_resource():
        g.resource = "open"

    app.teardown_request(lambda exc: order.append(("first", g.resource)))
    app.teardown_request(lambda exc: order.append(("second", g.resource)))
    client.get("/")
    assert order == [("second", "open"), ("first", "open")]


# -- helpers --------------------------------------------------------------------------------------


def test_url_for_builds_urls_with_values_query_anchor_and_external(app):
    @app.route("/user/<name>")
    def user(name):
        return name

    with app.test_request_context("/"):
        assert url_for("index") == "/"
        assert url_for("user", name="ada lovelace") == "/user/ada%20lovelace"
        assert url_for("user", name="ada", page=2) == "/user/ada?page=2"
        assert url_for("user", name="ada", _anchor="top") == "/user/ada#top"
        assert url_for("user", name="ada", _external=True) == "http://localhost/user/ada"
        assert url_for("static", filename="sub/deep.css") == "/static/sub/deep.css"
        with pytest.raises(BuildError):
            url_for("no_such_endpoint")


def test_url_for_respects_the_script_root(app):
    with app.test_request_context("/", base_url="http://example.com/mounted/"):
        assert url_for("index") == "/mounted/"
        assert url_for("index", _external=True) == "http://example.com/mounted/"


def test_url_for_in_an_app_context_and_outside_any(app):
    with app.app_context():
        assert url_for("index", _external=True) == "http://localhost/"
    with pytest.raises(RuntimeError, match="application context"):
        url_for("index")


def test_redirect(app, client):
    @app.route("/go")
    def go():
        return redirect(url_for("index"))

    response = client.get("/go")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert isinstance(redirect("/x", 301), Response)
    assert redirect("/x", 301).status_code == 301


def test_jsonify(app):
    with app.test_request_context("/"):
        assert json.loads(jsonify(a=1, b=[2]).data) == {"a": 1, "b": [2]}
        assert json.loads(jsonify({"a": 1}).data) == {"a": 1}
        assert json.loads(jsonify(1, 2).data) == [1, 2]
        assert jsonify(a=1).mimetype == "application/json"
        day = datetime.date(2024, 1, 2)
        assert json.loads(jsonify(day=day, html=Markup("<b>")).data) == {
            "day": "Tue, 02 Jan 2024 00:00:00 GMT",
            "html": "<b>",
        }
        with pytest.raises(TypeError, match="not both"):
            jsonify({"a": 1}, b=2)
        with pytest.raises(TypeError, match="not JSON serializable"):
            jsonify(value=object())


def test_request_json(app, client):
    @app.route("/echo", methods=["POST"])
    def echo():
        return {"got": request.json["x"]}

    assert client.post("/echo", json={"x": [1, 2]}).json == {"got": [1, 2]}
    broken = client.post("/echo", data="{not json", content_type="application/json")
    assert broken.status_code == 400


def test_flash_is_consumed_once(app, client):
    @app.route("/flash")
    def flash_it():
        flash("saved")
        flash("careful", "warning")
        return "ok"

    @app.route("/show")
    def show():
        first = get_flashed_messages(with_categories=True)
        again = get_flashed_messages()
        warnings = get_flashed_messages(category_filter=["warning"])
        return {"first": first, "again": again, "warnings": warnings}

    client.get("/flash")
    assert client.get("/show").json == {
        "first": [["message", "saved"], ["warning", "careful"]],
        "again": ["saved", "careful"],
        "warnings": ["careful"],
    }
    assert client.get("/show").json == {"first": [], "again": [], "warnings": []}


def test_flashed_messages_need_a_request_context(app):
    with app.app_context(), pytest.raises(RuntimeError, match="request context"):
        get_flashed_messages()


def test_flash_without_a_secret_key_raises(app):
    app.secret_key = None
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="secret key"):
        flash("nope")


# -- templates ------------------------------------------------------------------------------------


def test_html_templates_are_autoescaped(app):
    with app.test_request_context("/"):
        assert render_template("page.html", name="<script>") == "<p>&lt;script&gt;</p>"
        assert render_template("page.html", name=Markup("<b>ok</b>")) == "<p><b>ok</b></p>"


def test_non_html_templates_are_not_escaped(app):
    with app.test_request_context("/"):
        assert render_template("plain.txt", name="<raw>") == "<raw>"


def test_template_strings_are_autoescaped(app):
    with app.test_request_context("/"):
        assert render_template_string("{{ x }}", x="<i>") == "&lt;i&gt;"
        assert render_template_string("{{ x|safe }}", x="<i>") == "<i>"


def test_templates_see_request_session_g_url_for_and_processors(app, client):
    @app.context_processor
    def extra():
        return {"extra": "from processor"}

    @app.route("/ctx")
    def ctx():
        session["user"] = "ada"
        g.who = "<g>"
        return render_template("context.html")

    assert client.get("/ctx").data == b"/ctx|ada|&lt;g&gt;|/|from processor"


def test_rendering_a_template_opens_the_session_only_if_the_template_reads_it(app, client):
    @app.route("/login")
    def login():
        session["user"] = "ada"
        return "in"

    @app.route("/render/<name>")
    def render(name):
        html = render_template(name, name="x")
        return f"{html}|opened={_request_ctx_stack.top.opened_session is not None}"

    client.get("/login")
    assert client.get("/render/page.html").data == b"<p>x</p>|opened=False"
    expected = b"/render/context.html|ada||/||opened=True"
    assert client.get("/render/context.html").data == expected


def test_explicit_template_values_win_over_context_processors(app):
    app.context_processor(lambda: {"name": "processor"})
    with app.test_request_context("/"):
        assert render_template("page.html", name="explicit") == "<p>explicit</p>"
        assert render_template_string("{{ name }}") == "processor"


def test_templates_get_flashed_messages_and_render_in_an_app_context(app):
    with app.test_request_context("/"):
        flash("hi")
        source = "{% for m in get_flashed_messages() %}[{{ m }}]{% endfor %}"
        assert render_template_string(source) == "[hi]"
    with app.app_context():
        assert render_template_string("{{ g }}{{ 1 + 1 }}").endswith("2")


def test_templates_are_cached_and_need_a_context(app):
    assert app.jinja_env.get_template("page.html") is app.jinja_env.get_template("page.html")
    with pytest.raises(RuntimeError, match="application context"):
        render_template("page.html")


# -- static files ---------------------------------------------------------------------------------


def test_static_files_are_served(client):
    response = client.get("/static/hello.txt")
    assert response.status_code == 200
    assert response.data == b"static hello"
    assert response.mimetype == "text/plain"
    assert client.get("/static/sub/deep.css").data == b"body {}"
    assert client.head("/static/hello.txt").data == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.txt",
        "/static/sub",
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/sub/..%2f..%2fsecret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/%2Fetc%2Fpasswd",
        "/static//etc/passwd",
        "/static/..\\secret.txt",
    ],
)
def test_static_traversal_and_missing_files_never_leak(client, path):
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 404
    assert b"TOP SECRET" not in response.data and b"root:" not in response.data


def test_send_static_file_refuses_absolute_and_parent_paths(app):
    with app.test_request_context("/"):
        for filename in ("/etc/passwd", "../secret.txt", os.path.join(app.root_path, "secret.txt")):
            with pytest.raises(NotFound):
                app.send_static_file(filename)


def test_static_files_support_conditional_get(client):
    first = client.get("/static/hello.txt")
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    by_etag = client.get("/static/hello.txt", headers={"If-None-Match": etag})
    assert (by_etag.status_code, by_etag.data) == (304, b"")
    by_date = client.get("/static/hello.txt", headers={"If-Modified-Since": last_modified})
    assert by_date.status_code == 304
    stale = client.get("/static/hello.txt", headers={"If-None-Match": '"another"'})
    assert (stale.status_code, stale.data) == (200, b"static hello")


# -- contexts for tests ---------------------------------------------------------------------------


def test_test_request_context_takes_environ_builder_arguments(app):
    with app.test_request_context("/login?next=/x", method="POST", data={"user": "ada"}):
        assert request.method == "POST"
        assert request.form["user"] == "ada"
        assert request.args["next"] == "/x"
    assert _request_ctx_stack.top is None


def test_dispatch_request_can_be_driven_by_hand(app):
    with app.test_request_context("/"):
        assert app.preprocess_request() is None
        assert app.dispatch_request() == "Hello World!"
        assert request.endpoint == "index"


@pytest.mark.parametrize("debug", [False, True])
def test_dispatch_request_outside_a_request_says_so(app, debug):
    app.debug = debug
    with pytest.raises(RuntimeError, match="Working outside of request context"):
        app.dispatch_request()
    with app.app_context(), pytest.raises(RuntimeError, match="outside of request context"):
        app.dispatch_request()


# -- run ------------------------------------------------------------------------------------------

RUN_SCRIPT = """
import sys
from framework import Flask, request
app = Flask("served")

@app.route("/")
def index():
    return "served by " + request.environ.get("SERVER_PROTOCOL", "?")

app.run(host="127.0.0.1", port=0, server=sys.argv[1])
"""


@pytest.mark.parametrize("model", ["poll", "threaded", "fork", "epoll"])
def test_run_serves_the_app_with_each_model_and_stops_on_sigterm(model):
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT, model],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"Running on (http://127\.0\.0\.1:\d+/) \((\w+)\)", line)
        assert match, f"no address in {line!r}; stderr: {process.stderr.read()}"
        assert match.group(2) == model
        with urllib.request.urlopen(match.group(1), timeout=10) as response:
            assert response.status == 200
            assert response.read().startswith(b"served by HTTP/1.")
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.stdout.close()
        process.stderr.close()


def test_run_refuses_an_unknown_model_before_serving(app):
    with pytest.raises(ValueError, match="unknown model 'gevent'"):
        app.run(port=0, server="gevent")
