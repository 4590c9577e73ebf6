"""The floor reference: a bare WSGI callable answering ``/plaintext`` and ``/json`` like
bench.apps.app.

No framework, no request object, no routing table beyond one dict lookup: what is left is the cost
of WSGI itself. The micro benchmarks and the load reference cells put bench.apps.app beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

PLAINTEXT_BODY = b"Hello, World!"
PLAINTEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"


def plaintext() -> tuple[bytes, str]:
    return PLAINTEXT_BODY, PLAINTEXT_TYPE


def json_message() -> tuple[bytes, str]:
    # serialised per request, as bench.apps.app's jsonify does
    return json.dumps({"message": "Hello, World!"}).encode(), JSON_TYPE


ROUTES = {"/plaintext": plaintext, "/json": json_message}


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    route = ROUTES.get(environ.get("PATH_INFO", ""))
    if route is None:
        body, status, content_type = b"Not Found", "404 Not Found", PLAINTEXT_TYPE
    else:
        body, content_type = route()
        status = "200 OK"
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
