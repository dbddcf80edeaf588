"""Batch processors: Kofa's way of importing CSV rows, row by row.

Rows are not validated in advance: real files hold thousands of rows, and
some can only succeed later (a department whose faculty does not exist
yet). Every row either reaches the record store, and its canonical text
the *finished* file, or stays in the *pending* file with its original cells
and a ``--ERRORS--`` column saying why.

The method names are Kofa's (``checkHeaders``, ``doImport``, ...), so code
written for Kofa's processors reads the same here.

Longer than 400 lines because :class:`BatchProcessor` is the one class a
plugin subclasses: Kofa's hooks, the row engine's loop and the choice of
the columnar engine (:mod:`.columnar`) must stay together for an override
to mean what it says.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from datacenter.config import DEFAULT_MAX_LINE_BYTES
from datacenter.importing import columnar, diagnosis
from datacenter.importing.csvinput import CSVSource, FatalCSVError, Row
from datacenter.importing.outputs import ImportResult, Outputs, backups_in, pending_cells
from datacenter.importing.reasons import EXISTS, NO_PARENT, NO_REMOVE, NO_UPDATE
from datacenter.importing.removal import back_up_removal
from datacenter.importing.rowplan import Converted, RowPlan
from datacenter.records.backend import Store
from datacenter.records.naming import doubles
from datacenter.records.schema import ERRORS_COLUMN, MODES, ProcessorSchema
from datacenter.records.store import RecordStore
from datacenter.storage import fs

if TYPE_CHECKING:
    from datacenter.storage.center import DataCenter

__all__ = ["BatchProcessor", "FatalCSVError", "ImportResult"]

#: Rows of a create or update import written together (one statement, all or none).
_BATCH = 500
#: Kofa's per-row hooks; overriding any of them turns the fast path off.
_HOOKS = ("applyMapping", "checkConversion", "parentsExist", "entryExists", "getEntry",
          "addEntry", "updateEntry", "delEntry", "checkUpdateRequirements")


class BatchProcessor:
    """Imports the rows of CSV files into one processor's records."""

    #: The longest row a file may have (the importer sets the config's).
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    #: False: every row goes one by one, never through :mod:`.columnar` (tests compare).
    columnar: bool = True
    #: Fsync the outputs in :meth:`import_rows` (the importer's batches: at once, later).
    sync_outputs: bool = True

    def __init__(self, schema: ProcessorSchema, store: Store,
                 datacenter: DataCenter | None = None) -> None:
        self.schema = schema
        self.store = store
        self.datacenter = datacenter
        self._parent_cache: dict[tuple[str, object], bool] = {}

    # -- Kofa's attributes -------------------------------------------------------

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def location_fields(self) -> list[str]:
        return list(self.schema.location_fields)

    @property
    def required_fields(self) -> list[str]:
        return list(self.schema.required_fields)

    @property
    def available_fields(self) -> list[str]:
        return list(self.schema.available_fields)

    @property
    def req(self) -> dict[str, list[str]]:
        return {mode: list(fields) for mode, fields in self.schema.req.items()}

    def get_csv_skeleton(self) -> str:
        """A header-only CSV of every field: a template to fill in."""
        return self.schema.csv_template()

    # -- checks ----------------------------------------------------------------

    def checkHeaders(self, headerfields: list[str], mode: str = "create") -> bool:  # noqa: N802
        """Raise FatalCSVError unless the columns suit *mode*."""
        if mode not in MODES:
            raise FatalCSVError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
        # Dicts and counters, never a scan of the header per column: a header
        # of 100,000 columns must take milliseconds, not minutes.
        fields = [self.schema.field_of(h) for h in headerfields]
        present = set(fields)
        missing = [f for f in self.req[mode] if f not in present]
        if missing:
            needed = ", ".join(f"'{f}'" for f in self.req[mode])
            raise FatalCSVError(
                f"Need at least columns {needed} for import! "
                f"({diagnosis.header_mismatch(headerfields, missing)})")
        doubled = doubles(headerfields, fields)
        if doubled:
            raise FatalCSVError(
                "Double headers: each column name may only appear once "
                f"({', '.join(doubled)})")
        return True

    def getMapping(self, headerfields: list[str], mode: str) -> dict[int, str]:  # noqa: N802
        """Column number -> field name, for the columns this import uses
        (:meth:`ProcessorSchema.field_of` says which field a header feeds)."""
        mapping = {}
        for number, header in enumerate(headerfields):
            name = self.schema.field_of(header)
            if name is None:
                continue
            if mode == "remove" and name not in self.schema.key:
                continue  # only the key says what to remove
            mapping[number] = name
        return mapping

    def applyMapping(self, cells: list[str], mapping: Mapping[int, str]) -> dict[str, str]:  # noqa: N802
        return {name: cells[number] for number, name in mapping.items()}

    def checkConversion(  # noqa: N802
        self, row: Mapping[str, str], mode: str = "create", ignore_empty: bool = True
    ) -> tuple[list[str], dict[str, object]]:
        """``(errors, typed values)`` of a mapped row."""
        values, errors = self.schema.convert(row, mode, ignore_empty)
        return errors, values

    def parentsExist(self, values: Mapping[str, object]) -> bool:  # noqa: N802
        for field_name, parent in self.schema.parents.items():
            value = values.get(field_name)
            if value is None:
                continue
            cached = self._parent_cache.get((parent, value))
            if cached is None:
                parent_schema = self.store.schemas[parent]
                cached = len(parent_schema.key) == 1 and self.store.exists(
                    parent_schema, (value,))
                self._parent_cache[(parent, value)] = cached
            if not cached:
                return False
        return True

    def entryExists(self, values: Mapping[str, object]) -> bool:  # noqa: N802
        return self.store.exists(self.schema, self.store.key_of(self.schema, values))

    def getEntry(self, values: Mapping[str, object]) -> dict[str, object] | None:  # noqa: N802
        return self.store.get(self.schema, self.store.key_of(self.schema, values))

    def addEntry(self, values: Mapping[str, object]) -> bool:  # noqa: N802
        return self.store.insert(self.schema, values)

    def updateEntry(self, values: Mapping[str, object]) -> bool:  # noqa: N802
        return self.store.update(self.schema, self.store.key_of(self.schema, values), values)

    def delEntry(self, values: Mapping[str, object]) -> bool:  # noqa: N802
        return self.store.delete(self.schema, self.store.key_of(self.schema, values))

    def checkUpdateRequirements(  # noqa: N802
        self, entry: Mapping[str, object], values: Mapping[str, object], mode: str
    ) -> str | None:
        """A reason to refuse this change of *entry*, or None; for subclasses."""
        return None

    # -- importing -------------------------------------------------------------

    def doImport(  # noqa: N802
        self,
        path: str,
        headerfields: list[str],
        mode: str = "create",
        user: str = "Unknown",
        logger: logging.Logger | None = None,
        ignore_empty: bool = True,
    ) -> tuple[int, int, str, str | None]:
        """Import *path* in one transaction; Kofa's signature and result.

        Returns ``(rows, failed, finished_path, pending_path or None)``;
        the two files are in a new temporary folder, ready for
        ``DataCenter.distProcessedFiles``. Records removed in ``remove``
        mode are backed up through the data center before the transaction
        commits, so none is ever lost (use :mod:`datacenter.importer` for
        exactly-once imports that also survive a crash after the commit).
        """
        workdir = tempfile.mkdtemp(prefix="datacenter-import-")
        try:
            with self.store.transaction():
                result = self._import_and_back_up(path, headerfields, mode, ignore_empty,
                                                  workdir)
        except BaseException:
            fs.rmtree(workdir)
            raise
        self.log_result(path, mode, user, result, logger)
        return result.rows, result.failed, result.finished_path, result.pending_path

    def _import_and_back_up(self, path: str, headerfields: list[str], mode: str,
                            ignore_empty: bool, workdir: str) -> ImportResult:
        result = self.import_rows(path, headerfields, mode, ignore_empty, workdir)
        if self.datacenter is not None:
            for backup in backups_in(workdir, self.name):
                self.datacenter.backup_file(backup.processor, backup.path, backup.graduated)
        return result

    def log_result(self, path: str, mode: str, user: str, result: ImportResult,
                   logger: logging.Logger | None = None) -> None:
        per_item = result.seconds / result.rows if result.rows else 0.0
        message = (f"processed: {os.path.basename(path)}, {mode} mode, {result.rows} lines "
                   f"({result.ok} successful/ {result.failed} failed), "
                   f"{result.seconds:.3f} s ({per_item:.4f} s/item)"
                   + "".join(f", {note}" for note in result.notes))
        if logger is not None:
            logger.info(message, extra={"user": user})
        elif self.datacenter is not None:
            self.datacenter.log(message, user=user)

    def import_rows(self, path: str, headerfields: list[str] | None, mode: str,
                    ignore_empty: bool, workdir: str,
                    progress: Callable[[int, int], None] | None = None) -> ImportResult:
        """Apply the rows of *path* inside the caller's transaction.

        The finished, pending and backup files are written to *workdir* and
        made durable before this returns (see :attr:`sync_outputs`). Raises
        FatalCSVError (nothing kept) when the file as a whole cannot be
        imported. *progress* is called with the rows and bytes read so far:
        once when the rows begin (0 rows: a rate starts there, not while the
        import waited for the storage's lock), then every 10,000 rows.
        """
        started = time.perf_counter()
        store = self.store
        if (headerfields is None and isinstance(store, RecordStore)
                and self._columnar_fits(mode, ignore_empty)):
            done = columnar.import_file(self, store, path, mode, workdir, progress)
            if done is not None:
                return done.found_outputs(self.name, started)
        result = ImportResult(workdir)
        self._parent_cache.clear()
        with CSVSource(path, self.max_line_bytes, self.schema.encoding, self.name) as source:
            header = headerfields if headerfields is not None else source.header
            if source.delimiter != ",":
                result.notes.append(diagnosis.separated(source.delimiter))
            self.checkHeaders(header, mode)
            mapping = self.getMapping(header, mode)
            outputs = Outputs(workdir, header, self.schema)
            plan = RowPlan(self.schema, header, mapping, mode, ignore_empty)
            if progress is not None:
                progress(0, source.position)

            def fail(row: Row, reason: str) -> None:
                result.failed += 1
                outputs.writer("pending.csv", outputs.pending_header).writerow(
                    pending_cells(row.cells, header, reason))

            # Rows wait here until their batch is written, failed ones too, so
            # the finished and pending files keep the order of the source.
            batch: list[tuple[Row, Converted | str]] = []
            fast = self._plain_hooks()
            try:
                for row in source.rows():
                    result.rows += 1
                    if progress is not None and not result.rows % 10_000:
                        progress(result.rows, source.position)
                    if not fast:
                        reason = self._import_row(row, header, mapping, mode, ignore_empty,
                                                  outputs)
                        if reason is not None:
                            fail(row, reason)
                        continue
                    converted = self._planned_row(row, plan, mode)
                    if mode != "remove":
                        batch.append((row, converted))
                        if len(batch) >= _BATCH:
                            self._write_batch(mode, batch, outputs, fail)
                            batch = []
                        continue
                    # Removals go one by one: each record is backed up before it goes.
                    if isinstance(converted, str):
                        fail(row, converted)
                    elif (reason := self._remove(converted.values, outputs)) is not None:
                        fail(row, reason)
                    else:
                        outputs.finished.writerow(converted.finished)
                self._write_batch(mode, batch, outputs, fail)
            except BaseException:
                outputs.discard()
                raise
            outputs.close(self.sync_outputs)
            result.sha256 = source.sha256
        return result.found_outputs(self.name, started)

    def _columnar_fits(self, mode: str, ignore_empty: bool) -> bool:
        """Columnar (SQLite only), unless per-row hooks, Kofa's ``doImport`` (no job) or
        the rows' order within a statement would matter (:func:`.columnar.fits`)."""
        return (self.columnar and self._plain_hooks() and ignore_empty
                and self.store.job is not None and columnar.fits(self.schema, mode))

    def _plain_hooks(self) -> bool:
        """Does this processor use Kofa's hooks as they are here (no override)?

        Then rows take the compiled fast path; a subclass that overrides a
        hook gets every row through its hooks instead.
        """
        cls = type(self)
        return all(getattr(cls, hook) is getattr(BatchProcessor, hook) for hook in _HOOKS)

    def _planned_row(self, row: Row, plan: RowPlan, mode: str) -> Converted | str:
        """The converted row, or the reason it fails before reaching the store."""
        if len(row.cells) != plan.width:
            return f"line {row.line}: {len(row.cells)} cells, but the header has {plan.width}"
        converted = plan.convert(row.cells)
        if isinstance(converted, list):
            return "; ".join(converted)
        if mode != "remove" and not self.parentsExist(converted.values):
            return NO_PARENT
        return converted

    def _write_batch(self, mode: str, batch: list[tuple[Row, Converted | str]],
                     outputs: Outputs, fail: Callable[[Row, str], None]) -> None:
        """Create or update the rows of a batch; one by one if any of them fails.

        One statement for the batch, all or nothing; if a key exists (create)
        or is missing (update), nothing was written and the rows go one at a
        time, so each gets its own outcome. Then every row of the batch,
        failed or not, is written out in the source's order.
        """
        rows = [c for _, c in batch if not isinstance(c, str)]
        outcome: dict[int, str | None] = {}
        if rows and not self._all_at_once(mode, rows):
            for converted in rows:
                if mode == "create":
                    done = self.store.insert_row(self.schema, converted.names, converted.params)
                else:
                    done = self.updateEntry(converted.values)
                outcome[id(converted)] = None if done else (EXISTS if mode == "create"
                                                            else NO_UPDATE)
        for row, entry in batch:
            if isinstance(entry, str):
                fail(row, entry)
            elif (reason := outcome.get(id(entry))) is not None:
                fail(row, reason)
            else:
                outputs.finished.writerow(entry.finished)

    def _all_at_once(self, mode: str, rows: list[Converted]) -> bool:
        """Write *rows* with one statement; False (nothing written) if any fails."""
        names = rows[0].names
        if any(converted.names != names for converted in rows):
            return False  # rows with other columns (empty cells) need other statements
        params = [converted.params for converted in rows]
        if mode == "create":
            return self.store.insert_rows_all_or_none(self.schema, names, params)
        return self.store.update_rows_all_or_none(self.schema, names, params)

    def _remove(self, values: Mapping[str, object], outputs: Outputs) -> str | None:
        """Back the record up (deleted or graduated), then remove it.

        Records naming it as their parent are refused, removed too, or kept
        by ``on_remove`` (:mod:`.references`, :mod:`.removal`).
        """
        entry = self.getEntry(values)
        if entry is None:
            return NO_REMOVE
        refused = back_up_removal(self.store, self.schema, entry, outputs, self.name)
        if refused is None:
            self.delEntry(values)
        return refused

    def _import_row(self, row: Row, header: list[str], mapping: Mapping[int, str], mode: str,
                    ignore_empty: bool, outputs: Outputs) -> str | None:
        """Apply one row; the reason it failed, or None."""
        if len(row.cells) != len(header):
            return f"line {row.line}: {len(row.cells)} cells, but the header has {len(header)}"
        errors, values = self.checkConversion(
            self.applyMapping(row.cells, mapping), mode, ignore_empty)
        if errors:
            return "; ".join(errors)
        if mode != "remove" and not self.parentsExist(values):
            return NO_PARENT
        if mode == "create":
            if not self.addEntry(values):
                return EXISTS
        elif mode == "update":
            entry = self.getEntry(values)
            if entry is None:
                return NO_UPDATE
            refused = self.checkUpdateRequirements(entry, values, mode)
            if refused:
                return refused
            self.updateEntry(values)
        elif (reason := self._remove(values, outputs)) is not None:
            return reason
        finished = self.schema.format_record(values)
        field_of = self.schema.field_of
        outputs.finished.writerow(
            [finished.get(field_of(name) or "", cell) if field_of(name) is not None else cell
             for name, cell in zip(header, row.cells, strict=True)
             if name != ERRORS_COLUMN])
        return None

