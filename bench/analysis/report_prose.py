"""The report's prose: a paragraph per scenario saying who led, at what CPU cost, how close the
race was, and why, in sentences said only when the numbers show them. The thresholds that decide
when a sentence is said are ``bench.flags`` constants."""

from __future__ import annotations

from bench import flags
from bench.analysis.evidence import WIDE_GAP
from bench.analysis.reasons import WAITING
from bench.analysis.story import cell_fields
from bench.catalogue import IO_WAIT_MS


def fmt_rps(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} req/s"


def trusted(record: dict) -> bool:
    return record.get("rps") is not None and not flags.UNRANKED & set(record["flags"])


def at_level(records: list[dict], users: int) -> list[dict]:
    return [r for r in records if r["users"] == users and trusted(r)]


def compared_level(records: list[dict]) -> int | None:
    """The highest user level at which at least two servers have trusted numbers."""
    levels = sorted({r["users"] for r in records}, reverse=True)
    return next((level for level in levels if len(at_level(records, level)) >= 2), None)


def users_text(users: int) -> str:
    return f"{users} user" if users == 1 else f"{users} users"


def leader_sentence(records: list[dict], users: int) -> str:
    ranked = sorted(at_level(records, users), key=lambda r: r["rps"], reverse=True)
    leader, others = ranked[0], ranked[1:]
    comparisons = ", ".join(
        f"{r['server']} {fmt_rps(r['rps'])} ({r['rps'] / leader['rps']:.2f}×)" for r in others
    )
    sentence = (f"At {users_text(users)} {leader['server']} led with {fmt_rps(leader['rps'])}; "
                f"then {comparisons}.")  # fmt: skip
    bound = [r["server"] for r in ranked if flags.GENERATOR_BOUND in r["flags"]]
    if leader["server"] in bound:
        sentence += (f" Locust was the bottleneck for {', '.join(bound)}: their order is "
                     "Locust's, not the servers'.")  # fmt: skip
    return sentence


def cpu_cost_sentence(records: list[dict], users: int) -> str:
    """When Locust set the pace, rank by what its ceiling does not hide: server CPU per request."""
    level = at_level(records, users)
    if not any(flags.GENERATOR_BOUND in r["flags"] for r in level):
        return ""
    costed = sorted((r for r in level if r.get("cpu_s_per_1k")), key=lambda r: r["cpu_s_per_1k"])
    if len(costed) < 2:
        return ""
    cheapest, dearest = costed[0], costed[-1]
    # CPU-seconds per 1,000 requests are milliseconds per request
    listing = ", ".join(f"{r['server']} {r['cpu_s_per_1k']:.3g} ms" for r in costed)
    return (f"Server CPU per request does not depend on how fast Locust could send, so it ranks "
            f"them where requests/s cannot: {listing}; {dearest['server']} spent "
            f"{dearest['cpu_s_per_1k'] / cheapest['cpu_s_per_1k']:.1f}× what "
            f"{cheapest['server']} did per request.")  # fmt: skip


def null_sentence(references: list[dict], records: list[dict]) -> str:
    """How close the leader came to the null server (the most this load generator can send), at
    the highest user level where both have trusted numbers."""
    # under a CPU budget the null server is held to it too: its rate no longer bounds Locust
    nulls = [r for r in references if r["server"] == "null" and trusted(r) and r["rps"]
             and r.get("budget_cpus") is None]  # fmt: skip
    nulls = [r for r in nulls if at_level(records, r["users"])]
    if not nulls:
        return ""
    null = max(nulls, key=lambda r: r["users"])
    users = null["users"]
    leader = max(at_level(records, users), key=lambda r: r["rps"])
    return (f"The null server (a canned answer, no app) took {fmt_rps(null['rps'])} at "
            f"{users_text(users)}, about the most this Locust setup can send: {leader['server']} "
            f"reached {leader['rps'] / null['rps']:.0%} of it.")  # fmt: skip


def close_race_sentence(records: list[dict], users: int) -> str:
    """Say so when our models finished too close together for one ranking to mean much."""
    ours = [r for r in at_level(records, users) if r["kind"] == "ours"]
    if len(ours) < 2:
        return ""
    rates = [r["rps"] for r in ours]
    spread = (max(rates) - min(rates)) / max(rates)
    if spread >= flags.CLOSE_RACE_SPREAD:
        return ""
    repeats = min(r["repeats"] for r in ours)
    advice = " with one repeat each, the order is within noise" if repeats < 2 else ""
    return f"Our {len(ours)} models were within {spread:.0%} of each other here{advice}."


def flags_sentence(records: list[dict]) -> str:
    flagged = [r for r in records if r["flags"]]
    if not flagged:
        return "No cell was flagged."
    listed = "; ".join(f"{r['server']} at {users_text(r['users'])}: {', '.join(r['flags'])}"
                       for r in flagged)  # fmt: skip
    notes = []
    if any(flags.GENERATOR_BOUND in r["flags"] for r in flagged):
        notes.append("generator-bound figures are lower bounds: Locust, not the server, was busy")
    if any(flags.UNRANKED & set(r["flags"]) for r in flagged):
        notes.append("failed, erroring or too-few cells are left out of the comparison above")
    note = "; ".join(notes)
    return f"Flags — {listed}. " + (note[0].upper() + note[1:] + "." if note else "")


def by_model(records: list[dict], model: str, users: int) -> dict | None:
    """Our server of ``model`` at ``users`` with trusted numbers."""
    return next((r for r in at_level(records, users) if r["kind"] == "ours"
                 and r["model"] == model), None)  # fmt: skip


