"""The response checks' earlier import path, kept for locustfiles written against it: the checks
live in ``bench.checks``."""

from bench.checks import check, fetch

__all__ = ["check", "fetch"]
