"""The PEP 3333 adapter, driven through a real ServerConnection with no sockets at all."""

from __future__ import annotations

import sys

import pytest

from servers.http import EndOfMessage, Request, ServerConnection
from servers.wsgi import WSGIAdapter, decode_path, environ_key, split_target

PEER = ("127.0.0.1", 54321)


def parsed(raw: bytes) -> tuple[ServerConnection, Request, bytes]:
    """A connection that has read one whole request from ``raw``, its head and its body."""
    conn = ServerConnection()
    conn.receive_data(raw)
    request = conn.next_event()
    body = b""
    while type(event := conn.next_event()) is not EndOfMessage:
        body += event.data
    return conn, request, body


def serve(app, raw: bytes = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", **flags):
    """Run ``app`` for ``raw``; returns (kept, bytes sent, the connection)."""
    adapter = WSGIAdapter(
        app,
        ("127.0.0.1", 8000),
        multithread=flags.get("multithread", False),
        multiprocess=flags.get("multiprocess", False),
    )
    conn, request, body = parsed(raw)
    sent: list[bytes] = []
    kept = adapter(conn, request, body, PEER, sent.append)
    return kept, b"".join(sent), conn


def capture_environ(raw: bytes, **flags) -> dict:
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        seen["body"] = environ["wsgi.input"].read()
        start_response("204 No Content", [])
        return []

    serve(app, raw, **flags)
    return seen


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


# -- environ -----------------------------------------------------------------------------------


def test_environ_holds_the_request_the_pep_3333_way():
    env = capture_environ(
        b"POST /a%20b/%C3%A9?x=%20y&z HTTP/1.1\r\nHost: example\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 3\r\nX-Forwarded-For: 1\r\nx-forwarded-for: 2\r\n\r\nabc"
    )
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/a b/\xc3\xa9"  # UTF-8 bytes seen as latin-1 characters
    assert env["QUERY_STRING"] == "x=%20y&z"  # raw
    assert env["RAW_URI"] == env["REQUEST_URI"] == "/a%20b/%C3%A9?x=%20y&z"
    assert (env["CONTENT_TYPE"], env["CONTENT_LENGTH"]) == ("text/plain", "3")
    assert "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_HOST"] == "example"
    assert env["HTTP_X_FORWARDED_FOR"] == "1, 2"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", "8000")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", "54321")
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.errors"] is sys.stderr
    assert env["wsgi.input_terminated"] is True
    assert env["body"] == b"abc"


def test_the_same_head_twice_gives_the_same_environ_whatever_the_app_did_to_the_first():
    raw = b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
    first = capture_environ(raw)
    first["HTTP_X_A"] += ", 3"  # an app may change its environ: the next request must not see it
    first["PATH_INFO"] = "/changed"
    second = capture_environ(raw)
    assert (second["HTTP_X_A"], second["HTTP_HOST"]) == ("1, 2", "h")
    assert (second["PATH_INFO"], second["QUERY_STRING"]) == ("/p", "q=1")


def test_chunked_body_reaches_the_app_dechunked_and_terminated():
    env = capture_environ(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert env["body"] == b"abc"
    assert "CONTENT_LENGTH" not in env


def test_header_names_with_underscores_are_dropped_so_they_cannot_spoof_dashes():
    env = capture_environ(b"GET / HTTP/1.1\r\nHost: h\r\nX_User: evil\r\nX-User: real\r\n\r\n")
    assert env["HTTP_X_USER"] == "real"


@pytest.mark.parametrize(
    ("flags", "multithread", "multiprocess"),
    [
        ({}, False, False),
        ({"multithread": True}, True, False),
        ({"multiprocess": True}, False, True),
    ],
)
def test_flags_come_from_the_model(flags, multithread, multiprocess):
    env = capture_environ(b"GET / HTTP/1.0\r\n\r\n", **flags)
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"]) == (multithread, multiprocess)
    assert env["wsgi.run_once"] is False
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/", "/", ""),
        ("/p?q=1?2", "/p", "q=1?2"),
        ("http://example.com/p?q", "/p", "q"),
        ("http://example.com", "/", ""),
        ("HTTPS://u:p@[::1]:8080?q=1#f", "/", "q=1"),
        ("/p?q#frag?x", "/p", "q"),
        ("/p#frag", "/p", ""),
        ("//not/a/host", "//not/a/host", ""),
        ("*", "*", ""),
        ("example.com:443", "example.com:443", ""),
    ],
)
def test_split_target_drops_the_fragment_and_an_absolute_targets_authority(target, path, query):
    assert split_target(target) == (path, query)


