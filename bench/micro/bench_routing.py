"""routing: from an environ to (endpoint, arguments), in a map of 50 rules.

Each subject routes the way its request cycle does: build the request object, get a URL adapter
bound to it, match. The framework and Flask 3 use their own ``create_url_adapter``; the bare
reference binds a werkzeug ``Map`` to the environ. Four requests: a static rule, a converter rule
(``/user/<int:id>``), a miss (404) and a wrong method (405). The same 50 rules are registered
through each framework's own ``route`` decorator, so each one's Map configuration counts.
"""

from __future__ import annotations

import flask
import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

import framework
from bench.micro.harness import describe

GROUP = "routing"
COMPARE_TO = {"framework": ("werkzeug", "flask"), "flask": ("werkzeug",)}

#: (rule, endpoint, methods): 40 static pages, 9 converter rules and one POST-only form
RULES = [
    *((f"/section{number}/page", f"section{number}", ("GET",)) for number in range(40)),
    ("/user/<int:id>", "user", ("GET",)),
    ("/user/<int:id>/posts", "user_posts", ("GET",)),
    ("/post/<int:year>/<int:month>/<slug>", "post", ("GET",)),
    ("/tag/<name>", "tag", ("GET",)),
    ("/files/<path:name>", "files", ("GET",)),
    ("/item/<uuid:id>", "item", ("GET",)),
    ("/price/<float:amount>", "price", ("GET",)),
    ("/archive/<int:year>", "archive", ("GET",)),
    ("/search/<any(all, recent):scope>", "search", ("GET",)),
    ("/form", "form", ("POST",)),
]


def view(**arguments):
    return "routed"


def register(application) -> object:
    for rule, endpoint, methods in RULES:
        application.route(rule, endpoint=endpoint, methods=list(methods))(view)
    return application


framework_routes = register(framework.Flask("bench_micro_routing"))
flask_routes = register(flask.Flask("bench_micro_routing"))
werkzeug_map = Map(
    [Rule(rule, endpoint=endpoint, methods=methods) for rule, endpoint, methods in RULES]
)


def werkzeug_route(environ: dict):
    request = Request(environ)
    return werkzeug_map.bind_to_environ(request.environ).match()


def framework_route(environ: dict):
    return framework_routes.create_url_adapter(framework_routes.request_class(environ)).match()


def flask_route(environ: dict):
    return flask_routes.create_url_adapter(flask_routes.request_class(environ)).match()


ROUTERS = {"framework": framework_route, "werkzeug": werkzeug_route, "flask": flask_route}


def route_or_status(router, environ: dict):
    try:
        return router(environ)
    except HTTPException as error:
        return error.code


def run_match(benchmark, subject: str, path: str, method: str = "GET"):
    describe(benchmark, GROUP, COMPARE_TO)
    environ = EnvironBuilder(path=path, method=method).get_environ()
    return benchmark(route_or_status, ROUTERS[subject], environ)


@pytest.mark.parametrize("subject", list(ROUTERS))
def test_match_static(benchmark, subject):
    assert run_match(benchmark, subject, "/section25/page") == ("section25", {})


@pytest.mark.parametrize("subject", list(ROUTERS))
def test_match_converter(benchmark, subject):
    assert run_match(benchmark, subject, "/user/42") == ("user", {"id": 42})


@pytest.mark.parametrize("subject", list(ROUTERS))
def test_match_miss(benchmark, subject):
    assert run_match(benchmark, subject, "/nothing/here") == 404


@pytest.mark.parametrize("subject", list(ROUTERS))
def test_match_wrong_method(benchmark, subject):
    assert run_match(benchmark, subject, "/form", "GET") == 405
