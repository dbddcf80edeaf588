"""The record store: SQLite through the standard library.

One table per processor (``rec_<name>``, so no name can collide with
SQLite's own ``sqlite_*`` tables), its key fields as the primary key, and
a ledger of import jobs. The database runs in WAL mode with
``synchronous=FULL``: a committed import survives a power cut.

One import is one transaction, which also writes its ledger row: that
commit is the single point where an import happens or does not. Each
record also keeps the id of the job that last created or updated it (the
column ``--job--``, which no field name can be), written by the same
statements as its values: ``datacenter find`` says since which import a
record is what it is.

This is the only module that speaks SQL, or knows the database is SQLite.
Longer than 400 lines because of that rule: the tables, the ledger, the
import's fast statements, the references of removals and the readers that
look without writing (``status``, ``find``) all speak SQL, so all are here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import adbc_driver_sqlite.dbapi as adbc_sqlite

from datacenter.errors import DataCenterError
from datacenter.injection import injection_point
from datacenter.records.fieldtypes import FieldType, IsoType
from datacenter.records.naming import quote
from datacenter.records.schema import JOB_COLUMN, ProcessorSchema

#: What the store raises when its database fails. Callers catch these names,
#: so that only this module knows the database is SQLite.
StoreError = sqlite3.Error
_T = TypeVar("_T")
#: A failure of the moment (the database locked, busy, unreadable, full): the
#: transaction is undone, and trying again later may succeed.
StoreUnavailableError = sqlite3.OperationalError


class StoreSchemaError(DataCenterError, sqlite3.DatabaseError):
    """A processor's table cannot take its fields as the config has them now."""

_LEDGER = """
CREATE TABLE IF NOT EXISTS datacenter_jobs (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    processor   TEXT NOT NULL,
    mode        TEXT NOT NULL,
    user        TEXT NOT NULL,
    rows        INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    started     REAL NOT NULL,
    finished    REAL NOT NULL,
    workdir     TEXT NOT NULL,
    ident       TEXT NOT NULL DEFAULT '',
    distributed INTEGER NOT NULL DEFAULT 0,
    pending     TEXT NOT NULL DEFAULT '',
    pending_ident TEXT NOT NULL DEFAULT '',
    storage     TEXT NOT NULL DEFAULT ''
)"""
#: Columns added since the ledger was first made: a ledger made before gets them.
_LEDGER_ADDED = {
    "pending": "TEXT NOT NULL DEFAULT ''",
    "pending_ident": "TEXT NOT NULL DEFAULT ''",
    "storage": "TEXT NOT NULL DEFAULT ''",
}
#: What people did through the console or the command line besides imports: an
#: upload, a fix of a pending file, a discard; who, when, to which file (and the
#: identity the file had then, so the import of that very file is recorded
#: under the same name).
_ACTIONS = """
CREATE TABLE IF NOT EXISTS datacenter_actions (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    user    TEXT NOT NULL,
    action  TEXT NOT NULL,
    name    TEXT NOT NULL,
    ident   TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT '',
    storage TEXT NOT NULL DEFAULT ''
)"""
_ACTION_COLUMNS = ("id", "at", "user", "action", "name", "ident", "detail", "storage")
#: Who put a file there is asked per file the service imports: one look-up, not a scan.
_ACTIONS_BY_NAME = """CREATE INDEX IF NOT EXISTS datacenter_actions_by_name
    ON datacenter_actions (name, ident)"""
#: Which job left a pending file of a given name (the service asks per file it finds).
_LEDGER_PENDING_INDEX = """CREATE INDEX IF NOT EXISTS datacenter_jobs_pending
    ON datacenter_jobs (pending) WHERE pending != ''"""


@dataclass
class Job:
    """One row of the ledger: an import that committed."""

    id: int
    source: str
    sha256: str
    processor: str
    mode: str
    user: str
    rows: int
    ok: int
    failed: int
    outcome: str
    started: float
    finished: float
    workdir: str
    #: ``"device:inode:size:mtime_ns"`` of the source when it was imported.
    ident: str
    distributed: bool
    #: The pending file at the root that filing the job left (its name and
    #: identity as then), or ``""``: whoever changes it since makes it new.
    pending: str = ""
    pending_ident: str = ""
    #: The root of the storage the job imported into (``""``: a ledger row of a
    #: version that did not say); storages may share one record store.
    storage: str = ""


