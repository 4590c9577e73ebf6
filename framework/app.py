"""The application object and the helpers views call, in the order a request meets them.

Request and Response first, then the helpers (`url_for`, `flash`, `jsonify`, templates), then the
`Flask` class: setup → registration (`route`, `errorhandler`, hooks) → dispatch
(`preprocess_request`, `dispatch_request`, `make_response`, `process_response`) → `wsgi_app`.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import functools
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import http_date
from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.sansio.http import parse_cookie
from werkzeug.sansio.utils import get_host
from werkzeug.test import Client, EnvironBuilder
from werkzeug.utils import cached_property, get_content_type, send_from_directory
from werkzeug.utils import redirect as _werkzeug_redirect
from werkzeug.wrappers import Request as RequestBase
from werkzeug.wrappers import Response as ResponseBase

from framework import sessions
from framework.ctx import (
    NO_APP_CONTEXT,
    NO_REQUEST_CONTEXT,
    AppContext,
    RequestContext,
    _find_request,
    _request_ctx_stack,
    current_app,
    session,
)

ViewReturn = Any
WSGIEnviron = dict[str, Any]


class Request(RequestBase):
    """The request object: werkzeug's, plus what routing found for it."""

    #: the endpoint the URL matched (None until matched, or when nothing matched)
    endpoint: str | None = None
    #: the matched rule's arguments, passed to the view as keyword arguments
    view_args: dict[str, Any] | None = None
    #: the matched werkzeug Rule
    url_rule: Rule | None = None

    @cached_property
    def host(self) -> str:
        """werkzeug's `host`: the Host header (else the server's address), validated.

        Worked out once per distinct Host header, not once per request: a server sees few
        hosts, and werkzeug checks each with a regular expression. With `trusted_hosts` set,
        werkzeug's own check runs every time.
        """
        if self.trusted_hosts is not None:
            return super().host
        return _validated_host(self.scheme, self.environ.get("HTTP_HOST"), self.server)

    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        """werkzeug's `cookies`, parsed from the environ's Cookie field (``HTTP_COOKIE``).

        werkzeug finds that field by walking every header of the environ, each name rebuilt.
        """
        return parse_cookie(self.environ.get("HTTP_COOKIE", ""), cls=self.dict_storage_class)


# get_host is a pure function of these three; the bound keeps clients that send many different
# Host values from growing the cache
@functools.lru_cache(maxsize=256)
def _validated_host(scheme: str, host_header: str | None, server: tuple | None) -> str:
    return get_host(scheme, host_header, server)


#: response headers werkzeug rewrites on the way out (made absolute URLs)
_REWRITTEN_HEADERS = frozenset({"location", "content-location"})


class Response(ResponseBase):
    """The response object: werkzeug's, with an HTML mimetype by default."""

    default_mimetype = "text/html"

    def get_wsgi_response(self, environ: WSGIEnviron) -> tuple[Iterable[bytes], str, list]:
        """What werkzeug sends, without its generic steps when they would change nothing.

        werkzeug copies the headers to rewrite Location and Content-Location and to fill in
        Content-Length, and wraps the body in a generator that encodes it inside an iterator
        that closes the response. A body set whole (`set_data`: one bytes chunk, its length
        already in the headers) needs none of that when there is nothing to rewrite, nothing to
        close and the status and method send a body: its headers and body go out as they are.
        """
        if not self._sendable_as_is(environ):
            return super().get_wsgi_response(environ)
        return self.response, self.status, list(self.headers)

    def _sendable_as_is(self, environ: WSGIEnviron) -> bool:
        body, status = self.response, self.status_code
        if (
            type(body) is not list
            or len(body) != 1
            or type(body[0]) is not bytes
            or self._on_close
            or type(self).close is not ResponseBase.close  # a subclass wants to be closed
            or 100 <= status < 200
            or status in (204, 304)
            or environ["REQUEST_METHOD"] == "HEAD"
        ):
            return False
        if not isinstance(self.headers, Headers):  # replaced by a plain mapping: werkzeug copes
            return False
        has_length = False
        for key, _ in self.headers:
            key = key.lower()
            if key in _REWRITTEN_HEADERS:
                return False
            has_length = has_length or key == "content-length"
        return has_length


