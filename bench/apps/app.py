"""The app under test: TechEmpower-style endpoints on ``framework/``, served as is by every server.

Each endpoint stands for one kind of load: ``/plaintext`` and ``/json`` the framework's floor,
``/fortunes`` a database read plus an escaped template, ``/session`` a signed-cookie round trip,
``/io`` a blocking downstream call, ``/cpu`` pure-Python work, ``/bytes`` a large body,
``/stream`` an unsized body, and ``/static/<file>`` a file of bench/static (served by the
framework's own static route, as in Flask 0.1). Query values are bounded; anything else is a 400.

``BENCH_INJECT_DELAY_US=N`` (read at import) adds a before-request hook that busy-waits N µs: a
deliberate, known regression for demonstrating `bench compare`.
"""

from __future__ import annotations

import os
import time

from werkzeug.exceptions import BadRequest

from bench.apps.fortunes import sorted_fortunes
from framework import Flask, Response, jsonify, render_template, request, session

#: the /cpu work is a sum of squares modulo this prime: cheap per step, checkable in closed form
CPU_MODULUS = 1_000_000_007

app = Flask(__name__)
#: a fixed key: every server process (fork, gunicorn workers) must accept each other's cookies
app.secret_key = os.environ.get("BENCH_SECRET_KEY", "bench-not-a-secret")


def bounded_int(name: str, default: int, maximum: int) -> int:
    """The query value ``name`` as an int in 0..maximum; missing → default; anything else → 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    # isdigit() alone accepts non-ASCII digits, int() accepts "+5", " 5" and "5_0", and a very
    # long digit string makes int() raise: check the characters and the length first
    digits_ok = raw.isascii() and raw.isdigit() and len(raw) <= len(str(maximum))
    if not digits_ok or int(raw) > maximum:
        raise BadRequest(f"{name} must be an integer from 0 to {maximum}")
    return int(raw)


@app.route("/plaintext")
def plaintext():
    return Response("Hello, World!", mimetype="text/plain")


@app.route("/json")
def json_message():
    return jsonify(message="Hello, World!")


@app.route("/fortunes")
def fortunes():
    return render_template("fortunes.html", fortunes=sorted_fortunes())


@app.route("/session")
def session_counter():
    session["count"] = session.get("count", 0) + 1
    return jsonify(count=session["count"])


@app.route("/io")
def io_wait():
    milliseconds = bounded_int("ms", default=20, maximum=5000)
    time.sleep(milliseconds / 1000)
    return Response(f"slept {milliseconds} ms", mimetype="text/plain")


def sum_of_squares(n: int) -> int:
    """Pure-Python work: about 1 ms for n=25000 on a 2020s core."""
    total = 0
    for i in range(n):
        total = (total + i * i) % CPU_MODULUS
    return total


@app.route("/cpu")
def cpu_work():
    n = bounded_int("n", default=25_000, maximum=2_000_000)
    return jsonify(n=n, checksum=sum_of_squares(n))


@app.route("/bytes")
def large_body():
    kilobytes = bounded_int("kb", default=64, maximum=10 * 1024)
    return Response(b"x" * (kilobytes * 1024), mimetype="application/octet-stream")


def stream_chunks():
    for number in range(10):
        yield f"chunk {number}\n".encode()


@app.route("/stream")
def stream():
    return Response(stream_chunks(), mimetype="text/plain")


def busy_wait_hook(microseconds: int):
    """A before-request hook that burns CPU (not sleep) so the delay shows under any server."""

    def inject_delay():
        deadline = time.perf_counter() + microseconds / 1_000_000
        while time.perf_counter() < deadline:
            pass

    return inject_delay


INJECT_DELAY_US = int(os.environ.get("BENCH_INJECT_DELAY_US") or 0)
if INJECT_DELAY_US > 0:
    app.before_request(busy_wait_hook(INJECT_DELAY_US))
