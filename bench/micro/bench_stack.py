"""stack: the context locals every request goes through.

push+top+pop of one context on the framework's ``_request_ctx_stack``, beside werkzeug's
``LocalStack``, a ``threading.local`` stack (the Flask 0.1 era design) and a bare ``ContextVar``
(the floor). Then an attribute read through a proxy (``request.method``, ``g.x``), beside
werkzeug's ``LocalProxy`` over a ``LocalStack`` and Flask 3's proxies.
"""

from __future__ import annotations

import contextvars
import threading
from types import SimpleNamespace

import flask
import pytest
from werkzeug.local import LocalStack
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

import framework
from bench.apps.app import app
from bench.micro.harness import describe
from bench.micro.references import flask_app

GROUP = "stack"
#: who is compared with whom (main reference first); werkzeug is the main reference
STACK_COMPARE_TO = {
    "framework": ("werkzeug", "contextvar"),
    "threading-local": ("werkzeug",),
    "contextvar": ("werkzeug",),
}
PROXY_COMPARE_TO = {"framework": ("werkzeug", "flask"), "flask": ("werkzeug",)}


class ThreadLocalStack:
    """A stack in a ``threading.local``: how context locals were built before ContextVar."""

    def __init__(self) -> None:
        #: per-thread storage holding this thread's list
        self._local = threading.local()

    def push(self, item: object) -> None:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            self._local.stack = stack = []
        stack.append(item)

    @property
    def top(self) -> object | None:
        stack = getattr(self._local, "stack", None)
        return stack[-1] if stack else None

    def pop(self) -> object | None:
        stack = getattr(self._local, "stack", None)
        return stack.pop() if stack else None


STACKS = {
    "framework": lambda: framework._request_ctx_stack,
    "werkzeug": LocalStack,
    "threading-local": ThreadLocalStack,
}


def push_top_pop(stack, context: object) -> object:
    stack.push(context)
    top = stack.top
    stack.pop()
    return top


def contextvar_set_get_reset(var: contextvars.ContextVar, context: object) -> object:
    """The floor: what any stack built on a ContextVar must at least do."""
    token = var.set(context)
    top = var.get()
    var.reset(token)
    return top


@pytest.mark.parametrize("subject", [*STACKS, "contextvar"])
def test_push_top_pop(benchmark, subject):
    describe(benchmark, GROUP, STACK_COMPARE_TO)
    context = SimpleNamespace(name="bench-context")
    if subject == "contextvar":
        var = contextvars.ContextVar("bench_micro_floor")
        assert benchmark(contextvar_set_get_reset, var, context) is context
        assert var.get(None) is None  # every set was reset
    else:
        stack = STACKS[subject]()
        assert benchmark(push_top_pop, stack, context) is context
        assert stack.top is None  # every push was popped


@pytest.fixture
def werkzeug_proxies():
    """``request`` and ``g`` proxies over a werkzeug LocalStack holding one context."""
    stack = LocalStack()
    request = Request(EnvironBuilder(path="/plaintext").get_environ())
    stack.push(SimpleNamespace(request=request, g=SimpleNamespace(x=1)))
    yield stack("request"), stack("g")
    stack.pop()


def read_method(proxy) -> str:
    return proxy.method


def read_x(proxy) -> object:
    return proxy.x


@pytest.mark.parametrize("subject", ["framework", "werkzeug", "flask"])
def test_proxy_request_method(benchmark, subject, werkzeug_proxies):
    describe(benchmark, GROUP, PROXY_COMPARE_TO)
    if subject == "werkzeug":
        assert benchmark(read_method, werkzeug_proxies[0]) == "GET"
        return
    owner, request = (
        (app, framework.request) if subject == "framework" else (flask_app, flask.request)
    )
    with owner.test_request_context("/plaintext", method="GET"):
        assert benchmark(read_method, request) == "GET"


@pytest.mark.parametrize("subject", ["framework", "werkzeug", "flask"])
def test_proxy_g_attribute(benchmark, subject, werkzeug_proxies):
    describe(benchmark, GROUP, PROXY_COMPARE_TO)
    if subject == "werkzeug":
        assert benchmark(read_x, werkzeug_proxies[1]) == 1
        return
    owner, g = (app, framework.g) if subject == "framework" else (flask_app, flask.g)
    with owner.test_request_context("/plaintext"):
        g.x = 1
        assert benchmark(read_x, g) == 1
