"""How sure a gap between two cells is: whether the leader would stay ahead on a repeat.

The verdict (``bench.analysis.verdict``) ranks servers; this module judges each gap to the leader
from the cells' rates, per CPU. With three repeats or more a side, Welch's t-test over the
repeats' rates; with fewer, over batch means of the per-second rates (``bench.analysis.stats``),
because consecutive seconds of one window resemble each other and would overstate the evidence if
counted as independent. A run that looks twice (``bench.measure.secondlook``) tests each look on
its own and asks both to agree, and the two looks to stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.analysis import stats

#: a gap is called sure below this p
ALPHA = 0.05
#: from this many repeats a side, the test is over the repeats' rates (each a whole window)
REPEATS_FOR_TEST = 3
#: with fewer repeats, the test needs this many seconds of per-second rates a side: a shorter
#: window cannot see how the machine drifts between cells measured minutes apart, and gaps its
#: few seconds called sure reversed in the next identical run
SECONDS_TO_TEST = 6
#: a gap the first look calls sure with the leader this many times as fast per CPU needs no second
#: look: the two looks of a cell, each a server start of its own, have moved apart by less than
#: this, nearly always by far less (docs/measurements.md), so for such a gap to close the leader
#: would have to slow and the other speed up, at once, by more than any look has moved a cell
WIDE_GAP = 3.0


def per_cpu(record: dict) -> float | None:
    """Requests/s per CPU: of the budget where there is one, else of the CPU the server used."""
    if record.get("rps_per_cpu") is not None:
        return record["rps_per_cpu"]
    cost = record.get("cpu_s_per_1k")  # CPU-seconds per 1,000 requests
    return 1000 / cost if cost else None


@dataclass(frozen=True)
class Evidence:
    """Whether a gap to the leader would survive a repeat, and on what that rests."""

    #: True: the leader is ahead beyond chance; False: it is not; None: nothing to test with
    sure: bool | None
    #: Welch's two-sided p, None without a test
    p: float | None
    #: what was tested ("3 repeats a side", "4 and 5 batch means of 2 s"), or why nothing was
    basis: str


def scaled(values: list[float], record: dict) -> list[float]:
    """Requests/s values of a cell, per CPU like its median."""
    scale = per_cpu(record) / record["rps"] if record.get("rps") else 0.0
    return [value * scale for value in values]


def gap_evidence(leader: dict, other: dict, looks: int = 1) -> Evidence:
    """Is ``leader`` ahead of ``other`` by more than a repeat would change? Tested on each look
    (``look_evidence``); in a run that looks twice, sure only when both looks of both cells say
    so, with the larger p (a gap must pass both tests, so the larger p bounds the chance that it
    passed by luck), and when the looks stay apart (``looks_apart``)."""
    first = look_evidence(of_look(leader, 1), of_look(other, 1))
    if looks < 2 or not first.sure:
        return first
    if not looked_twice(other) and wide_apart(leader, other):
        return Evidence(True, first.p, f"{first.basis}; {wide_ratio(leader, other):.1f}× "
                        f"apart, too wide a gap for a second look to close")  # fmt: skip
    if not (looked_twice(leader) and looked_twice(other)):
        return Evidence(None, first.p, f"sure on the first look (p = {first.p:.3f}), not "
                        "measured a second time")  # fmt: skip
    second = look_evidence(of_look(leader, 2), of_look(other, 2))
    if second.sure is None:
        return Evidence(None, first.p, f"second look: {second.basis}")
    p = max(first.p, second.p)
    if not second.sure:
        return Evidence(False, p, f"sure on the first look ({first.basis}), not on a second "
                        f"({second.basis})")  # fmt: skip
    if not looks_apart(leader, other):
        return Evidence(False, p, f"ahead on both looks, but they overlap: {spread(leader)} "
                        f"against {spread(other)} req/s per CPU")  # fmt: skip
    return Evidence(True, p, f"{first.basis}, and again on a second look")


def looks_apart(leader: dict, other: dict) -> bool:
    """The leader's slower look beats the other's faster one. Each look is a server start of its
    own, minutes apart; the two looks of a cell show how far a new start and the machine's drift
    move it, and a gap smaller than that is one a rerun can reverse, however steady each
    window's seconds were."""
    return min(look_rates(leader)) > max(look_rates(other))


