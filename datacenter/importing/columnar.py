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

import bisect
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from datacenter.importing import diagnosis
from datacenter.importing.csvbytes import csv_bytes
from datacenter.importing.csvinput import CSVSource
from datacenter.importing.outputs import ImportResult, Outputs, backup_name, pending_cells
from datacenter.importing.prescan import scan
from datacenter.importing.reasons import EXISTS, NO_PARENT, NO_REMOVE, NO_UPDATE
from datacenter.importing.references import references_to
from datacenter.importing.vectorcheck import BLANK, check_column
from datacenter.records.schema import ERRORS_COLUMN, ProcessorSchema
from datacenter.records.staging import Stage, open_stage, update_rows
from datacenter.records.store import RecordStore
from datacenter.storage import fs

#: Bytes Arrow reads per block (about 60,000 rows of six short columns).
BLOCK_BYTES = 4 << 20
#: Rows handed to SQLite at once (each row's values are Python objects then).
SQL_ROWS = 4096


class ColumnarProcessor(Protocol):
    """What the engine needs of a processor: its schema, store and header rules."""

    schema: ProcessorSchema
    store: RecordStore
    max_line_bytes: int

    @property
    def name(self) -> str: ...

    def checkHeaders(self, headerfields: list[str], mode: str = "create") -> bool: ...  # noqa: N802

    def getMapping(self, headerfields: list[str], mode: str) -> dict[int, str]: ...  # noqa: N802


class _RowEngineError(Exception):
    """This file turned out to need the row engine; what the engine did is undone."""


@dataclass(frozen=True)
class _Invalid:
    """A row Arrow handed aside: another width than the header."""

    number: int  # the row's number in the file, the header being 1
    text: str


@dataclass
class _Progress:
    """Where the reading is: row numbers, line breaks inside cells, rows handed aside."""

    next_number: int = 2
    breaks: int = 0  # line breaks inside the cells of the rows so far
    invalid: list[_Invalid] = field(default_factory=list)


def import_file(processor: ColumnarProcessor, path: str, mode: str, workdir: str,
                progress: Callable[[int, int], None] | None = None) -> ImportResult | None:
    """Import *path* inside the caller's transaction; None: the row engine must do it.

    Raises :class:`.FatalCSVError` as the row engine does, for a file that
    cannot be imported at all (no header, columns missing).
    """
    schema = processor.schema
    with CSVSource(path, processor.max_line_bytes, schema.encoding, processor.name) as source:
        header, delimiter = source.header, source.delimiter
        on_one_line = source.lines_read == 1
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
    outputs = Outputs(workdir, header, schema)
    try:
        with processor.store.savepoint():
            _Run(processor, header, mapping, mode, outputs, result, delimiter,
                 scanned.quoted, scanned.size).read(path, progress)
    except _RowEngineError:
        outputs.remove()
        return None
    except BaseException:
        outputs.discard()
        raise
    outputs.close()
    return result


