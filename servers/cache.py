# This module does no I/O: it holds the one kind of cache servers.http, .responses and .wsgi keep.
"""What is worked out once and looked up afterwards: a dict that starts afresh when full.

Clients repeat the same request lines, fields and targets request after request, and apps answer
with the same headers, so parsing or checking each once and looking it up afterwards saves most
of the per-request work. Keys from the wire (cookies, tokens, query strings) vary without end, so
every such cache is bounded: once full it is emptied and fills again with what is in use now.
Only what passed its checks is remembered, so a cached answer is always one the checks gave.
"""

from __future__ import annotations

from typing import TypeVar

Value = TypeVar("Value")


class BoundedCache(dict):
    """A dict of at most ``size`` entries; ``remember`` empties it first when it is full."""

    def __init__(self, size: int) -> None:
        super().__init__()
        #: the most entries it holds
        self.size = size

    def remember(self, key: object, value: Value) -> Value:
        """Store ``value`` under ``key`` and return it."""
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value