_JOB_COLUMNS = [f.name for f in dataclasses.fields(Job)]


def table(name: str) -> str:
    """The quoted name of processor *name*'s table (``"rec_<name>"``)."""
    return _quote(f"rec_{name}")


# JOB_COLUMN (from schema): the column of every record table holding the job that
# last created or updated the record (NULL: written outside the ledger, by Kofa's
# ``doImport``). No field may be called so, in any case (schema refuses it).


_quote = quote


def to_db(ftype: FieldType, value: object) -> object:
    """A typed value as SQLite stores it: dates as ISO text, bools as 0/1."""
    if value is None or ftype.sql_type != "TEXT" or isinstance(value, str):
        return int(value) if isinstance(value, bool) else value
    return ftype.format(value)


def from_db(ftype: FieldType, value: object) -> object:
    if value is None:
        return None
    if ftype.name == "bool":
        return bool(value)
    if isinstance(ftype, IsoType) and isinstance(value, str):
        return ftype.parse(value)
    return value


class RecordStore:
    """Records of every processor, and the ledger of jobs, in one SQLite file."""

    def __init__(self, path: str, schemas: Mapping[str, ProcessorSchema]) -> None:
        self.path = path
        self.schemas = dict(schemas)
        #: The job whose rows are being written (:meth:`provenance`), or None.
        self.job: int | None = None
        # isolation_level=None: transactions are begun and ended explicitly.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        _no_quoted_literals(self.db)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.execute(_LEDGER)
        self.db.execute(_ACTIONS)
        self.db.execute(_ACTIONS_BY_NAME)
        self._add_ledger_columns()
        for schema in self.schemas.values():
            self._create_table(schema)

    def close(self) -> None:
        self.db.close()

    def _add_ledger_columns(self) -> None:
        """Bring a ledger made by an earlier version up to date (its rows keep the defaults)."""
        for column, kind in _LEDGER_ADDED.items():
            if column not in self._ledger_columns():
                try:
                    self.db.execute(f"ALTER TABLE datacenter_jobs ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError:
                    if column not in self._ledger_columns():
                        raise  # else another process opening the store added it first
        self.db.execute(_LEDGER_PENDING_INDEX)

    def _ledger_columns(self) -> set[str]:
        return {row[1] for row in self.db.execute("PRAGMA table_info(datacenter_jobs)")}

    def _create_table(self, schema: ProcessorSchema) -> None:
        columns = ", ".join(
            f"{_quote(name)} {ftype.sql_type}" for name, ftype in schema.fields.items()
        )
        key = ", ".join(_quote(k) for k in schema.key)
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS {table(schema.name)} ({columns}, "
            f"{_quote(JOB_COLUMN)} INTEGER, PRIMARY KEY ({key}))"
        )
        present = _columns_of(self.db, schema.name)
        if JOB_COLUMN not in present:  # a store made before records knew their job
            self.db.execute(f"ALTER TABLE {table(schema.name)} "
                            f"ADD COLUMN {_quote(JOB_COLUMN)} INTEGER")
        self._add_fields(schema, present)
        # Removing a parent asks who names it (on_remove): one look-up, not a scan.
        for name in schema.parents:
            index = _quote(f"rec_{schema.name}_by_{name}")
            self.db.execute(f"CREATE INDEX IF NOT EXISTS {index} "
                            f"ON {table(schema.name)} ({_quote(name)})")

    def _add_fields(self, schema: ProcessorSchema, present: set[str]) -> None:
        """Add the fields the config gained since the table was made (NULL in old records).

        A field that may be NULL is added with ``ALTER TABLE``; a new required
        or key field cannot be (the records already there have no value for
        it): StoreSchemaError names the processor and the field.
        """
        for name, ftype in schema.fields.items():
            if name in present:
                continue
            if name in schema.key or name in schema.required:
                what = "key" if name in schema.key else "required"
                raise StoreSchemaError(
                    f"processor {schema.name!r}: field {name!r} is {what} but its table, "
                    "made before, has no such column (its records have no value for it); "
                    "add it as an optional field, or export, drop and import them again")
            try:
                self.db.execute(f"ALTER TABLE {table(schema.name)} "
                                f"ADD COLUMN {_quote(name)} {ftype.sql_type}")
            except sqlite3.OperationalError:
                if name not in _columns_of(self.db, schema.name):
                    raise  # else another process opening the store added it first

    # -- transactions ----------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none of it."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            _commit(self.db)
        except BaseException:
            # Also when COMMIT itself failed (a full disk): the transaction is
            # still open then, and would block every later one.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    # -- records -----------------------------------------------------------------

    def _where(self, schema: ProcessorSchema) -> str:
        return " AND ".join(f"{_quote(k)} = ?" for k in schema.key)

    def key_of(self, schema: ProcessorSchema, values: Mapping[str, object]) -> tuple[object, ...]:
        return tuple(to_db(schema.fields[k], values[k]) for k in schema.key)

    def exists(self, schema: ProcessorSchema, key: Sequence[object]) -> bool:
        sql = f"SELECT 1 FROM {table(schema.name)} WHERE {self._where(schema)}"
        return self.db.execute(sql, tuple(key)).fetchone() is not None

    def get(self, schema: ProcessorSchema, key: Sequence[object]) -> dict[str, object] | None:
        names = list(schema.fields)
        sql = (f"SELECT {', '.join(map(_quote, names))} FROM {table(schema.name)} "
               f"WHERE {self._where(schema)}")
        found = self.db.execute(sql, tuple(key)).fetchone()
        if found is None:
            return None
        return {n: from_db(schema.fields[n], v) for n, v in zip(names, found, strict=True)}

    @contextlib.contextmanager
    def provenance(self, job: int) -> Iterator[None]:
        """Records created or updated meanwhile keep *job* as the one that wrote them."""
        before, self.job = self.job, job
        try:
            yield
        finally:
            self.job = before

    # The job goes into the statement itself, as a number: no parameter per row
    # (a million rows would each need a longer tuple), one statement per job.

    @functools.lru_cache(maxsize=256)  # noqa: B019 - the store lives as long as its SQL
    def _insert_sql(self, name: str, names: tuple[str, ...], ignore: bool = True,
                    job: int | None = None) -> str:
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        return (f"{verb} INTO {table(name)} ({', '.join(map(_quote, names))}, "
                f"{_quote(JOB_COLUMN)}) VALUES ({', '.join('?' * len(names))}, {_job(job)})")

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def _update_sql(self, schema: ProcessorSchema, names: tuple[str, ...],
                    job: int | None = None) -> str:
        sets = ", ".join([*(f"{_quote(n)} = ?" for n in names),
                          f"{_quote(JOB_COLUMN)} = {_job(job)}"])
        return f"UPDATE {table(schema.name)} SET {sets} WHERE {self._where(schema)}"

    def insert(self, schema: ProcessorSchema, values: Mapping[str, object]) -> bool:
        """Add a record; False when one with its key exists already."""
        names = tuple(values)
        params = [to_db(schema.fields[n], values[n]) for n in names]
        sql = self._insert_sql(schema.name, names, True, self.job)
        return self.db.execute(sql, params).rowcount == 1

    def update(self, schema: ProcessorSchema, key: Sequence[object],
               values: Mapping[str, object]) -> bool:
        """Change the given fields of a record; False when there is no such record."""
        names = tuple(n for n in values if n not in schema.key)
        if not names:
            return self.exists(schema, key)
        params = [to_db(schema.fields[n], values[n]) for n in names]
        sql = self._update_sql(schema, names, self.job)
        return self.db.execute(sql, [*params, *key]).rowcount == 1

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: undone alone if the block raises."""
        self.db.execute("SAVEPOINT batch")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO batch")
            self.db.execute("RELEASE batch")
            raise
        self.db.execute("RELEASE batch")

    # -- rows of stored values, for imports ----------------------------------------
    #
    # An import has its values in SQLite's form already (``to_db``, compiled
    # once per column), in the order of *names*. These methods take them as
    # they are: converting a million rows back and forth would double the work.

    def insert_row(self, schema: ProcessorSchema, names: tuple[str, ...],
                   params: Sequence[object]) -> bool:
        """Add one record of stored values; False when one with its key exists already."""
        sql = self._insert_sql(schema.name, names, True, self.job)
        return self.db.execute(sql, params).rowcount == 1

    def insert_rows_all_or_none(self, schema: ProcessorSchema, names: tuple[str, ...],
                                rows: Sequence[Sequence[object]]) -> bool:
        """Add records of stored values with one statement: all of them, or none.

        False, having written nothing, when any key exists already (or comes
        twice); the caller then learns which by trying the rows one at a time.
        """
        return self._all_or_none(self._insert_sql(schema.name, names, False, self.job), rows)

    def update_rows_all_or_none(self, schema: ProcessorSchema, names: tuple[str, ...],
                                rows: Sequence[Sequence[object]]) -> bool:
        """Change records to stored values, found by the key fields among *names*.

        One statement for all rows; False, having written nothing, when any
        key has no record.
        """
        keys = [names.index(k) for k in schema.key]
        changed = [i for i, name in enumerate(names) if name not in schema.key]
        # Setting a key field to itself still counts the record as changed,
        # so a row with only its key finds out whether the record is there.
        sets = changed or keys[:1]
        params = [[row[i] for i in sets] + [row[i] for i in keys] for row in rows]
        sql = self._update_sql(schema, tuple(names[i] for i in sets), self.job)
        return self._all_or_none(sql, params)

    def _all_or_none(self, sql: str, rows: Sequence[Sequence[object]]) -> bool:
        """Run *sql* once per row in a savepoint, undone unless every row changed one record."""
        before = self.db.total_changes
        try:
            with self.savepoint():
                self.db.executemany(sql, rows)
                if self.db.total_changes - before != len(rows):
                    raise _NotEveryRowError
        except (sqlite3.IntegrityError, _NotEveryRowError):
            return False
        return True

    def delete(self, schema: ProcessorSchema, key: Sequence[object]) -> bool:
        sql = f"DELETE FROM {table(schema.name)} WHERE {self._where(schema)}"
        return self.db.execute(sql, tuple(key)).rowcount == 1

    # -- records that name a parent (referential integrity of removals) ------------

    def count_referencing(self, schema: ProcessorSchema, field_name: str, value: object) -> int:
        """How many records of *schema* name *value* (a parent's stored key) in *field_name*."""
        sql = f"SELECT COUNT(*) FROM {table(schema.name)} WHERE {_quote(field_name)} = ?"
        return int(self.db.execute(sql, (value,)).fetchone()[0])

    def referencing(self, schema: ProcessorSchema, field_name: str, value: object,
                    ) -> list[dict[str, object]]:
        """The records of *schema* naming *value* in *field_name*, typed, in key order."""
        names = list(schema.fields)
        order = ", ".join(_quote(k) for k in schema.key)
        sql = (f"SELECT {', '.join(map(_quote, names))} FROM {table(schema.name)} "
               f"WHERE {_quote(field_name)} = ? ORDER BY {order}")
        return [{n: from_db(schema.fields[n], v) for n, v in zip(names, found, strict=True)}
                for found in self.db.execute(sql, (value,))]

    def count(self, name: str) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table(name)}").fetchone()[0])

    def iter_records(self, name: str, batch: int = 1000) -> Iterator[dict[str, object]]:
        """Every record of processor *name*, typed, in key order, streamed."""
        schema = self.schemas[name]
        names = list(schema.fields)
        types = [schema.fields[n] for n in names]
        for found in self.stored_rows(name, batch):
            yield {n: from_db(t, v) for n, t, v in zip(names, types, found, strict=True)}

    def stored_rows(self, name: str, batch: int = 1000) -> Iterator[tuple[object, ...]]:
        """Every record of processor *name* as stored, in key order, streamed.

        Values come in field order and as SQLite keeps them: dates as their
        field type's ISO text, booleans as 0/1. A writer that can take them so
        (the export) is spared the typed dict per record of ``iter_records``,
        which made a million-record export 4x slower.
        """
        schema = self.schemas[name]
        order = ", ".join(_quote(k) for k in schema.key)
        cursor = self.db.cursor()
        cursor.execute(f"SELECT {', '.join(map(_quote, schema.fields))} FROM {table(name)} "
                       f"ORDER BY {order}")
        while rows := cursor.fetchmany(batch):
            yield from rows

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction, so that several reads see the same records.

        Inside a transaction already (the caller's), that one is the snapshot.
        """
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    # -- the ledger ---------------------------------------------------------------

    def next_job_id(self) -> int:
        """The id the next ledger row gets; inside the write transaction, it is this job's.

        Rows are written before their ledger row, and must name their job.
        """
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM datacenter_jobs"
                                   ).fetchone()[0])

    def record_job(self, **fields: Any) -> int:
        """Add a ledger row inside the current transaction; returns its id."""
        fields.setdefault("finished", time.time())
        names = list(fields)
        sql = (f"INSERT INTO datacenter_jobs ({', '.join(names)}) "
               f"VALUES ({', '.join('?' * len(names))})")
        return int(self.db.execute(sql, [fields[n] for n in names]).lastrowid or 0)

    def relabel_storage(self, old: str, new: str) -> int:
        """The jobs of the storage at *old* belong to *new* now (it moved); how many.

        Both as real paths, as the ledger records them.
        """
        old, new = os.path.realpath(old), os.path.realpath(new)
        with self.transaction():
            return int(self.db.execute("UPDATE datacenter_jobs SET storage = ? WHERE storage = ?",
                                       (new, old)).rowcount)

    def mark_distributed(self, job_ids: Sequence[int],
                         pending: Mapping[int, tuple[str, str]] | None = None) -> None:
        """Record that these jobs were filed away (one commit for all of them).

        *pending* maps a job to the pending file its filing left at the
        root: its name and its identity (``"dev:ino:size:mtime_ns"``).
        """
        if job_ids:
            with self.transaction():
                self.db.executemany("UPDATE datacenter_jobs SET distributed = 1 WHERE id = ?",
                                    [(job_id,) for job_id in job_ids])
                self.db.executemany(
                    "UPDATE datacenter_jobs SET pending = ?, pending_ident = ? WHERE id = ?",
                    [(name, ident, job_id) for job_id, (name, ident) in (pending or {}).items()])

    def left_pending(self, name: str, storage: str | None = None) -> Job | None:
        """The last job whose filing left a pending file called *name*, if any (in
        *storage*, its real path, when given; or in a ledger row of before it was said)."""
        mine = "" if storage is None else " AND storage IN (?, '')"
        row = self.db.execute(
            f"SELECT {', '.join(_JOB_COLUMNS)} FROM datacenter_jobs WHERE pending = ? "
            f"AND pending != ''{mine} ORDER BY id DESC LIMIT 1",
            (name, *(() if storage is None else (storage,)))).fetchone()
        if row is None:
            return None
        job = Job(**dict(zip(_JOB_COLUMNS, row, strict=True)))
        job.distributed = bool(job.distributed)
        return job

    def committed_into(self, processors: Sequence[str], after: int) -> bool:
        """Did an import into one of *processors* get rows in after job *after*?"""
        if not processors:
            return False
        marks = ", ".join("?" * len(processors))
        return self.db.execute(
            f"SELECT 1 FROM datacenter_jobs WHERE id > ? AND ok > 0 AND processor IN ({marks}) "
            "LIMIT 1", (after, *processors)).fetchone() is not None

    def record_action(self, action: str, name: str, user: str, *, ident: str = "",
                      detail: str = "", storage: str = "") -> int:
        """Add what a person did (an upload, a fix, a discard) to the ledger; its id."""
        with self.transaction():
            return int(self.db.execute(
                "INSERT INTO datacenter_actions (at, user, action, name, ident, detail, storage) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), user, action, name, ident, detail, storage)).lastrowid or 0)

    def withdraw_action(self, action_id: int) -> None:
        """Take back action *action_id*: what it says did not happen (its rename failed)."""
        with self.transaction():
            self.db.execute("DELETE FROM datacenter_actions WHERE id = ?", (action_id,))

    def dropped_by(self, name: str, ident: str, storage: str) -> str | None:
        """Who put file *name* at the root of *storage* as it is now (identity *ident*)."""
        row = self.db.execute(
            "SELECT user FROM datacenter_actions WHERE name = ? AND ident = ? AND storage = ? "
            "ORDER BY id DESC LIMIT 1", (name, ident, storage)).fetchone()
        return None if row is None else str(row[0])

    def jobs(self, undistributed: bool = False, limit: int = 0,
             storage: str | None = None) -> list[Job]:
        """Ledger rows, newest first; of *storage* (its real path) alone when given (and
        the rows of before the ledger said which storage: an empty ``storage``)."""
        where = [*(["distributed = 0"] if undistributed else []),
                 *(["storage IN (?, '')"] if storage is not None else [])]
        sql = f" WHERE {' AND '.join(where)}" if where else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        rows = self.db.execute(
            f"SELECT {', '.join(_JOB_COLUMNS)} FROM datacenter_jobs{sql} ORDER BY id DESC{tail}",
            () if storage is None else (storage,)).fetchall()
        jobs = [Job(**dict(zip(_JOB_COLUMNS, row, strict=True))) for row in rows]
        for job in jobs:
            job.distributed = bool(job.distributed)
        return jobs


def _job(job: int | None) -> str:
    return "NULL" if job is None else str(int(job))


@injection_point("store.commit")
def _commit(db: sqlite3.Connection) -> None:
    """The commit of an import: a crash point of its own for the fault harness."""
    db.execute("COMMIT")


class _NotEveryRowError(Exception):
    """A batch must be undone: some row of it changed no record."""


# -- the ledger, read without writing a byte (for ``datacenter status``) ------------
# RecordStore opens the database to work on it: it switches it to WAL mode and
# creates tables, and even a plain read-only SQLite connection leaves -wal and
# -shm files behind. Here the database is opened ``mode=ro`` only while a -wal
# file shows that another connection has it open (its files are then shared,
# never created); otherwise everything is in the database file itself, which is
# read as it is (``immutable=1``: no lock files, no journal).

_LEDGER_UNFILED = "SELECT COUNT(*) FROM datacenter_jobs WHERE distributed = 0"


@dataclass
class LedgerView:
    """The last imports, newest first, and how many committed imports wait to be filed."""

    last: list[Job] = field(default_factory=list)
    unfiled: int = 0


def read_ledger(path: str, limit: int = 10, offset: int = 0,
                storage: str | None = None) -> LedgerView:
    """What the ledger at *path* says; empty when there is no database (yet).

    ``last`` holds *limit* jobs, newest first, after skipping the *offset* newest.
    With *storage*, only the jobs of that storage are listed (and those of a
    ledger row that does not say, written by an earlier version); it is
    compared as its real path, however the caller spells it. ``unfiled``
    counts every storage's: one of them needing recovery is worth saying.
    """
    where_from = None if storage is None else os.path.realpath(storage)
    def read(db: sqlite3.Connection) -> LedgerView:
        if not _has_table(db, "datacenter_jobs"):
            return LedgerView()
        columns = _ledger_columns(db)
        where, params = "", tuple[str, ...]()
        if where_from is not None and "storage" in columns:
            where, params = "WHERE storage IN (?, '')", (where_from,)
        found = db.execute(f"SELECT {', '.join(columns)} FROM datacenter_jobs {where} "
                           "ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
        last = [_job_of(columns, row) for row in found]
        return LedgerView(last, int(db.execute(_LEDGER_UNFILED).fetchone()[0]))

    return _read_only(path, read, LedgerView())


@dataclass(frozen=True)
class Action:
    """One row of the ledger's actions: what a person did besides importing."""

    id: int
    at: float
    user: str
    action: str
    name: str
    ident: str
    detail: str
    storage: str


def read_actions(path: str, storage: str, limit: int = 20, offset: int = 0) -> list[Action]:
    """The last actions on the storage at *storage*, newest first, read only."""
    where_from = os.path.realpath(storage)

    def read(db: sqlite3.Connection) -> list[Action]:
        if not _has_table(db, "datacenter_actions"):
            return []
        found = db.execute(f"SELECT {', '.join(_ACTION_COLUMNS)} FROM datacenter_actions "
                           "WHERE storage = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                           (where_from, limit, offset))
        return [Action(*row) for row in found]

    return _read_only(path, read, [])


@dataclass
class LedgerTotals:
    """What the ledger says of one storage's imports, summed (for ``/metrics``)."""

    jobs: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    last_finished: float | None = None
    #: How many imports took at most each bound (seconds), and the sum of their times.
    durations: dict[float, int] = field(default_factory=dict)
    duration_sum: float = 0.0


def read_totals(path: str, storage: str, bounds: Sequence[float]) -> LedgerTotals:
    """The imports into the storage at *storage*, summed; durations counted per bound."""
    where_from = os.path.realpath(storage)

    def read(db: sqlite3.Connection) -> LedgerTotals:
        if not _has_table(db, "datacenter_jobs"):
            return LedgerTotals(durations=dict.fromkeys(bounds, 0))
        where = "WHERE storage IN (?, '')" if "storage" in _ledger_columns(db) else \
            "WHERE ? IS NOT NULL"
        buckets = ", ".join("COALESCE(SUM(finished - started <= ?), 0)" for _ in bounds)
        row = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(ok), 0), COALESCE(SUM(failed), 0), MAX(finished), "
            f"COALESCE(SUM(finished - started), 0){', ' if bounds else ''}{buckets} "
            f"FROM datacenter_jobs {where}", (*bounds, where_from)).fetchone()
        return LedgerTotals(int(row[0]), int(row[1]), int(row[2]), row[3],
                            dict(zip(bounds, map(int, row[5:]), strict=True)), float(row[4]))

    return _read_only(path, read, LedgerTotals(durations=dict.fromkeys(bounds, 0)))


@dataclass
class StoredRecord:
    """A record as ``datacenter find`` sees it: its values and the job that last wrote it."""

    values: dict[str, object]
    job: Job | None  # None: written outside the ledger, or by a version that did not say


def read_record(path: str, schema: ProcessorSchema, key: Sequence[object],
                ) -> StoredRecord | None:
    """The record of *schema* with *key* (stored values) in the store at *path*, read only."""
    def read(db: sqlite3.Connection) -> StoredRecord | None:
        _no_quoted_literals(db)
        if not _has_table(db, f"rec_{schema.name}"):
            return None
        names = list(schema.fields)
        present = _columns_of(db, schema.name)  # a field added since: NULL (no writer yet)
        columns = [_quote(n) if n in present else "NULL" for n in [*names, JOB_COLUMN]]
        where = " AND ".join(f"{_quote(k)} = ?" for k in schema.key)
        found = db.execute(f"SELECT {', '.join(columns)} FROM {table(schema.name)} "
                           f"WHERE {where}", tuple(key)).fetchone()
        if found is None:
            return None
        values = {n: from_db(schema.fields[n], v) for n, v in zip(names, found, strict=False)}
        job = None
        if found[-1] is not None and _has_table(db, "datacenter_jobs"):
            columns = _ledger_columns(db)
            row = db.execute(f"SELECT {', '.join(columns)} FROM datacenter_jobs WHERE id = ?",
                             (found[-1],)).fetchone()
            job = _job_of(columns, row) if row else None
        return StoredRecord(values, job)

    return _read_only(path, read, None)


def read_jobs(path: str, processor: str) -> list[Job]:
    """Every ledger row of imports into *processor*, oldest first, read only."""
    def read(db: sqlite3.Connection) -> list[Job]:
        if not _has_table(db, "datacenter_jobs"):
            return []
        columns = _ledger_columns(db)
        found = db.execute(f"SELECT {', '.join(columns)} FROM datacenter_jobs "
                           "WHERE processor = ? ORDER BY id", (processor,))
        return [_job_of(columns, row) for row in found]

    return _read_only(path, read, [])


def _ledger_columns(db: sqlite3.Connection) -> list[str]:
    """Job's fields the ledger at *db* has: one of an earlier version, read as it is
    (never upgraded by a reader), lacks the later ones, which have defaults."""
    present = {row[1] for row in db.execute("PRAGMA table_info(datacenter_jobs)")}
    return [name for name in _JOB_COLUMNS if name in present]


def _job_of(columns: Sequence[str], row: Sequence[Any]) -> Job:
    job = Job(**dict(zip(columns, row, strict=True)))
    job.distributed = bool(job.distributed)
    return job


def _columns_of(db: sqlite3.Connection, processor: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table(processor)})")}


