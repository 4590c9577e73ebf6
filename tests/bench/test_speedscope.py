"""The speedscope reader on a file py-spy recorded and on documents made to test one rule each."""

from __future__ import annotations

import ast
import json
import selectors
from pathlib import Path

import pytest

from bench.speedscope import WAITING_CALLS, FunctionCost, read_profile, short_path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "bench" / "fixtures" / "speedscope"


def test_read_profile_ranks_a_recorded_file_by_self_time():
    """spin.py spends about 2/3 of its time in leaf (three descend frames deep), 1/3 in branch."""
    summary = read_profile(FIXTURES / "spin.speedscope.json")
    assert summary.samples == 66
    assert summary.functions == [
        FunctionCost("leaf", "/tmp/pyspy/fx/spin.py", 5, pytest.approx(100 * 45 / 66),
                     pytest.approx(100 * 45 / 66)),
        FunctionCost("branch", "/tmp/pyspy/fx/spin.py", 16, pytest.approx(100 * 21 / 66),
                     pytest.approx(100 * 21 / 66)),
    ]  # fmt: skip
    assert read_profile(FIXTURES / "spin.speedscope.json", limit=1).functions[0].function == "leaf"


def speedscope(frames: list[tuple[str, str]], samples: list[list[int]], weights: list[float]):
    return {
        "shared": {"frames": [{"name": n, "file": f, "line": 1} for n, f in frames]},
        "profiles": [{"type": "sampled", "samples": samples, "weights": weights}],
    }


def test_read_profile_counts_recursion_once_weighs_samples_and_skips_process_frames(tmp_path):
    frames = [("process 1", ""), ("main", "app.py"), ("walk", "app.py"), ("parse", "app.py")]
    document = speedscope(
        frames,
        samples=[[0, 1, 2, 2, 2, 3], [0, 1, 2], [0]],  # the last: no Python frame at all
        weights=[0.03, 0.01, 0.5],
    )
    path = tmp_path / "made.speedscope.json"
    path.write_text(json.dumps(document))
    summary = read_profile(path)
    assert summary.samples == 2
    assert [(c.function, c.self_pct, c.total_pct) for c in summary.functions] == [
        ("parse", pytest.approx(75.0), pytest.approx(75.0)),
        ("walk", pytest.approx(25.0), pytest.approx(100.0)),
    ]


def test_short_path_names_files_as_readers_know_them():
    assert short_path(str(REPO_ROOT / "servers" / "http.py")) == "servers/http.py"
    site = "/venv/lib/python3.11/site-packages/werkzeug/routing/map.py"
    assert short_path(site) == "werkzeug/routing/map.py"
    assert short_path("<frozen runpy>") == "<frozen runpy>"


def test_samples_waiting_for_a_socket_are_counted_apart_from_the_ranking(tmp_path):
    frames = [
        ("serve", "/src/servers/ioloop.py"),
        ("IOLoop.start", "/src/servers/ioloop.py"),
        ("parse", "/src/servers/http.py"),
        ("IOLoop.start", "/src/other/poller.py"),
    ]
    # three samples waiting in our loop's epoll_wait, one parsing, and one in a function of the
    # same name elsewhere: only the loop's own wait is waiting
    document = speedscope(frames, [[0, 1], [0, 1], [0, 1], [0, 2], [0, 3]], [1.0] * 5)
    path = tmp_path / "waiting.speedscope.json"
    path.write_text(json.dumps(document))
    summary = read_profile(path)
    assert summary.samples == 5 and summary.waiting_pct == pytest.approx(60.0)
    assert [(cost.function, cost.self_pct) for cost in summary.functions] == [
        ("parse", pytest.approx(50.0)),
        ("IOLoop.start", pytest.approx(50.0)),
    ]


@pytest.mark.parametrize("call, ending", WAITING_CALLS)
def test_every_waiting_call_names_a_function_that_exists(call, ending):
    # py-spy names a method Class.method; a waiting call renamed or inlined by a change to the
    # servers would silently count its waits as work
    module = REPO_ROOT / ending if ending.startswith("servers/") else Path(selectors.__file__)
    tree = ast.parse(module.read_text())
    names = {f"{cls.name}.{fn.name}" for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef)
             for fn in cls.body if isinstance(fn, ast.FunctionDef)}  # fmt: skip
    names |= {fn.name for fn in tree.body if isinstance(fn, ast.FunctionDef)}
    assert call in names


def test_a_profile_that_only_waited_is_ranked_whole_to_show_where(tmp_path):
    frames = [("serve", "/src/servers/base.py"), ("receive", "/src/servers/base.py")]
    path = tmp_path / "idle.speedscope.json"
    path.write_text(json.dumps(speedscope(frames, [[0, 1], [0, 1]], [1.0, 1.0])))
    summary = read_profile(path)
    assert summary.waiting_pct == 100.0
    assert [cost.function for cost in summary.functions] == ["receive"]
