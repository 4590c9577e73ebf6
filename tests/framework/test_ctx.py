"""framework.ctx: the context stack, the app/request contexts, the proxies and their isolation."""

import asyncio
import contextvars
import os
import threading

import pytest

from framework import Flask, Request, _request_ctx_stack, current_app, g, request, session
from framework.ctx import NO_APP_CONTEXT, NO_REQUEST_CONTEXT, ContextStack


@pytest.fixture
def app():
    app = Flask(__name__)
    app.secret_key = "test key"

    @app.route("/")
    def index():
        return "index"

    return app


# -- the stack -----------------------------------------------------------------------------------


def test_stack_is_last_in_first_out():
    stack = ContextStack("test")
    first, second = object(), object()
    assert stack.top is None
    stack.push(first)
    stack.push(second)
    assert stack.top is second
    assert stack.pop() is second
    assert stack.top is first
    assert stack.pop() is first
    assert stack.top is None


def test_popping_an_empty_stack_returns_none_and_keeps_it_empty():
    stack = ContextStack("test")
    assert stack.pop() is None
    assert stack.pop() is None
    stack.push("x")
    assert stack.top == "x"


def test_stack_can_hold_none_values_pushed_on_purpose():
    stack = ContextStack("test")
    stack.push(None)
    stack.push("above")
    assert stack.pop() == "above"
    assert stack.top is None
    assert stack.pop() is None


def test_a_copied_contextvars_context_pops_its_own_copy_of_the_stack():
    stack = ContextStack("test")
    stack.push("outer")
    stack.push("inner")
    copy = contextvars.copy_context()
    assert copy.run(stack.pop) == "inner"
    assert copy.run(lambda: stack.top) == "outer"
    assert stack.top == "inner"  # the original context still has it
    assert stack.pop() == "inner"
    assert stack.pop() == "outer"
    assert stack.top is None
    assert copy.run(stack.pop) == "outer"
    assert copy.run(stack.pop) is None


def test_a_copy_made_before_a_pop_still_pops_the_same_context():
    stack = ContextStack("test")
    stack.push("pushed")
    copy = contextvars.copy_context()
    assert stack.pop() == "pushed"
    assert copy.run(stack.pop) == "pushed"
    assert copy.run(lambda: stack.top) is None
    assert stack.top is None


# -- outside any context: clear errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("touch", "message"),
    [
        (lambda: request.path, "Working outside of request context"),
        (lambda: request.args, "Working outside of request context"),
        (lambda: session.get("x"), "Working outside of request context"),
        (lambda: "x" in session, "Working outside of request context"),
        (lambda: current_app.debug, "Working outside of application context"),
        (lambda: g.user, "Working outside of application context"),
        (lambda: setattr(g, "user", 1), "Working outside of application context"),
    ],
)
def test_proxies_outside_a_context_say_so_and_how_to_fix_it(touch, message):
    with pytest.raises(RuntimeError, match=message) as caught:
        touch()
    assert "test_request_context" in str(caught.value) or "app_context" in str(caught.value)


def test_messages_name_the_fix():
    assert "with app.test_request_context():" in NO_REQUEST_CONTEXT
    assert "with app.app_context():" in NO_APP_CONTEXT


def test_unbound_proxy_repr_does_not_raise():
    assert "request" in repr(request)


# -- inside contexts -----------------------------------------------------------------------------


def test_request_context_binds_request_session_g_and_app(app):
    with app.test_request_context("/?q=1", headers={"X-Test": "yes"}) as ctx:
        assert _request_ctx_stack.top is ctx
        assert request.args["q"] == "1"
        assert request.headers["X-Test"] == "yes"
        assert current_app._get_current_object() is app
        assert isinstance(request, Request)
        assert request._get_current_object() is ctx.request
        g.value = 42
        assert g.value == 42
        assert "value" in g
        assert g.get("missing", "default") == "default"
        assert g.pop("value") == 42
        assert "value" not in g
        assert not session
    assert _request_ctx_stack.top is None


def test_proxies_forward_item_access_and_operators(app):
    with app.test_request_context("/"):
        session["a"] = 1
        assert session["a"] == 1
        assert "a" in session
        assert len(session) == 1
        assert list(session) == ["a"]
        assert bool(session)
        assert session == {"a": 1}
        del session["a"]
        assert not session
        with pytest.raises(KeyError):
            session["a"]
        g.x = 1
        del g.x
        assert not hasattr(g, "x")


def test_app_context_gives_app_and_g_but_not_request(app):
    with app.app_context():
        assert current_app.secret_key == "test key"
        g.setting = "on"
        assert g.setting == "on"
        with pytest.raises(RuntimeError, match="Working outside of request context"):
            _ = request.path
        with pytest.raises(RuntimeError, match="Working outside of request context"):
            session.get("x")
    with pytest.raises(RuntimeError, match="application context"):
        _ = g.setting


