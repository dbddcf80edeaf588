"""A processor's records to CSV a batch at a time: Arrow columns, no Python per cell.

:func:`datacenter.export.export_processor` writes CSV through here. The
store reads the records through the ADBC SQLite driver as Arrow batches of
text (:func:`datacenter.records.store.text_batches`); each column is made
ready with vectorised ``pyarrow.compute`` steps, and each batch's rows are
joined into one buffer, written as it is. The bytes are exactly those of
the row writer (``csv.writer``, ``QUOTE_MINIMAL``, ``\\r\\n``), which
Arrow's own CSV writer does not give (it quotes every text):

* the formula guard: the first byte of each cell (a ``take`` on the
  column's buffers) settles almost every cell: printable ASCII other than
  ``= + - @`` cannot start a formula, and ``= + - @``, a tab or a CR always
  does (the quote is added to the whole column at once); a cell starting
  beyond ASCII is inert if a regular expression finds a letter, digit or
  mark first; the few left (a blank or an invisible character first) go
  through :func:`datacenter.formulas.neutralise_cell` itself, so the subtle
  part of the rule is the same code, not a copy of it;
* quoting: a cell holding ``,``, ``"``, CR or LF is quoted, its quotes doubled;
  a row of one empty cell is ``""``, as ``csv.writer`` writes it;
* booleans (stored 0/1) as ``true``/``false``, NULL as an empty cell,
  floats by ``repr`` (Python's shortest text; SQLite's and Arrow's differ).

Memory is a batch (65,536 records) and its text, whatever the table's size.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from queue import Full, Queue
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datacenter.records.fieldtypes import IsoType
from datacenter.records.schema import ProcessorSchema
from datacenter.records.store import ColumnarReadError, RecordStore, text_batches

#: Cells that start no formula, whatever follows (``formulas.PLAIN_STARTS``, the
#: printable ASCII but ``= + - @``), and letters, digits and marks of any script.
_INERT_START = r"^[\x21-\x2a\x2c\x2e-\x3c\x3e\x3f\x41-\x7e\pL\pN\pM]"
#: A cell that must be quoted by ``csv.writer`` (``QUOTE_MINIMAL``, ``\r\n`` rows).
_NEEDS_QUOTES = '[",\r\n]'
_TEXT = pa.large_string()
#: The same for the first byte of a cell: 0 stands for an empty cell (no NUL is stored).
_INERT_BYTES = pa.array([0, *(b for b in range(0x21, 0x7F) if chr(b) not in "=+-@")],
                        pa.uint8())
#: Bytes that make ``csv.writer`` quote a cell, looked for in a column's bytes at once.
_QUOTE_BYTES = re.compile(rb'[",\r\n]')

Neutralise = Callable[[str], str]


@dataclass(frozen=True)
class Guard:
    """The formula guard: the row writer's function, and the first characters that
    always start a formula (ASCII), which get the same quote vectorised."""

    neutralise: Neutralise
    starts: str = ""


def _scalar(text: str) -> Any:
    return pa.scalar(text, _TEXT)


def _first_bytes(column: Any) -> Any:
    """The first byte of every cell of a large_string *column* (0 for an empty cell)."""
    _, offsets, data = column.buffers()
    size = len(column)
    starts = pa.Array.from_buffers(pa.int64(), size, [None, offsets], offset=column.offset)
    if data is None or not data.size:
        return pa.nulls(size, pa.uint8()).fill_null(0)
    everything = pa.Array.from_buffers(pa.uint8(), data.size, [None, data])
    firsts = pc.take(everything, pc.min_element_wise(starts, data.size - 1))
    return pc.if_else(pc.equal(pc.binary_length(column), 0), pa.scalar(0, pa.uint8()), firsts)


def _guarded(column: Any, guard: Guard) -> Any:
    """*column* with every cell that could start a formula neutralised."""
    # The first byte settles almost every cell: printable ASCII but = + - @ is inert,
    # and so is an empty cell; a formula start gets its quote here; a first byte
    # from 0x80 up starts a character that the expression tells (a letter is
    # inert), and only what is left goes through the row writer's function.
    first = _first_bytes(column)
    if guard.starts:
        starts = pc.is_in(first, value_set=pa.array(guard.starts.encode(), pa.uint8()))
        if pc.any(starts).as_py():
            column = pc.if_else(starts, pc.binary_join_element_wise(
                _scalar("'"), column, _scalar("")), column)
            first = pc.if_else(starts, pa.scalar(ord("'"), pa.uint8()), first)
    ascii_inert = pc.is_in(first, value_set=_INERT_BYTES)
    unsure = pc.greater_equal(first, pa.scalar(0x80, pa.uint8()))
    if pc.any(unsure).as_py():
        ascii_inert = pc.or_(ascii_inert, pc.and_(
            unsure, pc.match_substring_regex(column, _INERT_START)))
    suspect = pc.invert(ascii_inert)
    count = pc.sum(suspect).as_py() or 0
    if not count:
        return column
    fixed = [guard.neutralise(text) for text in pc.filter(column, suspect).to_pylist()]
    return pc.replace_with_mask(column, suspect, pa.array(fixed, _TEXT))


def _quoted(column: Any) -> Any:
    """*column* as CSV cells: quoted (quotes doubled) where ``csv.writer`` quotes."""
    _, _, data = column.buffers()
    if data is None or not _QUOTE_BYTES.search(memoryview(data)):
        return column  # no cell of the column needs quotes: one scan of its bytes says so
    needs = pc.match_substring_regex(column, _NEEDS_QUOTES)
    quote = _scalar('"')
    wrapped = pc.binary_join_element_wise(
        quote, pc.replace_substring(column, '"', '""'), quote, _scalar(""))
    return pc.if_else(needs, wrapped, column)


def _booleans(column: Any) -> Any:
    empty = pc.equal(column, _scalar(""))
    truth = pc.if_else(pc.equal(column, _scalar("0")), _scalar("false"), _scalar("true"))
    return pc.if_else(empty, _scalar(""), truth)


def _floats(values: Any, nulls: Any) -> Any:
    texts = ["" if null else repr(value)
             for value, null in zip(values.to_pylist(), nulls.to_pylist(), strict=True)]
    return pa.array(texts, _TEXT)


class _Plan:
    """What each field's column(s) of a batch go through."""

    def __init__(self, schema: ProcessorSchema, guard: Guard | None) -> None:
        self.steps: list[tuple[str, bool]] = []  # (kind, guarded) per field
        for ftype in schema.fields.values():
            if ftype.sql_type == "REAL":
                self.steps.append(("float", False))
            elif ftype.name == "bool":
                self.steps.append(("bool", False))
            else:
                free_text = ftype.sql_type == "TEXT" and not isinstance(ftype, IsoType)
                self.steps.append(("text", free_text and guard is not None))
        self.guard = guard

    def check(self, batch: Any) -> None:
        """ColumnarReadError unless *batch* has the column types the plan takes.

        The driver types a column by its first batch, as text when its values
        mix types (text in a REAL column): then the row writer has to do.
        """
        types, at = batch.schema.types, 0
        for kind, _ in self.steps:
            fits = (pa.types.is_floating(types[at]) and pa.types.is_integer(types[at + 1])
                    if kind == "float" else
                    pa.types.is_string(types[at]) or pa.types.is_large_string(types[at]))
            if not fits:
                raise ColumnarReadError(f"column {at + 1} read as {types[at]}")
            at += 2 if kind == "float" else 1

    def cells(self, batch: Any) -> list[Any]:
        self.check(batch)
        columns, at = [], 0
        for kind, guarded in self.steps:
            if kind == "float":
                columns.append(_floats(batch.column(at), batch.column(at + 1)))
                at += 2
                continue
            column = pc.cast(batch.column(at), _TEXT)
            at += 1
            if kind == "bool":
                column = _booleans(column)
            elif guarded and self.guard is not None:
                column = _guarded(column, self.guard)
            columns.append(_quoted(column))
        if len(columns) == 1:  # csv.writer writes a lone empty cell as ""
            only = columns[0]
            columns[0] = pc.if_else(pc.equal(only, _scalar("")), _scalar('""'), only)
        return columns


