"""bench.apps.app: every endpoint's status, headers and body through the framework's test client."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.apps import fortunes as fortunes_module
from bench.apps.app import CPU_MODULUS, app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def client():
    return app.test_client()


def test_plaintext(client):
    response = client.get("/plaintext")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.data == b"Hello, World!"
    assert response.headers["Content-Length"] == "13"


def test_json(client):
    response = client.get("/json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.data) == {"message": "Hello, World!"}


def fortune_rows(html: str) -> list[tuple[str, str]]:
    rows = []
    for line in html.splitlines():
        if line.startswith("<tr><td>"):
            cells = line.removeprefix("<tr><td>").removesuffix("</td></tr>")
            identifier, message = cells.split("</td><td>")
            rows.append((identifier, message))
    return rows


def test_fortunes_lists_every_row_plus_the_added_one_sorted(client):
    response = client.get("/fortunes")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    rows = fortune_rows(response.data.decode("utf-8"))
    assert len(rows) == len(fortunes_module.FORTUNES) + 1
    assert ("0", "Additional fortune added at request time.") in rows
    assert ("12", "フレームワークのベンチマーク") in rows
    # sorted by the stored (unescaped) message
    assert [identifier for identifier, _ in rows] == [
        str(identifier) for identifier, _ in fortunes_module.sorted_fortunes()
    ]


def test_fortunes_escapes_markup(client):
    html = client.get("/fortunes").data.decode("utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(" in html
    assert "aren&#39;t broken" in html or "aren&#x27;t broken" in html


def test_session_counter_counts_across_requests(client):
    counts = [json.loads(client.get("/session").data)["count"] for _ in range(3)]
    assert counts == [1, 2, 3]
    assert app.test_client().get("/session").get_json()["count"] == 1  # a new client, a new count


def test_session_sets_a_signed_cookie(client):
    response = client.get("/session")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie


def test_session_with_a_forged_cookie_starts_over(client):
    client.set_cookie("session", "eyJjb3VudCI6OTl9.forged.signature")
    response = client.get("/session")
    assert response.status_code == 200
    assert response.get_json()["count"] == 1


@pytest.mark.parametrize("query, slept", [("", 20), ("?ms=0", 0), ("?ms=3", 3)])
def test_io_sleeps_the_asked_milliseconds(client, query, slept):
    response = client.get(f"/io{query}")
    assert response.status_code == 200
    assert response.data == f"slept {slept} ms".encode()


def expected_checksum(n: int) -> int:
    """Sum of i² for i < n, in closed form: checks /cpu did the whole loop."""
    return ((n - 1) * n * (2 * n - 1) // 6) % CPU_MODULUS


@pytest.mark.parametrize("query, n", [("", 25_000), ("?n=0", 0), ("?n=1", 1), ("?n=70000", 70_000)])
def test_cpu_returns_a_verifiable_checksum(client, query, n):
    response = client.get(f"/cpu{query}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == {"n": n, "checksum": expected_checksum(n)}


@pytest.mark.parametrize("query, size", [("", 64 * 1024), ("?kb=0", 0), ("?kb=1", 1024)])
def test_bytes_returns_a_sized_body(client, query, size):
    response = client.get(f"/bytes{query}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == str(size)
    assert response.data == b"x" * size


BAD_VALUES = [
    "",
    "-1",
    "+5",
    " 5",
    "5 ",
    "1.5",
    "1e3",
    "abc",
    "5_0",
    "٣",
    "0x10",
    "00000000000001",
    pytest.param("9" * 5000, id="5000-digits"),
]


@pytest.mark.parametrize(
    "endpoint, name, maximum",
    [
        ("/io", "ms", 5000),
        ("/cpu", "n", 2_000_000),
        ("/bytes", "kb", 10240),
    ],
)
@pytest.mark.parametrize("value", [*BAD_VALUES, "above-maximum"])
def test_bad_query_values_are_a_400(client, endpoint, name, maximum, value):
    if value == "above-maximum":
        value = str(maximum + 1)
    response = client.get(endpoint, query_string={name: value})
    assert response.status_code == 400
    assert name.encode() in response.data
    assert client.get("/plaintext").status_code == 200  # and the app keeps serving


def test_stream_has_no_content_length(client):
    response = client.get("/stream")
    assert response.status_code == 200
    assert "Content-Length" not in response.headers
    assert response.data == b"".join(f"chunk {n}\n".encode() for n in range(10))


def test_static_file(client):
    response = client.get("/static/hello.txt")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.data == (ROOT / "bench" / "apps" / "static" / "hello.txt").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.txt",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ],
)
def test_static_missing_or_outside_is_a_404(client, path):
    # the router may first redirect "//" to "/" (werkzeug's merge_slashes): follow it
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 404
    assert b"import" not in response.data and b"root:" not in response.data


@pytest.mark.parametrize(
    "value, expected",
    [(None, "0 []"), ("", "0 []"), ("0", "0 []"), ("50", "50 ['inject_delay']")],
)
def test_delay_hook_is_installed_only_when_the_env_var_is_set(tmp_path, value, expected):
    probe = (
        "from bench.apps.app import app, INJECT_DELAY_US\n"
        "print(INJECT_DELAY_US, [hook.__name__ for hook in app.before_request_funcs])\n"
        "print(app.test_client().get('/plaintext').status_code)\n"
    )
    env = {**os.environ, "BENCH_DB": str(tmp_path / "f.sqlite")}
    env.pop("BENCH_INJECT_DELAY_US", None)
    if value is not None:
        env["BENCH_INJECT_DELAY_US"] = value
    output = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert output == [expected, "200"]


def test_database_is_created_at_the_env_path(tmp_path):
    env = {**os.environ, "BENCH_DB": str(tmp_path / "sub" / "fortunes.sqlite")}
    subprocess.run([sys.executable, "-c", "import bench.apps.app"], env=env, cwd=ROOT, check=True)
    with sqlite3.connect(tmp_path / "sub" / "fortunes.sqlite") as connection:
        rows = connection.execute("SELECT id, message FROM fortune ORDER BY id").fetchall()
    assert rows == list(fortunes_module.FORTUNES)


def test_each_thread_gets_its_own_connection():
    connections = []
    thread = threading.Thread(target=lambda: connections.append(fortunes_module.connection()))
    thread.start()
    thread.join()
    assert connections[0] is not fortunes_module.connection()
    assert fortunes_module.connection() is fortunes_module.connection()


def test_a_forked_child_opens_its_own_connection():
    parent_connection = fortunes_module.connection()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report whether it got a fresh, working connection, then leave at once
        fresh = fortunes_module.connection() is not parent_connection
        works = len(fortunes_module.sorted_fortunes()) == len(fortunes_module.FORTUNES) + 1
        os.write(writer, b"ok" if fresh and works else b"no")
        os._exit(0)
    os.close(writer)
    answer = os.read(reader, 2)
    os.close(reader)
    os.waitpid(pid, 0)
    assert answer == b"ok"


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
@pytest.mark.parametrize("model", ["poll", "threaded", "fork", "epoll"])
def test_every_server_model_serves_the_app_unchanged(model, tmp_path):
    command = [
        sys.executable,
        "-m",
        "servers",
        "--model",
        model,
        "--port",
        "0",
        "bench.apps.app:app",
    ]
    env = {**os.environ, "BENCH_DB": str(tmp_path / "fortunes.sqlite")}
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        base = server.stdout.readline().split()[-1]
        assert fetch(f"{base}/plaintext") == (200, b"Hello, World!")
        for _ in range(2):  # twice: a fork child must open its own sqlite connection each time
            status, html = fetch(f"{base}/fortunes")
            assert status == 200 and html.count(b"<tr><td>") == 13
        status, body = fetch(f"{base}/cpu?n=10")
        assert (status, json.loads(body)) == (200, {"n": 10, "checksum": 285})
        assert fetch(f"{base}/io?ms=-1")[0] == 400
        assert fetch(f"{base}/stream")[1] == b"".join(f"chunk {n}\n".encode() for n in range(10))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    assert server.returncode == 0
