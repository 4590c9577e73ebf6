"""What each cell's requests were, as Locust's own page shows them: per endpoint its requests,
failures and p50/p99, and every failure's message with its count.

It reads cell records only (each repeat's ``endpoints`` and ``failure_messages``, written by
``bench/measure/instrument.py``) and returns table rows of plain text: Locust's error strings are
Python reprs (``CatchResponseError('status 404')``), which are turned into the message they carry.
"""

from __future__ import annotations

import re
import statistics

ENDPOINT_HEADER = ("cell", "endpoint", "requests", "failures", "p50 ms", "p99 ms")
FAILURE_HEADER = ("cell", "endpoint", "message", "count")

#: ``Name('message')`` or ``Name("message")``: an exception's repr with one string argument
ONE_STRING_REPR = re.compile(r"^(\w+)\((['\"])(.*)\2\)$", re.DOTALL)
#: exceptions that only carry a check's message (Locust's ``response.failure(...)``)
MESSAGE_ONLY = frozenset({"CatchResponseError", "ResponseError"})


def readable_error(text: str) -> str:
    """Locust's repr of a failure, as a message: ``CatchResponseError('status 404')`` → ``status
    404``; other exceptions keep their name: ``ConnectionResetError(104, 'Connection reset by
    peer')`` → ``ConnectionResetError: 104, Connection reset by peer``."""
    match = ONE_STRING_REPR.match(text)
    if match:
        name, message = match.group(1), match.group(3)
        return message if name in MESSAGE_ONLY else f"{name}: {message}"
    general = re.match(r"^(\w+)\((.*)\)$", text, re.DOTALL)
    if general:
        arguments = re.sub(r"(['\"])(.*?)\1", r"\2", general.group(2))
        return f"{general.group(1)}: {arguments}" if arguments else general.group(1)
    return text


def endpoint_name(entry: dict) -> str:
    return f"{entry.get('method') or ''} {entry.get('name') or ''}".strip()


def cell_endpoints(cell: dict) -> list[dict]:
    """A cell's endpoints over its repeats: requests and failures summed, p50 and p99 the median
    of the repeats' (each repeat's own are Locust's whole milliseconds)."""
    merged: dict[str, dict] = {}
    for repeat in cell.get("repeats") or []:
        for entry in repeat.get("endpoints") or []:
            into = merged.setdefault(endpoint_name(entry), {"requests": 0, "failures": 0,
                                                            "p50": [], "p99": []})  # fmt: skip
            into["requests"] += entry.get("requests") or 0
            into["failures"] += entry.get("failures") or 0
            for key in ("p50", "p99"):
                if entry.get(f"{key}_ms") is not None:
                    into[key].append(entry[f"{key}_ms"])
    return [
        {"endpoint": name, "requests": values["requests"], "failures": values["failures"],
         "p50_ms": median(values["p50"]), "p99_ms": median(values["p99"])}
        for name, values in merged.items()
    ]  # fmt: skip


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def cell_failures(cell: dict) -> list[dict]:
    """A cell's failures over its repeats, one per endpoint and message, most frequent first."""
    counts: dict[tuple[str, str], int] = {}
    for repeat in cell.get("repeats") or []:
        for failure in repeat.get("failure_messages") or []:
            key = (endpoint_name(failure), readable_error(str(failure.get("error") or "")))
            counts[key] = counts.get(key, 0) + (failure.get("occurrences") or 0)
    return [
        {"endpoint": endpoint, "message": message, "count": count}
        for (endpoint, message), count in sorted(counts.items(), key=lambda item: -item[1])
    ]


def milliseconds(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def endpoint_rows(cells: list[dict]) -> list[list[str]]:
    """Every cell's endpoints, as table rows; a failure count shows its share of the requests."""
    rows = []
    for cell in cells:
        for entry in cell_endpoints(cell):
            requests, failures = entry["requests"], entry["failures"]
            share = f" ({failures / requests:.0%})" if failures and requests else ""
            rows.append([cell.get("cell", ""), entry["endpoint"], f"{requests:,}",
                         f"{failures:,}{share}", milliseconds(entry["p50_ms"]),
                         milliseconds(entry["p99_ms"])])  # fmt: skip
    return rows


def failure_rows(cells: list[dict]) -> list[list[str]]:
    """Every cell's failures with their messages and counts, as table rows."""
    return [
        [cell.get("cell", ""), failure["endpoint"], failure["message"], f"{failure['count']:,}"]
        for cell in cells
        for failure in cell_failures(cell)
    ]
