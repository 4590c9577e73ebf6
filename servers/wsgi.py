"""The PEP 3333 adapter every model shares: one request event + its body in, one response out.

A model reads the request head and the whole body (bounded by ``Limits.max_body``) through
``servers.http``, then calls ``WSGIAdapter(conn, request, body, peer, send)``; ``send`` writes bytes
to the client (``socket.sendall`` for the blocking models, a buffer for the event loop). The adapter
never touches a socket and never decides framing: ``ServerConnection`` does that.
"""

from __future__ import annotations

import io
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from urllib.parse import unquote_to_bytes

from servers.cache import BoundedCache
from servers.http import ProtocolError, Request, ServerConnection

#: what the client sees when the app fails before its headers went out: no traceback, no details
ERROR_BODY = b"Internal Server Error\n"
ERROR_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(ERROR_BODY))),
    ("Connection", "close"),
]
#: an absolute-form target's authority: all up to its path, query or fragment
AUTHORITY = re.compile(r"[^/?#]*")

Send = Callable[[bytes], object]


class ClientDisconnected(Exception):
    """Sending failed: the client hung up. The connection is dropped quietly."""


#: header name → its environ key, for the names seen so far: requests repeat the same few names
#: (clients may send any names: at most this many)
ENVIRON_KEYS: BoundedCache = BoundedCache(512)


def environ_key(header_name: str) -> str | None:
    """``user-agent`` → ``HTTP_USER_AGENT``; None for names with "_", which could spoof a dash."""
    if "_" in header_name:
        return None
    key = header_name.upper().replace("-", "_")
    key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
    return ENVIRON_KEYS.remember(header_name, key)


#: a request's header list, as a tuple → the environ keys it gives. A client sends the same head
#: request after request, so its fields are turned into keys once, repeated names joined once.
#: (a head holds up to Limits.max_head_bytes: at most this many lists)
HEADER_KEYS: BoundedCache = BoundedCache(64)


def header_keys(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The ``HTTP_*`` (and CONTENT_*) environ keys of a request's fields, each looked up once."""
    key = tuple(headers)
    known = HEADER_KEYS.get(key)
    if known is None:
        known = {}
        for name, value in headers:
            environ_name = ENVIRON_KEYS.get(name) or environ_key(name)
            if environ_name is None:
                continue
            known[environ_name] = (
                known[environ_name] + ", " + value if environ_name in known else value
            )
        HEADER_KEYS.remember(key, known)
    return known


#: request target → its PATH_INFO and QUERY_STRING: clients ask for the same few targets again
#: and again, so each is split and decoded once
#: (query strings vary without end: at most this many targets)
TARGET_PARTS: BoundedCache = BoundedCache(512)


def target_parts(target: str) -> tuple[str, str]:
    """PATH_INFO (percent-decoded) and QUERY_STRING of a target ``servers.http`` accepted."""
    path, query = split_target(target)
    return TARGET_PARTS.remember(target, (decode_path(path), query))


def split_target(target: str) -> tuple[str, str]:
    """The raw path and query string of a target ``servers.http`` accepted; no fragment.

    Absolute-form gives its path (``/`` when empty) and query; asterisk- and authority-form
    (``*``, ``host:443``) have neither, so the whole target stands as the path.
    """
    if target[0] != "/" and "://" in target:
        target = split_absolute(target)[1]
    path, _, query = target.partition("#")[0].partition("?")
    return path, query


def split_absolute(target: str) -> tuple[str, str]:
    """An absolute-form target's host[:port] (userinfo dropped) and the origin-form after it."""
    rest = target.partition("://")[2]
    end = AUTHORITY.match(rest).end()
    authority, after = rest[:end].rpartition("@")[2], rest[end:]
    return authority, after if after.startswith("/") else "/" + after


def decode_path(path: str) -> str:
    """Percent-decode the path the PEP 3333 way: bytes shown as latin-1 characters."""
    if "%" not in path:
        return path
    return unquote_to_bytes(path).decode("latin-1")


class Response:
    """One response in flight: ``start_response``'s state and whether the head went out."""

    __slots__ = ("conn", "_send", "status", "headers", "head_sent")

    def __init__(self, conn: ServerConnection, send: Send) -> None:
        #: the HTTP layer, which frames everything we send
        self.conn = conn
        self._send = send
        #: status line text given by the app ("200 OK"), None until start_response
        self.status: str | None = None
        #: header list given by the app
        self.headers: list[tuple[str, str]] = []
        #: True once the status line and headers were handed to ``send``
        self.head_sent = False

    def send(self, data: bytes) -> None:
        try:
            self._send(data)
        except OSError as err:
            raise ClientDisconnected from err

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info=None):
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called twice without exc_info")
        self.status, self.headers = status, headers
        return self.write

    def head(self, body_length: int | None = None) -> bytes:
        """The status line and headers; ``send_response`` raises ValueError on a bad header.

        ``body_length`` is the whole body's size when it is known before the head goes out.
        """
        if self.status is None:
            raise AssertionError("the app sent a body before calling start_response()")
        head = self.conn.send_response(self.status, self.headers, body_length)
        self.head_sent = True
        return head

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write()`` callable, also used for each chunk of the app's iterable."""
        if self.head_sent:
            self.send(self.conn.send_data(data))
        else:
            head = self.head()  # first: it picks the framing send_data applies
            self.send(head + self.conn.send_data(data))

    def write_whole(self, body: bytes) -> None:
        """The app's body is one piece: send it sized, with the head, in one call."""
        if self.head_sent:
            self.write(body)
            self.finish()
            return
        head = self.head(len(body))
        self.send(head + self.conn.send_data(body) + self.conn.send_end())

    def finish(self) -> None:
        if not self.head_sent:
            request = self.conn.request
            # An empty body, known to be empty: no chunking. HEAD's body size is not known.
            empty = 0 if request is None or request.method != "HEAD" else None
            self.send(self.head(empty) + self.conn.send_end())
            return
        end = self.conn.send_end()
        if end:
            self.send(end)


