"""The honesty flags of a load cell: their names, thresholds, letters and meanings, in one place.

The runner sets them (``flags_for``), ``analysis/pairs`` adds the null-server bound, and the
report, ``summary.md``, the console and ``compare`` all read the names and the prose from here,
so a threshold changed here changes every sentence that quotes it.
"""

from __future__ import annotations

import math

GENERATOR_BOUND = "generator-bound"
ERRORS = "errors"
FAILED = "failed"
NOISY = "noisy"
LATE = "late"
TOO_FEW = "too-few"

#: Locust at or above this share of the cores it was given measures itself, not the server
GENERATOR_BOUND_SHARE = 0.85
#: a cell this close to the null server's requests/s measures the load generator, not the server
NULL_BOUND_FRACTION = 0.10
#: more failed requests than this and the cell's numbers describe errors
ERROR_RATIO = 0.01
#: more spread than this, (max − min) / median of the repeats' requests/s, and the cell is noisy
NOISY_SPREAD = 0.20
#: an open-loop request that left more than this after its intended send time was late
LATE_GRACE_MS = 5.0
#: more late requests than this share and the generator did not offer the load it was asked to
LATE_RATIO = 0.01
#: a request still unanswered when its window closes counts as failed ("no answer") once it has
#: waited this long, and this many times the slowest answered request of the window: a server
#: that never answers some requests would otherwise lose them from its counts and look clean
UNANSWERED_AFTER_S = 1.0
UNANSWERED_FACTOR = 5
#: fewer completed requests than this in a cell's windows and its rate is mostly chance: a
#: count's own noise, 1/√n, is 10% at 100
MIN_REQUESTS = 100
#: fewer per-second rates than this (whole seconds of window, over all repeats) and there is no
#: spread to judge a gap by: the significance test needs two batches a side
MIN_SECONDS = 3

#: one letter per flag, used on plot points and in the console
LETTERS = {GENERATOR_BOUND: "G", ERRORS: "E", FAILED: "F", NOISY: "N", LATE: "L", TOO_FEW: "T"}
#: what each flag means, in the words of the report, summary.md and the README
MEANINGS = {
    GENERATOR_BOUND: f"Locust used ≥ {GENERATOR_BOUND_SHARE:.0%} of its cores (remote workers: "
    "of theirs), or the cell came "
    f"within {NULL_BOUND_FRACTION:.0%} of the null server's requests/s: the number is only a lower "
    "bound of the server's capacity",
    ERRORS: f"more than {ERROR_RATIO:.0%} of requests failed (wrong status or body, or no answer)",
    FAILED: "the server did not start, died or stopped answering; or an open-loop sweep had no "
    "trusted closed-loop cell to take its offered rates from",
    NOISY: f"requests/s spread (max − min) / median over {NOISY_SPREAD:.0%} across repeats",
    LATE: f"open loop only: more than {LATE_RATIO:.0%} of requests left the generator over "
    f"{LATE_GRACE_MS:g} ms after their intended send time (all connections busy, or Locust "
    "short of CPU), so the offered rate was not fully offered; their latency still counts from "
    "the intended time",
    TOO_FEW: f"fewer than {MIN_REQUESTS} requests or {MIN_SECONDS} whole seconds in the measured "
    "window: too few to rank; the cell's row says how long a window would be enough",
}
#: how generator-bound reads in a run whose servers, the null server included, had a CPU budget
BUDGET_NOTE = (
    f"Under a CPU budget the null server is held to it too, so its requests/s no longer bound "
    f"Locust: only Locust's own CPU (≥ {GENERATOR_BOUND_SHARE:.0%} of its cores) marks a cell "
    f"{GENERATOR_BOUND}."
)
#: flags whose cell has no trustworthy throughput: left out of every ranking
UNRANKED = frozenset({FAILED, ERRORS, TOO_FEW})