class _Run:
    """One file's import, batch by batch."""

    def __init__(self, processor: ColumnarProcessor, header: list[str], mapping: dict[int, str],
                 mode: str, outputs: Outputs, result: ImportResult, delimiter: str,
                 quoted: bool, size: int) -> None:
        self.processor, self.schema, self.store = processor, processor.schema, processor.store
        self.header, self.mode, self.outputs, self.result = header, mode, outputs, result
        self.delimiter, self.quoted, self.size = delimiter, quoted, size
        order = {name: n for n, name in enumerate(self.schema.fields)}
        #: (column, field) of the mapped columns, in field order (errors are listed so).
        self.fields = sorted(mapping.items(), key=lambda item: order[item[1]])
        self.names = tuple(name for _, name in self.fields)
        self.needed = set(self.schema.req[mode])
        self.kept = [i for i, name in enumerate(header) if name != ERRORS_COLUMN]
        self.width = len(header)
        self.job = int(self.store.job or 0)
        self.stage: Stage | None = None
        self.at = _Progress()

    # -- reading -------------------------------------------------------------------

    def read(self, path: str, progress: Callable[[int, int], None] | None) -> None:
        with fs.open_read(path, shared=True) as handle, _native(handle) as source:
            if progress is not None:
                progress(0, 0)
            for batch in self._batches(source):
                self._batch(batch)
                if progress is not None:
                    progress(self.result.rows, source.tell())
            self._batch(None)

    def _batches(self, source: pa.NativeFile) -> Iterator[pa.RecordBatch]:
        def aside(row: pcsv.InvalidRow) -> str:
            if row.number is None:
                raise _RowEngineError("a row without its number")
            bisect.insort(self.at.invalid, _Invalid(row.number, row.text),
                          key=lambda item: item.number)
            return "skip"

        columns = [f"c{n}" for n in range(self.width)]
        reader = pcsv.open_csv(
            source,
            read_options=pcsv.ReadOptions(column_names=columns, skip_rows=1,
                                          block_size=BLOCK_BYTES, use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                            ignore_empty_lines=False,
                                            invalid_row_handler=aside),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False,
                quoted_strings_can_be_null=False))
        yield from reader

    # -- one batch -----------------------------------------------------------------

    def _batch(self, batch: pa.RecordBatch | None) -> None:
        """Apply *batch* (None: only the rows handed aside that are left) and write it out."""
        rows = 0 if batch is None else batch.num_rows
        numbers, invalid = self._numbers(rows, final=batch is None)
        failed: list[tuple[int, list[str], str]] = [
            (item.number, cells, reason) for item, cells, reason in self._aside(
                invalid, numbers, batch)]
        if batch is None or not rows:
            self._write(failed, None)
            return
        cells = [batch.column(n) for n in range(self.width)]
        keep = pc.invert(_all(pc.match_substring_regex(column, BLANK) for column in cells))
        if not pc.all(keep).as_py():
            cells = [pc.filter(column, keep) for column in cells]
            numbers = pc.filter(numbers, keep)
        self.result.rows += len(numbers)
        checked = {name: check_column(name, self.schema.fields[name], cells[column],
                                      name in self.needed) for column, name in self.fields}
        errors = _joined([c.error for c in checked.values()], len(numbers))
        good = pc.equal(errors, "")
        if not pc.all(good).as_py():
            bad = pc.invert(good)
            failed += zip(pc.filter(numbers, bad).to_pylist(),
                          _rows_of([pc.filter(column, bad) for column in cells]),
                          pc.filter(errors, bad).to_pylist(), strict=True)
        good_numbers = pc.filter(numbers, good)
        values = [pc.filter(checked[name].stored, good) for name in self.names]
        refused = self._apply(good_numbers, values)
        finished = [pc.filter(checked[self.header[i]].finished, good)
                    if (i, self.header[i]) in self.fields else pc.filter(cells[i], good)
                    for i in self.kept]
        if refused:
            gone = pc.is_in(good_numbers, value_set=pa.array(list(refused), pa.int64()))
            good_cells = [pc.filter(column, good) for column in cells]
            failed += zip(pc.filter(good_numbers, gone).to_pylist(),
                          _rows_of([pc.filter(column, gone) for column in good_cells]),
                          [refused[n] for n in pc.filter(good_numbers, gone).to_pylist()],
                          strict=True)
            finished = [pc.filter(column, pc.invert(gone)) for column in finished]
        self._write(failed, finished)

    def _numbers(self, rows: int, final: bool) -> tuple[pa.Array, list[_Invalid]]:
        """The row numbers of a batch of *rows*, and the rows handed aside among them."""
        at, first = self.at, self.at.next_number
        taken: list[_Invalid] = []
        while at.invalid and (final or at.invalid[0].number < first + rows + len(taken)):
            taken.append(at.invalid.pop(0))
        if taken and taken[0].number < first:
            raise _RowEngineError("rows handed aside out of order")
        end = first + rows + len(taken)
        if not taken:
            numbers = pc.add(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), rows)),
                             first - 1) if rows else pa.array([], pa.int64())
        else:
            skip = {item.number for item in taken}
            numbers = pa.array([n for n in range(first, end) if n not in skip], pa.int64())
            if len(numbers) != rows:
                raise _RowEngineError("rows handed aside out of order")
        at.next_number = end
        return numbers, taken

    def _aside(self, taken: list[_Invalid], numbers: pa.Array, batch: pa.RecordBatch | None,
               ) -> Iterator[tuple[_Invalid, list[str], str]]:
        """The rows of another width, as the row engine fails them (blank ones skipped)."""
        breaks = self._breaks(batch)
        if breaks is not None and pc.max(breaks).as_py() and self.size > \
                self.processor.max_line_bytes:
            raise _RowEngineError("a row over lines in a file longer than a row may be")
        before = self.at.breaks
        for item in taken:
            if "\r" in item.text:
                # Arrow hands such a row over without the line feed of a CRLF
                # inside its quotes: its cells and line could not be told.
                raise _RowEngineError("a row of another width with a CR inside quotes")
            cells = next(csv.reader(io.StringIO(item.text, newline=""),
                                    delimiter=self.delimiter), [])
            if not any(cell.strip() for cell in cells):
                continue
            earlier = 0 if breaks is None else pc.sum(
                pc.filter(breaks, pc.less(numbers, item.number))).as_py() or 0
            line = item.number + before + earlier + sum(
                other.text.count("\n") for other in taken if other.number < item.number)
            self.result.rows += 1
            yield item, cells, f"line {line}: {len(cells)} cells, but the header has {self.width}"
        self.at.breaks += sum(item.text.count("\n") for item in taken) + (
            0 if breaks is None else int(pc.sum(breaks).as_py() or 0))

    def _breaks(self, batch: pa.RecordBatch | None) -> pa.Array | None:
        """Line breaks inside each row's cells (None: the file has no quotes, so none)."""
        if batch is None or not self.quoted or not batch.num_rows:
            return None
        for n in range(self.width):
            if pc.any(pc.match_substring(batch.column(n), "\r")).as_py():
                # Arrow reads a CRLF inside quotes as a lone CR: not the cell's text.
                raise _RowEngineError("a carriage return inside a quoted cell")
        counts = [pc.count_substring(batch.column(n), "\n") for n in range(self.width)]
        total = counts[0]
        for more in counts[1:]:
            total = pc.add(total, more)
        return pc.cast(total, pa.int64())

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
        rows = list(zip(*columns, strict=True))
        parents = any(name in self.names for name in self.schema.parents)
        if self.mode == "create" and not parents and self.store.insert_rows_all_or_none(
                self.schema, self.names, rows):
            return {}
        if self.mode == "update" and not parents and self._update_all(rows):
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
            failures = stage.failures()
            update_rows(self.store, self.schema, self.names,
                        (row for n, row in zip(numbers.to_pylist(), rows, strict=True)
                         if n not in failures), self.job)
            return failures
        return self._remove(stage)

    def _update_all(self, rows: list[tuple[object, ...]]) -> bool:
        """Update every row in order, or none (False) when a key has no record."""
        try:
            with self.store.savepoint():
                if update_rows(self.store, self.schema, self.names, rows, self.job) != len(rows):
                    raise _NotAllError
        except _NotAllError:
            return False
        return True

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

    def _write(self, failed: list[tuple[int, list[str], str]],
               finished: list[pa.Array] | None) -> None:
        if finished is not None and len(finished) and len(finished[0]):
            self.outputs.write_finished(csv_bytes(finished))
        if failed:
            failed.sort(key=lambda item: item[0])
            writer = self.outputs.writer("pending.csv", self.outputs.pending_header)
            for _, cells, reason in failed:
                writer.writerow(pending_cells(cells, self.header, reason))
            self.result.failed += len(failed)


class _NotAllError(Exception):
    """An all-or-none batch must be undone."""


def _native(handle: IO[bytes]) -> pa.NativeFile:
    """Arrow's own reader of the file *handle* opened (checked: no link followed).

    Through ``/proc/self/fd``, the very file opened, read by Arrow in C++:
    a Python file would hand each block over as a Python bytes object.
    """
    return pa.OSFile(f"/proc/self/fd/{handle.fileno()}", "rb")


def _all(masks: Iterator[pa.Array]) -> pa.Array:
    found = next(masks)
    for mask in masks:
        found = pc.and_(found, mask)
    return found


def _joined(errors: list[pa.Array], rows: int) -> pa.Array:
    """Each row's errors joined by ``; `` in field order; ``""``: none."""
    found = pa.nulls(rows, pa.string())
    for error in errors:
        # (binary_join_element_wise's null_handling="skip" loses all-null rows.)
        found = pc.coalesce(pc.binary_join_element_wise(found, error, "; "), found, error)
    return pc.fill_null(found, "")


def _rows_of(columns: list[pa.Array]) -> list[list[str]]:
    return [list(row) for row in zip(*(c.to_pylist() for c in columns), strict=True)]
