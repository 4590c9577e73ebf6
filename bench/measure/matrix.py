"""The matrix of a load run: which cells, in which order, grouped into what runs together.

A cell is a server × app × scenario × user level (closed loop) or × offered fraction (open loop,
a profile's sweep). ``plan`` turns a profile and the command line's narrowing into the cells, the
closed-loop ones interleaved so that the servers of one scenario and level run back to back;
``batches`` groups a sweep's cells so they run as the steps of one Locust run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

from bench.catalogue import SCENARIOS, Scenario
from bench.flags import UNRANKED
from bench.measure.profiles import PROFILES, Part, Profile
from bench.measure.settings import Settings
from bench.measure.target import TARGET_NAME, TARGET_SPEC
from bench.measure.workload import OURS, Workload
from bench.serving.peers import PEER_CHOICES
from bench.serving.peers import select_peers as select_peer_specs
from bench.serving.registry import ServerSpec, all_servers


@dataclass(frozen=True)
class Cell:
    server: ServerSpec
    #: key of bench.measure.profiles.APPS
    app: str
    scenario: Scenario
    #: closed loop: the users; open loop: the bound on requests in flight
    users: int
    #: open loop only: the offered load as a fraction of the server's closed-loop capacity
    offered_fraction: float | None = None
    #: open loop only: the offered requests/s, known once the closed-loop cells have run
    offered_rps: float | None = None

    @property
    def mode(self) -> str:
        return "closed" if self.offered_fraction is None else "open"

    @property
    def name(self) -> str:
        level = f"u{self.users}" if self.mode == "closed" else f"o{self.offered_fraction:.0%}"
        return f"{self.server.name}--{self.app}--{self.scenario.name}--{level}".rstrip("%")


def part_cells(
    part: Part, servers: dict[str, ServerSpec], overrides: dict, catalogue: dict = SCENARIOS
) -> list[Cell]:
    """The cells of one part, with --servers/--scenarios/--users applied; scenarios are looked
    up in ``catalogue`` (the workload's)."""
    names = overrides.get("servers") or part.servers
    scenarios = overrides.get("scenarios") or part.scenarios
    if part.app != "app":  # reference apps serve only their own few endpoints
        scenarios = [name for name in scenarios if name in part.scenarios]
    users = overrides.get("users") or part.users
    return [
        Cell(servers[name], part.app, catalogue[scenario], level)
        for name in names
        for scenario in scenarios
        if not servers[name].scenarios or scenario in servers[name].scenarios
        for level in users
    ]


def build_matrix(
    profile: Profile,
    peer_names: list[str],
    catalogue: dict = SCENARIOS,
    known_servers: dict[str, ServerSpec] | None = None,
    **overrides,
) -> list[Cell]:
    """Every cell of a run, in order, without duplicates."""
    servers = known_servers or all_servers()
    for option, valid in (("servers", servers), ("scenarios", catalogue)):
        unknown = [name for name in overrides.get(option) or () if name not in valid]
        if unknown:
            raise ValueError(
                f"--{option}: unknown {', '.join(unknown)} (valid: {', '.join(valid)})"
            )
    cells = [
        cell for part in profile.parts for cell in part_cells(part, servers, overrides, catalogue)
    ]
    if peer_names:
        peer_overrides = {**overrides, "servers": peer_names}
        cells += part_cells(peers_part(profile), servers, peer_overrides, catalogue)
    cells = interleaved(cells)
    if profile.sweep is not None:
        cells += sweep_cells(profile, servers, overrides, catalogue)
    unique = {cell.name: cell for cell in cells}
    return list(unique.values())


def interleaved(cells: list[Cell]) -> list[Cell]:
    """The cells grouped by app, scenario and user level, in the order each group first appears,
    every server of a group back to back. The machine drifts over minutes; server after server,
    one slow stretch would fall on one server's cells alone and pass for that server's speed,
    where back to back it weighs on the servers a verdict compares alike."""
    groups: dict[tuple[str, str, int], int] = {}
    for cell in cells:
        groups.setdefault((cell.app, cell.scenario.name, cell.users), len(groups))
    return sorted(cells, key=lambda cell: groups[cell.app, cell.scenario.name, cell.users])


def sweep_cells(
    profile: Profile, servers: dict[str, ServerSpec], overrides: dict, catalogue: dict = SCENARIOS
) -> list[Cell]:
    """The open-loop cells of a profile's sweep, with --servers/--scenarios applied (--users is
    not: the sweep's users bound its requests in flight); scenarios come from ``catalogue``."""
    sweep = profile.sweep
    names = [name for name in overrides.get("servers") or sweep.servers if name in sweep.servers]
    return [
        Cell(servers[name], "app", catalogue[scenario], sweep.users, offered_fraction=fraction)
        for name in names
        for scenario in overrides.get("scenarios") or sweep.scenarios
        for fraction in sweep.fractions
    ]


def offering(cell: Cell, records: list[dict]) -> Cell:
    """An open-loop cell with its offered requests/s: its fraction of the highest requests/s the
    finished closed-loop cells of its server and scenario measured; unchanged without any."""
    if cell.mode == "closed":
        return cell
    capacities = [
        record["summary"]["rps"]
        for record in records
        if record.get("mode", "closed") == "closed"
        and (record["server"], record["app"], record["scenario"])
        == (cell.server.name, cell.app, cell.scenario.name)
        and record["summary"].get("rps")
        and not UNRANKED & set(record["flags"])
    ]
    if not capacities:
        return cell
    return dataclasses.replace(cell, offered_rps=cell.offered_fraction * max(capacities))


def peers_part(profile: Profile) -> Part:
    """Where peers run: the profile's peers part; a profile without one (smoke) runs peers on its
    own scenarios and user levels, so an explicit --peers is never silently dropped."""
    if profile.peers is not None:
        return profile.peers
    ours = [part for part in profile.parts if part.app == "app"]
    scenarios = tuple(dict.fromkeys(name for part in ours for name in part.scenarios))
    users = tuple(sorted({level for part in ours for level in part.users}))
    return Part((), scenarios, users)


def peers_without_cells(choice: str | None, peer_names: list[str], cells: list[Cell]) -> str:
    """Why peers named with --peers NAME,... run nowhere ("" when each has a cell): a peer that
    serves only some scenarios (null: plaintext) may have none in this run."""
    if choice in (None, *PEER_CHOICES):
        return ""
    idle = [name for name in peer_names if not any(cell.server.name == name for cell in cells)]
    if not idle:
        return ""
    servers = all_servers()
    serves = "; ".join(f"{name} serves only {', '.join(servers[name].scenarios)}" for name in idle)
    return f"--peers: {serves}, and this run has none of those scenarios"


def select_peers(choice: str | None, profile: Profile) -> tuple[list[str], dict[str, str]]:
    """``--peers none|all|NAME,...`` → (peer names to run, {name: why skipped}); by default a
    profile with a peers part runs its ``default_peers`` (all of them, or smoke's null server)."""
    choice = choice or (profile.default_peers if profile.peers is not None else "none")
    if choice == "none":
        return [], {}
    specs, skipped = select_peer_specs(choice)
    return [spec.name for spec in specs], skipped


def plan(
    profile: str,
    servers: list[str] | None = None,
    scenarios: list[str] | None = None,
    users: list[int] | None = None,
    peers: str | None = None,
    workload: Workload = OURS,
    target: bool = False,
) -> tuple[list[Cell], dict[str, str]]:
    """The cells of a run and the peers skipped; ValueError for an unknown name.

    With ``target``, one server named ``target`` stands for all of them, serving the app parts.
    """
    chosen = workload.profile(PROFILES[profile])
    if target:
        chosen = replace(chosen, parts=tuple(p for p in chosen.parts if p.app == "app"))
        servers, peers = [TARGET_NAME], "none"
    if peers is None and servers:  # an explicit server list is the whole list
        peers = "none"
    peer_names, skipped = select_peers(peers, chosen)
    if workload.users_own:  # a canned answer (the null server) fits only our own scenarios
        canned = {name for name in peer_names if all_servers()[name].scenarios}
        skipped.update(dict.fromkeys(canned, "answers only our own scenarios"))
        peer_names = [name for name in peer_names if name not in canned]
    known = {TARGET_NAME: TARGET_SPEC} if target else None
    cells = build_matrix(chosen, peer_names, workload.scenarios, known,
                         servers=servers, scenarios=scenarios, users=users)  # fmt: skip
    idle = peers_without_cells(peers, peer_names, cells)
    if idle:
        raise ValueError(idle)
    return cells, skipped


def batches(cells: list[Cell]) -> list[list[Cell]]:
    """Each closed-loop cell alone; consecutive open-loop cells of one server, app and scenario
    together (a sweep, run as the steps of one Locust run)."""
    grouped: list[list[Cell]] = []
    for cell in cells:
        if cell.mode == "open" and grouped and sweep_key(grouped[-1][0]) == sweep_key(cell):
            grouped[-1].append(cell)
        else:
            grouped.append([cell])
    return grouped


def sampled_cells(cells: list[Cell]) -> frozenset[str]:
    """The cells whose server py-spy samples (``--profile-servers``): per server, app and
    scenario, the closed-loop cell with the most users, where the server works hardest."""
    busiest: dict[tuple[str, str, str], Cell] = {}
    for cell in cells:
        key = (cell.server.name, cell.app, cell.scenario.name)
        if cell.mode == "closed" and (key not in busiest or cell.users > busiest[key].users):
            busiest[key] = cell
    return frozenset(cell.name for cell in busiest.values())


def sweep_key(cell: Cell) -> tuple[str, str, str, str]:
    return cell.mode, cell.server.name, cell.app, cell.scenario.name


def cell_settings(cell: Cell, settings: Settings, profile: Profile) -> Settings:
    """An open-loop cell is timed by its profile's sweep and runs once; the rest by ``settings``."""
    if cell.mode == "closed" or profile.sweep is None:
        return settings
    sweep = profile.sweep
    return dataclasses.replace(
        settings, warmup_s=sweep.warmup_s, duration_s=sweep.duration_s, repeats=1
    )