class WSGIAdapter:
    """Calls a WSGI app for one parsed request and sends its response through the HTTP layer."""

    def __init__(
        self,
        app: Callable,
        server_address: tuple[str, int],
        *,
        multithread: bool,
        multiprocess: bool,
        access_log: bool = False,
    ) -> None:
        #: the WSGI application
        self.app = app
        #: print one line per request to stderr
        self.access_log = access_log
        #: the keys every request shares; copied per request instead of rebuilt
        self.base_environ = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": server_address[0],
            "SERVER_PORT": str(server_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        #: a request's method, target, version and header list → its environ but for the peer
        #: and the body: a client sends the same request again and again, so it is worked out
        #: once and copied (a head holds up to Limits.max_head_bytes: at most this many)
        self.request_environs = BoundedCache(64)

    def environ(self, request: Request, body: bytes, peer: tuple) -> dict:
        method, target, version, headers = request
        key = (method, target, version, tuple(headers))
        known = self.request_environs.get(key)
        if known is None:
            known = self.request_environs.remember(key, self.request_environ(request))
        # A copy for each request: the app may change its environ. The keys set here are in the
        # copy already, so setting them fills slots rather than growing the dict.
        environ = known.copy()
        environ["REMOTE_ADDR"] = peer[0]
        environ["REMOTE_PORT"] = str(peer[1])
        environ["wsgi.input"] = io.BytesIO(body)
        return environ

    def request_environ(self, request: Request) -> dict:
        """The environ of ``request`` but for what each request sets (the peer and the body)."""
        target = request.target
        path, query = TARGET_PARTS.get(target) or target_parts(target)
        environ = {
            **self.base_environ,
            "REQUEST_METHOD": request.method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "RAW_URI": target,
            "REQUEST_URI": target,
            "SERVER_PROTOCOL": "HTTP/" + request.version,
            "REMOTE_ADDR": "",
            "REMOTE_PORT": "",
            "wsgi.input": None,
        }
        environ.update(header_keys(request.headers))
        if target[0] != "/" and "://" in target:
            # RFC 9112 section 3.2.2: an absolute-form target's authority overrides the Host field
            environ["HTTP_HOST"] = split_absolute(request.target)[0]
        return environ

    def serve(
        self, conn: ServerConnection, request: Request, body: bytes, peer: tuple, send: Send
    ) -> bool:
        """Serve one request. Returns False when the connection must be closed afterwards."""
        environ = self.environ(request, body, peer)
        response = Response(conn, send)
        try:
            self.run_app(environ, response)
        except ClientDisconnected:
            return False
        except Exception:
            self.log_exception(environ)
            if not response.head_sent:
                self.send_error(conn, send)
            return False
        finally:
            if self.access_log:
                self.log_access(environ, response)
        return True

    #: calling the adapter serves a request too; the servers hold the bound ``serve``, as a call
    #: to it skips the type-slot dispatch that calling an instance through ``__call__`` costs
    __call__ = serve

    def run_app(self, environ: dict, response: Response) -> None:
        result = self.app(environ, response.start_response)
        try:
            self.send_body(result, response)
        finally:
            # PEP 3333: close() is called however the response ended, client gone included.
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def send_body(self, result: Iterable[bytes], response: Response) -> None:
        if type(result) in (list, tuple) and len(result) == 1:
            response.write_whole(result[0])
            return
        for chunk in result:
            if chunk:
                response.write(chunk)
        response.finish()

    def send_error(self, conn: ServerConnection, send: Send) -> None:
        conn.keep_alive = False
        try:
            head = conn.send_response("500 Internal Server Error", ERROR_HEADERS)
            send(head + conn.send_data(ERROR_BODY) + conn.send_end())
        except (OSError, ValueError, ProtocolError):
            pass

    def log_exception(self, environ: dict) -> None:
        print(
            f"error serving {environ['REQUEST_METHOD']} {environ['RAW_URI']}:",
            traceback.format_exc(),
            sep="\n",
            file=sys.stderr,
        )

    def log_access(self, environ: dict, response: Response) -> None:
        status = (response.status or "-").split(" ", 1)[0]
        line = f'{environ["REMOTE_ADDR"]} "{environ["REQUEST_METHOD"]} {environ["RAW_URI"]} '
        print(f'{line}{environ["SERVER_PROTOCOL"]}" {status}', file=sys.stderr, flush=True)
