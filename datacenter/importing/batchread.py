"""A CSV file's data rows in Arrow record batches, numbered as the row engine numbers them.

Arrow's streaming reader (every cell as text, bounded memory) hands over
rows of another width than the header through a callback, with their row
number and text; every other row's number follows from those. Each
:class:`RowBatch` holds the batch's non-blank rows with their numbers, and
the rows of another width that fall among them, as the row engine fails
them: their cells, and the reason naming their first physical line.

Rows are numbered as Arrow counts them (the header is 1), which orders
them as the file does; the physical line of a row adds the line breaks
inside the quoted cells before it.
"""

from __future__ import annotations

import bisect
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from datacenter.importing.vectorcheck import BLANK
from datacenter.storage import fs

_ONE = pa.scalar(1, pa.int64())
_CR = "\r"


class RowEngineError(Exception):
    """This file needs the row engine after all; what the columnar one did is undone."""


@dataclass(frozen=True)
class _Aside:
    """A row Arrow handed aside: another width than the header."""

    number: int
    text: str


@dataclass
class RowBatch:
    """The non-blank rows of one record batch, and the rows of another width among them."""

    numbers: pa.Array  # int64, in the file's order
    cells: list[pa.Array]  # one string array per column of the header
    #: ``(number, cells, reason)`` of each non-blank row of another width.
    other_width: list[tuple[int, list[str], str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.numbers) + len(self.other_width)


class BatchReader:
    """The data rows of a CSV file whose header is its first line."""

    def __init__(self, path: str, width: int, delimiter: str, quoted: bool,
                 block_bytes: int, over_lines_allowed: bool, header_bytes: int = 0) -> None:
        """*quoted*: the file holds quotes (so cells may hold line breaks);
        *over_lines_allowed*: False when a row over several lines could be
        longer than a row may be (the row engine must then judge it)."""
        self.path, self.width, self.delimiter = path, width, delimiter
        self.quoted, self.block_bytes = quoted, block_bytes
        self.over_lines_allowed = over_lines_allowed
        self._pending: list[_Aside] = []
        self._next = 2  # the number of the next row; the header is 1
        self._breaks = 0  # line breaks inside the cells of the rows so far
        #: Bytes of the file whose rows were handed over so far, about (counted from the
        #: cells: Arrow's reader itself is far ahead).
        self.position = header_bytes

    def __iter__(self) -> Iterator[RowBatch]:
        with fs.open_read(self.path, shared=True) as handle, _native(handle) as source:
            batches = self._reader(source)
            while (batch := _next_of(batches)) is not None:
                self.position += _bytes_of(batch)
                yield self._batch(batch)
            yield self._batch(None)

    def _reader(self, source: pa.NativeFile) -> pcsv.CSVStreamingReader:
        try:
            return self._open(source)
        except pa.ArrowInvalid as error:
            raise RowEngineError(str(error)) from None

    def _open(self, source: pa.NativeFile) -> pcsv.CSVStreamingReader:
        def aside(row: pcsv.InvalidRow) -> str:
            if row.number is None:
                raise RowEngineError("a row of another width without its number")
            bisect.insort(self._pending, _Aside(row.number, row.text),
                          key=lambda item: item.number)
            return "skip"

        columns = [f"c{n}" for n in range(self.width)]
        return pcsv.open_csv(
            source,
            read_options=pcsv.ReadOptions(column_names=columns, skip_rows=1,
                                          block_size=self.block_bytes, use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                            ignore_empty_lines=False, invalid_row_handler=aside),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False,
                quoted_strings_can_be_null=False))

    def _batch(self, batch: pa.RecordBatch | None) -> RowBatch:
        """The rows of *batch* (None: the rows of another width left after the last)."""
        rows = 0 if batch is None else batch.num_rows
        numbers, taken = self._numbers(rows, final=batch is None)
        cells = [] if batch is None else [batch.column(n) for n in range(self.width)]
        breaks = self._line_breaks(cells)
        found = RowBatch(numbers, cells, list(self._other_width(taken, numbers, breaks)))
        if rows and pc.any(blank := pc.match_substring_regex(cells[0], BLANK)).as_py():
            # Only a row whose first cell is blank can be blank: the rest is looked at then.
            keep = pc.invert(_all([blank, *(pc.match_substring_regex(c, BLANK)
                                            for c in cells[1:])]))
            if not pc.all(keep).as_py():
                found.cells = [pc.filter(column, keep) for column in cells]
                found.numbers = pc.filter(numbers, keep)
        return found

    def _numbers(self, rows: int, final: bool) -> tuple[pa.Array, list[_Aside]]:
        """The numbers of a batch of *rows*, and the rows of another width among them."""
        first, taken = self._next, list[_Aside]()
        while self._pending and (final or self._pending[0].number < first + rows + len(taken)):
            taken.append(self._pending.pop(0))
        if taken and taken[0].number < first:
            raise RowEngineError("rows of another width out of order")
        end = first + rows + len(taken)
        if not taken:
            numbers = pc.add(pc.cumulative_sum(pa.repeat(_ONE, rows)),
                             pa.scalar(first - 1, pa.int64()))
        else:
            skip = {item.number for item in taken}
            numbers = pa.array([n for n in range(first, end) if n not in skip], pa.int64())
            if len(numbers) != rows:
                raise RowEngineError("rows of another width out of order")
        self._next = end
        return numbers, taken

    def _line_breaks(self, cells: list[pa.Array]) -> pa.Array | None:
        """Line breaks inside each row's cells (None: no quotes in the file, so none)."""
        if not self.quoted or not cells or not len(cells[0]):
            return None
        total = None
        for column in cells:
            if pc.any(pc.match_substring(column, _CR)).as_py():
                # Arrow reads a CRLF inside quotes as a lone CR: not the cell's text.
                raise RowEngineError("a carriage return inside a quoted cell")
            count = pc.cast(pc.count_substring(column, "\n"), pa.int64())
            total = count if total is None else pc.add(total, count)
        if not self.over_lines_allowed and pc.max(total).as_py():
            raise RowEngineError("a row over lines in a file longer than a row may be")
        return total

    def _other_width(self, taken: list[_Aside], numbers: pa.Array, breaks: pa.Array | None,
                     ) -> Iterator[tuple[int, list[str], str]]:
        """The rows of another width, as the row engine fails them (blank ones skipped)."""
        before = self._breaks
        self.position += sum(len(item.text) + 1 for item in taken)
        for item in taken:
            if _CR in item.text:
                # Arrow hands such a row over without the LF of a CRLF inside quotes.
                raise RowEngineError("a row of another width with a CR inside quotes")
            cells = next(csv.reader(io.StringIO(item.text, newline=""),
                                    delimiter=self.delimiter), [])
            if not any(cell.strip() for cell in cells):
                continue
            earlier = 0 if breaks is None else pc.sum(pc.filter(
                breaks, pc.less(numbers, pa.scalar(item.number, pa.int64())))).as_py() or 0
            line = item.number + before + earlier + sum(
                other.text.count("\n") for other in taken if other.number < item.number)
            yield (item.number, cells,
                   f"line {line}: {len(cells)} cells, but the header has {self.width}")
        self._breaks += sum(item.text.count("\n") for item in taken) + (
            0 if breaks is None else int(pc.sum(breaks).as_py() or 0))


