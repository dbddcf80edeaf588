"""The columnar import engine: a file read, checked and applied in batches of rows.

What the row engine (:meth:`.BatchProcessor.import_rows`) does one row at
a time, this does for a record batch at once, with the same result: the
same records, the same finished, pending and backup files, byte for byte.

1. The header is read by :class:`.CSVSource` (its errors are the row
   engine's), checked and mapped by the processor's own ``checkHeaders``
   and ``getMapping``; :mod:`.prescan` hashes the file and says whether
   Arrow may read it (else the row engine imports it: :func:`import_file`
   returns None).
2. Arrow reads it in record batches (bounded memory), every cell as text.
   Rows of another width than the header are handed aside by the reader
   with their row number and text; blank rows are dropped, as ever.
3. :mod:`.vectorcheck` checks each field's column; rows with errors fail.
4. The other rows go to the store (:mod:`datacenter.records.staging`): a
   batch of creates or updates is first tried as one statement, all or
   none; if any row of it fails (a key stored already, or unknown), or
   parents must be checked, or rows are removed, the batch is staged in a
   TEMP table and each outcome is one set-based statement. Batches go in
   the file's order, so each row meets the store as the row engine's would.
5. The batch's finished rows are appended as CSV built column-wise
   (:mod:`.csvbytes`); its failed rows, in the file's order, to the
   pending file with the csv module (the row engine's own writer).

All of it runs on the store's connection inside the caller's transaction
(and a savepoint of its own): the rows, the staging and the job's ledger
row commit together, once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from datacenter.importing import diagnosis
from datacenter.importing.batchread import BatchReader, RowBatch, RowEngineError
from datacenter.importing.csvbytes import csv_bytes
from datacenter.importing.csvinput import CSVSource
from datacenter.importing.outputs import ImportResult, Outputs, backup_name, pending_cells
from datacenter.importing.prescan import scan
from datacenter.importing.reasons import EXISTS, NO_PARENT, NO_REMOVE, NO_UPDATE
from datacenter.importing.references import references_to
from datacenter.importing.vectorcheck import check_column
from datacenter.records.schema import ERRORS_COLUMN, ProcessorSchema
from datacenter.records.staging import Stage, open_stage
from datacenter.records.store import RecordStore

#: Bytes Arrow reads per block (about 3,500 rows of six short columns). Its reader
#: holds about 40 blocks ahead: 10 MB, whatever the file's size.
BLOCK_BYTES = 256 << 10
#: Files smaller than this go to the row engine: below about 1,000 rows its cost per
#: file (a few milliseconds less: no second read, no Arrow reader) wins.
MIN_BYTES = 64 << 10
#: Rows handed to SQLite at once (each row's values are Python objects then).
SQL_ROWS = 4096
#: Rows between two progress reports.
PROGRESS_ROWS = 10_000
_NO_ERROR = pa.scalar("", pa.string())
_SEPARATOR = pa.scalar("; ", pa.string())

#: A failed row: its number, its cells, the reason.
Failed = tuple[int, list[str], str]


class ColumnarProcessor(Protocol):
    """What the engine needs of a processor: its schema, store and header rules."""

    schema: ProcessorSchema
    max_line_bytes: int
    #: False: the outputs are closed unsynced; the importer syncs the batch's at once.
    sync_outputs: bool

    @property
    def name(self) -> str: ...

    def checkHeaders(self, headerfields: list[str], mode: str = "create") -> bool: ...  # noqa: N802

    def getMapping(self, headerfields: list[str], mode: str) -> dict[int, str]: ...  # noqa: N802


def fits(schema: ProcessorSchema, mode: str) -> bool:
    """May the columnar engine import rows of *schema* in *mode*?

    Not where the order of rows inside one statement would matter: a
    processor that is its own parent (a row may name a record an earlier
    row of the file made), or removals that cascade (each row's cascade
    sees what the rows before it removed). The caller also keeps the row
    engine for processors with per-row hooks, and for imports outside the
    ledger (Kofa's ``doImport``).
    """
    return (schema.name not in schema.parents.values()
            and not (mode == "remove" and schema.on_remove == "cascade"))


def import_file(processor: ColumnarProcessor, store: RecordStore, path: str, mode: str,
                workdir: str, progress: Callable[[int, int], None] | None = None,
                ) -> ImportResult | None:
    """Import *path* into *store* (the processor's, SQLite) inside the caller's
    transaction; None: the row engine must do it.

    Raises :class:`.FatalCSVError` as the row engine does, for a file that
    cannot be imported at all (no header, columns missing).
    """
    schema = processor.schema
    if os.lstat(path).st_size < MIN_BYTES:
        return None  # a small file: the row engine is quicker (and says the same)
    with CSVSource(path, processor.max_line_bytes, schema.encoding, processor.name) as source:
        header, delimiter = source.header, source.delimiter
        on_one_line, header_bytes = source.lines_read == 1, source.position
    processor.checkHeaders(header, mode)
    mapping = processor.getMapping(header, mode)
    if not on_one_line:
        return None  # blank lines before the header, or a header cell over lines: rare
    scanned = scan(path, processor.max_line_bytes, delimiter)
    if scanned.refused is not None:
        return None  # the row engine reads it exactly as ever (see prescan)
    result = ImportResult(workdir, sha256=scanned.sha256)
    if delimiter != ",":
        result.notes.append(diagnosis.separated(delimiter))
    reader = BatchReader(path, len(header), delimiter, scanned.quoted, BLOCK_BYTES,
                         over_lines_allowed=scanned.size <= processor.max_line_bytes,
                         header_bytes=header_bytes)
    outputs = Outputs(workdir, header, schema)
    try:
        with store.savepoint():
            run = _Run(processor, store, header, mapping, mode, outputs, result)
            if progress is not None:
                progress(0, 0)
            reported = 0
            for batch in reader:
                run.batch(batch)
                # Every 10,000 rows, as the row engine reports (once they are done).
                while progress is not None and result.rows >= reported + PROGRESS_ROWS:
                    reported += PROGRESS_ROWS
                    progress(reported, reader.position)
    except RowEngineError:
        outputs.remove()
        return None
    except BaseException:
        outputs.discard()
        raise
    outputs.close(processor.sync_outputs)
    return result


class _Run:
    """One file's import, batch by batch."""

    def __init__(self, processor: ColumnarProcessor, store: RecordStore, header: list[str],
                 mapping: dict[int, str], mode: str, outputs: Outputs,
                 result: ImportResult) -> None:
        self.processor, self.schema, self.store = processor, processor.schema, store
        self.header, self.mode, self.outputs, self.result = header, mode, outputs, result
        order = {name: n for n, name in enumerate(self.schema.fields)}
        #: (column, field) of the mapped columns, in field order (errors are listed so).
        self.fields = sorted(mapping.items(), key=lambda item: order[item[1]])
        self.names = tuple(name for _, name in self.fields)
        self.needed = set(self.schema.req[mode])
        self.kept = [i for i, name in enumerate(header) if name != ERRORS_COLUMN]
        self.job = int(self.store.job or 0)
        self.stage: Stage | None = None

    def batch(self, batch: RowBatch) -> None:
        """Check, apply and write out the rows of *batch*."""
        self.result.rows += batch.rows
        failed = list(batch.other_width)
        numbers, cells = batch.numbers, batch.cells
        if not len(numbers):
            self._write(failed, None)
            return
        checked = {name: check_column(name, self.schema.fields[name], cells[column],
                                      name in self.needed) for column, name in self.fields}
        errors = _joined([c.error for c in checked.values()], len(numbers))
        good = pc.equal(errors, _NO_ERROR)
        if not pc.all(good).as_py():
            bad = pc.invert(good)
            failed += _failed(numbers, cells, bad, pc.filter(errors, bad).to_pylist())
            numbers, cells = pc.filter(numbers, good), [pc.filter(c, good) for c in cells]
            checked = {name: c.filtered(good) for name, c in checked.items()}
        refused = self._apply(numbers, [checked[name].stored for name in self.names])
        mapped = dict(self.fields)
        finished = [checked[mapped[i]].finished if i in mapped else cells[i] for i in self.kept]
        if refused:
            gone = pc.is_in(numbers, value_set=pa.array(list(refused), pa.int64()))
            failed += _failed(numbers, cells, gone,
                              [refused[n] for n in pc.filter(numbers, gone).to_pylist()])
            finished = [pc.filter(column, pc.invert(gone)) for column in finished]
        self._write(failed, finished)

    # -- the store -----------------------------------------------------------------

    def _apply(self, numbers: pa.Array, values: list[pa.Array]) -> dict[int, str]:
        """Apply the checked rows; the reasons of those the store refuses, by number.

        In slices of :data:`SQL_ROWS`, in order: the Python values handed to
        SQLite are those of one slice at a time, whatever the batch's size.
        """
        refused: dict[int, str] = {}
        for start in range(0, len(numbers), SQL_ROWS):
            refused.update(self._apply_slice(numbers.slice(start, SQL_ROWS),
                                             [v.slice(start, SQL_ROWS) for v in values]))
        return refused

    def _apply_slice(self, numbers: pa.Array, values: list[pa.Array]) -> dict[int, str]:
        columns = [v.to_pylist() for v in values]
        parents = any(name in self.names for name in self.schema.parents)
        if self.mode == "create" and not parents and self.store.insert_rows_all_or_none(
                self.schema, self.names, list(zip(*columns, strict=True))):
            return {}
        stage = self._stage()
        stage.load(zip(numbers.to_pylist(), *columns, strict=True))
        if self.mode == "create":
            stage.fail_missing_parents(NO_PARENT)
            stage.fail_stored(EXISTS)
            stage.insert(EXISTS, self.job)
            return stage.failures()
        if self.mode == "update":
            stage.fail_missing_parents(NO_PARENT)
            stage.fail_unknown(NO_UPDATE)
            stage.update(self.job)
            return stage.failures()
        return self._remove(stage)

    def _stage(self) -> Stage:
        if self.stage is None:
            self.stage = open_stage(self.store, self.schema, self.names)
        return self.stage

    def _remove(self, stage: Stage) -> dict[int, str]:
        """Back up and remove the staged rows' records (``on_remove`` refuse or keep)."""
        stage.fail_unknown(NO_REMOVE)
        schema = self.schema
        if schema.on_remove == "refuse" and len(schema.key) == 1:
            counts: dict[int, list[str]] = {}
            for ref in references_to(self.store.schemas, schema.name):
                for number, count in stage.referencing_counts(ref.child, ref.field).items():
                    counts.setdefault(number, []).append(f"{count} {ref.child.name}")
            stage.fail_rows({n: f"still referenced by {', '.join(parts)}"
                             for n, parts in counts.items()})
        stage.fail_repeated(NO_REMOVE)
        owner = self.processor.name
        for record in stage.doomed():
            kind = "graduated" if schema.is_graduated(record) else "deleted"
            self.outputs.writer(backup_name(kind, schema.name, owner), list(schema.fields)
                                ).writerow(list(schema.format_record(record).values()))
        stage.delete()
        return stage.failures()

    # -- the outputs ---------------------------------------------------------------

    def _write(self, failed: list[Failed], finished: list[pa.Array] | None) -> None:
        if finished is not None and len(finished) and len(finished[0]):
            self.outputs.write_finished(csv_bytes(finished))
        if failed:
            failed.sort(key=lambda item: item[0])
            writer = self.outputs.writer("pending.csv", self.outputs.pending_header)
            for _, cells, reason in failed:
                writer.writerow(pending_cells(cells, self.header, reason))
            self.result.failed += len(failed)


def _joined(errors: list[pa.Array], rows: int) -> pa.Array:
    """Each row's errors joined by ``; `` in field order; ``""``: none."""
    found = pa.nulls(rows, pa.string())
    for error in errors:
        # (binary_join_element_wise's null_handling="skip" loses all-null rows.)
        found = pc.coalesce(pc.binary_join_element_wise(found, error, _SEPARATOR), found, error)
    return pc.fill_null(found, _NO_ERROR)


def _failed(numbers: pa.Array, cells: list[pa.Array], mask: pa.Array,
            reasons: list[str]) -> list[Failed]:
    """The rows of *mask*, failed with *reasons*: their numbers and original cells."""
    rows = zip(*(pc.filter(column, mask).to_pylist() for column in cells), strict=True)
    return list(zip(pc.filter(numbers, mask).to_pylist(), map(list, rows), reasons,
                    strict=True))