def flags_for(
    summary: dict, status: str, generator_cores: int, repeat_count: int, ranked: bool = True
) -> list[str]:
    """The flags of a cell, from its summary alone; ``ranked`` False for an open-loop cell, which
    no ranking reads (its latency needs requests, not seconds)."""
    flags = []
    if generator_bound(summary, generator_cores):
        flags.append(GENERATOR_BOUND)
    if (summary.get("fail_ratio") or 0) > ERROR_RATIO:
        flags.append(ERRORS)
    if status == "failed":
        flags.append(FAILED)
    rps, low, high = summary.get("rps"), summary.get("rps_min"), summary.get("rps_max")
    if repeat_count >= 2 and rps and (high - low) / rps > NOISY_SPREAD:
        flags.append(NOISY)
    if (summary.get("late_ratio") or 0) > LATE_RATIO:
        flags.append(LATE)
    if status == "ok" and too_few(summary, ranked):
        flags.append(TOO_FEW)
    return flags


def shown(names: list[str]) -> str:
    """A cell's flags as every table and the console print them."""
    return ", ".join(names) or "–"


def merged(*records: dict) -> list[str]:
    """The union of the records' flags, in first-seen order."""
    flags: list[str] = []
    for record in records:
        flags += [flag for flag in record.get("flags") or [] if flag not in flags]
    return flags


# --- the report's prose: when a sentence about a scenario is said at all -------------------------

#: our models within this share of the fastest one's requests/s are too close to rank
CLOSE_RACE_SPREAD = 0.10
#: a serial model (poll, epoll) at or under this multiple of the io scenario's serial ceiling
#: stayed at that ceiling
SERIAL_CEILING_MARGIN = 1.3
#: a threaded or forking model over this multiple of the serial ceiling overlapped the waits
OVERLAP_FACTOR = 2.0
#: epoll's requests/s over this multiple of threaded's is a clear lead, worth a sentence
CLEAR_LEAD = 1.10
#: server CPU at or above this percent of one core: the work itself set the limit
SATURATED_CPU_PCT = 80


# --- enough samples to rank -------------------------------------------------------------------


def too_few(summary: dict, ranked: bool = True) -> bool:
    """Fewer requests, or for a cell to be ranked fewer per-second rates, than that needs; False
    when the summary does not count them (a run written before they were counted)."""
    requests, seconds = summary.get("requests"), summary.get("seconds")
    if requests is None or seconds is None:
        return False
    return requests < MIN_REQUESTS or ranked and seconds < MIN_SECONDS


def seconds_needed(rps: float | None, repeats: int = 1) -> int | None:
    """The shortest window (whole seconds, per repeat) that would hold MIN_REQUESTS requests and
    MIN_SECONDS seconds at the rate ``rps`` this cell was measured at; None when it completed no
    request (its first requests took longer than the window: no rate to scale from).

    >>> seconds_needed(0.33)  # one request in a 3-s window
    304
    """
    if not rps:
        return None
    repeats = max(1, repeats)
    return max(math.ceil(MIN_SECONDS / repeats), math.ceil(MIN_REQUESTS / (rps * repeats)))


def too_few_remedy(summary: dict, repeats: int = 1) -> str:
    """What a too-few cell's row says: its counts, and how long to run instead."""
    requests, seconds = summary.get("requests") or 0, summary.get("seconds") or 0
    counted = f"{requests:,} request{'s' * (requests != 1)} in {seconds} s"
    needed = seconds_needed(summary.get("rps"), repeats)
    if needed is None:
        return f"{counted}: no request finished in the window; run longer (--duration, --warmup)"
    return f"{counted}: run with --duration {needed} or more"


# --- the load generator's CPU -----------------------------------------------------------------


def generator_bound(summary: dict, generator_cores: int) -> bool:
    """Locust at or above GENERATOR_BOUND_SHARE of its CPU: of the cores it was pinned to (its
    process tree, sampled here), or of the one core each worker process can use (its workers'
    own reports, the only reading of workers on other machines)."""
    generator = summary.get("generator_cpu_pct")
    workers = summary.get("workers_cpu_pct")  # the mean worker process's share of its core
    return (generator is not None and generator >= GENERATOR_BOUND_SHARE * 100 * generator_cores
            or workers is not None and workers >= GENERATOR_BOUND_SHARE * 100)  # fmt: skip