def write_csv(store: RecordStore, schema: ProcessorSchema, guard: Guard | None,
              emit: Callable[[bytes | memoryview], object]) -> int:
    """Write *schema*'s records in *store* as CSV bytes to *emit*: the header, then a
    buffer per batch; returns how many records. *guard*: the formula guard (None:
    cells as stored, ``--raw-cells``)."""
    emit(header_line(list(schema.fields)))
    count = 0
    with _read_ahead(text_batches(store.path, schema)) as batches:
        for records, data in csv_chunks(batches, schema, guard):
            emit(data)
            count += records
    return count


@contextlib.contextmanager
def _read_ahead(batches: Iterator[Any], depth: int = 2) -> Iterator[Iterator[Any]]:
    """*batches* read by a thread of their own, at most *depth* ahead of the consumer.

    SQLite fills the next batch while Arrow formats this one (both let go of
    the GIL): the export takes about as long as the reading alone.
    """
    queue: Queue[tuple[bool, Any]] = Queue(depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    with contextlib.suppress(Full):
                        queue.put((True, batch), timeout=0.1)
                        break
                if stop.is_set():
                    break
            item: tuple[bool, Any] = (False, None)
        except BaseException as exc:  # handed to the consumer, raised there
            item = (False, exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # the generator's connection closes in the thread that used it
        while not stop.is_set():
            with contextlib.suppress(Full):
                queue.put(item, timeout=0.1)
                return

    def received() -> Iterator[Any]:
        while True:
            more, value = queue.get()
            if not more:
                if value is not None:
                    raise value
                return
            yield value

    reader = threading.Thread(target=read, name="export-reader", daemon=True)
    reader.start()
    try:
        yield received()
    finally:
        stop.set()
        reader.join()


def header_line(header: Sequence[str]) -> bytes:
    """The header row as ``csv.writer`` writes it, in UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(header)
    return buffer.getvalue().encode("utf-8")


def csv_chunks(batches: Iterator[Any], schema: ProcessorSchema,
               guard: Guard | None) -> Iterator[tuple[int, bytes | memoryview]]:
    """``(records, CSV bytes)`` per batch of :func:`~datacenter.records.store.text_batches`.

    *guard* is the formula guard (None: cells as stored, ``--raw-cells``).
    """
    plan = _Plan(schema, guard)
    for batch in batches:
        if not batch.num_rows:
            continue
        rows = pc.binary_join_element_wise(*plan.cells(batch), _scalar(","))
        lines = pc.binary_join_element_wise(rows, _scalar(""), _scalar("\r\n"))
        yield batch.num_rows, _data(lines)


def _data(lines: Any) -> memoryview:
    """The bytes of a large_string array's values, end to end, without a copy."""
    _, offsets, data = lines.buffers()
    ends = memoryview(offsets).cast("q")
    start, stop = ends[lines.offset], ends[lines.offset + len(lines)]
    return memoryview(data)[start:stop]