@functools.cache
def _default_content_type(response_class: type[ResponseBase]) -> str | None:
    """The Content-Type werkzeug gives `response_class` by default, worked out once per class."""
    mimetype = response_class.default_mimetype
    return None if mimetype is None else get_content_type(mimetype, "utf-8")


def redirect(location: str, code: int = 302) -> Response:
    """A response redirecting the client to `location`."""
    return _werkzeug_redirect(location, code, Response=Response)


def url_for(endpoint: str, **values: Any) -> str:
    """The URL of `endpoint` with `values` filled in; extra values become the query string.

    ``_external=True`` gives an absolute URL, ``_anchor`` appends ``#anchor``, ``_method`` picks
    the rule for that method::

        url_for("user_timeline", username="ada")   # -> "/ada"
    """
    context = _request_ctx_stack.top
    if context is None:
        raise RuntimeError(NO_APP_CONTEXT)
    anchor = values.pop("_anchor", None)
    method = values.pop("_method", None)
    external = values.pop("_external", False)
    url = context.url_adapter.build(endpoint, values, method=method, force_external=external)
    return url if anchor is None else f"{url}#{anchor}"


def flash(message: str, category: str = "message") -> None:
    """Keep `message` in the session until a later request reads it with get_flashed_messages."""
    session["_flashes"] = [*session.get("_flashes", ()), (category, message)]


def get_flashed_messages(
    with_categories: bool = False, category_filter: Iterable[str] = ()
) -> list[Any]:
    """Pull the flashed messages out of the session: each is returned once (then forgotten).

    Calls later in the same request see the same messages.
    """
    context = _request_ctx_stack.top
    if not isinstance(context, RequestContext):
        raise RuntimeError(NO_REQUEST_CONTEXT)
    if context.flashes is None:
        stored = session.pop("_flashes") if "_flashes" in session else []
        context.flashes = [(category, message) for category, message in stored]
    flashes = context.flashes
    if category_filter:
        flashes = [pair for pair in flashes if pair[0] in category_filter]
    return flashes if with_categories else [message for _, message in flashes]


def _json_default(value: Any) -> Any:
    """How JSON writes what the json module cannot: dates, UUIDs, decimals, dataclasses, Markup."""
    if isinstance(value, datetime.datetime | datetime.date):
        return http_date(value)
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "__html__"):
        return str(value.__html__())
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: the encoder of every JSON response, built once: json.dumps with options builds one per call
_json_encoder = json.JSONEncoder(separators=(",", ":"), default=_json_default)


def json_response(data: Any, status: int = 200) -> Response:
    """`data` as compact JSON: what jsonify and views returning a dict or list send."""
    return Response(
        _json_encoder.encode(data) + "\n",
        status=status,
        content_type="application/json",  # given whole: werkzeug then builds no content type
    )


def jsonify(*args: Any, **kwargs: Any) -> Response:
    """A JSON response: ``jsonify(a=1)`` and ``jsonify({"a": 1})`` give ``{"a":1}``."""
    if args and kwargs:
        raise TypeError("jsonify() takes either positional or keyword arguments, not both")
    if not args:
        return json_response(kwargs)
    return json_response(args[0] if len(args) == 1 else list(args))


def render_template(template_name: str, **context: Any) -> str:
    """Render `templates/<template_name>` with `context` plus the default and processor values."""
    app = current_app._get_current_object()
    app.update_template_context(context)
    return app.jinja_env.get_template(template_name).render(context)


def render_template_string(source: str, **context: Any) -> str:
    """Render a template given as a string (always autoescaped)."""
    app = current_app._get_current_object()
    app.update_template_context(context)
    return app.jinja_env.from_string(source).render(context)


