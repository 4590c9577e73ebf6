"""The fortunes database: TechEmpower's 12 rows in an embedded sqlite file, read per request.

The file is created once (at import, if missing) under the temp dir or at ``$BENCH_DB``. Readers
get a connection cached per process and thread: sqlite connections must not be shared across
threads, and one inherited through ``fork()`` must not be used by the child, so a cached connection
is reused only by the thread *and* process that opened it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from pathlib import Path

#: TechEmpower's fortunes, with the <script> row that shows whether a template escapes
FORTUNES = (
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal points, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
)

#: the row every request adds in memory before sorting (TechEmpower's rule)
ADDED_AT_REQUEST_TIME = (0, "Additional fortune added at request time.")

#: the schema version is in the default file name so an old file is never read by new code
DEFAULT_PATH = Path(tempfile.gettempdir()) / f"bench-fortunes-v1-{os.getuid()}.sqlite"


def database_path() -> Path:
    return Path(os.environ.get("BENCH_DB") or DEFAULT_PATH)


def create_database(path: Path) -> None:
    """Write the table to a private temp file, then rename it into place: processes importing the
    app at the same moment never see a half-written database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.unlink(missing_ok=True)
    with sqlite3.connect(temporary) as connection:
        connection.execute("CREATE TABLE fortune (id INTEGER PRIMARY KEY, message TEXT NOT NULL)")
        connection.executemany("INSERT INTO fortune (id, message) VALUES (?, ?)", FORTUNES)
    connection.close()
    os.replace(temporary, path)


def ensure_database() -> Path:
    path = database_path()
    if not path.exists():
        create_database(path)
    return path


_local = threading.local()


def connection() -> sqlite3.Connection:
    """This thread's read-only connection, opened again after a fork (the pid no longer matches)."""
    cached = getattr(_local, "cached", None)
    if cached is None or cached[0] != os.getpid():
        uri = f"file:{ensure_database()}?mode=ro"
        cached = (os.getpid(), sqlite3.connect(uri, uri=True))
        _local.cached = cached
    return cached[1]


def sorted_fortunes() -> list[tuple[int, str]]:
    """Every stored row plus the one added at request time, sorted by message."""
    rows = connection().execute("SELECT id, message FROM fortune").fetchall()
    rows.append(ADDED_AT_REQUEST_TIME)
    rows.sort(key=lambda row: row[1])
    return rows


ensure_database()
