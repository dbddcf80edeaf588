"""A processor's records to CSV a batch at a time: Arrow columns, no Python per cell.

:func:`datacenter.export.export_processor` writes CSV through here. The
store reads the records through the ADBC SQLite driver as Arrow batches of
text (:func:`datacenter.records.store.text_batches`); each column is made
ready with vectorised ``pyarrow.compute`` steps, and each batch's rows are
joined into one buffer, written as it is. The bytes are exactly those of
the row writer (``csv.writer``, ``QUOTE_MINIMAL``, ``\\r\\n``), which
Arrow's own CSV writer does not give (it quotes every text):

* the formula guard: a text cell whose first character is printable ASCII
  other than ``= + - @``, a letter, a digit or a mark cannot start a
  formula, which one regular expression settles for the whole column; the
  few others (a sign, a tab, a blank or an invisible character first) go
  through :func:`datacenter.export.neutralise_cell` itself, so the rule is
  the same code, not a copy of it;
* quoting: a cell holding ``,``, ``"``, CR or LF is quoted, its quotes doubled;
  a row of one empty cell is ``""``, as ``csv.writer`` writes it;
* booleans (stored 0/1) as ``true``/``false``, NULL as an empty cell,
  floats by ``repr`` (Python's shortest text; SQLite's and Arrow's differ).

Memory is a batch (65,536 records) and its text, whatever the table's size.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datacenter.records.fieldtypes import IsoType
from datacenter.records.schema import ProcessorSchema
from datacenter.records.store import RecordStore, text_batches

#: Cells that start no formula, whatever follows (``export.PLAIN_STARTS``, the
#: printable ASCII but ``= + - @``), and letters, digits and marks of any script.
_INERT_START = r"^[\x21-\x2a\x2c\x2e-\x3c\x3e\x3f\x41-\x7e\pL\pN\pM]"
#: A cell that must be quoted by ``csv.writer`` (``QUOTE_MINIMAL``, ``\r\n`` rows).
_NEEDS_QUOTES = '[",\r\n]'
_TEXT = pa.large_string()

Neutralise = Callable[[str], str]


def _scalar(text: str) -> Any:
    return pa.scalar(text, _TEXT)


def _guarded(column: Any, neutralise: Neutralise) -> Any:
    """*column* with every cell that could start a formula neutralised."""
    suspect = pc.invert(pc.or_(pc.match_substring_regex(column, _INERT_START),
                               pc.equal(column, _scalar(""))))
    count = pc.sum(suspect).as_py() or 0
    if not count:
        return column
    fixed = [neutralise(text) for text in pc.filter(column, suspect).to_pylist()]
    return pc.replace_with_mask(column, suspect, pa.array(fixed, _TEXT))


def _quoted(column: Any) -> Any:
    """*column* as CSV cells: quoted (quotes doubled) where ``csv.writer`` quotes."""
    needs = pc.match_substring_regex(column, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return column
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

    def __init__(self, schema: ProcessorSchema, neutralise: Neutralise | None) -> None:
        self.steps: list[tuple[str, bool]] = []  # (kind, guarded) per field
        for ftype in schema.fields.values():
            if ftype.sql_type == "REAL":
                self.steps.append(("float", False))
            elif ftype.name == "bool":
                self.steps.append(("bool", False))
            else:
                free_text = ftype.sql_type == "TEXT" and not isinstance(ftype, IsoType)
                self.steps.append(("text", free_text and neutralise is not None))
        self.neutralise = neutralise

    def cells(self, batch: Any) -> list[Any]:
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
            elif guarded and self.neutralise is not None:
                column = _guarded(column, self.neutralise)
            columns.append(_quoted(column))
        if len(columns) == 1:  # csv.writer writes a lone empty cell as ""
            only = columns[0]
            columns[0] = pc.if_else(pc.equal(only, _scalar("")), _scalar('""'), only)
        return columns


def write_csv(store: RecordStore, schema: ProcessorSchema, neutralise: Neutralise | None,
              emit: Callable[[bytes | memoryview], object]) -> int:
    """Write *schema*'s records in *store* as CSV bytes to *emit*: the header, then a
    buffer per batch; returns how many records. *neutralise*: the formula guard (None:
    cells as stored, ``--raw-cells``)."""
    emit(header_line(list(schema.fields)))
    count = 0
    for records, data in csv_chunks(text_batches(store.path, schema), schema, neutralise):
        emit(data)
        count += records
    return count


def header_line(header: Sequence[str]) -> bytes:
    """The header row as ``csv.writer`` writes it, in UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(header)
    return buffer.getvalue().encode("utf-8")


def csv_chunks(batches: Iterator[Any], schema: ProcessorSchema,
               neutralise: Neutralise | None) -> Iterator[tuple[int, bytes | memoryview]]:
    """``(records, CSV bytes)`` per batch of :func:`~datacenter.records.store.text_batches`.

    *neutralise* is the formula guard (None: cells as stored, ``--raw-cells``).
    """
    plan = _Plan(schema, neutralise)
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
