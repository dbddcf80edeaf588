"""The record store in PostgreSQL, through psycopg 3: the same behaviour as the SQLite one.

``database = "postgresql://user@host:port/dbname"`` in ``datacenter.toml``
(or ``$DATACENTER_DATABASE``) selects it. Everything the SQLite store
promises holds here too, with the same method names
(:class:`datacenter.records.backend.Store`): one table per processor
(``"rec_<name>"``, every identifier quoted: a field may be named anything),
its key as the primary key, the ``--job--`` column, the ledger, and one
transaction per import whose commit also writes the ledger row.

Values are stored as the SQLite store stores them (text columns compare
bytewise, ``COLLATE "C"``; dates as ISO text, booleans as 0/1), so what an
export writes, what ``find`` shows and how keys sort are the same on both.
Rows of an import come in batches; a batch is loaded with ``COPY`` into a
temporary staging table and moved into its table with one set-based
statement (all or none, as the SQLite store's ``executemany`` in a
savepoint). The schema is created and upgraded by :mod:`.migrations`.

Longer than 400 lines because it is the PostgreSQL twin of ``store.py``:
the tables, the ledger, the batches and the readers that look without
writing all speak SQL, and all SQL for PostgreSQL is here and in
:mod:`.migrations` and :mod:`.claims`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from datacenter.config import is_postgres
from datacenter.injection import injection_point
from datacenter.records import migrations
from datacenter.records.naming import JOB_COLUMN
from datacenter.records.schema import ProcessorSchema
from datacenter.records.store import (
    Action,
    Job,
    LedgerTotals,
    LedgerView,
    StoredRecord,
    StoreSchemaError,
    from_db,
    to_db,
)

#: What this store raises when its database fails.
StoreError = psycopg.Error
#: A failure of the moment: the server is gone, restarting, or refused us; trying
#: again later may succeed (the transaction was undone).
StoreUnavailableError = (psycopg.OperationalError, psycopg.InterfaceError)
_T = TypeVar("_T")
_Row = tuple[Any, ...]
Connection = psycopg.Connection[_Row]
_TYPES = {"TEXT": 'text COLLATE "C"', "INTEGER": "bigint", "REAL": "double precision"}
_JOB_COLUMNS = ["id", "source", "sha256", "processor", "mode", "user", "rows", "ok", "failed",
                "outcome", "started", "finished", "workdir", "ident", "distributed", "pending",
                "pending_ident", "storage"]
#: Seconds to wait for the server when connecting, before saying it is not there.
CONNECT_TIMEOUT = 5


is_url = is_postgres


def connect(url: str) -> Connection:
    """A connection in autocommit mode: transactions are begun and ended explicitly."""
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)


def quote(name: str) -> str:
    """*name* as an identifier in a statement run with parameters (``%`` doubled)."""
    return '"' + name.replace('"', '""').replace("%", "%%") + '"'


def table(name: str) -> str:
    return quote(f"rec_{name}")


_LEDGER = ", ".join(quote(c) for c in _JOB_COLUMNS)


def _plain(name: str) -> str:
    """*name* as an identifier in a statement run without parameters (COPY, scripts)."""
    return '"' + name.replace('"', '""') + '"'


class PostgresStore:
    """Records of every processor, and the ledger of jobs, in one PostgreSQL database."""

    def __init__(self, url: str, schemas: Mapping[str, ProcessorSchema]) -> None:
        self.path = url
        self.schemas = dict(schemas)
        #: The job whose rows are being written (:meth:`provenance`), or None.
        self.job: int | None = None
        self.db = connect(url)
        migrations.upgrade(self.db, url)
        # Tables first, then the indexes of parent fields (who names a parent:
        # one look-up, not a scan); all under the schema's lock, made once.
        migrations.ensure_tables(self.db, [
            *((f"rec_{s.name}", self._table_sql(s)) for s in self.schemas.values()),
            *((f"rec_{s.name}_by_{name}",
               f"CREATE INDEX IF NOT EXISTS {_plain(f'rec_{s.name}_by_{name}')} "
               f"ON {_plain('rec_' + s.name)} ({_plain(name)})")
              for s in self.schemas.values() for name in s.parents)])
        self._add_fields()

    def close(self) -> None:
        self.db.close()

    def _add_fields(self) -> None:
        """Add the fields the config gained since their tables were made (NULL in old records).

        As in :meth:`Store._add_fields <datacenter.records.store.Store._add_fields>`:
        an optional field is added (``ALTER TABLE``, under the schema lock); a
        new required or key field cannot be: StoreSchemaError names both.
        """
        present = _columns(self.db)
        added: list[tuple[str, str]] = []
        for schema in self.schemas.values():
            for name, ftype in schema.fields.items():
                if name in present.get(f"rec_{schema.name}", {name}):
                    continue
                if name in schema.key or name in schema.required:
                    what = "key" if name in schema.key else "required"
                    raise StoreSchemaError(
                        f"processor {schema.name!r}: field {name!r} is {what} but its table, "
                        "made before, has no such column (its records have no value for it); "
                        "add it as an optional field, or export, drop and import them again")
                added.append((f"rec_{schema.name}", f"ADD COLUMN IF NOT EXISTS {_plain(name)} "
                                                    f"{_TYPES[ftype.sql_type]}"))
        migrations.alter_tables(self.db, added)

    @staticmethod
    def _table_sql(schema: ProcessorSchema) -> str:
        columns = ", ".join(f"{_plain(name)} {_TYPES[ftype.sql_type]}"
                            for name, ftype in schema.fields.items())
        key = ", ".join(_plain(k) for k in schema.key)
        return (f"CREATE TABLE IF NOT EXISTS {_plain('rec_' + schema.name)} ({columns}, "
                f"{_plain(JOB_COLUMN)} bigint, PRIMARY KEY ({key}))")

    def _connection(self) -> Connection:
        """The connection, made again when the server dropped it (a restart, a cut)."""
        if self.db.closed or self.db.broken:
            self.db.close()
            self.db = connect(self.path)
        return self.db

    def _idle(self, sql: str, params: Sequence[object] = ()) -> psycopg.Cursor[_Row]:
        """*sql* run outside a transaction (a read, or BEGIN). A connection that the server
        dropped while it was idle (an outage, a restart) is found dead only at its next
        use; nothing was done on it yet, so it is made again and *sql* tried once more:
        the first use after the database came back does not fail for it."""
        db = self._connection()
        idle = not self.in_transaction
        try:
            return db.execute(sql, params)
        except StoreUnavailableError:
            if not (idle and db.broken):
                raise
        return self._connection().execute(sql, params)

    @property
    def in_transaction(self) -> bool:
        return self.db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    # -- transactions ----------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction: all of it is committed, or none of it."""
        self._idle("BEGIN")
        db = self.db
        try:
            yield db
            _commit(db)
        except BaseException:
            if not db.closed and not db.broken and self.in_transaction:
                with contextlib.suppress(psycopg.Error):
                    db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: undone alone if the block raises."""
        self.db.execute("SAVEPOINT batch")
        try:
            yield
        except BaseException:
            if not self.db.broken:
                self.db.execute("ROLLBACK TO SAVEPOINT batch")
                self.db.execute("RELEASE SAVEPOINT batch")
            raise
        self.db.execute("RELEASE SAVEPOINT batch")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction, so that several reads see the same records."""
        if self.in_transaction:
            yield
            return
        self._idle("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        db = self.db
        try:
            yield
        finally:
            if not db.broken:
                db.execute("COMMIT")

    # -- records -----------------------------------------------------------------

    def _where(self, schema: ProcessorSchema) -> str:
        return " AND ".join(f"{quote(k)} = %s" for k in schema.key)

    def key_of(self, schema: ProcessorSchema, values: Mapping[str, object]) -> tuple[object, ...]:
        return tuple(to_db(schema.fields[k], values[k]) for k in schema.key)

    def exists(self, schema: ProcessorSchema, key: Sequence[object]) -> bool:
        sql = f"SELECT 1 FROM {table(schema.name)} WHERE {self._where(schema)}"
        return self.db.execute(sql, tuple(key)).fetchone() is not None

    def get(self, schema: ProcessorSchema, key: Sequence[object]) -> dict[str, object] | None:
        names = list(schema.fields)
        sql = (f"SELECT {', '.join(map(quote, names))} FROM {table(schema.name)} "
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

    @functools.lru_cache(maxsize=256)  # noqa: B019 - the store lives as long as its SQL
    def _insert_sql(self, name: str, names: tuple[str, ...], ignore: bool = True,
                    job: int | None = None) -> str:
        tail = " ON CONFLICT DO NOTHING" if ignore else ""
        return (f"INSERT INTO {table(name)} ({', '.join(map(quote, names))}, "
                f"{quote(JOB_COLUMN)}) VALUES ({', '.join(['%s'] * len(names))}, "
                f"{_job(job)}){tail}")

    @functools.lru_cache(maxsize=256)  # noqa: B019
    def _update_sql(self, schema: ProcessorSchema, names: tuple[str, ...],
                    job: int | None = None) -> str:
        sets = ", ".join([*(f"{quote(n)} = %s" for n in names),
                          f"{quote(JOB_COLUMN)} = {_job(job)}"])
        return f"UPDATE {table(schema.name)} SET {sets} WHERE {self._where(schema)}"

    def insert(self, schema: ProcessorSchema, values: Mapping[str, object]) -> bool:
        """Add a record; False when one with its key exists already."""
        names = tuple(values)
        params = [to_db(schema.fields[n], values[n]) for n in names]
        return self.insert_row(schema, names, params)

    def update(self, schema: ProcessorSchema, key: Sequence[object],
               values: Mapping[str, object]) -> bool:
        """Change the given fields of a record; False when there is no such record."""
        names = tuple(n for n in values if n not in schema.key)
        if not names:
            return self.exists(schema, key)
        params = [to_db(schema.fields[n], values[n]) for n in names]
        sql = self._update_sql(schema, names, self.job)
        return self.db.execute(sql, [*params, *key]).rowcount == 1

    def insert_row(self, schema: ProcessorSchema, names: tuple[str, ...],
                   params: Sequence[object]) -> bool:
        """Add one record of stored values; False when one with its key exists already."""
        sql = self._insert_sql(schema.name, names, True, self.job)
        return self.db.execute(sql, list(params)).rowcount == 1

    def insert_rows_all_or_none(self, schema: ProcessorSchema, names: tuple[str, ...],
                                rows: Sequence[Sequence[object]]) -> bool:
        """Add records of stored values, all of them or none (COPY, then one INSERT).

        False, having written nothing, when any key exists already (or comes twice).
        """
        stage = self._stage(schema, names, rows)
        columns = ", ".join(map(_plain, names))
        try:
            with self.savepoint():
                self.db.execute(
                    f"INSERT INTO {_plain('rec_' + schema.name)} ({columns}, "
                    f"{_plain(JOB_COLUMN)}) SELECT {columns}, {_job(self.job)} FROM {stage}")
        except pg_errors.UniqueViolation:
            return False
        return True

    def update_rows_all_or_none(self, schema: ProcessorSchema, names: tuple[str, ...],
                                rows: Sequence[Sequence[object]]) -> bool:
        """Change records to stored values, found by the key fields among *names*.

        One statement for all rows; False, having written nothing, when any
        key has no record (or comes twice: the rows then go one at a time).
        """
        changed = [n for n in names if n not in schema.key]
        stage = self._stage(schema, names, rows)
        sets = ", ".join([*(f"{_plain(n)} = s.{_plain(n)}" for n in changed),
                          f"{_plain(JOB_COLUMN)} = {_job(self.job)}"])
        match = " AND ".join(f"t.{_plain(k)} = s.{_plain(k)}" for k in schema.key)
        try:
            with self.savepoint():
                done = self.db.execute(f"UPDATE {_plain('rec_' + schema.name)} AS t SET {sets} "
                                       f"FROM {stage} AS s WHERE {match}").rowcount
                if done != len(rows):
                    raise _NotEveryRowError
        except _NotEveryRowError:
            return False
        return True

    def _stage(self, schema: ProcessorSchema, names: tuple[str, ...],
               rows: Sequence[Sequence[object]]) -> str:
        """*rows* copied into the (emptied) staging table of *schema*; its name.

        A temporary table of the session, shaped like the records' table,
        emptied at each use and at each commit.
        """
        stage = _plain("stage_" + hashlib.blake2b(schema.name.encode(), digest_size=8).hexdigest())
        # Made again if a rolled-back savepoint took it away; a no-op otherwise.
        self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                        f"(LIKE {_plain('rec_' + schema.name)}) ON COMMIT DELETE ROWS; "
                        f"TRUNCATE {stage}")
        with self.db.cursor().copy(
                f"COPY {stage} ({', '.join(map(_plain, names))}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return stage

    def delete(self, schema: ProcessorSchema, key: Sequence[object]) -> bool:
        sql = f"DELETE FROM {table(schema.name)} WHERE {self._where(schema)}"
        return self.db.execute(sql, tuple(key)).rowcount == 1

    # -- records that name a parent ----------------------------------------------------

    def count_referencing(self, schema: ProcessorSchema, field_name: str, value: object) -> int:
        sql = f"SELECT COUNT(*) FROM {table(schema.name)} WHERE {quote(field_name)} = %s"
        return int(_one(self.db.execute(sql, (value,)).fetchone()))

    def referencing(self, schema: ProcessorSchema, field_name: str, value: object,
                    ) -> list[dict[str, object]]:
        names = list(schema.fields)
        order = ", ".join(quote(k) for k in schema.key)
        sql = (f"SELECT {', '.join(map(quote, names))} FROM {table(schema.name)} "
               f"WHERE {quote(field_name)} = %s ORDER BY {order}")
        return [{n: from_db(schema.fields[n], v) for n, v in zip(names, found, strict=True)}
                for found in self.db.execute(sql, (value,))]

    def count(self, name: str) -> int:
        return int(_one(self._connection().execute(
            f"SELECT COUNT(*) FROM {table(name)}", ()).fetchone()))

    def iter_records(self, name: str, batch: int = 1000) -> Iterator[dict[str, object]]:
        """Every record of processor *name*, typed, in key order, streamed."""
        schema = self.schemas[name]
        names = list(schema.fields)
        types = [schema.fields[n] for n in names]
        for found in self.stored_rows(name, batch):
            yield {n: from_db(t, v) for n, t, v in zip(names, types, found, strict=True)}

    def stored_rows(self, name: str, batch: int = 1000) -> Iterator[tuple[object, ...]]:
        """Every record of processor *name* as stored, in key order, streamed (a server cursor)."""
        schema = self.schemas[name]
        order = ", ".join(quote(k) for k in schema.key)
        with self.snapshot(), self.db.cursor(name="datacenter_rows") as cursor:
            cursor.itersize = max(batch, 1000)
            cursor.execute(f"SELECT {', '.join(map(quote, schema.fields))} FROM {table(name)} "
                           f"ORDER BY {order}", ())
            yield from cursor

    # -- the ledger ---------------------------------------------------------------

    def next_job_id(self) -> int:
        """The id this job's ledger row gets (a sequence: instances commit side by side)."""
        return int(_one(self.db.execute("SELECT nextval('datacenter_jobs_id_seq')").fetchone()))

    def record_action(self, action: str, name: str, user: str, *, ident: str = "",
                      detail: str = "", storage: str = "") -> int:
        """Add what a person did (an upload, a fix, a discard) to the ledger; its id."""
        with self.transaction():
            row = self.db.execute(
                'INSERT INTO datacenter_actions (at, "user", action, name, ident, detail, '
                "storage) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (time.time(), user, action, name, ident, detail, storage)).fetchone()
        return int(_one(row))

    def withdraw_action(self, action_id: int) -> None:
        """Take back action *action_id*: what it says did not happen (its rename failed)."""
        with self.transaction():
            self.db.execute("DELETE FROM datacenter_actions WHERE id = %s", (action_id,))

    def dropped_by(self, name: str, ident: str, storage: str) -> str | None:
        """Who put file *name* at the root of *storage* as it is now (identity *ident*)."""
        row = self._idle(
            'SELECT "user" FROM datacenter_actions WHERE name = %s AND ident = %s '
            "AND storage = %s ORDER BY id DESC LIMIT 1", (name, ident, storage)).fetchone()
        return None if row is None else str(row[0])

    def record_job(self, **fields: Any) -> int:
        """Add a ledger row inside the current transaction; returns its id."""
        fields.setdefault("finished", time.time())
        if "id" not in fields:
            fields["id"] = self.next_job_id()
        names = list(fields)
        self.db.execute(f"INSERT INTO datacenter_jobs ({', '.join(map(quote, names))}) "
                        f"VALUES ({', '.join(['%s'] * len(names))})",
                        [int(v) if isinstance(v, bool) else v for v in fields.values()])
        return int(fields["id"])

    def relabel_storage(self, old: str, new: str) -> int:
        old, new = os.path.realpath(old), os.path.realpath(new)
        with self.transaction() as db:
            return int(db.execute("UPDATE datacenter_jobs SET storage = %s WHERE storage = %s",
                                  (new, old)).rowcount)

    def mark_distributed(self, job_ids: Sequence[int],
                         pending: Mapping[int, tuple[str, str]] | None = None) -> None:
        """Record that these jobs were filed away; their files' claims end with them."""
        if job_ids:
            with self.transaction() as db:
                ids = [int(i) for i in job_ids]
                db.execute("UPDATE datacenter_jobs SET distributed = 1 WHERE id = ANY(%s)", (ids,))
                with db.cursor() as cursor:
                    cursor.executemany(
                        "UPDATE datacenter_jobs SET pending = %s, pending_ident = %s "
                        "WHERE id = %s",
                        [(name, ident, job) for job, (name, ident) in (pending or {}).items()])
                db.execute("DELETE FROM datacenter_claims WHERE job = ANY(%s)", (ids,))

    def left_pending(self, name: str, storage: str | None = None) -> Job | None:
        mine = "" if storage is None else " AND storage IN (%s, '')"
        row = self._idle(
            f"SELECT {_LEDGER} FROM datacenter_jobs WHERE pending = %s AND pending != ''{mine} "
            "ORDER BY id DESC LIMIT 1", (name, *_storage(storage))).fetchone()
        return None if row is None else _job_of(row)

    def committed_into(self, processors: Sequence[str], after: int) -> bool:
        if not processors:
            return False
        return self._idle(
            "SELECT 1 FROM datacenter_jobs WHERE id > %s AND ok > 0 AND processor = ANY(%s) "
            "LIMIT 1", (after, list(processors))).fetchone() is not None

    def jobs(self, undistributed: bool = False, limit: int = 0,
             storage: str | None = None) -> list[Job]:
        """Ledger rows, newest first; of *storage* (its real path) alone when given (and
        the rows of before the ledger said which storage: an empty ``storage``)."""
        where = [*(["distributed = 0"] if undistributed else []),
                 *(["storage IN (%s, '')"] if storage is not None else [])]
        sql = f" WHERE {' AND '.join(where)}" if where else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        rows = self._idle(
            f"SELECT {_LEDGER} FROM datacenter_jobs{sql} ORDER BY id DESC{tail}",
            _storage(storage)).fetchall()
        return [_job_of(row) for row in rows]


def _storage(storage: str | None) -> tuple[str, ...]:
    return () if storage is None else (storage,)


def _job(job: int | None) -> str:
    return "NULL" if job is None else str(int(job))


def _one(row: _Row | None) -> Any:
    if row is None:
        raise StoreError("the database returned no row")
    return row[0]


def _job_of(row: Sequence[Any]) -> Job:
    job = Job(**dict(zip(_JOB_COLUMNS, row, strict=True)))
    job.distributed = bool(job.distributed)
    return job


@injection_point("store.commit")
def _commit(db: Connection) -> None:
    """The commit of an import: a crash point of its own for the fault harness."""
    db.execute("COMMIT")


class _NotEveryRowError(Exception):
    """A batch must be undone: some row of it changed no record."""


# -- read without writing (``status``, ``find``) ---------------------------------------------


def read_ledger(url: str, limit: int = 10, offset: int = 0,
                storage: str | None = None) -> LedgerView:
    """What the ledger says, as :func:`datacenter.records.store.read_ledger`."""
    where_from = None if storage is None else os.path.realpath(storage)

    def read(db: Connection) -> LedgerView:
        if not _has_table(db, "datacenter_jobs"):
            return LedgerView()
        where, params = "", tuple[object, ...]()
        if where_from is not None:
            where, params = "WHERE storage IN (%s, '')", (where_from,)
        found = db.execute(f"SELECT {_LEDGER} FROM datacenter_jobs {where} "
                           "ORDER BY id DESC LIMIT %s OFFSET %s", (*params, limit, offset))
        last = [_job_of(row) for row in found]
        unfiled = db.execute("SELECT COUNT(*) FROM datacenter_jobs WHERE distributed = 0")
        return LedgerView(last, int(_one(unfiled.fetchone())))

    return _read_only(url, read)


def read_actions(url: str, storage: str, limit: int = 20, offset: int = 0) -> list[Action]:
    """The last actions on the storage at *storage*, newest first, read only."""
    where_from = os.path.realpath(storage)

    def read(db: Connection) -> list[Action]:
        if not _has_table(db, "datacenter_actions"):
            return []
        found = db.execute('SELECT id, at, "user", action, name, ident, detail, storage '
                           "FROM datacenter_actions WHERE storage = %s "
                           "ORDER BY id DESC LIMIT %s OFFSET %s", (where_from, limit, offset))
        return [Action(*row) for row in found]

    return _read_only(url, read)


def read_totals(url: str, storage: str, bounds: Sequence[float]) -> LedgerTotals:
    """The imports into the storage at *storage*, summed; durations counted per bound."""
    where_from = os.path.realpath(storage)

    def read(db: Connection) -> LedgerTotals:
        if not _has_table(db, "datacenter_jobs"):
            return LedgerTotals(durations=dict.fromkeys(bounds, 0))
        buckets = "".join(", COALESCE(SUM(CASE WHEN finished - started <= %s THEN 1 "
                          "ELSE 0 END), 0)" for _ in bounds)
        row = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(ok), 0), COALESCE(SUM(failed), 0), MAX(finished), "
            f"COALESCE(SUM(finished - started), 0){buckets} FROM datacenter_jobs "
            "WHERE storage IN (%s, '')", (*bounds, where_from)).fetchone()
        assert row is not None  # an aggregate always answers one row
        return LedgerTotals(int(row[0]), int(row[1]), int(row[2]), row[3],
                            dict(zip(bounds, map(int, row[5:]), strict=True)), float(row[4]))

    return _read_only(url, read)


def read_record(url: str, schema: ProcessorSchema, key: Sequence[object],
                ) -> StoredRecord | None:
    """The record of *schema* with *key* (stored values), read only."""
    def read(db: Connection) -> StoredRecord | None:
        if not _has_table(db, f"rec_{schema.name}"):
            return None
        names = list(schema.fields)
        present = _columns(db).get(f"rec_{schema.name}", set())  # a field added since: NULL
        columns = [quote(n) if n in present else "NULL" for n in [*names, JOB_COLUMN]]
        where = " AND ".join(f"{quote(k)} = %s" for k in schema.key)
        found = db.execute(f"SELECT {', '.join(columns)} FROM {table(schema.name)} "
                           f"WHERE {where}", tuple(key)).fetchone()
        if found is None:
            return None
        values = {n: from_db(schema.fields[n], v) for n, v in zip(names, found, strict=False)}
        job = None
        if found[-1] is not None:
            row = db.execute(f"SELECT {_LEDGER} FROM datacenter_jobs WHERE id = %s",
                             (found[-1],)).fetchone()
            job = _job_of(row) if row else None
        return StoredRecord(values, job)

    return _read_only(url, read)


def read_jobs(url: str, processor: str) -> list[Job]:
    """Every ledger row of imports into *processor*, oldest first, read only."""
    def read(db: Connection) -> list[Job]:
        if not _has_table(db, "datacenter_jobs"):
            return []
        found = db.execute(f"SELECT {_LEDGER} FROM datacenter_jobs WHERE processor = %s "
                           "ORDER BY id", (processor,))
        return [_job_of(row) for row in found]

    return _read_only(url, read)


def _columns(db: Connection) -> dict[str, set[str]]:
    """The columns of each record table (``rec_*``) of the database."""
    found: dict[str, set[str]] = {}
    for name, column in db.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name LIKE 'rec\\_%'"):
        found.setdefault(str(name), set()).add(str(column))
    return found


def _has_table(db: Connection, name: str) -> bool:
    row = db.execute("SELECT to_regclass(%s)", (_plain(name),)).fetchone()
    return row is not None and row[0] is not None


def _read_only(url: str, read: Callable[[Connection], _T]) -> _T:
    with contextlib.closing(connect(url)) as db:
        db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return read(db)
