"""Our models beside their real-world peers, and the null server's bound on what a cell can show.

Both functions read summary records (one dict per cell: server, model, kind, app, scenario, users,
rps, p99_ms, flags, ...) and compare only cells of the same run under the same load, so every
ratio here comes from numbers measured side by side.
"""

from __future__ import annotations

from bench.flags import GENERATOR_BOUND, NULL_BOUND_FRACTION, merged
from bench.serving.spec import MODELS

#: each of our models and the real-world servers it is compared with
PAIRS: dict[str, tuple[str, ...]] = {
    "poll": ("werkzeug-base",),
    "threaded": ("werkzeug-threaded", "gunicorn-gthread", "waitress", "granian"),
    "fork": ("werkzeug-forking", "gunicorn-sync"),
    "epoll": ("tornado", "bjoern"),
}
#: peers written in C or Rust: they show how far pure Python is from native code, with no target
NATIVE_PEERS = {"bjoern": "C, libev", "granian": "Rust"}

#: the targets: our requests/s divided by the peer's, same run, same app, one core
TARGETS: dict[tuple[str, str], float] = {
    ("poll", "werkzeug-base"): 1.2,
    ("threaded", "gunicorn-gthread"): 1.0,
    ("threaded", "waitress"): 1.0,
    ("fork", "werkzeug-forking"): 3.0,
    ("epoll", "tornado"): 1.3,
}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


def load_key(record: dict) -> tuple:
    """Cells are comparable when the same app took the same load."""
    return record.get("app"), record["scenario"], record["users"]


def target_verdict(rps_ratio: float | None, target: float | None, ours: dict, peer: dict):
    """Whether the requests/s target is met, and why when the numbers cannot say.

    A generator-bound cell's requests/s is only a lower bound of that server's capacity. Ours
    bound: the true ratio is at least the measured one, so meeting the target still counts, and
    missing it proves nothing. Peer bound: the true ratio may be lower, so nothing is decided.
    """
    if target is None or rps_ratio is None:
        return None, ""
    if GENERATOR_BOUND in (peer.get("flags") or []):
        return None, "undecided: the peer was generator-bound; compare CPU per request"
    if GENERATOR_BOUND in (ours.get("flags") or []):
        if rps_ratio >= target:
            return True, "met by a lower bound (ours was generator-bound)"
        return None, "undecided: ours was generator-bound; compare CPU per request"
    return rps_ratio >= target, "met" if rps_ratio >= target else "missed"


def pair_row(ours: dict, peer: dict) -> dict:
    """One line of the pairs table: our cell against one peer cell under the same load."""
    rps_ratio = ratio(ours.get("rps"), peer.get("rps"))
    target = TARGETS.get((ours["model"], peer["server"]))
    meets_target, target_note = target_verdict(rps_ratio, target, ours, peer)
    if peer["server"] in NATIVE_PEERS:
        target_note = f"native reference ({NATIVE_PEERS[peer['server']]})"
    return {
        "model": ours["model"],
        "ours": ours["server"],
        "peer": peer["server"],
        "app": ours.get("app"),
        "scenario": ours["scenario"],
        "users": ours["users"],
        "ours_rps": ours.get("rps"),
        "peer_rps": peer.get("rps"),
        # above 1: we serve more requests per second
        "rps_ratio": rps_ratio,
        "ours_p99_ms": ours.get("p99_ms"),
        "peer_p99_ms": peer.get("p99_ms"),
        # below 1: our slowest requests are faster
        "p99_ratio": ratio(ours.get("p99_ms"), peer.get("p99_ms")),
        # above 1: the peer burns more server CPU per request; unlike requests/s, this holds
        # when Locust, not the server, set the pace
        "peer_cpu_per_request_ratio": ratio(peer.get("cpu_s_per_1k"), ours.get("cpu_s_per_1k")),
        "target": target,
        "meets_target": meets_target,
        "target_note": target_note,
        "ours_flags": merged(ours),
        "peer_flags": merged(peer),
        "flags": merged(ours, peer),
    }


def pair_rows(records: list[dict]) -> list[dict]:
    """Every (our cell, peer cell) under the same load, in model order, then PAIRS order.

    A peer that was not run has no row; one that ran and failed has a row with no ratio and its
    ``failed`` flag, so the table shows it.
    """
    by_server_and_load = {(record["server"], load_key(record)): record for record in records}
    ours_records = [record for record in records if record.get("kind") == "ours"]
    ours_records.sort(key=lambda record: (MODELS.index(record["model"]), record["users"]))
    rows = []
    for ours in ours_records:
        for peer_name in PAIRS.get(ours["model"], ()):
            peer = by_server_and_load.get((peer_name, load_key(ours)))
            if peer is not None:
                rows.append(pair_row(ours, peer))
    return rows


def apply_null_bound(records: list[dict]) -> None:
    """Flag ``generator-bound`` on every cell within NULL_BOUND_FRACTION of the null server's rps.

    The null server answers any path with the plaintext body, so it is compared per scenario and
    user level, whatever app the cell served; a scenario without a null cell is left alone, and so
    is a null cell under a CPU budget: its rate is then the budget's, not Locust's ceiling.
    """
    null_rps = {
        (record["scenario"], record["users"]): record["rps"]
        for record in records
        if record.get("model") == "null" and record.get("rps") and not record.get("budget_cpus")
    }
    for record in records:
        bound = null_rps.get((record["scenario"], record["users"]))
        if record.get("model") == "null" or not bound or not record.get("rps"):
            continue
        if record["rps"] >= (1 - NULL_BOUND_FRACTION) * bound:
            record["flags"] = merged(record, {"flags": [GENERATOR_BOUND]})
