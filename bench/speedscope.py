"""py-spy's speedscope files: which functions a sampled process spent its time in.

py-spy writes one sampled profile per process and thread; each sample is a stack of indices into
a shared frame table, root first, with a weight (seconds). Frames without a file are py-spy's own
``process N`` roots. Reading one needs nothing but the file, so what measures and what reports
can both use it.
"""

from __future__ import annotations

import json
import os
import sysconfig
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

#: how many functions a summary keeps by default
TOP_N = 8
#: calls in which a server waits for its sockets rather than works: (function, file ending). A
#: thread woken there is sampled as running until it gets a CPU, so on a busy machine these rows
#: would lead every profile; they are counted apart from the ranking of the work
WAITING_CALLS = (
    # epoll_wait: the loop calls epoll's own bound poll, a C method, so py-spy charges the wait to
    # the loop's turn itself; the turn's few statements of dispatch are counted with it
    ("IOLoop.start", "servers/ioloop.py"),
    ("_PollLikeSelector.select", "selectors.py"),  # poll(2): the iterative model between clients
    ("receive", "servers/base.py"),  # a blocking recv on a kept-alive connection
)


@dataclass
class FunctionCost:
    """One function's share of a profile's samples."""

    #: the function's qualified name, as py-spy reports it
    function: str
    #: its source file, shortened by :func:`short_path`
    file: str
    #: the line its definition starts on
    line: int
    #: percent of samples in which it was the running function
    self_pct: float
    #: percent of samples in which it was anywhere on the stack
    total_pct: float


@dataclass
class ProfileSummary:
    """What a speedscope profile says: how much was sampled and the costliest functions."""

    #: samples over all processes and threads in which Python ran
    samples: int
    #: the functions by self time, costliest first, as shares of the samples that were not
    #: waiting for a socket
    functions: list[FunctionCost]
    #: percent of the samples whose running function was one of WAITING_CALLS
    waiting_pct: float = 0.0


def short_path(file: str) -> str:
    """A source file as a reader knows it: within site-packages, the stdlib, or this checkout."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    roots = (sysconfig.get_paths()["stdlib"], str(Path(__file__).resolve().parents[1]))
    for root in roots:
        if file.startswith(root + os.sep):
            return file[len(root) + 1 :]
    return file


def is_waiting(name: str, file: str) -> bool:
    """Whether a sample running ``name`` in ``file`` is a server waiting for its sockets."""
    return any(name == call and file.endswith(ending) for call, ending in WAITING_CALLS)


def read_profile(speedscope: Path, limit: int = TOP_N) -> ProfileSummary:
    """Rank the functions of a py-spy speedscope file by self time.

    Every thread and process of the file counts, each sample by its weight; a sample's leaf is its
    running function, and a function counts once per sample towards its total however deep it
    recurs. py-spy's ``process N`` root frames (no file) are bookkeeping and left out. Samples
    waiting in one of WAITING_CALLS are counted as ``waiting_pct`` and the ranking's shares are
    of the rest: what the server did when it worked.
    """
    document = json.loads(speedscope.read_text())
    frames = [(f["name"], f.get("file") or "", f.get("line") or 0)
              for f in document["shared"]["frames"]]  # fmt: skip
    self_weight: Counter = Counter()
    total_weight: Counter = Counter()
    stacks = [
        ([frames[index] for index in stack if frames[index][1]], sample_weight)
        for profile in document["profiles"]
        for stack, sample_weight in zip(profile["samples"], profile["weights"], strict=True)
    ]
    stacks = [(keys, sample_weight) for keys, sample_weight in stacks if keys]
    waits = [is_waiting(*keys[-1][:2]) for keys, _ in stacks]
    # a profile that only ever waited is ranked whole, so it still shows where it waited
    ranked_waits = all(waits)
    samples, weight, waiting = len(stacks), 0.0, 0.0
    for (keys, sample_weight), waits_here in zip(stacks, waits, strict=True):
        if waits_here and not ranked_waits:
            waiting += sample_weight
            continue
        weight += sample_weight
        self_weight[keys[-1]] += sample_weight
        for key in set(keys):
            total_weight[key] += sample_weight
    functions = [
        FunctionCost(name, short_path(file), line, 100 * self_w / weight,
                     100 * total_weight[(name, file, line)] / weight)
        for (name, file, line), self_w in self_weight.most_common(limit)
    ]  # fmt: skip
    if ranked_waits and stacks:
        return ProfileSummary(samples, functions, 100.0)
    everything = weight + waiting
    return ProfileSummary(samples, functions, 100 * waiting / everything if everything else 0.0)