def _no_quoted_literals(db: sqlite3.Connection) -> None:
    """Make a double-quoted unknown column an error, not a string literal (where Python's
    sqlite3 can say so: 3.12+); on older ones the columns are checked against the schema."""
    setconfig = getattr(db, "setconfig", None)
    for option in ("SQLITE_DBCONFIG_DQS_DML", "SQLITE_DBCONFIG_DQS_DDL"):
        if setconfig is not None and hasattr(sqlite3, option):
            setconfig(getattr(sqlite3, option), False)


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


# -- records as Arrow batches, for the columnar export ---------------------------------

class ColumnarReadError(Exception):
    """The columnar reader could not read the records (a stored value that does not fit
    its column's type, written around the imports): read them row by row instead."""


def text_batches(path: str, schema: ProcessorSchema, rows: int = 65_536) -> Iterator[Any]:
    """Every record of *schema* in the store at *path*, in key order, as Arrow batches.

    Read through the ADBC SQLite driver, *rows* records a batch, in one read
    transaction (one statement). Each field comes as one column of text, NULL
    as ``''`` (integers ``CAST`` to their decimal digits, which is what ``str``
    gives); a REAL field as two columns, its
    value (NULL as 0.0) and ``<field> IS NULL`` (1 or 0), since SQLite's text
    of a float is not Python's. No column is ever NULL: the driver fixes a
    column's type from the first batch, and a column NULL all through it would
    be taken for integers and fail at its first text (``ColumnarReadError``,
    as for a stored value that does not fit its column).
    """
    columns: list[str] = []
    for name, ftype in schema.fields.items():
        if ftype.sql_type == "REAL":
            columns += [f"COALESCE({_quote(name)}, 0.0)", f"{_quote(name)} IS NULL"]
        elif ftype.sql_type == "TEXT":  # TEXT affinity: SQLite stores text there, or NULL
            columns.append(f"IFNULL({_quote(name)}, '')")
        else:
            columns.append(f"IFNULL(CAST({_quote(name)} AS TEXT), '')")
    order = ", ".join(_quote(k) for k in schema.key)
    sql = f"SELECT {', '.join(columns)} FROM {table(schema.name)} ORDER BY {order}"
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    try:
        with contextlib.closing(adbc_sqlite.connect(uri)) as db, \
                contextlib.closing(db.cursor()) as cursor:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(rows)})
            cursor.execute(sql)
            yield from cursor.fetch_record_batch()
    except (OSError, adbc_sqlite.Error) as exc:  # the reader's, and the driver's own
        raise ColumnarReadError(f"{path}: {exc}") from exc


def _read_only(path: str, read: Callable[[sqlite3.Connection], _T], empty: _T) -> _T:
    """*read* on the database at *path* opened without writing; *empty* when there is none."""
    if not os.path.isfile(path):
        return empty
    shared = os.path.exists(path + "-wal")
    try:
        return _reading(path, read, shared)
    except sqlite3.DatabaseError:
        if shared or not os.path.exists(path + "-wal"):
            raise
        # A writer opened it (and may have checkpointed into the file) while it
        # was read as immutable: read again through the writer's -wal.
        return _reading(path, read, shared=True)


def _reading(path: str, read: Callable[[sqlite3.Connection], _T], shared: bool) -> _T:
    mode = "mode=ro" if shared else "immutable=1"
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?{mode}"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        return read(db)
