"""The references the framework is measured beside, serving the same routes as bench.apps.app.

- ``werkzeug_app``: bare werkzeug ``Request``/``Response`` + a ``Map``; what is left when the
  framework's context locals, hooks and response conversion are taken away.
- ``flask_app``: Flask 3.x (installed by the ``bench`` extra) with the same views.
- the raw WSGI floor is ``bench.apps.rawapp.app``.

Every app reads the same sqlite rows, renders the same template file and signs the session cookie
with itsdangerous, so a ratio between them is the cost of the framework layer alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import flask
import jinja2
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from bench.apps.app import app
from bench.apps.fortunes import sorted_fortunes

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "apps" / "templates"
SECRET_KEY = app.secret_key
HELLO = "Hello, World!"


class BareWerkzeugApp:
    """Request → Map match → view → Response, with nothing in between."""

    def __init__(self) -> None:
        #: the same four routes as bench.apps.app's hot endpoints
        self.url_map = Map(
            [
                Rule("/plaintext", endpoint=self.plaintext),
                Rule("/json", endpoint=self.json_message),
                Rule("/fortunes", endpoint=self.fortunes),
                Rule("/session", endpoint=self.session_counter),
            ]
        )
        #: the template environment, autoescaping .html like the framework does
        self.jinja_env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=jinja2.select_autoescape()
        )
        #: signs the session cookie the way Flask's cookie sessions do
        self.signer = URLSafeTimedSerializer(SECRET_KEY, salt="cookie-session")

    def plaintext(self, request: Request) -> Response:
        return Response(HELLO, mimetype="text/plain")

    def json_message(self, request: Request) -> Response:
        return Response(json.dumps({"message": HELLO}), mimetype="application/json")

    def fortunes(self, request: Request) -> Response:
        html = self.jinja_env.get_template("fortunes.html").render(fortunes=sorted_fortunes())
        return Response(html, mimetype="text/html")

    def session_counter(self, request: Request) -> Response:
        try:
            data = self.signer.loads(request.cookies.get("session", ""))
        except BadData:
            data = {}
        data["count"] = data.get("count", 0) + 1
        response = Response(json.dumps({"count": data["count"]}), mimetype="application/json")
        response.set_cookie("session", self.signer.dumps(data), httponly=True)
        return response

    def __call__(self, environ: dict, start_response):
        request = Request(environ)
        try:
            view, arguments = self.url_map.bind_to_environ(environ).match()
            response = view(request, **arguments)
        except HTTPException as error:
            response = error.get_response(environ)
        return response(environ, start_response)


def build_flask_app() -> flask.Flask:
    """Flask 3 with bench.apps.app's hot views, written the way a Flask user would."""
    reference = flask.Flask("bench_micro_flask", template_folder=str(TEMPLATES_DIR))
    reference.secret_key = SECRET_KEY

    @reference.route("/plaintext")
    def plaintext():
        return flask.Response(HELLO, mimetype="text/plain")

    @reference.route("/json")
    def json_message():
        return flask.jsonify(message=HELLO)

    @reference.route("/fortunes")
    def fortunes():
        return flask.render_template("fortunes.html", fortunes=sorted_fortunes())

    @reference.route("/session")
    def session_counter():
        flask.session["count"] = flask.session.get("count", 0) + 1
        return flask.jsonify(count=flask.session["count"])

    return reference


werkzeug_app = BareWerkzeugApp()
flask_app = build_flask_app()
