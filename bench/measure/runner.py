"""The load runner: servers × scenarios × user levels, each cell measured and written at once.

For each cell the runner starts the server in its own process group and waits for its
``listening on`` line, checks that one request answers correctly, then runs Locust
(``bench/measure/scenarios.py``) as a separate process per repeat: a warm-up that is excluded,
then the measured window, while ``bench.measure.sampler`` watches both process trees. On
machines with two or more cores the server tree and Locust are pinned to different cores. Where
cgroups can be written, each server tree also runs under a CPU budget (``bench.measure.budget``),
calibrated at the start of the run against the null server unless ``server_cpus`` sets it. The
runner only runs and writes raw results (``cells/<cell>.json``, ``meta.json``); the report reads
them. What is served and the locustfile may be the user's (``bench.measure.workload``), Locust's
workers may join from other machines, and the server may be one the user started
(``bench.measure.target``).

A profile's sweep adds open-loop cells after the closed-loop ones (``bench/measure/openloop.py``):
each offers a fraction of the highest requests/s its server's closed-loop cells of the same
scenario reached in this run; the cells of one server and scenario run as the steps of one Locust
run against one server start.

With ``profile_servers`` (on in the full profile), py-spy samples each server's stacks in one
extra window per server, app and scenario, after the repeats of its busiest cell
(``bench.measure.sampled_window``); the flame graphs go to ``profiles/`` in the run directory.

Ctrl-C or SIGTERM stops the current cell: its server and Locust are killed by process group, the
finished cells stay, and the report is still written for them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench.measure.calibration import choose_budget, earlier_budget
from bench.measure.cellrun import run_batch
from bench.measure.matrix import Cell, batches, cell_settings, offering, plan
from bench.measure.profiles import PROFILES
from bench.measure.progress import CellProgress
from bench.measure.resume import kept_cells, remeasure_line, remeasured, resume_entry
from bench.measure.sampled_window import choose_sampling
from bench.measure.secondlook import look_again
from bench.measure.settings import LoadRequest, Settings, choose_pinning
from bench.rundir import CELLS_DIR, META_FILE, machine_meta, write_json
from bench.serving.peers import named_but_missing


def run_load(
    run_dir: Path, request: LoadRequest, progress: bool = True,
    choose_second_look: Callable[[list[dict]], list[str]] | None = None,
) -> list[dict]:  # fmt: skip
    """Run the load matrix ``request`` asks for into ``run_dir``; the finished cells' records.

    ``request.server_cpus`` is each server's CPU budget: a number of CPUs, "off", or None to
    calibrate it against the null server first (a resumed run keeps the budget it was measured
    under). With ``request.resume``, cells already in ``run_dir`` that finished with the same
    settings are kept and only the others are measured. meta.json's status ends "finished", or
    "failed" when no cell of the framework app gave numbers. A KeyboardInterrupt (Ctrl-C, or
    SIGTERM through ``interrupt_on_sigterm``) ends the current cell, marks meta.json interrupted
    and propagates once the finished cells are safe on disk.

    With a second look (``request.second_look``, by default the profile's), the cells that
    ``choose_second_look`` names in the finished records are measured once more at the end
    (``bench.measure.secondlook``); meta.json's ``looks`` says how many the verdict expects.
    """
    settings = settings_for(request)
    cells, skipped = plan(request.profile, request.servers, request.scenarios, request.users,
                          request.peers, request.workload, request.target is not None)  # fmt: skip
    server_cpus = request.server_cpus
    if request.resume and server_cpus is None:  # the kept cells were measured under it
        server_cpus = earlier_budget(run_dir)
    # a server the user started is theirs to limit: no budget, no calibration
    budget, budget_meta = choose_budget(
        "off" if request.target is not None else server_cpus, settings, cells, run_dir / "logs"
    )
    asked = request.profile_servers
    asked = PROFILES[request.profile].profile_servers if asked is None else asked
    sampling, sampling_meta = choose_sampling(asked, cells, run_dir)
    settings = replace(settings, budget=budget, sampling=sampling)
    meta = {**run_meta(settings, cells, skipped), "budget": budget_meta,
            "cpu_profiles": sampling_meta}  # fmt: skip
    kept = kept_cells(run_dir, [cell.name for cell in cells], settings) if request.resume else {}
    if request.resume:
        meta["resumes"] = resume_entry(run_dir, kept)
        say(remeasure_line(remeasured(run_dir, [cell.name for cell in cells], settings)))
    say(named_but_missing(request.peers, skipped))
    write_json(run_dir / META_FILE, meta)
    records: list[dict] = list(kept.values())
    second_look = request.second_look
    second_look = PROFILES[request.profile].second_look if second_look is None else second_look
    meta["looks"] = 2 if second_look and choose_second_look is not None else 1
    try:
        with CellProgress(cells, settings, enabled=progress) as bar:
            measure_all(cells, kept, settings, run_dir, records, bar)
        if meta["looks"] == 2:
            say("second look: the cells of every gap the first look calls sure, measured again")
            meta["looked_again"] = look_again(
                cells, records, settings, run_dir, choose_second_look, progress
            )
            if not meta["looked_again"]:
                say("second look: the first look called no gap sure, so no cell was measured again")
        meta["status"] = run_status(records)
    except KeyboardInterrupt:
        meta["status"] = "interrupted"
        raise
    except BaseException:
        meta["status"] = "crashed"
        raise
    finally:
        meta["cells_finished"] = len(records)
        write_json(run_dir / META_FILE, meta)
    return records


def say(line: str) -> None:
    """A line for the person at the console (stderr, beside the progress bar); "" says nothing."""
    if line:
        print(line, file=sys.stderr)


def settings_for(request: LoadRequest) -> Settings:
    """How every cell of the run is measured: the profile's cell length unless overridden."""
    profile = PROFILES[request.profile]
    return Settings(
        profile=request.profile,
        warmup_s=profile.warmup_s if request.warmup is None else request.warmup,
        duration_s=profile.duration_s if request.duration is None else request.duration,
        repeats=profile.repeats if request.repeats is None else request.repeats,
        locust_workers=request.locust_workers,
        pinning=choose_pinning(),
        workload=request.workload,
        server_host=request.server_host,
        master_bind=request.master_bind,
        expect_workers=request.expect_workers,
        target=request.target,
    )


def measure_all(
    cells: list[Cell], kept: dict[str, dict], settings: Settings, run_dir: Path,
    records: list[dict], bar: CellProgress,
) -> None:  # fmt: skip
    """Measure every batch not kept from the resumed run, writing each record as it finishes;
    ``records`` grows as they do (a sweep offers from the capacities measured before it)."""
    profile = PROFILES[settings.profile]
    for batch in batches(cells):
        if all(cell.name in kept for cell in batch):
            for cell in batch:  # already in ``records``
                bar.kept(kept[cell.name])
            continue
        bar.starting(batch[0])
        batch = [offering(cell, records) for cell in batch]
        for record in run_batch(
            batch, cell_settings(batch[0], settings, profile), run_dir / "logs"
        ):
            write_json(run_dir / CELLS_DIR / f"{record['cell']}.json", record)
            records.append(record)
            bar.finished(record)


def run_status(records: list[dict]) -> str:
    """ "finished", or "failed" when no cell of the framework app gave numbers: a run whose every
    server failed has measured nothing, whatever else it wrote."""
    served = [record for record in records if record.get("app") == "app"] or records
    return "finished" if any(record["status"] == "ok" for record in served) else "failed"


def run_meta(settings: Settings, cells: list[Cell], skipped: dict[str, str]) -> dict:
    servers = {cell.server.name: cell.server for cell in cells}
    return {
        **machine_meta(),
        "profile": settings.profile,
        "pinning": settings.pinning,
        "warmup_s": settings.warmup_s,
        "duration_s": settings.duration_s,
        "repeats": settings.repeats,
        "locust_workers": settings.locust_workers,
        "servers": {
            name: {"model": spec.model, "kind": spec.kind, "settings": spec.settings}
            for name, spec in servers.items()
        },
        "scenarios": {name: s.description for name, s in settings.workload.scenarios.items()},
        **setup_meta(settings),
        "skipped": skipped,
        "cells_planned": [cell.name for cell in cells],
        "status": "running",
    }


def setup_meta(settings: Settings) -> dict:
    """What meta.json says about the app, the scenario file, the generator and the server host."""
    target = settings.target
    return {
        **settings.workload.record(),
        "server_host": settings.server_host,
        "locust_master_bind": ":".join(map(str, settings.master_bind or ())) or None,
        "expect_workers": settings.expect_workers,
        "target": {"url": target.url, "pid": target.pid} if target else None,
    }
