"""CSV text of a batch of rows, built column by column, as ``csv.writer`` writes it.

Arrow's own CSV writer quotes every text cell, which is not the byte format
the row engine writes (``csv.writer``: a cell is quoted only when it holds
a comma, a quote or a line break; quotes are doubled; lines end in CRLF).
This builds those bytes with vectorised string kernels instead, so that the
finished file is the same, byte for byte, whichever engine wrote it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

_NEEDS_QUOTES = '[,"\\r\\n]'
# Typed scalars: pyarrow makes one of a bare Python value slowly (it looks for numpy).
_QUOTE = pa.scalar('"', pa.string())
_EMPTY = pa.scalar("", pa.string())
_TWO_QUOTES = pa.scalar('""', pa.string())
_COMMA = pa.scalar(",", pa.string())
_CRLF = pa.scalar("\r\n", pa.string())


def _cell(cells: pa.Array) -> pa.Array:
    needs = pc.match_substring_regex(cells, _NEEDS_QUOTES)
    if not pc.any(needs).as_py():
        return cells  # the common case: no cell of the column needs quotes
    quoted = pc.binary_join_element_wise(_QUOTE, pc.replace_substring(cells, '"', '""'), _QUOTE,
                                         _EMPTY)
    return pc.if_else(needs, quoted, cells)


def csv_bytes(columns: list[pa.Array]) -> list[memoryview]:
    """The rows whose cells are *columns* (string arrays of one length), as CSV bytes.

    The bytes are views of Arrow's buffers, written out as they are: no copy.
    """
    if not columns or not len(columns[0]):
        return []
    cells = [_cell(column) for column in columns]
    if len(cells) == 1:
        # csv.writer writes a row of one empty cell as "" (a blank line would be no row).
        cells[0] = pc.if_else(pc.equal(cells[0], _EMPTY), _TWO_QUOTES, cells[0])
    ending = pa.repeat(_EMPTY, len(columns[0]))
    lines = pc.binary_join_element_wise(*cells, _COMMA)
    lines = pc.binary_join_element_wise(lines, ending, _CRLF)
    return [_data(chunk) for chunk in _chunks(lines) if len(chunk)]


def _chunks(array: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(array.chunks) if isinstance(array, pa.ChunkedArray) else [array]


def _data(strings: pa.Array) -> memoryview:
    """The bytes of the strings of *strings*, one after another (a slice of its data buffer)."""
    _, offsets, data = strings.buffers()
    begin = int.from_bytes(memoryview(offsets)[4 * strings.offset:4 * strings.offset + 4],
                           "little")
    total = pc.sum(pc.binary_length(strings)).as_py()
    return memoryview(data)[begin:begin + total]
