"""Which record store a config names, and what every record store offers.

``database`` in the config is an SQLite file (the embedded default) or a
``postgresql://`` URL. :class:`Store` is the interface the importer, the
processors, the filing and the export use; both :class:`RecordStore`
(SQLite) and :class:`PostgresStore` satisfy it, and the tests hold both to
the same behaviour. :func:`open_store` opens the one named, and the
read-only readers (``status``, ``find``) go to the one named too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from datacenter.records import postgres, store
from datacenter.records.postgres import PostgresStore, is_url
from datacenter.records.schema import ProcessorSchema
from datacenter.records.store import (
    Action,
    Job,
    LedgerTotals,
    LedgerView,
    RecordStore,
    StoredRecord,
)

#: What a record store raises when its database fails (either kind).
STORE_ERRORS: tuple[type[Exception], ...] = (store.StoreError, postgres.StoreError)
#: A failure of the moment (locked, busy, full; the server gone or restarting):
#: nothing was written, and trying again later may succeed.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    store.StoreUnavailableError, *postgres.StoreUnavailableError)

__all__ = ["STORE_ERRORS", "UNAVAILABLE_ERRORS", "Store", "is_url", "open_store", "read_jobs",
           "read_ledger", "read_record"]


class Store(Protocol):
    """A record store: tables per processor, the ledger, one transaction per import."""

    path: str
    schemas: dict[str, ProcessorSchema]
    job: int | None

    def close(self) -> None: ...
    def transaction(self) -> contextlib.AbstractContextManager[Any]: ...
    def savepoint(self) -> contextlib.AbstractContextManager[None]: ...
    def snapshot(self) -> contextlib.AbstractContextManager[None]: ...
    def provenance(self, job: int) -> contextlib.AbstractContextManager[None]: ...
    def key_of(self, schema: ProcessorSchema,
               values: Mapping[str, object]) -> tuple[object, ...]: ...
    def exists(self, schema: ProcessorSchema, key: Sequence[object]) -> bool: ...
    def get(self, schema: ProcessorSchema,
            key: Sequence[object]) -> dict[str, object] | None: ...
    def insert(self, schema: ProcessorSchema, values: Mapping[str, object]) -> bool: ...
    def update(self, schema: ProcessorSchema, key: Sequence[object],
               values: Mapping[str, object]) -> bool: ...
    def insert_row(self, schema: ProcessorSchema, names: tuple[str, ...],
                   params: Sequence[object]) -> bool: ...
    def insert_rows_all_or_none(self, schema: ProcessorSchema, names: tuple[str, ...],
                                rows: Sequence[Sequence[object]]) -> bool: ...
    def update_rows_all_or_none(self, schema: ProcessorSchema, names: tuple[str, ...],
                                rows: Sequence[Sequence[object]]) -> bool: ...
    def delete(self, schema: ProcessorSchema, key: Sequence[object]) -> bool: ...
    def count_referencing(self, schema: ProcessorSchema, field_name: str,
                          value: object) -> int: ...
    def referencing(self, schema: ProcessorSchema, field_name: str,
                    value: object) -> list[dict[str, object]]: ...
    def count(self, name: str) -> int: ...
    def iter_records(self, name: str, batch: int = 1000) -> Iterator[dict[str, object]]: ...
    def stored_rows(self, name: str, batch: int = 1000) -> Iterator[tuple[object, ...]]: ...
    def next_job_id(self) -> int: ...
    def record_job(self, **fields: Any) -> int: ...
    def relabel_storage(self, old: str, new: str) -> int: ...
    def mark_distributed(self, job_ids: Sequence[int],
                         pending: Mapping[int, tuple[str, str]] | None = None) -> None: ...
    def left_pending(self, name: str, storage: str | None = None) -> Job | None: ...
    def committed_into(self, processors: Sequence[str], after: int) -> bool: ...
    def jobs(self, undistributed: bool = False, limit: int = 0,
             storage: str | None = None) -> list[Job]: ...
    def record_action(self, action: str, name: str, user: str, *, ident: str = "",
                      detail: str = "", storage: str = "") -> int: ...
    def withdraw_action(self, action_id: int) -> None: ...
    def dropped_by(self, name: str, ident: str, storage: str) -> str | None: ...


def open_store(database: str, schemas: Mapping[str, ProcessorSchema]) -> Store:
    """The record store *database* names: a PostgreSQL URL, or an SQLite file."""
    if is_url(database):
        return PostgresStore(database, schemas)
    return RecordStore(database, schemas)


def exists(database: str) -> bool:
    """Is there a record store at *database* (a server always counts: it says itself)?"""
    return is_url(database) or os.path.isfile(database)


def read_ledger(database: str, limit: int = 10, offset: int = 0,
                storage: str | None = None) -> LedgerView:
    """The last imports and the unfiled count, read without writing (``status``)."""
    if is_url(database):
        return postgres.read_ledger(database, limit, offset, storage)
    return store.read_ledger(database, limit, offset, storage)


def read_actions(database: str, storage: str, limit: int = 20, offset: int = 0,
                 ) -> list[Action]:
    """What people did on the storage besides importing, newest first (read only)."""
    if is_url(database):
        return postgres.read_actions(database, storage, limit, offset)
    return store.read_actions(database, storage, limit, offset)


def read_totals(database: str, storage: str, bounds: Sequence[float]) -> LedgerTotals:
    """The storage's imports summed, durations counted per bound (``/metrics``)."""
    if is_url(database):
        return postgres.read_totals(database, storage, bounds)
    return store.read_totals(database, storage, bounds)


def read_record(database: str, schema: ProcessorSchema,
                key: Sequence[object]) -> StoredRecord | None:
    if is_url(database):
        return postgres.read_record(database, schema, key)
    return store.read_record(database, schema, key)


def read_jobs(database: str, processor: str) -> list[Job]:
    if is_url(database):
        return postgres.read_jobs(database, processor)
    return store.read_jobs(database, processor)