def test_request_context_inside_an_app_context_shares_its_g(app):
    with app.app_context():
        g.db = "connection"
        with app.test_request_context("/"):
            assert g.db == "connection"
        assert g.db == "connection"


def test_a_request_context_inside_another_apps_app_context_gets_its_own_g(app):
    other = Flask("other")
    with other.app_context():
        g.db = "other's connection"
        with app.test_request_context("/"):
            assert not hasattr(g, "db")
            g.db = "app's connection"
        assert g.db == "other's connection"


def test_request_contexts_of_two_apps_nest_and_unwind(app):
    other = Flask("other")
    with app.test_request_context("/outer"):
        g.who = "outer"
        with other.test_request_context("/inner"):
            assert current_app._get_current_object() is other
            assert request.path == "/inner"
            assert not hasattr(g, "who")
        assert current_app._get_current_object() is app
        assert request.path == "/outer"
        assert g.who == "outer"


def test_popping_the_wrong_context_is_an_error(app):
    outer = app.test_request_context("/outer")
    inner = app.test_request_context("/inner")
    outer.push()
    inner.push()
    with pytest.raises(AssertionError, match="popped the wrong context"):
        outer.pop()
    _request_ctx_stack.pop()
    assert _request_ctx_stack.top is None


def test_the_session_is_not_opened_until_used(app):
    with app.test_request_context("/", headers={"Cookie": "session=garbage"}) as ctx:
        assert ctx.opened_session is None
        assert request.path == "/"
        assert ctx.opened_session is None
        assert session.get("user") is None
        assert ctx.opened_session is not None


def test_teardown_runs_and_the_context_is_popped_when_the_block_raises(app):
    seen = []
    app.teardown_request(seen.append)
    with pytest.raises(ZeroDivisionError), app.test_request_context("/"):
        raise ZeroDivisionError
    assert len(seen) == 1 and isinstance(seen[0], ZeroDivisionError)
    assert _request_ctx_stack.top is None


def test_the_context_is_popped_even_when_a_teardown_hook_raises(app):
    @app.teardown_request
    def broken(exc):
        raise OSError("teardown failed")

    with pytest.raises(OSError, match="teardown failed"), app.test_request_context("/"):
        pass
    assert _request_ctx_stack.top is None


# -- isolation ------------------------------------------------------------------------------------


def test_two_threads_inside_contexts_at_once_see_only_their_own(app):
    both_inside = threading.Barrier(2, timeout=10)
    both_checked = threading.Barrier(2, timeout=10)
    seen = {}

    def handle(name):
        with app.test_request_context(f"/{name}"):
            g.name = name
            both_inside.wait()  # both contexts are pushed now
            seen[name] = (request.path, g.name)
            both_checked.wait()
        seen[name + " after"] = _request_ctx_stack.top

    threads = [threading.Thread(target=handle, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"a": ("/a", "a"), "b": ("/b", "b"), "a after": None, "b after": None}


def test_concurrent_requests_through_the_app_are_isolated():
    app = Flask(__name__)
    both_in_view = threading.Barrier(2, timeout=10)

    @app.route("/who")
    def who():
        g.who = request.args["name"]
        both_in_view.wait()  # the other thread is inside its view now
        return f"{request.args['name']}:{g.who}"

    results = {}

    def call(name):
        results[name] = app.test_client().get(f"/who?name={name}").get_data(as_text=True)

    threads = [threading.Thread(target=call, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {"left": "left:left", "right": "right:right"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_sees_no_parent_context_and_its_own(app):
    with app.test_request_context("/parent"):
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code, never return into pytest
            code = 1
            try:
                if _request_ctx_stack.top is None:
                    try:
                        _ = request.path
                    except RuntimeError:
                        with app.test_request_context("/child"):
                            code = 0 if request.path == "/child" else 3
                    else:
                        code = 4
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert request.path == "/parent"


def test_requests_one_after_another_on_one_thread_leave_nothing_behind(app):
    @app.route("/remember")
    def remember():
        assert not hasattr(g, "previous"), "g leaked from the previous request"
        g.previous = request.args["n"]
        return request.args["n"]

    client = app.test_client()
    for n in range(3):
        assert client.get(f"/remember?n={n}").data == str(n).encode()
        assert _request_ctx_stack.top is None


def test_interleaved_requests_on_an_event_loop_are_isolated(app):
    async def handle(name):
        with app.test_request_context(f"/{name}"):
            g.name = name
            await asyncio.sleep(0)  # let the other task push its context
            await asyncio.sleep(0)
            return request.path, g.name

    async def main():
        return await asyncio.gather(handle("one"), handle("two"))

    assert asyncio.run(main()) == [("/one", "one"), ("/two", "two")]
    assert _request_ctx_stack.top is None