def wide_apart(leader: dict, other: dict) -> bool:
    """The leader's slowest look is WIDE_GAP times the other's fastest, per CPU: a gap no second
    look needs to confirm (its first look must still call it sure)."""
    return wide_ratio(leader, other) >= WIDE_GAP


def wide_ratio(leader: dict, other: dict) -> float:
    """The leader's slowest look over the other's fastest, per CPU (a record without per-repeat
    rates counts as one look at its median)."""
    slowest = min(look_rates(leader) or [per_cpu(leader) or 0.0])
    fastest = max(look_rates(other) or [per_cpu(other) or 0.0])
    return slowest / fastest if fastest else 0.0


def look_rates(record: dict) -> list[float]:
    """Each look's requests/s per CPU (the mean of its repeats)."""
    rates = [scaled(of_look(record, look)["repeat_rps"], record) for look in (1, 2)]
    return [sum(values) / len(values) for values in rates if values]


def spread(record: dict) -> str:
    rates = look_rates(record)
    return f"{record['server']} {min(rates):,.0f}–{max(rates):,.0f}"


def look_evidence(leader: dict, other: dict) -> Evidence:
    """One look's test: over the repeats' rates with REPEATS_FOR_TEST or more a side, else over
    batch means of the per-second rates. Both sides are scaled to per CPU, each by its own
    cell's factor."""
    repeats = [leader.get("repeat_rps") or [], other.get("repeat_rps") or []]
    if min(map(len, repeats)) >= REPEATS_FOR_TEST:
        test = stats.welch(scaled(repeats[0], leader), scaled(repeats[1], other))
        return judged(test, f"{len(repeats[0])} and {len(repeats[1])} repeats")
    series = [scaled(concatenated(leader), leader), scaled(concatenated(other), other)]
    if not min(map(len, series)):
        return Evidence(None, None, "no per-second rates to test with")
    if min(map(len, series)) < SECONDS_TO_TEST:
        return Evidence(None, None, f"{min(map(len, series))} s of rates a side, too short to see "
                        f"the machine's drift (--duration {SECONDS_TO_TEST} or "
                        f"--repeats {REPEATS_FOR_TEST})")  # fmt: skip
    batched = stats.batch_test(*series)
    first, second = batched.batches
    return judged(batched.welch, f"{first} and {second} batch means of {batched.length} s")


def of_look(record: dict, look: int) -> dict:
    """``record`` with only the rates of its repeats of ``look`` (a record without looks is all
    first look), scaled per CPU like the whole cell."""
    rates, seconds = record.get("repeat_rps") or [], record.get("rps_seconds") or []
    looks = record.get("repeat_looks") or [1] * max(len(rates), len(seconds))
    keep = [index for index, each in enumerate(looks) if each == look]
    return {**record, "repeat_rps": [rates[i] for i in keep if i < len(rates)],
            "rps_seconds": [seconds[i] for i in keep if i < len(seconds)]}  # fmt: skip


def looked_twice(record: dict) -> bool:
    return 2 in (record.get("repeat_looks") or [])


def judged(test: stats.Welch, basis: str) -> Evidence:
    """Sure when the leader is ahead and p < ALPHA. A small p the other way round says so: the
    leader ranks first on all its looks together, while this look had it behind."""
    if test.p < ALPHA and test.t <= 0:
        return Evidence(False, test.p, f"{basis}, which put the two the other way round")
    return Evidence(test.p < ALPHA and test.t > 0, test.p, basis)


def concatenated(record: dict) -> list[float]:
    return [rate for repeat in record.get("rps_seconds") or [] for rate in repeat]
