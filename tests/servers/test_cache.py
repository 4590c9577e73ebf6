"""servers.cache: a bounded cache keeps at most its size, and starts afresh when full."""

from __future__ import annotations

from servers.cache import BoundedCache


def test_remember_stores_and_returns_the_value() -> None:
    cache = BoundedCache(4)
    value = ("get", "/")
    assert cache.remember("GET / HTTP/1.1", value) is value
    assert cache.get("GET / HTTP/1.1") is value


def test_a_full_cache_starts_afresh_with_the_new_entry() -> None:
    cache = BoundedCache(2)
    cache.remember("a", 1)
    cache.remember("b", 2)
    cache.remember("c", 3)
    assert dict(cache) == {"c": 3}  # what is in use now fills it again
