"""Why each server lands where it does on a scenario: one sentence per model, and per peer, chosen
by where it landed (leading or trailing) and by whether the scenario's requests wait on something,
so a leader is never described by a weakness.
"""

from __future__ import annotations

#: why each model lands where it does on endpoints that wait (io, mixed), when it trails
WAITING = {
    "poll": "it runs each request to completion on its one thread, so every wait blocks "
    "every other connection",
    "epoll": "its event loop calls the app on the loop thread, and a blocking call inside "
    "the app stalls the loop and every connection on it",
    "threaded": "it overlaps the waits, but spends more CPU per request than the leader",
    "fork": "it overlaps the waits, but spends more CPU per request than the leader",
}
#: ... when it leads or cannot be told from the leader
WAITING_LEADS = {
    "threaded": "it overlaps the waits: a waiting thread does not hold up the others",
    "fork": "it overlaps the waits: a waiting process does not hold up the others",
}
#: why each model lands where it does on endpoints that only compute, when it trails
COMPUTING = {
    "poll": "it serves one connection at a time and closes it after each response, so every "
    "request pays for a new connection",
    "epoll": "its loop's own work per request (readiness events, buffers, callbacks, in Python) "
    "costs more here than the thread switches it saves",
    "threaded": "it hands every connection its own thread and switches between them under the GIL",
    "fork": "it pays a fork and a process per connection, and its processes take turns on the CPU",
}
#: ... when it leads or cannot be told from the leader
COMPUTING_LEADS = {
    "poll": "one thread serves one connection at a time with nothing to switch or schedule, "
    "which is cheapest when there is little to overlap",
    "epoll": "one thread woken by one epoll call serves every connection, with no thread "
    "switches under the GIL",
    "threaded": "each connection's thread blocks in the kernel and wakes straight into its "
    "request, with no event-loop bookkeeping in Python",
    "fork": "one fork per user: Locust keeps connections alive, so each user's process is "
    "forked once and then serves it alone, sharing no GIL",
}
#: with one user no wait can overlap another: said of each of our models whose best level on a
#: waiting scenario was one user
ONE_USER = "with one user nothing overlaps, so the CPU each request costs decides"
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
#: peers whose own sentence names a cost: one that leads, or ties the leader, is said to despite it
PEERS_TRAIL = frozenset({"werkzeug-base", "werkzeug-forking", "gunicorn-sync"})


def reason(
    record: dict, leads: bool = True, waiting: bool | None = None, first: bool = False
) -> str:
    """One sentence: why this server lands where it does on this scenario. ``leads``: it ranks
    first or cannot be told from the first; ``first``: it ranks first; ``waiting``: the
    scenario's requests wait on something (default: known for our scenarios, else no)."""
    if record.get("scenario") == "cpu":
        return WORKING
    if waiting is None:
        waiting = record.get("scenario") in WAITING_SCENARIOS
    server, model = record.get("server"), record.get("model")
    if server in PEERS:
        sentence = PEERS[server][waiting]
        if not leads or server not in PEERS_TRAIL:
            return sentence
        return (
            f"{sentence}, yet it led"
            if first
            else f"{sentence}, yet its gap to the leader is not sure"
        )
    if waiting and record.get("users") == 1 and model in WAITING:
        return ONE_USER
    trailing, leading = (WAITING, WAITING_LEADS) if waiting else (COMPUTING, COMPUTING_LEADS)
    sentence = leading.get(model) if leads else None
    return sentence or trailing.get(model, "")
