"""A WSGI app with a known truth: it stalls for ``STALL_S`` every ``PERIOD_S``, blocking its caller.

Served by the poll model (one thread runs every request to completion), a stall holds up every
connection, so every request that arrives during it waits. Tests of ``openloop.py`` and
``instrument.py`` load it; this module is not a test itself.
"""

from __future__ import annotations

import time

#: how long each stall lasts and how often one starts, seconds
STALL_S = 0.2
PERIOD_S = 2.0

#: when the next stall is due (monotonic seconds); None until the first request
next_stall: list[float] = []


def app(environ, start_response):
    """``Hello, World!`` at once, except for the first request after each period starts."""
    now = time.monotonic()
    if not next_stall:
        next_stall.append(now + PERIOD_S)
    elif now >= next_stall[0]:
        next_stall[0] += PERIOD_S * (1 + (now - next_stall[0]) // PERIOD_S)
        time.sleep(STALL_S)
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [body]
