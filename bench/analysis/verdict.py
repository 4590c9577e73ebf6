"""The verdict the report opens with: per scenario, the servers ranked by requests/s per CPU.

It reads summary records only (one dict per cell, as ``bench.analysis.report`` builds them) and
ranks each server at its best user level. Under a CPU budget that is requests/s ÷ the budget:
what a server serves on the CPU it is given. Without one (no writable cgroup, or ``--server-cpus
off``) it is requests per CPU-second the server used, the CPU-per-request ranking, which holds
even when Locust set the pace. Each row says whether its gap to the leader is larger than what
the two cells' own measurements spread, and why the model lands where it does, in one sentence
that the report's longer paragraphs share.
"""

from __future__ import annotations

from bench import flags

#: why each model lands where it does on endpoints that wait (io, mixed): one clause each
WAITING = {
    "poll": "it runs each request to completion on its one thread, so every wait blocks "
    "every other connection",
    "epoll": "its event loop calls the app on the loop thread, and a blocking call inside "
    "the app stalls the loop and every connection on it",
    "threaded": "it overlaps the waits: a waiting thread does not hold up the others",
    "fork": "it overlaps the waits: a waiting process does not hold up the others",
}
#: why each model lands where it does on endpoints that only compute (plaintext, json, ...)
COMPUTING = {
    "poll": "it serves one connection at a time and closes it after each response, so every "
    "request pays for a new connection",
    "epoll": "one thread woken by one epoll call serves every connection, with no thread "
    "switches under the GIL",
    "threaded": "it hands every connection its own thread and switches between them under the GIL",
    "fork": "it pays a fork and a process per connection (once per user: Locust keeps "
    "connections alive)",
}
#: on the cpu scenario the work itself, not the model, sets the limit
WORKING = "the work itself sets the limit: on one CPU, threads and processes only take turns"
#: each peer's own (computing, waiting) reasons: a peer shares a model with one of ours but not its
#: details (gunicorn's sync worker closes every connection; werkzeug's forking server forks per
#: request because it closes them too), so the model's sentence would be wrong for it
PEERS = {
    "werkzeug-base": (
        "socketserver serves one connection at a time and werkzeug closes it after each "
        "response (HTTP/1.0), so every request pays for a new connection and http.server's "
        "line-by-line parsing",
        "socketserver serves one connection at a time, so every wait blocks every other connection",
    ),
    "werkzeug-threaded": (
        "socketserver starts a thread per connection and http.server parses each head line by "
        "line in Python, switching threads under the GIL",
        "it overlaps the waits: a waiting thread does not hold up the others",
    ),
    "werkzeug-forking": (
        "werkzeug closes the connection after each response, so socketserver forks a process "
        "for every request",
        "it overlaps the waits, one forked process per request",
    ),
    "tornado": (
        "one IOLoop thread serves every connection, but each request goes through tornado's "
        "coroutines and WSGIContainer's adaptation in Python",
        "WSGIContainer calls the app on the loop thread, so a blocking call inside the app stalls "
        "the loop and every connection on it",
    ),
    "gunicorn-sync": (
        "its one prefork worker serves one connection at a time and closes it after each "
        "response, so every request pays for a new connection",
        "its one worker runs one request at a time, so every wait blocks every other connection",
    ),
    "gunicorn-gthread": (
        "its worker hands each connection to one of 4 threads and parks kept-alive ones in a "
        "selector between requests, switching threads under the GIL",
        "it overlaps at most 4 waits, one per thread",
    ),
    "waitress": (
        "an asyncore loop parses each request and hands it to one of 4 worker threads: a thread "
        "switch under the GIL per request",
        "it overlaps at most 4 waits, one per worker thread",
    ),
    # the peers in C or Rust (bench.analysis.pairs.NATIVE_PEERS): the point is how they reach Python
    "bjoern": (
        "C parses HTTP and runs the event loop (libev): only the app itself runs in Python",
        "its C event loop calls the app on its one thread, so a blocking call inside the app "
        "stalls every connection",
    ),
    "granian": (
        "Rust parses HTTP, but hands every request to a Python thread and back (its blocking "
        "threads), paying a thread switch under the GIL each time",
        "it overlaps at most 4 waits, one per blocking thread",
    ),
}
#: scenarios whose requests wait on something
WAITING_SCENARIOS = frozenset({"io", "mixed"})


def reason(record: dict) -> str:
    """One sentence: why this server's model does what it does on this scenario."""
    if record.get("scenario") == "cpu":
        return WORKING
    waiting = record.get("scenario") in WAITING_SCENARIOS
    if record.get("server") in PEERS:
        return PEERS[record["server"]][waiting]
    return (WAITING if waiting else COMPUTING).get(record.get("model"), "")


# --- the measured spread ----------------------------------------------------------------------


def measured_range(cell: dict) -> tuple[float | None, float | None]:
    """The range a cell's requests/s was measured in: min–max over its repeats when it has two or
    more, else min–max of the one repeat's per-second requests/s."""
    repeats = cell.get("repeats") or []
    if len(repeats) >= 2:
        values = [repeat.get("rps") for repeat in repeats]
    else:
        values = repeats[0].get("rps_series") or [] if repeats else []
    values = [value for value in values if value is not None]
    return (min(values), max(values)) if values else (None, None)