def _next_of(batches: pcsv.CSVStreamingReader) -> pa.RecordBatch | None:
    """The next batch, None after the last; RowEngineError for what Arrow cannot read
    in blocks: a row longer than a block (a header of 100,000 columns, a cell of
    megabytes), which the row engine reads within ``max_line_bytes``."""
    try:
        return batches.read_next_batch()
    except StopIteration:
        return None
    except pa.ArrowInvalid as error:
        raise RowEngineError(str(error)) from None


def _bytes_of(batch: pa.RecordBatch) -> int:
    """About how many bytes of the file *batch* came from: cells, separators, line ends."""
    cells = sum(int(pc.sum(pc.binary_length(column)).as_py() or 0) for column in batch.columns)
    return cells + int(batch.num_rows) * int(batch.num_columns)


def _native(handle: IO[bytes]) -> pa.NativeFile:
    """Arrow's own reader of the file *handle* opened (checked: no link followed).

    Through ``/proc/self/fd``: the very file opened, read by Arrow in C++ (a
    Python file would hand each block over as a Python bytes object).
    """
    return pa.OSFile(f"/proc/self/fd/{handle.fileno()}", "rb")


def _all(masks: list[pa.Array]) -> pa.Array:
    found = masks[0]
    for mask in masks[1:]:
        found = pc.and_(found, mask)
    return found
