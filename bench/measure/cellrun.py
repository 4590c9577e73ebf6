"""One batch of cells against one server start: a closed-loop cell's repeats, or an open-loop
sweep's steps. Both share one failure path: a failed batch is recorded, never raised, with the
tail of the server's stderr, and the server is always stopped."""

from __future__ import annotations

from pathlib import Path

from bench.measure.locustrun import run_repeat, run_steps
from bench.measure.matrix import Cell
from bench.measure.processes import CellFailed, ProcessGroup, probe, read_tail, start_server
from bench.measure.records import cell_header, finish
from bench.measure.settings import Settings


def run_batch(cells: list[Cell], settings: Settings, logs_dir: Path) -> list[dict]:
    """Start the server of ``cells`` (one closed-loop cell, or the steps of one sweep), measure
    them, stop it; a record per cell. A failure fails every cell of the batch."""
    records = [cell_header(cell, settings) for cell in cells]
    server = None
    try:
        if cells[0].mode == "open" and not cells[0].offered_rps:
            raise CellFailed("no trusted closed-loop cell of this server and scenario ran before "
                             "it, so there is no capacity to offer a fraction of")  # fmt: skip
        server, port = start_server(cells[0], settings, logs_dir)
        measure = measure_repeats if cells[0].mode == "closed" else measure_steps
        measure(cells, records, server, port, settings, logs_dir)
    except CellFailed as failure:
        tail = server.stderr_tail() if server else read_tail(server_log(cells[0], logs_dir))
        for record in records:
            record["status"] = "failed"
            record["error"] = f"{failure}\n--- server stderr (tail) ---\n{tail}".rstrip()
    finally:
        if server is not None:
            server.stop()
    return [finish(record, settings.generator_cores) for record in records]


def server_log(cell: Cell, logs_dir: Path) -> Path:
    return logs_dir / f"{cell.name}.server.err"


def measure_repeats(
    cells: list[Cell], records: list[dict], server: ProcessGroup, port: int,
    settings: Settings, logs_dir: Path,
) -> None:  # fmt: skip
    """A closed-loop cell: every repeat, each followed by a probe (still answering?)."""
    (cell,), (record,) = cells, records
    for index in range(settings.repeats):
        record["repeats"].append(run_repeat(cell, server, port, settings, logs_dir, index))
        probe(port, cell.scenario, settings.connect_host)


def measure_steps(
    cells: list[Cell], records: list[dict], server: ProcessGroup, port: int,
    settings: Settings, logs_dir: Path,
) -> None:  # fmt: skip
    """A sweep: its offered rates as the steps of one Locust run (a Locust and a server start per
    step would double the sweep's time), then a probe."""
    repeats = run_steps(cells, server, port, settings, logs_dir / f"{cells[0].name}.sweep")
    for record, repeat in zip(records, repeats, strict=True):
        record["repeats"].append(repeat)
    probe(port, cells[0].scenario, settings.connect_host)


def run_cell(cell: Cell, settings: Settings, logs_dir: Path) -> dict:
    """One closed-loop cell's record (a failure is recorded, never raised)."""
    (record,) = run_batch([cell], settings, logs_dir)
    return record
