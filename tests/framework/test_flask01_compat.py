"""A Flask 0.1 application runs on `framework` with only its import line changed.

flask01_app.py is that application. Each test runs it twice: as written (on `framework`) and with
the import line pointed at the real Flask 3 (installed), as a cross-check that the assertions
describe Flask's behaviour, not just ours. Flask 3 no longer exports `escape`, so its import line
takes that one from markupsafe, where Flask 0.1 got it.
"""

import sys
import uuid
from pathlib import Path

import pytest

APP_FILE = Path(__file__).with_name("flask01_app.py")
SOURCE = APP_FILE.read_text()
FRAMEWORK_IMPORT = "from framework import (\n"
FLASK_IMPORT = "from markupsafe import escape\nfrom flask import (\n"


def source_for(flavour):
    if flavour == "framework":
        return SOURCE
    assert SOURCE.count(FRAMEWORK_IMPORT) == 1
    head, rest = SOURCE.split(FRAMEWORK_IMPORT)
    names, tail = rest.split(")\n", 1)
    return head + FLASK_IMPORT + names.replace("    escape,\n", "") + ")\n" + tail


@pytest.fixture(params=["framework", "flask"])
def flaskr(request, tmp_path, monkeypatch):
    """A fresh copy of the app module on the given framework, with its own sqlite file."""
    flavour = request.param
    name = f"flask01_app_on_{flavour}_{uuid.uuid4().hex}"
    module = type(sys)(name)
    module.__file__ = str(APP_FILE)  # templates/ next to it, for both frameworks
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile(source_for(flavour), str(APP_FILE), "exec"), module.__dict__)
    module.DATABASE = str(tmp_path / "flaskr.db")
    return module


@pytest.fixture
def client(flaskr):
    return flaskr.app.test_client()


def login(client, username="admin", password="default"):
    return client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=True
    )


def test_only_the_import_line_differs():
    flask_source = source_for("flask")
    assert "from flask import (" in flask_source
    assert flask_source.split("app = Flask")[1] == SOURCE.split("app = Flask")[1]


def test_the_empty_index(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"No entries here so far" in response.data
    assert b'href="/login"' in response.data
    assert response.headers["X-Flask01"] == "yes"
    assert "Set-Cookie" not in response.headers


def test_login_errors_are_shown_and_set_no_cookie(client):
    for username, password, message in [
        ("nobody", "default", b"Invalid username"),
        ("admin", "wrong", b"Invalid password"),
    ]:
        response = client.post("/login", data={"username": username, "password": password})
        assert response.status_code == 200
        assert message in response.data
        assert "Set-Cookie" not in response.headers


def test_login_redirects_and_flashes_once(client):
    response = client.post("/login", data={"username": "admin", "password": "default"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "Set-Cookie" in response.headers
    page = client.get("/")
    assert b"You were logged in" in page.data
    assert b'href="/logout"' in page.data
    assert b"You were logged in" not in client.get("/").data


def test_posting_entries_escapes_them(client):
    login(client)
    response = client.post(
        "/add",
        data={"title": "<Hello>", "text": "<strong>HTML</strong> allowed here"},
        follow_redirects=True,
    )
    assert b"New entry was successfully posted" in response.data
    assert b"&lt;Hello&gt;" in response.data
    assert b"&lt;strong&gt;HTML&lt;/strong&gt; allowed here" in response.data
    assert b"<strong>HTML" not in response.data


def test_posting_logged_out_is_401(client):
    assert client.post("/add", data={"title": "x", "text": "y"}).status_code == 401


def test_logout(client):
    login(client)
    response = client.get("/logout", follow_redirects=True)
    assert b"You were logged out" in response.data
    assert b'href="/login"' in response.data
    assert client.post("/add", data={"title": "x", "text": "y"}).status_code == 401


def test_a_tampered_session_cookie_logs_nobody_in(client):
    client.get("/", headers={"Cookie": "session=eyJsb2dnZWRfaW4iOnRydWV9.forged.sig"})
    response = client.get("/", headers={"Cookie": "session=eyJsb2dnZWRfaW4iOnRydWV9.forged.sig"})
    assert response.status_code == 200
    assert b'href="/login"' in response.data


def test_route_values_args_and_template_strings(client):
    assert client.get("/hello/<b>?greeting=Hi").data == b"Hi, &lt;b&gt;!"
    assert client.get("/hello/ada").data == b"Hello, ada!"
    assert client.get("/escape?text=<script>").data == b"<p>&lt;script&gt;</p>"


def test_tuple_returns_and_the_404_handler(client):
    response = client.get("/status")
    assert (response.status_code, response.data) == (201, b"created")
    missing = client.get("/nope/deeper")
    assert (missing.status_code, missing.data) == (404, b"Nothing at /nope/deeper")


def test_methods_head_and_405(client):
    wrong = client.get("/add")
    assert wrong.status_code == 405
    assert {"POST", "OPTIONS"} <= set(wrong.headers["Allow"].split(", "))
    head = client.head("/")
    assert (head.status_code, head.data) == (200, b"")


def test_test_request_context(flaskr):
    with flaskr.app.test_request_context("/hello/x?greeting=Yo"):
        assert flaskr.request.args["greeting"] == "Yo"
        assert flaskr.request.path == "/hello/x"
        assert flaskr.url_for("hello", name="ada") == "/hello/ada"
        assert flaskr.url_for("show_entries") == "/"
        flaskr.g.value = 1
        assert flaskr.g.value == 1
        assert not flaskr.session.get("logged_in")