def test_an_absolute_form_target_names_the_host_instead_of_the_host_field():
    env = capture_environ(b"GET http://user@right.org:81/p?q#f HTTP/1.1\r\nHost: wrong\r\n\r\n")
    assert (env["HTTP_HOST"], env["PATH_INFO"], env["QUERY_STRING"]) == ("right.org:81", "/p", "q")
    assert env["RAW_URI"] == env["REQUEST_URI"] == "http://user@right.org:81/p?q#f"


def test_decode_path_keeps_encoded_slashes_as_slashes_and_leaves_plain_paths_alone():
    assert decode_path("/plain") == "/plain"
    assert decode_path("/a%2Fb%zz") == "/a/b%zz"


def test_environ_key():
    assert environ_key("user-agent") == "HTTP_USER_AGENT"
    assert environ_key("content-length") == "CONTENT_LENGTH"
    assert environ_key("x_a") is None


# -- responses ---------------------------------------------------------------------------------


def test_a_one_piece_body_is_sent_sized_in_one_call():
    sent_calls = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    adapter = WSGIAdapter(app, ("127.0.0.1", 80), multithread=False, multiprocess=False)
    conn, request, body = parsed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert adapter(conn, request, body, PEER, sent_calls.append) is True
    assert len(sent_calls) == 1
    assert b"Content-Length: 5\r\n" in sent_calls[0]
    assert sent_calls[0].endswith(b"\r\n\r\nhello")


def test_a_generator_body_is_chunked_and_ends_with_the_last_chunk():
    def app(environ, start_response):
        start_response("200 OK", [])
        yield b""  # empty pieces are skipped, not sent as a premature last chunk
        yield b"ab"
        yield b"c"

    kept, sent, _ = serve(app)
    assert kept
    assert b"Transfer-Encoding: chunked\r\n" in sent
    assert sent.endswith(b"\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")


def test_an_empty_generator_body_is_sized_zero():
    def app(environ, start_response):
        start_response("200 OK", [])
        return iter([])

    _, sent, _ = serve(app)
    assert b"Content-Length: 0\r\n" in sent


def test_the_write_callable_sends_before_the_iterable():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Length", "6")])
        write(b"abc")
        return [b"def"]

    _, sent, _ = serve(app)
    assert sent.endswith(b"\r\n\r\nabcdef")
    assert sent.count(b"Content-Length") == 1


