"""The second look: the cells of the gaps a verdict calls sure, measured once more at the end.

One window of a cell shows how its own seconds vary, not how two cells measured minutes apart
differ: a server start runs at a speed of its own (the same cell from four fresh starts of one
server can differ by almost half), the machine drifts between cells, and an app that keeps state
(a database that grows with every post, a cache that fills) serves a later cell differently from
an earlier one. A gap called on one look can reverse in the next identical run. So, unless the
profile or the command line says otherwise, the cells of every gap the first look calls sure are
measured again after every other cell, each from a new server start, in the reverse of the order
the run first measured them (a steady drift then weighs on both looks of a pair alike), and the
verdict calls a gap sure only when both looks call it (``bench.analysis.verdict``).

Which cells those are is the verdict's choice (``choose``, a function of the finished records),
so this module only measures; when the second look changes a scenario's leader or a server's
best cell, the new cells are looked at too, up to MAX_PASSES times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench.measure.cellrun import run_batch
from bench.measure.matrix import Cell
from bench.measure.progress import CellProgress
from bench.measure.records import add_look
from bench.measure.settings import Settings
from bench.rundir import CELLS_DIR, write_json

#: the look a repeat of the second look carries (a repeat without one is of the first)
SECOND = 2
#: the second look's server and Locust logs, apart from the first look's
LOGS_DIR = "second-look"
#: looks at cells that became a server's best after an earlier pass: bounded, since a noisy
#: server could otherwise swap its best cell back and forth
MAX_PASSES = 3


def look_again(
    cells: list[Cell], records: list[dict], settings: Settings, run_dir: Path,
    choose: Callable[[list[dict]], list[str]], progress: bool = True,
) -> list[str]:  # fmt: skip
    """Measure once more, one repeat each, every cell ``choose`` names in ``records`` that has
    no second look yet (a resumed run may have given it one); each such record is replaced in
    ``records`` by one with the new repeat (marked look 2) and written again. The names looked
    at."""
    looked = [record["cell"] for record in records if has_second_look(record)]
    for _ in range(MAX_PASSES):
        index = {record["cell"]: at for at, record in enumerate(records)}
        wanted = set(choose(records)) - set(looked)
        batch = [cell for cell in reversed(cells) if cell.name in wanted and cell.name in index]
        if not batch:
            break
        looked += [cell.name for cell in batch]
        with CellProgress(batch, replace(settings, repeats=1), enabled=progress) as bar:
            for cell in batch:
                bar.starting(cell)
                record = measure_again(cell, records[index[cell.name]], settings, run_dir)
                records[index[cell.name]] = record
                write_json(run_dir / CELLS_DIR / f"{cell.name}.json", record)
                bar.finished(record)
    return looked


def has_second_look(record: dict) -> bool:
    return any(repeat.get("look") == SECOND for repeat in record.get("repeats") or []) or any(
        failed.get("look") == SECOND for failed in record.get("looks_failed") or []
    )


def measure_again(cell: Cell, record: dict, settings: Settings, run_dir: Path) -> dict:
    """``record`` with one more repeat of ``cell``, from a server started anew."""
    once = replace(settings, repeats=1, sampling=None)  # the first look had its sampled window
    (again,) = run_batch([cell], once, run_dir / "logs" / LOGS_DIR)
    return add_look(record, again, SECOND, settings.generator_cores)
