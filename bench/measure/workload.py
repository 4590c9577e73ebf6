"""What a run serves and how Locust loads it: our apps and scenarios, or the user's.

``--app mypkg.wsgi:app --scenarios myscenarios.py`` swaps both halves of a cell: every server
serves the user's WSGI app, and Locust runs the user's locustfile beside
``bench/measure/instrument.py``. Each user class of that file is one scenario, named after the
class (``VisitorUser`` → ``visitor``). Before a server is put under load the runner waits until
it answers HTTP: without a ``probe`` any well-formed response to ``GET /`` will do (a 404 or a
redirect included: whether the answers are right is the locustfile's job, and its failures are
counted); with ``probe = (path, marker)`` on the class, ``GET path`` must answer 200 with the
marker in the body, and a failed probe's message names it and says how to set it.

Both the app and the locustfile are the user's code, so they are only ever imported in a
subprocess: a broken app or a file with no user class is a one-line :class:`WorkloadError`
before any cell starts.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from bench.catalogue import APPS, SCENARIOS, Scenario
from bench.measure.childenv import REPO_ROOT, child_env
from bench.measure.profiles import Profile

#: our locustfile: one user class per scenario of bench.measure.profiles.SCENARIOS
SCENARIOS_FILE = Path(__file__).resolve().parent / "scenarios.py"
#: what a user class without a ``probe`` attribute is checked with: GET / answers HTTP at all
#: (no marker: any status, any body)
DEFAULT_PROBE = ("/", None)
#: seconds the app import or the locustfile listing may take (a big app imports slowly)
CHECK_TIMEOUT_S = 120
#: imports ``module:attr`` and checks it is callable, as every WSGI server would need
IMPORT_APP = """
import importlib, sys
module_name, _, attr = sys.argv[1].partition(":")
app = getattr(importlib.import_module(module_name), attr or "app")
if not callable(app):
    sys.exit(f"{sys.argv[1]} is a {type(app).__name__}, not a WSGI callable")
"""


class WorkloadError(ValueError):
    """The app does not import or the scenario file has no usable user class; one line."""


@dataclass(frozen=True)
class Workload:
    """The apps a cell can serve and the scenarios (user classes) that can load them."""

    #: app key (the ``app`` of a cell and of a profile part) → WSGI target ``module:attr``
    apps: dict[str, str]
    #: scenario name → Scenario, each naming a user class of ``scenario_file``
    scenarios: dict[str, Scenario]
    #: the locustfile loaded beside instrument.py
    scenario_file: Path
    #: False for the suite's own app and scenarios
    users_own: bool = False

    def profile(self, profile: Profile) -> Profile:
        """``profile`` as it applies here: for a user's workload, every app part loads the user's
        app with all the user's scenarios at the part's user levels; reference-app parts go."""
        if not self.users_own:
            return profile
        names = tuple(self.scenarios)
        parts = tuple(replace(part, scenarios=names) for part in profile.parts if part.app == "app")
        peers = replace(profile.peers, scenarios=names) if profile.peers else None
        sweep = replace(profile.sweep, scenarios=names) if profile.sweep else None
        return replace(profile, parts=parts, peers=peers, sweep=sweep)

    def record(self) -> dict:
        """What meta.json says about the workload: the app, the scenario file and its hash."""
        return {
            "app": self.apps["app"],
            "scenario_file": str(self.scenario_file),
            "scenario_file_sha256": hashlib.sha256(self.scenario_file.read_bytes()).hexdigest(),
            "users_own_workload": self.users_own,
        }


#: the suite's own: bench.apps.app (and the raw reference app) under bench/measure/scenarios.py
OURS = Workload(APPS, SCENARIOS, SCENARIOS_FILE)


def user_workload(app: str | None, scenario_file: Path) -> Workload:
    """The user's app (default: ours) loaded by the user classes of ``scenario_file``."""
    if app is not None:
        check_app(app)
    path = scenario_file.resolve()
    if not path.is_file():
        raise WorkloadError(f"--scenarios {scenario_file}: no such file")
    scenarios = scenarios_of(list_user_classes(path), path)
    return Workload({"app": app or APPS["app"]}, scenarios, path, users_own=True)


def check_app(target: str) -> None:
    """Import ``module:attr`` in a subprocess, from where servers are started; WorkloadError if
    it does not import or is not callable."""
    if not re.fullmatch(r"[\w.]+(:\w+)?", target):
        raise WorkloadError(f"--app {target}: not a module:attr target (e.g. mypkg.wsgi:app)")
    done = run_check([sys.executable, "-c", IMPORT_APP, target])
    if done.returncode != 0:
        raise WorkloadError(f"--app {target} does not import: {last_line(done.stderr)}")


def list_user_classes(path: Path) -> list[dict]:
    """The user classes of a locustfile, listed by ``bench.measure.userclasses`` in a subprocess."""
    done = run_check([sys.executable, "-m", "bench.measure.userclasses", str(path)])
    if done.returncode != 0:
        raise WorkloadError(f"--scenarios {path} does not load: {last_line(done.stderr)}")
    return json.loads(done.stdout)


def run_check(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            argv, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True,
            timeout=CHECK_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise WorkloadError(f"{argv[-1]}: import took over {CHECK_TIMEOUT_S} s") from error


def last_line(text: str) -> str:
    """The line of a traceback that says what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


def scenarios_of(user_classes: list[dict], path: Path) -> dict[str, Scenario]:
    """One scenario per user class, named after it; WorkloadError for none, a name clash or a
    malformed ``probe``."""
    if not user_classes:
        raise WorkloadError(f"--scenarios {path} has no user class (a locust User subclass)")
    scenarios: dict[str, Scenario] = {}
    for user in user_classes:
        name = scenario_name(user["class"])
        if name in scenarios:
            raise WorkloadError(f"--scenarios {path}: two user classes are both named {name!r}")
        path_, marker = probe_of(user, path)
        scenarios[name] = Scenario(name, user["class"], path_, marker, user["description"])
    return scenarios


def scenario_name(class_name: str) -> str:
    """``VisitorUser`` → ``visitor``: the class name without a trailing ``User``, lower case."""
    return (re.sub(r"User$", "", class_name) or class_name).lower()


def probe_of(user: dict, path: Path) -> tuple[str, str]:
    probe = user["probe"]
    if probe is None:
        return DEFAULT_PROBE
    valid = isinstance(probe, list) and len(probe) == 2 and all(isinstance(p, str) for p in probe)
    if not valid or not probe[0].startswith("/"):
        raise WorkloadError(
            f"--scenarios {path}: {user['class']}.probe is {probe!r}; "
            'expected ("/path", "body marker")'
        )
    return probe[0], probe[1]


def probe_refused(scenario: Scenario, status: int) -> str:
    """Why a server that answered is not ready for ``scenario``: its probe wanted 200 with the
    marker. Names the probe and how to set or drop it."""
    probe = f"{scenario.user_class}.probe = ({scenario.probe_path!r}, {scenario.marker!r})"
    return (
        f"GET {scenario.probe_path} answered {status} without {scenario.marker!r}, which {probe} "
        "asks for: point probe at a page that answers 200 with that text, or remove it (without "
        "a probe any HTTP answer means the server is ready)"
    )
