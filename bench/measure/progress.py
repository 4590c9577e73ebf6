"""What the console shows while a load run measures: a progress bar weighted by each cell's
expected seconds, and one line per finished cell."""

from __future__ import annotations

from bench import flags
from bench.measure.matrix import Cell
from bench.measure.profiles import cell_seconds
from bench.measure.settings import Settings


def console_line(record: dict) -> str:
    """A finished cell as the console shows it: req/s, its flags as the report's table shows
    them, and a failed cell's reason (the first line of the error the report shows)."""
    rps = record["summary"]["rps"]
    shown = f"{rps:8.0f} req/s" if rps is not None else "       - req/s"
    line = f"{record['cell']:<42} {shown}"
    if record["flags"]:
        line += f" [{flags.shown(record['flags'])}]"
    if record.get("error"):
        line += f" {record['error'].splitlines()[0]}"
    return line


class CellProgress:
    """A rich progress bar weighted by each cell's expected seconds, so the ETA means something."""

    def __init__(self, cells: list[Cell], settings: Settings, enabled: bool = True):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        #: expected seconds of one cell
        self.cell_s = cell_seconds(settings.warmup_s, settings.duration_s, settings.repeats)
        #: cells in the run and cells done
        self.total, self.done = len(cells), 0
        #: the rich progress display (disabled: renders nothing)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), disable=not enabled,
        )  # fmt: skip
        #: the one task of the bar
        self.task = self.progress.add_task("load", total=self.total * self.cell_s)

    def __enter__(self) -> CellProgress:
        self.progress.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.progress.stop()

    def starting(self, cell: Cell) -> None:
        self.progress.update(self.task, description=f"{self.done}/{self.total} {cell.name}")

    def finished(self, record: dict) -> None:
        self.done += 1
        self.progress.update(self.task, advance=self.cell_s,
                             description=f"{self.done}/{self.total} done")  # fmt: skip
        # markup=False: rich would read "[generator-bound]" as a style tag and drop it;
        # soft_wrap: one line per cell, also in a log that is not a terminal
        self.progress.console.print(
            console_line(record), highlight=False, markup=False, soft_wrap=True
        )

    def kept(self, record: dict) -> None:
        """A cell kept from the run being resumed: counted as done, shown as measured then."""
        self.done += 1
        self.progress.update(self.task, advance=self.cell_s)
        line = f"{console_line(record)} (kept from the resumed run)"
        self.progress.console.print(line, highlight=False, markup=False, soft_wrap=True)