def io_explanation(records: list[dict], users: int) -> list[str]:
    """Why serial models sit at 1000/wait req/s on /io, stated only when the numbers show it."""
    ceiling = 1000 / IO_WAIT_MS
    sentences = []
    for model in ("poll", "epoll"):
        why = WAITING[model]
        record = by_model(records, model, users)
        if record and users > 1 and record["rps"] <= flags.SERIAL_CEILING_MARGIN * ceiling:
            sentences.append(
                f"{model} stayed at {fmt_rps(record['rps'])}, the serial ceiling of "
                f"1000 ms / {IO_WAIT_MS} ms = {ceiling:.0f} req/s: {why}."
            )
    for model in ("threaded", "fork"):
        record = by_model(records, model, users)
        if record and record["rps"] > flags.OVERLAP_FACTOR * ceiling:
            sentences.append(
                f"{model} overlapped the waits: {fmt_rps(record['rps'])} of an ideal "
                f"{users} × {ceiling:.0f} = {users * ceiling:.0f} req/s, because a waiting "
                f"{'thread' if model == 'threaded' else 'process'} does not hold up the others."
            )
    return sentences


def fast_path_explanation(records: list[dict], users: int) -> list[str]:
    """epoll vs threaded and the price of fork, on cheap endpoints."""
    sentences = []
    epoll, threaded = by_model(records, "epoll", users), by_model(records, "threaded", users)
    clear_lead = epoll and threaded and epoll["rps"] > flags.CLEAR_LEAD * threaded["rps"]
    if clear_lead and flags.GENERATOR_BOUND not in epoll["flags"] + threaded["flags"]:
        sentences.append(
            f"epoll served {epoll['rps'] / threaded['rps']:.2f}× threaded's requests/s: with a "
            "handler this short, one thread woken by one epoll call beats handing every "
            "connection to its own thread and switching between them under the GIL."
        )
    fork = by_model(records, "fork", users)
    if fork and threaded and fork.get("server_rss_mb") and threaded.get("server_rss_mb"):
        sentences.append(
            f"fork ran up to {fork['server_procs']:.0f} processes with "
            f"{fork['server_rss_mb']:.0f} MB of summed RSS (an upper bound: pages shared after "
            f"fork count in every process) against threaded's {threaded['server_rss_mb']:.0f} MB: "
            f"it pays a fork and a process per connection; Locust keeps connections alive, so "
            f"that price is paid once per user, not per request "
            f"({fork['rps'] / threaded['rps']:.2f}× threaded's requests/s here)."
        )
    return sentences


def cpu_explanation(records: list[dict], users: int) -> list[str]:
    busy = [
        r
        for r in at_level(records, users)
        if (r.get("server_cpu_pct") or 0) >= flags.SATURATED_CPU_PCT
    ]
    if not busy:
        return []
    names = ", ".join(f"{r['server']} {r['server_cpu_pct']:.0f}%" for r in busy)
    return [f"The server core was nearly saturated ({names} CPU): the work itself, not the "
            "concurrency model, set the limit — on one core, threads and processes only "
            "take turns."]  # fmt: skip


def scenario_paragraph(records: list[dict], scenario: str, missing: list[str] = ()) -> str:
    """What this run showed for one scenario of the framework app, from its numbers; with cells
    of the scenario ``missing`` (planned, never measured) it ranks nothing."""
    chosen = [r for r in records if r["scenario"] == scenario and r["app"] == "app"]
    records = [r for r in chosen if r["kind"] != "reference"]
    references = [r for r in chosen if r["kind"] == "reference"]
    if not records:
        return ""
    absent = [name for name in missing if cell_fields(name)["scenario"] == scenario]
    if absent:
        return (f"Not ranked: the run ended before measuring {', '.join(absent)}, and a ranking "
                "without them would crown whichever servers happened to run. "
                + flags_sentence(chosen))  # fmt: skip
    users = compared_level(records)
    if users is None:
        return ("No two servers produced trusted numbers at the same user level, so nothing is "
                "compared. " + flags_sentence(chosen))  # fmt: skip
    sentences = [leader_sentence(records, users), cpu_cost_sentence(records, users)]
    sentences.append(null_sentence(references, records))
    sentences.append(close_race_sentence(records, users))
    if scenario in ("io", "mixed"):
        sentences += io_explanation(records, users)
    if scenario in ("plaintext", "json", "fortunes", "session"):
        sentences += fast_path_explanation(records, users)
    if scenario == "cpu":
        sentences += cpu_explanation(records, users)
    sentences.append(flags_sentence(chosen))
    return " ".join(sentence for sentence in sentences if sentence)


def looks_sentence(meta: dict) -> str:
    """What the verdict says of how many looks its sure gaps rest on."""
    if meta.get("looks", 1) < 2:
        return ("This run looked once: a gap it calls sure rests on one server start per cell, "
                "and a new start can serve a cell at another speed (--second-look confirms each "
                "sure gap from a second start).")  # fmt: skip
    count = len(meta.get("looked_again") or [])
    if not count:
        return ("This run took a second look, but its first look called no gap sure, so no cell "
                "was measured again.")  # fmt: skip
    return (f"This run looked twice: {count} cell{'s' * (count != 1)} (the leader's and those "
            "of every server the first look called surely behind it) were measured again at its "
            "end, each from a new server start, in the reverse of the run's order, and a gap is "
            "sure only when both looks call it and the leader's slower look still beats the "
            f"other's faster one. A server {WIDE_GAP:g} times behind or more was not measured "
            "again: no second look has moved a cell that far.")  # fmt: skip