def test_head_responses_drop_the_body_the_app_returned():
    kept, sent, _ = serve(hello, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert kept
    assert sent.endswith(b"\r\n\r\n")
    assert b"Content-Length: 5\r\n" in sent


def empty_generator():
    yield from ()


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
@pytest.mark.parametrize("body", [[], [b""], empty_generator], ids=["list", "one-piece", "gen"])
def test_bodyless_statuses_get_neither_a_content_length_nor_a_body(status, body):
    def app(environ, start_response):
        start_response(status, [("ETag", '"v1"')])
        return body() if callable(body) else body

    kept, sent, _ = serve(app)
    assert kept
    assert sent.startswith(f"HTTP/1.1 {status}\r\n".encode())
    assert b"Content-Length" not in sent and b"Transfer-Encoding" not in sent
    assert sent.endswith(b"\r\n\r\n")


def test_a_non_ascii_target_reaches_the_app_as_latin_1_like_a_percent_encoded_one():
    raw = capture_environ(b"GET /caf\xc3\xa9?q=\xe9 HTTP/1.0\r\n\r\n")
    encoded = capture_environ(b"GET /caf%C3%A9 HTTP/1.0\r\n\r\n")
    assert raw["PATH_INFO"] == encoded["PATH_INFO"] == "/caf\xc3\xa9"
    assert raw["QUERY_STRING"] == "q=\xe9"


def test_close_is_called_on_success_on_failure_and_when_the_client_is_gone():
    closed = []

    class Body:
        def __init__(self, fail: bool) -> None:
            self.fail = fail

        def __iter__(self):
            yield b"a"
            if self.fail:
                raise RuntimeError("boom")
            yield b"b"

        def close(self):
            closed.append(self.fail)

    def app_factory(fail):
        def app(environ, start_response):
            start_response("200 OK", [])
            return Body(fail)

        return app

    assert serve(app_factory(False))[0] is True
    assert serve(app_factory(True))[0] is False  # failed after the head: the connection closes

    def gone(data):
        raise BrokenPipeError

    adapter = WSGIAdapter(app_factory(False), ("h", 1), multithread=False, multiprocess=False)
    conn, request, body = parsed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert adapter(conn, request, body, PEER, gone) is False
    assert closed == [False, True, False]


def test_an_exception_before_the_head_is_a_generic_500(capsys):
    def app(environ, start_response):
        raise ValueError("database password is hunter2")

    kept, sent, conn = serve(app)
    assert not kept
    assert sent.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"hunter2" not in sent and b"Traceback" not in sent
    assert b"Connection: close\r\n" in sent
    assert "hunter2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "headers",
    [
        [("X-A", "a\r\nSet-Cookie: evil=1")],
        [("X-A", "a\nb")],
        [("X-A", "a\x00b")],
        [("Bad Name", "v")],
        [("X-Good", "v"), ("", "v")],
    ],
)
def test_bad_app_headers_are_a_500_and_none_of_them_is_sent(headers, capsys):
    def app(environ, start_response):
        start_response("200 OK", headers)
        return [b"body"]

    kept, sent, _ = serve(app)
    assert not kept
    assert sent.startswith(b"HTTP/1.1 500 ")
    assert b"evil" not in sent and b"X-Good" not in sent and b"X-A" not in sent


def test_start_response_twice_without_exc_info_is_an_error(capsys):
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b""]

    assert serve(app)[1].startswith(b"HTTP/1.1 500 ")


def test_exc_info_replaces_the_status_before_the_head_went_out():
    def app(environ, start_response):
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("late")
        except KeyError:
            start_response("503 Service Unavailable", [], sys.exc_info())
        return [b"sorry"]

    kept, sent, _ = serve(app)
    assert kept
    assert sent.startswith(b"HTTP/1.1 503 ")
    assert b"X-First" not in sent


def test_exc_info_after_the_head_reraises_and_closes(capsys):
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"never"]

    kept, sent, _ = serve(app)
    assert not kept
    assert sent.startswith(b"HTTP/1.1 200 ")
    assert b"never" not in sent


def test_a_body_before_start_response_is_a_500(capsys):
    assert serve(lambda environ, start_response: [b"x"])[1].startswith(b"HTTP/1.1 500 ")


def test_access_log_writes_one_line_per_request(capsys):
    adapter = WSGIAdapter(hello, ("h", 1), multithread=False, multiprocess=False, access_log=True)
    conn, request, body = parsed(b"GET /x?y HTTP/1.1\r\nHost: h\r\n\r\n")
    adapter(conn, request, body, PEER, lambda data: None)
    assert capsys.readouterr().err == '127.0.0.1 "GET /x?y HTTP/1.1" 200\n'
