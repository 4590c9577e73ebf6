"""Contexts: what "the current app" and "the current request" mean, and the proxies that find them.

One stack holds both kinds of context. It lives in a `ContextVar`, so every thread, every
forked child and every request run one after another on an event loop sees only what it pushed
itself. The four proxies (`current_app`, `request`, `session`, `g`) are wired at the bottom.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from framework.app import Flask
    from framework.sessions import SecureCookieSession

#: the stack's node when nothing is pushed: [top, token restoring the node below]
_EMPTY: tuple[Any, Any] = (None, None)

NO_APP_CONTEXT = (
    "Working outside of application context: `current_app`, `g` and `url_for` need an active "
    "application or request context. In a script or test, wrap the code in "
    "`with app.app_context():` (or `with app.test_request_context():`)."
)
NO_REQUEST_CONTEXT = (
    "Working outside of request context: `request` and `session` exist only while a request is "
    "handled. In a script or test, wrap the code in `with app.test_request_context():`."
)


class ContextStack:
    """A stack of contexts private to the current thread (precisely: contextvars context).

    The ContextVar holds the top node ``[context, token]``; the token, from the ``set`` that
    pushed the node, restores the node below. Push is one ``set``, pop one ``reset``, `top` one
    ``get``: nothing is copied (werkzeug's LocalStack copies a list on every push and pop) and pop
    makes no new token. push/pop are closures stored on the instance rather than methods: the hot
    path then skips binding a method and looking up the ContextVar's get/set on every call.
    """

    __slots__ = ("push", "pop", "node", "clear")

    def __init__(self, name: str) -> None:
        var = ContextVar(name, default=_EMPTY)
        current, replace, restore = var.get, var.set, var.reset

        def push(context: Any) -> None:
            node = [context, None]
            node[1] = replace(node)

        def pop() -> Any:
            """Remove and return the top context (None when the stack is empty)."""
            context, token = current()
            if token is not None:
                try:
                    restore(token)
                except (ValueError, RuntimeError):  # pushed in another contextvars.Context
                    below = token.old_value
                    replace(_EMPTY if below is Token.MISSING else below)
            return context

        def clear() -> None:
            replace(_EMPTY)

        #: push(context): put a context on top
        self.push = push
        #: pop(): remove and return the top context
        self.pop = pop
        #: node(): the current ``[top, token]`` node; the proxies call it directly
        self.node = current
        #: clear(): empty the stack
        self.clear = clear
        # a forked child starts with an empty stack: it must never answer with its parent's request
        os.register_at_fork(after_in_child=clear)

    @property
    def top(self) -> Any:
        return self.node()[0]


class _AppGlobals:
    """`g`: a plain namespace for whatever the app wants to keep for the length of a context."""

    def get(self, name: str, default: Any = None) -> Any:
        return self.__dict__.get(name, default)

    def pop(self, name: str, *default: Any) -> Any:
        return self.__dict__.pop(name, *default)

    def setdefault(self, name: str, default: Any = None) -> Any:
        return self.__dict__.setdefault(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def __repr__(self) -> str:
        return f"<framework.g of {self.__dict__!r}>"


class AppContext:
    """The application context: `current_app` and `g` work inside it, `request` does not.

    Use it for work outside a request (a script filling the database)::

        with app.app_context():
            init_db()
    """

    def __init__(self, app: Flask) -> None:
        #: the application this context belongs to
        self.app = app
        #: the `g` namespace of this context
        self.g = _AppGlobals()

    @property
    def request(self) -> Any:
        raise RuntimeError(NO_REQUEST_CONTEXT)

    @property
    def session(self) -> Any:
        raise RuntimeError(NO_REQUEST_CONTEXT)

    @property
    def url_adapter(self) -> Any:
        """Builds URLs as if for a request to http://localhost/ (there is no request to bind)."""
        return self.app.create_url_adapter(None)

    def push(self) -> None:
        _request_ctx_stack.push(self)

    def pop(self, exc: BaseException | None = None) -> None:
        popped = _request_ctx_stack.pop()
        if popped is not self:
            raise AssertionError(f"popped the wrong context: {popped!r} instead of {self!r}")

    def __enter__(self) -> AppContext:
        self.push()
        return self

    def __exit__(self, exc_type: Any, exc_value: BaseException | None, tb: Any) -> None:
        self.pop(exc_value)


class RequestContext:
    """Everything about one request: the request object, its URL adapter, its session and `g`.

    `Flask.wsgi_app` pushes one per request; tests push one with `app.test_request_context()`.
    The session is opened only when something asks for it, so a route that never touches
    `session` never parses a cookie.
    """

    def __init__(self, app: Flask, environ: dict[str, Any]) -> None:
        #: the application handling the request
        self.app = app
        #: the `Request` built from the WSGI environ
        self.request = app.request_class(environ)
        #: the URL map bound to this request, once: it matches the URL and builds URLs
        self.url_adapter = app.create_url_adapter(self.request)
        #: the `g` namespace (shared with an enclosing app context of the same app)
        self.g = _AppGlobals()
        #: the session once something asked for it; None means nobody did and nothing is saved
        self.opened_session: SecureCookieSession | None = None
        #: the flashed messages read by get_flashed_messages in this request (None: not yet read)
        self.flashes: list[tuple[str, str]] | None = None

    @property
    def session(self) -> SecureCookieSession:
        if self.opened_session is None:
            self.opened_session = self.app.open_session(self.request)
        return self.opened_session

    def push(self) -> None:
        below = _request_ctx_stack.top
        if isinstance(below, AppContext) and below.app is self.app:
            self.g = below.g
        _request_ctx_stack.push(self)

    def pop(self, exc: BaseException | None = None) -> None:
        """Run the teardown hooks, then pop, even when a hook raises."""
        try:
            self.app.do_teardown_request(exc)
        finally:
            popped = _request_ctx_stack.pop()
            if popped is not self:
                raise AssertionError(f"popped the wrong context: {popped!r} instead of {self!r}")

    def __enter__(self) -> RequestContext:
        self.push()
        return self

    def __exit__(self, exc_type: Any, exc_value: BaseException | None, tb: Any) -> None:
        self.pop(exc_value)

    def __repr__(self) -> str:
        return f"<RequestContext {self.request.method} {self.request.url!r}>"


def context_proxy(find: Callable[[], Any], name: str) -> Any:
    """An object that forwards everything to ``find()``, the current context's object.

    A class per proxy keeps ``find`` in a closure: an attribute read is one call to
    ``__getattribute__`` then ``find()``, several times cheaper than werkzeug's LocalProxy.
    """

    class ContextProxy:
        __slots__ = ()

        def __getattribute__(self, attribute: str) -> Any:
            if attribute == "_get_current_object":
                return find
            return getattr(find(), attribute)

        def __setattr__(self, attribute: str, value: Any) -> None:
            setattr(find(), attribute, value)

        def __delattr__(self, attribute: str) -> None:
            delattr(find(), attribute)

        def __getitem__(self, key: Any) -> Any:
            return find()[key]

        def __setitem__(self, key: Any, value: Any) -> None:
            find()[key] = value

        def __delitem__(self, key: Any) -> None:
            del find()[key]

        def __contains__(self, key: Any) -> bool:
            return key in find()

        def __iter__(self) -> Iterator[Any]:
            return iter(find())

        def __len__(self) -> int:
            return len(find())

        def __bool__(self) -> bool:
            return bool(find())

        def __eq__(self, other: object) -> bool:
            return find() == other

        def __ne__(self, other: object) -> bool:
            return find() != other

        def __hash__(self) -> int:
            return hash(find())

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return find()(*args, **kwargs)

        def __str__(self) -> str:
            return str(find())

        def __repr__(self) -> str:
            try:
                return repr(find())
            except RuntimeError:
                return f"<unbound proxy {name}>"

    ContextProxy.__qualname__ = ContextProxy.__name__ = f"{name}Proxy"
    return ContextProxy()


def _find_app() -> Flask:
    try:
        return _request_ctx_stack.node()[0].app
    except AttributeError:  # the empty stack's top is None
        raise RuntimeError(NO_APP_CONTEXT) from None


def _find_g() -> _AppGlobals:
    try:
        return _request_ctx_stack.node()[0].g
    except AttributeError:
        raise RuntimeError(NO_APP_CONTEXT) from None


def _find_request() -> Any:
    try:
        return _request_ctx_stack.node()[0].request
    except AttributeError:
        raise RuntimeError(NO_REQUEST_CONTEXT) from None


def _find_session() -> SecureCookieSession:
    top = _request_ctx_stack.node()[0]
    if top is None:  # no try/except here: opening the session must not hide its own errors
        raise RuntimeError(NO_REQUEST_CONTEXT)
    return top.session


# context locals: one stack (Flask 0.1's name for it), four proxies
_request_ctx_stack = ContextStack("framework.context")
current_app: Flask = context_proxy(_find_app, "current_app")
request: Any = context_proxy(_find_request, "request")
session: SecureCookieSession = context_proxy(_find_session, "session")
g: _AppGlobals = context_proxy(_find_g, "g")
