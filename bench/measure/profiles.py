"""Run profiles, declared in one place: which servers, scenarios (``bench.catalogue``) and user
levels make up a run and how long each cell lasts. Nothing here imports Locust or measures
anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.catalogue import SCENARIOS
from bench.serving.spec import MODELS


@dataclass(frozen=True)
class Part:
    """A block of the matrix: every server × scenario × user level, serving one app."""

    #: server names from bench.serving.registry; empty in a profile's peers part (chosen by --peers)
    servers: tuple[str, ...]
    scenarios: tuple[str, ...]
    users: tuple[int, ...]
    #: key of APPS
    app: str = "app"


#: offered loads of a sweep, as fractions of the capacity a server showed in the closed loop
OFFERED_FRACTIONS = (0.25, 0.50, 0.75, 0.90, 1.00, 1.10)
#: the quick run's four: light load, half, just below and just past capacity (where the knee is);
#: two fewer steps keep `tox -e bench` within its 8 minutes
QUICK_FRACTIONS = (0.25, 0.50, 0.90, 1.10)


@dataclass(frozen=True)
class Sweep:
    """Open-loop cells after the closed-loop ones: each of our servers × scenario at constant
    arrival rates, as fractions of the highest requests/s its closed-loop cells of the same run
    measured for that scenario (the framework app)."""

    scenarios: tuple[str, ...]
    #: the bound on requests in flight: Locust users, each one connection
    users: int
    warmup_s: float
    duration_s: float
    #: the promised wall-time ceiling of the sweep, checked by tests against sweep_seconds
    budget_s: float
    fractions: tuple[float, ...] = OFFERED_FRACTIONS
    servers: tuple[str, ...] = MODELS


@dataclass(frozen=True)
class Profile:
    name: str
    #: the cells of our servers
    parts: tuple[Part, ...]
    #: the cells of peer servers and the null reference; its servers come from --peers
    peers: Part | None
    #: seconds of load before measuring starts (excluded: connections, caches, allocator warm up)
    warmup_s: float
    #: seconds measured per repeat
    duration_s: float
    repeats: int
    #: the promised wall-time ceiling of the load part, checked by tests against estimate_seconds
    budget_s: float
    #: what ``--peers`` means when it is not given: a word of bench.serving.peers.PEER_CHOICES,
    #: or NAME,...
    default_peers: str = "all"
    #: latency against offered load, open loop; None: closed-loop cells only
    sweep: Sweep | None = None
    #: sample every server's stacks in one extra window per scenario (``--profile-servers``)
    profile_servers: bool = False
    #: measure the cells of every gap the first look calls sure once more at the end, from a new
    #: server start (``bench.measure.secondlook``; ``--second-look``)
    second_look: bool = True


#: seconds a cell costs beyond its load: server start, probe and stop
CELL_OVERHEAD_S = 1.0
#: seconds a repeat costs beyond warm-up + duration: Locust's start-up (gevent import) and exit,
#: with a margin for a busy machine
REPEAT_OVERHEAD_S = 1.5

PROFILES = {
    profile.name: profile
    for profile in (
        Profile(
            "smoke",
            parts=(
                Part(MODELS, ("plaintext", "fortunes"), (8,)),
                Part(MODELS, ("plaintext",), (8,), app="raw"),
            ),
            # the null server is what `compare` divides our servers' CPU per request by: it does
            # not share our HTTP layer, so a slower layer is not cancelled out
            peers=Part((), ("plaintext",), (8,)),
            default_peers="null",
            warmup_s=1.0,
            # 10 per-second samples a cell: enough for the Mann-Whitney test of the load rows
            # (5 a side is its floor) with a margin for a second lost at either end
            duration_s=10.0,
            repeats=1,
            budget_s=180,
            # a check that everything runs, in about three minutes: its gaps rest on one
            # server start each, and the report says so
            second_look=False,
        ),
        Profile(
            "quick",
            parts=(
                Part(MODELS, ("plaintext", "fortunes", "io", "cpu", "session"), (1, 16)),
                Part(MODELS, ("plaintext",), (64,)),
                Part(MODELS, ("plaintext",), (16,), app="raw"),
            ),
            # the peers on plaintext, where the server is most of the cost; on fortunes (and in
            # an io sweep, where poll and epoll cannot fill a step) only in full: with them and
            # the second look a quick run overran its time (docs/measurements.md)
            peers=Part((), ("plaintext",), (16,)),
            # werkzeug's development servers only with --peers all (and in full): their cells,
            # and their gaps that the second look confirms, would cost a minute and a half
            default_peers="production",
            # half a second warms connections and caches (the server is started and probed
            # before it); six seconds is the least the verdict tests a gap on (it allows for the
            # per-second rates' autocorrelation), so a quick run can call a gap sure
            warmup_s=0.5,
            duration_s=6.0,
            repeats=1,
            budget_s=450,
            sweep=Sweep(
                ("plaintext",),
                users=32,
                warmup_s=0.5,
                duration_s=1.5,
                budget_s=90,
                fractions=QUICK_FRACTIONS,
            ),
        ),
        Profile(
            "full",
            parts=(
                Part(MODELS, tuple(SCENARIOS), (1, 4, 16, 64, 256)),
                Part(MODELS, ("plaintext", "json"), (1, 16, 64), app="raw"),
            ),
            peers=Part((), ("plaintext", "fortunes", "io"), (1, 16, 64)),
            warmup_s=3.0,
            duration_s=10.0,
            repeats=3,
            budget_s=3 * 3600,
            sweep=Sweep(tuple(SCENARIOS), users=64, warmup_s=1.0, duration_s=5.0, budget_s=1500),
            profile_servers=True,
        ),
    )
}


def cell_seconds(warmup_s: float, duration_s: float, repeats: int) -> float:
    """Expected wall time of one cell: what the progress bar's ETA and the budget check use."""
    return CELL_OVERHEAD_S + repeats * (warmup_s + duration_s + REPEAT_OVERHEAD_S)


def estimate_seconds(profile: Profile) -> float:
    """Expected wall time of a profile's own cells (peers excluded: they depend on --peers),
    with the extra sampled window per server, app and scenario when it profiles them."""
    cells = sum(len(p.servers) * len(p.scenarios) * len(p.users) for p in profile.parts)
    seconds = cells * cell_seconds(profile.warmup_s, profile.duration_s, profile.repeats)
    if profile.profile_servers:
        sampled = {(s, p.app, sc) for p in profile.parts for s in p.servers for sc in p.scenarios}
        seconds += len(sampled) * (profile.warmup_s + profile.duration_s + REPEAT_OVERHEAD_S)
    return seconds


def sweep_seconds(sweep: Sweep) -> float:
    """Expected wall time of a sweep: per server and scenario one server start and one Locust
    run whose steps are the offered loads, each a warm-up and a window."""
    steps = len(sweep.fractions) * (sweep.warmup_s + sweep.duration_s)
    return len(sweep.servers) * len(sweep.scenarios) * (CELL_OVERHEAD_S + REPEAT_OVERHEAD_S + steps)