def _default_template_context() -> dict[str, Any]:
    """What every template sees: `g`, and `request` and `session` inside a request.

    `session` is the proxy, not the session: a template that never reads it never opens it.
    """
    context = _request_ctx_stack.top
    if context is None:
        return {}
    if isinstance(context, RequestContext):
        return {"g": context.g, "request": context.request, "session": session}
    return {"g": context.g}


def _root_path_of(import_name: str) -> str:
    """The folder of the module or package `import_name`, else the working directory."""
    module_file = getattr(sys.modules.get(import_name), "__file__", None)
    return os.path.dirname(os.path.abspath(module_file)) if module_file else os.getcwd()


class Flask:
    """The WSGI application: a registry of views, hooks and error handlers, and the request loop.

    Create one in your main module::

        from framework import Flask
        app = Flask(__name__)

        @app.route("/")
        def index():
            return "Hello World!"
    """

    #: the class of `request`
    request_class = Request
    #: the class every view's return value is turned into
    response_class = Response
    #: URL prefix of the files in `<root>/static`; None disables the static route
    static_path: str | None = "/static"
    #: signs the session cookie; without it the session is read-only and empty
    secret_key: str | bytes | None = None
    #: name of the session cookie
    session_cookie_name = "session"

    def __init__(self, import_name: str) -> None:
        #: True: exceptions propagate out of the app instead of becoming a 500 page
        self.debug = False
        #: the name of the app's module or package (Flask 0.1 calls it package_name)
        self.import_name = self.package_name = import_name
        #: the folder the app's templates/, static/ and resources live in
        self.root_path = _root_path_of(import_name)
        #: endpoint name -> view function
        self.view_functions: dict[str, Callable[..., ViewReturn]] = {}
        #: HTTP status code -> handler called with the exception; its return value is the response
        self.error_handlers: dict[int, Callable[[BaseException], ViewReturn]] = {}
        #: called before each view; the first to return something answers instead of the view
        self.before_request_funcs: list[Callable[[], ViewReturn]] = []
        #: called with the response after each view; each returns the response to send
        self.after_request_funcs: list[Callable[[Response], Response]] = []
        #: called with the escaping exception (or None) when the request context ends, always
        self.teardown_request_funcs: list[Callable[[BaseException | None], None]] = []
        #: called before rendering a template; each returns a dict added to the template context
        self.template_context_processors: list[Callable[[], dict[str, Any]]] = [
            _default_template_context
        ]
        #: the werkzeug routing Map all rules are added to
        self.url_map = Map()
        #: where unhandled exceptions are logged (the client only ever sees a generic 500 page)
        self.logger = logging.getLogger(import_name)
        if self.static_path is not None:
            static_rule = self.static_path.rstrip("/") + "/<path:filename>"
            self.add_url_rule(static_rule, "static", self.send_static_file)

    @cached_property
    def jinja_env(self) -> Environment:
        """The jinja2 environment: templates from `<root>/templates`, autoescaped for HTML/XML."""
        env = Environment(
            loader=FileSystemLoader(os.path.join(self.root_path, "templates")),
            autoescape=select_autoescape(("html", "htm", "xml"), default_for_string=True),
        )
        env.globals.update(url_for=url_for, get_flashed_messages=get_flashed_messages)
        env.policies["json.dumps_kwargs"] = {"default": _json_default}
        return env

    def update_template_context(self, context: dict[str, Any]) -> None:
        """Add the context processors' values to `context`; values passed explicitly win."""
        explicit = dict(context)
        for processor in self.template_context_processors:
            context.update(processor())
        context.update(explicit)

    # -- registration --------------------------------------------------------------------------

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Callable[..., ViewReturn] | None = None,
        **options: Any,
    ) -> None:
        """Connect a URL rule to an endpoint (by default the view function's name).

        ``methods`` defaults to ``("GET",)``. HEAD comes with GET, and OPTIONS is answered
        automatically unless the rule lists it; both are decided here, once, not per request.
        """
        if endpoint is None:
            if view_func is None:
                raise TypeError("add_url_rule() needs an endpoint or a view_func")
            endpoint = view_func.__name__
        methods = options.pop("methods", None) or ("GET",)
        if isinstance(methods, str):
            raise TypeError(f"methods must be a list of method names, not the string {methods!r}")
        methods = {method.upper() for method in methods}
        url_rule = Rule(rule, endpoint=endpoint, methods=methods | {"OPTIONS"}, **options)
        url_rule.provide_automatic_options = "OPTIONS" not in methods
        self.url_map.add(url_rule)
        if view_func is not None:
            existing = self.view_functions.get(endpoint)
            if existing is not None and existing is not view_func:
                raise AssertionError(f"endpoint {endpoint!r} is already bound to another view")
            self.view_functions[endpoint] = view_func

    def route(self, rule: str, **options: Any) -> Callable[[Callable], Callable]:
        """Register the decorated function as the view for `rule`::

        @app.route("/post/<int:post_id>", methods=["GET", "POST"])
        def show_post(post_id): ...
        """

        def decorator(view_func: Callable) -> Callable:
            self.add_url_rule(rule, options.pop("endpoint", None), view_func, **options)
            return view_func

        return decorator

    def errorhandler(self, code: int) -> Callable[[Callable], Callable]:
        """Register the decorated function as the handler for errors with status `code`."""

        def decorator(handler: Callable) -> Callable:
            self.error_handlers[code] = handler
            return handler

        return decorator

    def before_request(self, func: Callable[[], ViewReturn]) -> Callable[[], ViewReturn]:
        self.before_request_funcs.append(func)
        return func

    def after_request(self, func: Callable[[Response], Response]) -> Callable:
        self.after_request_funcs.append(func)
        return func

    def teardown_request(self, func: Callable[[BaseException | None], None]) -> Callable:
        self.teardown_request_funcs.append(func)
        return func

    def context_processor(self, func: Callable[[], dict[str, Any]]) -> Callable:
        self.template_context_processors.append(func)
        return func

    def create_url_adapter(self, request: Request | None) -> MapAdapter:
        """The URL map bound to `request` (its host, script root, path and method), or to
        http://localhost/ when there is no request.

        Built from the request's own fields rather than with ``bind_to_environ``, which parses
        the environ a second time and checks for websocket upgrades this framework never uses.
        """
        if request is None:
            return self.url_map.bind("localhost")
        return MapAdapter(
            self.url_map,
            request.host.lower(),
            request.root_path,
            self.url_map.default_subdomain,
            request.scheme,
            request.path,
            request.method,
            request.environ.get("QUERY_STRING"),
        )

    # -- resources -----------------------------------------------------------------------------

    def send_static_file(self, filename: str) -> Response:
        """The static view: a file under `<root>/static`, with conditional GET; 404 if outside."""
        folder = os.path.join(self.root_path, "static")
        return send_from_directory(
            folder, filename, _request_ctx_stack.top.request.environ, response_class=Response
        )

    def open_resource(self, resource: str, mode: str = "rb") -> Any:
        """Open a file under the app's root folder: ``app.open_resource("schema.sql")``."""
        return open(os.path.join(self.root_path, resource), mode)

    def open_session(self, request: Request) -> sessions.SecureCookieSession:
        return sessions.open_session(self.secret_key, self.session_cookie_name, request)

    def save_session(self, session: sessions.SecureCookieSession, response: Response) -> None:
        sessions.save_session(self.secret_key, self.session_cookie_name, session, response)

    # -- dispatch ------------------------------------------------------------------------------

    def preprocess_request(self) -> ViewReturn:
        """Run the before_request hooks; the first one returning something answers the request."""
        for func in self.before_request_funcs:
            rv = func()
            if rv is not None:
                return rv
        return None

    def match_request(self) -> tuple[Rule, dict[str, Any]]:
        """Match the URL (raising NotFound/MethodNotAllowed/...) and record the result."""
        context = _request_ctx_stack.node()[0]
        rule, view_args = context.url_adapter.match(return_rule=True)
        request = context.request
        request.url_rule, request.endpoint, request.view_args = rule, rule.endpoint, view_args
        return rule, view_args

    def dispatch_request(self) -> ViewReturn:
        """Match the URL and call its view, as Flask 0.1 does: an exception comes back as what
        `handle_exception` makes of it (a 404 without a handler is the NotFound itself).
        The return value may be anything make_response takes::

            with app.test_request_context("/missing"):
                app.dispatch_request()   # -> <NotFound '404: Not Found'>
        """
        try:
            rule, view_args = self.match_request()
            if (
                rule.provide_automatic_options
                and _request_ctx_stack.node()[0].request.method == "OPTIONS"
            ):
                return self.make_default_options_response()
            return self.view_functions[rule.endpoint](**view_args)
        except Exception as error:
            return self.handle_exception(error)

    def make_default_options_response(self) -> Response:
        allowed = _request_ctx_stack.top.url_adapter.allowed_methods()
        return self.response_class(headers={"Allow": ", ".join(sorted(allowed))})

    def handle_exception(self, error: Exception) -> ViewReturn:
        """What the client gets for an exception: an HTTP error's handler (else the error itself);
        for anything else the 500 handler, else a generic 500 page that reveals nothing.
        In debug mode non-HTTP exceptions propagate instead."""
        request = _find_request()  # outside a request: the clear "working outside" error instead
        if isinstance(error, HTTPException):
            handler = self.error_handlers.get(error.code)
            return error if handler is None else handler(error)
        if self.debug:
            raise error
        self.logger.error("Exception on %s [%s]", request.path, request.method, exc_info=error)
        handler = self.error_handlers.get(500)
        return InternalServerError() if handler is None else handler(error)

    def make_response(self, rv: ViewReturn) -> Response:
        """Turn a view's return value into a `response_class` instance.

        Accepted: a Response; str (text/html, utf-8) or bytes; a dict or list (JSON);
        ``(body, status)``, ``(body, headers)`` or ``(body, status, headers)``; an HTTPException;
        any WSGI callable. Anything else raises TypeError naming the view and the type.
        """
        if isinstance(rv, self.response_class):
            return rv
        if isinstance(rv, (str, bytes)):
            return self.text_response(rv)
        if isinstance(rv, (dict, list)):
            return json_response(rv)
        if isinstance(rv, tuple):
            return self._make_response_from_tuple(rv)
        environ = _request_ctx_stack.top.request.environ
        if isinstance(rv, HTTPException):
            return self.response_class.force_type(rv.get_response(environ))
        if callable(rv):  # a werkzeug Response of another class, or any WSGI application
            return self.response_class.force_type(rv, environ)
        raise TypeError(
            f"The view function for {_current_endpoint()!r} did not return a valid response: "
            f"it returned {type(rv).__name__}. A view may return a Response, str, bytes, dict, "
            "list, a (body, status, headers) tuple or a WSGI callable."
        )

    def _make_response_from_tuple(self, rv: tuple) -> Response:
        if len(rv) == 3:
            body, status, headers = rv
        elif len(rv) == 2 and isinstance(rv[1], (Headers, dict, list, tuple)):
            (body, headers), status = rv, None
        elif len(rv) == 2:
            (body, status), headers = rv, None
        else:
            raise TypeError(
                f"The view function for {_current_endpoint()!r} returned a tuple of {len(rv)} "
                "items; it must be (body, status), (body, headers) or (body, status, headers)."
            )
        if isinstance(body, tuple):
            raise TypeError(f"The view function for {_current_endpoint()!r} nested a tuple body")
        if isinstance(body, (str, bytes)):
            return self.text_response(body, status, headers)
        response = self.make_response(body)
        if isinstance(status, str):
            response.status = status
        elif status is not None:
            response.status_code = status
        if headers:
            response.headers.update(headers)
        return response

    def text_response(
        self, body: str | bytes, status: int | str | None = None, headers: Any = None
    ) -> Response:
        """A `response_class` for a str or bytes body, built in one call (status and headers
        set through the constructor, not changed afterwards).

        Without headers of its own it gets the class's content type ready-made: werkzeug would
        otherwise look for a Content-Type header (a KeyError raised and caught) and build one.
        """
        if headers:  # copied: a Headers object passed to werkzeug would be used, and changed, as is
            return self.response_class(body, status, Headers(headers))
        content_type = _default_content_type(self.response_class)
        return self.response_class(body, status, content_type=content_type)

    def process_response(self, response: Response) -> Response:
        """Run the after_request hooks, then save the session if anything opened it."""
        for func in self.after_request_funcs:
            response = func(response)
        opened_session = _request_ctx_stack.node()[0].opened_session
        if opened_session is not None:
            self.save_session(opened_session, response)
        return response

    def do_teardown_request(self, exc: BaseException | None = None) -> None:
        """Run the teardown hooks (newest first), e.g. to close `g.db`; called on context pop."""
        for func in reversed(self.teardown_request_funcs):
            func(exc)

    def make_error_response(self, error: Exception) -> Response:
        """The response for an exception raised outside dispatch_request (by a hook, an error
        handler or make_response): handled like a view's, then through process_response.

        Should that fail too (a broken after_request hook fails again), the bare generic 500
        page: the server never sees an exception unless debug is on.
        """
        try:
            return self.process_response(self.make_response(self.handle_exception(error)))
        except Exception as second:
            if self.debug:
                raise
            self.logger.error("Exception while answering with an error page", exc_info=second)
            return self.response_class.force_type(InternalServerError().get_response())

    def wsgi_app(self, environ: WSGIEnviron, start_response: Callable) -> Iterable[bytes]:
        """The request loop. Wrap this (not the app) in middleware to keep the app object."""
        with self.request_context(environ):  # teardown hooks and pop on the way out, always
            try:
                rv = self.preprocess_request()
                if rv is None:
                    rv = self.dispatch_request()
                response = self.process_response(self.make_response(rv))
            except Exception as error:  # from a hook, an error handler or make_response
                response = self.make_error_response(error)
            return response(environ, start_response)

    def __call__(self, environ: WSGIEnviron, start_response: Callable) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

    # -- contexts, testing and serving ---------------------------------------------------------

    def request_context(self, environ: WSGIEnviron) -> RequestContext:
        """A request context for `environ`, to use in a ``with`` block."""
        return RequestContext(self, environ)

    def test_request_context(self, *args: Any, **kwargs: Any) -> RequestContext:
        """A request context for a made-up request; takes werkzeug's EnvironBuilder arguments::

        with app.test_request_context("/login", method="POST", data={"user": "ada"}):
            assert request.form["user"] == "ada"
        """
        builder = EnvironBuilder(*args, **kwargs)
        try:
            return self.request_context(builder.get_environ())
        finally:
            builder.close()

    def app_context(self) -> AppContext:
        return AppContext(self)

    def test_client(self) -> Client:
        """werkzeug's test client on this app, keeping cookies between requests."""
        return Client(self, self.response_class, use_cookies=True)

    def run(
        self, host: str = "127.0.0.1", port: int = 5000, server: str = "threaded", **options: Any
    ) -> None:
        """Serve the app with one of the concurrency models of `servers/` until interrupted.

        `server` is "poll", "threaded", "fork" or "epoll"; `options` go to servers.make_server.
        ``debug=True`` sets `debug`.
        """
        if "debug" in options:
            self.debug = bool(options.pop("debug"))
        from servers import make_server  # imported here: the framework itself never needs it

        httpd = make_server(self, model=server, host=host, port=port, **options)
        httpd.install_signal_handlers()  # SIGTERM/SIGINT: stop accepting, finish in-flight work
        bound_host, bound_port = httpd.server_address[:2]
        print(f" * Running on http://{bound_host}:{bound_port}/ ({server})", flush=True)
        httpd.serve_forever()


def _current_endpoint() -> str | None:
    context = _request_ctx_stack.top
    return context.request.endpoint if isinstance(context, RequestContext) else None
