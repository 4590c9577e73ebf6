"""bench.apps.microblog end to end: through the test client, and served over a socket."""

import re
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from bench.apps import microblog
from framework import _request_ctx_stack, g

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setattr(microblog, "DATABASE", str(tmp_path / "microblog.db"))
    microblog.init_db()
    return microblog.app.test_client()


def register(client, username, password="secret", password2=None):
    form = {"username": username, "password": password, "password2": password2 or password}
    return client.post("/register", data=form, follow_redirects=True)


def login(client, username, password="secret"):
    form = {"username": username, "password": password}
    return client.post("/login", data=form, follow_redirects=True)


def post(client, text):
    return client.post("/add_message", data={"text": text}, follow_redirects=True)


def test_the_empty_timeline(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"There are no messages yet." in response.data
    assert b'href="/register"' in response.data
    assert b'href="/static/style.css"' in response.data


def test_the_stylesheet_is_served(client):
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"


@pytest.mark.parametrize(
    ("username", "password", "password2", "error"),
    [
        ("", "secret", "secret", b"You have to enter a valid username"),
        ("has space", "secret", "secret", b"You have to enter a valid username"),
        ("login", "secret", "secret", b"You have to enter a valid username"),
        ("ada", "abc", "abc", b"Your password needs at least 4 characters"),
        ("ada", "secret", "different", b"The two passwords do not match"),
    ],
)
def test_registration_rejects_bad_input(client, username, password, password2, error):
    response = register(client, username, password, password2)
    assert response.status_code == 200
    assert error in response.data


def test_a_username_can_be_taken_only_once(client):
    assert b"successfully registered" in register(client, "ada").data
    assert b"The username is already taken" in register(client, "ada").data


def test_register_log_in_post_and_log_out(client):
    assert b"successfully registered" in register(client, "ada").data
    assert b"Invalid username or password" in login(client, "ada", "wrong").data
    assert b"Invalid username or password" in login(client, "nobody").data

    page = login(client, "ada")
    assert b"You were logged in" in page.data
    assert b'href="/logout"' in page.data

    page = post(client, "first <b>message</b>")
    assert b"Your message was recorded" in page.data
    assert b"first &lt;b&gt;message&lt;/b&gt;" in page.data
    assert b"Your message was recorded" not in client.get("/").data  # flashed once

    page = client.get("/logout", follow_redirects=True)
    assert b"You were logged out" in page.data
    assert b'href="/login"' in page.data
    assert b"first &lt;b&gt;message" in client.get("/").data  # the timeline is public


def test_empty_and_too_long_messages_are_refused(client):
    register(client, "ada")
    login(client, "ada")
    assert b"Your message was empty." in post(client, "   ").data
    assert b"at most 280 characters" in post(client, "x" * 281).data
    assert b"There are no messages yet." in client.get("/").data


def test_the_timeline_is_newest_first_and_user_pages_filter(client):
    for name in ("ada", "bob"):
        register(client, name)
        login(client, name)
        post(client, f"hello from {name}")
        client.get("/logout")
    timeline = client.get("/").data
    assert timeline.index(b"hello from bob") < timeline.index(b"hello from ada")
    ada_page = client.get("/ada").data
    assert b"hello from ada" in ada_page and b"hello from bob" not in ada_page


def test_unknown_users_are_404(client):
    response = client.get("/nobody")
    assert response.status_code == 404
    assert b"No such page or user." in response.data


def test_posting_logged_out_is_401(client):
    response = client.post("/add_message", data={"text": "hi"})
    assert response.status_code == 401
    assert b"Log in first." in response.data


def test_logged_in_users_are_sent_away_from_login_and_register(client):
    register(client, "ada")
    login(client, "ada")
    assert client.get("/login").headers["Location"] == "/"
    assert client.get("/register").headers["Location"] == "/"


def test_the_database_is_closed_after_every_request_even_a_failing_one(client):
    connections = []
    microblog.app.after_request_funcs.append(lambda r: connections.append(g.db) or r)
    try:
        client.get("/")
        client.get("/nobody")
    finally:
        microblog.app.after_request_funcs.pop()
    assert len(connections) == 2
    for connection in connections:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            connection.execute("select 1")
    assert _request_ctx_stack.top is None


def test_python_dash_m_serves_the_microblog_over_a_real_socket(tmp_path):
    database = tmp_path / "served.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.apps.microblog", "--port", "0"]
        + ["--database", str(database)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"Running on (http://127\.0\.0\.1:\d+/)", line)
        assert match, f"no address in {line!r}; stderr: {process.stderr.read()}"
        with urllib.request.urlopen(match.group(1), timeout=10) as response:
            assert response.status == 200
            assert b"There are no messages yet." in response.read()
        assert database.exists()  # created on first start
    finally:
        process.kill()
        process.wait(10)
        process.stdout.close()
        process.stderr.close()


def run_example(*args: str) -> subprocess.CompletedProcess:
    """``python -m bench.apps.microblog ARGS`` expected to exit before serving."""
    argv = [sys.executable, "-m", "bench.apps.microblog", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)


def assert_one_line_error(result: subprocess.CompletedProcess, returncode: int, *words: str):
    assert result.returncode == returncode, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("python -m bench.apps.microblog: error: ")
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    for word in words:
        assert word in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--server", "nope"], ["'nope'", "poll", "threaded", "fork", "epoll"]),
        (["--port", "99999"], ["'99999'", "0 to 65535"]),
        (["--host", "nope.invalid"], ["unknown host 'nope.invalid'"]),
    ],
)
def test_a_bad_argument_is_refused_in_one_line(tmp_path, args, words):
    result = run_example("--database", str(tmp_path / "unused.db"), *args)
    assert_one_line_error(result, 2, *words)
    assert not (tmp_path / "unused.db").exists()


def test_a_database_that_cannot_be_created_is_one_line(tmp_path):
    database = tmp_path / "missing-folder" / "microblog.db"
    result = run_example("--port", "0", "--database", str(database))
    assert_one_line_error(result, 1, repr(str(database)))


def test_a_port_in_use_is_one_line_and_a_runtime_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_example("--port", str(port), "--database", str(tmp_path / "microblog.db"))
    assert_one_line_error(result, 1, f"127.0.0.1:{port}", "Address already in use")


def test_help_shows_the_defaults():
    result = run_example("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines to the terminal's width
    for default in ("127.0.0.1", "5000", "threaded", microblog.DATABASE):
        assert f"default: {default}" in text
