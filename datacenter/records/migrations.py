"""The PostgreSQL schema of the record store, created and upgraded by the project itself.

The schema has a version, kept in ``datacenter_schema``. Each entry of
:data:`STEPS` brings a database from one version to the next; opening a
store applies the steps it lacks, in one transaction, under a
transaction-level advisory lock: two instances starting at once do not
both create the ledger (the second waits, then finds the version current
and does nothing). A database of a *later* version than this code knows is
refused: its schema may mean something this code cannot keep.

The tables of the processors (``rec_<name>``) are not versioned: they
follow the config, and are made under the same advisory lock when a
processor is new (:func:`ensure_tables`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

import psycopg

from datacenter.errors import DataCenterError

#: The advisory lock key of schema changes (any fixed number; "dcschema" in ASCII).
SCHEMA_LOCK = 0x6463736368656D61
#: Version n is reached by running ``STEPS[n - 1]``.
STEPS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE datacenter_schema (version integer NOT NULL)",
        "INSERT INTO datacenter_schema (version) VALUES (0)",
        """CREATE TABLE datacenter_jobs (
            id          bigint PRIMARY KEY,
            source      text NOT NULL,
            sha256      text NOT NULL,
            processor   text NOT NULL,
            mode        text NOT NULL,
            "user"      text NOT NULL,
            rows        bigint NOT NULL,
            ok          bigint NOT NULL,
            failed      bigint NOT NULL,
            outcome     text NOT NULL,
            started     double precision NOT NULL,
            finished    double precision NOT NULL,
            workdir     text NOT NULL,
            ident       text NOT NULL DEFAULT '',
            distributed integer NOT NULL DEFAULT 0,
            pending     text NOT NULL DEFAULT '',
            pending_ident text NOT NULL DEFAULT '',
            storage     text NOT NULL DEFAULT ''
        )""",
        "CREATE SEQUENCE datacenter_jobs_id_seq OWNED BY datacenter_jobs.id",
        "CREATE INDEX datacenter_jobs_pending ON datacenter_jobs (pending) WHERE pending != ''",
        # One file of a storage is committed at most once until it is filed: a
        # second commit of a source whose first is not filed yet is refused by
        # the database itself, whatever the instances believe.
        """CREATE UNIQUE INDEX datacenter_jobs_unfiled
            ON datacenter_jobs (storage, source) WHERE distributed = 0""",
        # The instances working on storages, and their heartbeats.
        """CREATE TABLE datacenter_instances (
            id        text PRIMARY KEY,
            host      text NOT NULL,
            machine   text NOT NULL,
            pid       integer NOT NULL,
            kind      text NOT NULL,
            storage   text NOT NULL,
            started   timestamptz NOT NULL DEFAULT now(),
            heartbeat timestamptz NOT NULL DEFAULT now(),
            in_hand   text NOT NULL DEFAULT ''
        )""",
        # A file of a storage taken by one instance: until *expires* (its
        # instance's heartbeats push it on), or for good once *job* committed it
        # (then until that job is filed).
        """CREATE TABLE datacenter_claims (
            storage  text NOT NULL,
            name     text NOT NULL,
            ident    text NOT NULL,
            instance text NOT NULL,
            token    text NOT NULL,
            expires  timestamptz NOT NULL,
            job      bigint,
            PRIMARY KEY (storage, name)
        )""",
        "CREATE INDEX datacenter_claims_job ON datacenter_claims (job) WHERE job IS NOT NULL",
    ),
    (
        # What people did besides importing (the web console's uploads and fixes,
        # discards): who put a file at the root is asked per file imported.
        """CREATE TABLE datacenter_actions (
            id      bigserial PRIMARY KEY,
            at      double precision NOT NULL,
            "user"  text NOT NULL,
            action  text NOT NULL,
            name    text NOT NULL,
            ident   text NOT NULL DEFAULT '',
            detail  text NOT NULL DEFAULT '',
            storage text NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX datacenter_actions_by_name ON datacenter_actions (name, ident)",
    ),
)
CURRENT = len(STEPS)


class SchemaVersionError(DataCenterError, RuntimeError):
    """The database was made by a later version of datacenter."""


def upgrade(db: psycopg.Connection[tuple[object, ...]], url: str) -> int:
    """Bring the schema at *db* (autocommit) to :data:`CURRENT`; the version it had.

    Idempotent, and safe when several processes do it at once.
    """
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        version = _version(db)
        if version > CURRENT:
            raise SchemaVersionError(
                f"{safe_url(url)}: the record store's schema is version {version}, made by a "
                f"later datacenter (this one knows up to {CURRENT}); upgrade datacenter")
        for number in range(version, CURRENT):
            for statement in STEPS[number]:
                db.execute(statement)
            db.execute("UPDATE datacenter_schema SET version = %s", (number + 1,))
    return version


def ensure_tables(db: psycopg.Connection[tuple[object, ...]],
                  statements: Iterable[tuple[str, str]]) -> None:
    """Run each ``(table, statement)`` whose table is missing, under the schema lock."""
    wanted = list(statements)
    missing = [(name, sql) for name, sql in wanted if not _exists(db, name)]
    if not missing:
        return
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for name, statement in missing:
            if not _exists(db, name):
                db.execute(statement)


def alter_tables(db: psycopg.Connection[tuple[object, ...]],
                 changes: Iterable[tuple[str, str]]) -> None:
    """Run ``ALTER TABLE table change`` for each ``(table, change)``, under the schema lock.

    Each change must be idempotent (``ADD COLUMN IF NOT EXISTS``): another
    process opening the store may have made it first.
    """
    wanted = list(changes)
    if not wanted:
        return
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for name, change in wanted:
            db.execute(f'ALTER TABLE "{name.replace(chr(34), chr(34) * 2)}" {change}')


def _exists(db: psycopg.Connection[tuple[object, ...]], name: str) -> bool:
    found = db.execute("SELECT to_regclass(%s)", ('"' + name.replace('"', '""') + '"',))
    row = found.fetchone()
    return row is not None and row[0] is not None


def _version(db: psycopg.Connection[tuple[object, ...]]) -> int:
    if not _exists(db, "datacenter_schema"):
        return 0
    row = db.execute("SELECT version FROM datacenter_schema").fetchone()
    return int(str(row[0])) if row is not None else 0


def safe_url(url: str) -> str:
    """*url* with its password hidden, for messages and ``status``."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
