"""The ledger of imports, read without writing a byte (for ``datacenter status``).

:class:`~datacenter.records.store.RecordStore` opens the database to work
on it: it switches it to WAL mode and creates tables, and even a plain
read-only SQLite connection leaves ``-wal`` and ``-shm`` files behind.
Here the database is opened ``mode=ro`` only while a ``-wal`` file shows
that another connection has it open (its files are then shared, never
created); otherwise everything is in the database file itself, which is
read as it is (``immutable=1``: no lock files, no journal).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass, field

from datacenter.records.store import Job

#: The ledger's columns are Job's fields (names the schema fixed, never data).
_COLUMNS = ", ".join(f.name for f in dataclasses.fields(Job))
_LAST = "SELECT " + _COLUMNS + " FROM datacenter_jobs ORDER BY id DESC LIMIT ?"  # noqa: S608
_UNFILED = "SELECT COUNT(*) FROM datacenter_jobs WHERE distributed = 0"


@dataclass
class LedgerView:
    """The last imports, newest first, and how many committed imports wait to be filed."""

    last: list[Job] = field(default_factory=list)
    unfiled: int = 0


def read_ledger(path: str, limit: int = 10) -> LedgerView:
    """What the ledger at *path* says; empty when there is no database (yet)."""
    if not os.path.isfile(path):
        return LedgerView()
    shared = os.path.exists(path + "-wal")
    try:
        return _read(path, limit, shared)
    except sqlite3.DatabaseError:
        if shared or not os.path.exists(path + "-wal"):
            raise
        # A writer opened it (and may have checkpointed into the file) while it
        # was read as immutable: read again through the writer's -wal.
        return _read(path, limit, shared=True)


def _read(path: str, limit: int, shared: bool) -> LedgerView:
    mode = "mode=ro" if shared else "immutable=1"
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?{mode}"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'datacenter_jobs'"
                          ).fetchone():
            return LedgerView()
        last = [Job(*row) for row in db.execute(_LAST, (limit,))]
        unfiled = int(db.execute(_UNFILED).fetchone()[0])
    for job in last:
        job.distributed = bool(job.distributed)
    return LedgerView(last, unfiled)