# --- ranking ----------------------------------------------------------------------------------


def per_cpu(record: dict) -> float | None:
    """Requests/s per CPU: of the budget where there is one, else of the CPU the server used."""
    if record.get("rps_per_cpu") is not None:
        return record["rps_per_cpu"]
    cost = record.get("cpu_s_per_1k")  # CPU-seconds per 1,000 requests
    return 1000 / cost if cost else None


def ranked(record: dict) -> bool:
    return (
        record.get("app") == "app"
        and record.get("kind") != "reference"
        and record.get("rps") is not None
        and per_cpu(record) is not None
        and not flags.UNRANKED & set(record.get("flags") or [])
    )


def best_cells(records: list[dict], scenario: str) -> list[dict]:
    """Each server's cell with the most requests/s per CPU on ``scenario``, best first."""
    best: dict[str, dict] = {}
    for record in records:
        if record.get("scenario") == scenario and ranked(record):
            current = best.get(record["server"])
            if current is None or per_cpu(record) > per_cpu(current):
                best[record["server"]] = record
    return sorted(best.values(), key=per_cpu, reverse=True)


def per_cpu_range(record: dict) -> tuple[float, float] | None:
    """The cell's measured range of requests/s, scaled to per CPU like its median."""
    low, high, rps = record.get("rps_low"), record.get("rps_high"), record.get("rps")
    if low is None or high is None or not rps:
        return None
    scale = per_cpu(record) / rps
    return low * scale, high * scale


def beyond_spread(leader: dict, record: dict) -> bool | None:
    """True when the leader's lowest measurement, per CPU, is above this cell's highest: the gap
    is larger than either cell's own spread. None when a spread was not measured."""
    leading, trailing = per_cpu_range(leader), per_cpu_range(record)
    if leading is None or trailing is None:
        return None
    return leading[0] > trailing[1]


def verdict_rows(records: list[dict], scenario: str) -> list[dict]:
    """The verdict of one scenario: rank, server, its best level, both rates, ratio, gap, why."""
    cells = best_cells(records, scenario)
    if not cells:
        return []
    leader = cells[0]
    return [
        {
            "rank": rank,
            "server": record["server"],
            "kind": record.get("kind"),
            "users": record["users"],
            "rps": record["rps"],
            "rps_per_cpu": per_cpu(record),
            "ratio": per_cpu(record) / per_cpu(leader),
            "beyond_spread": None if record is leader else beyond_spread(leader, record),
            "flags": list(record.get("flags") or []),
            "why": reason(record),
        }
        for rank, record in enumerate(cells, start=1)
    ]


def basis(records: list[dict]) -> str:
    """What "per CPU" means in this run's verdict."""
    budgets = sorted({r["budget_cpus"] for r in records if r.get("budget_cpus")})
    if budgets:
        shown = ", ".join(f"{cpus:g}" for cpus in budgets)
        return (f"requests/s ÷ the CPU budget ({shown} CPU): what each server serves on the CPU "
                "it is given")  # fmt: skip
    return ("requests per CPU-second the server used (no CPU budget in this run): this ranks by "
            "CPU per request, which holds even where Locust set the pace")  # fmt: skip


# --- text -------------------------------------------------------------------------------------

HEADER = ("#", "server", "users", "req/s", "req/s per CPU", "× best", "gap beyond spread",
          "flags", "why")  # fmt: skip


def gap_text(value: bool | None, rank: int) -> str:
    if rank == 1:
        return "best"
    return {True: "yes", False: "no, within spread", None: "spread unknown"}[value]


def table_rows(rows: list[dict]) -> list[list[str]]:
    return [
        [
            str(row["rank"]),
            row["server"],
            str(row["users"]),
            f"{row['rps']:,.0f}",
            f"{row['rps_per_cpu']:,.0f}",
            f"{row['ratio']:.2f}",
            gap_text(row["beyond_spread"], row["rank"]),
            ", ".join(row["flags"]) or "–",
            row["why"],
        ]
        for row in rows
    ]


def scenario_order(records: list[dict], scenario_names: list[str]) -> list[str]:
    present = {r.get("scenario") for r in records}
    return [name for name in scenario_names if name in present]


def verdict_tables(records: list[dict], scenario_names: list[str]) -> list[dict]:
    """One table per scenario that has ranked cells, in ``scenario_names`` order."""
    tables = []
    for scenario in scenario_order(records, scenario_names):
        rows = verdict_rows(records, scenario)
        if rows:
            tables.append({"scenario": scenario, "header": list(HEADER),
                           "rows": table_rows(rows)})  # fmt: skip
    return tables


def latency_note(records: list[dict]) -> str:
    """Said next to every latency figure of a run with a CPU budget."""
    periods = sorted({r["budget_period_us"] for r in records if r.get("budget_period_us")})
    if not periods:
        return ""
    longest_ms = periods[-1] / 1000
    return (f"latency under a CPU budget includes throttling stalls: a server that used its "
            f"quota waits for the next period (up to {longest_ms:g} ms)")  # fmt: skip
