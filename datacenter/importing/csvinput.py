"""Reading dropped CSV files: streamed, strict about what cannot be trusted.

Rows are read one at a time, so memory stays flat for files of any length.
What makes a whole file unreadable is a :class:`FatalCSVError` naming the
file, the line and the reason: bytes that are not UTF-8, a quote that is
never closed, an empty file, a row longer than the limit (``[import]
max_line_bytes``: lines are read with a bounded ``readline``, so a file
with no newline at all costs at most that much memory). What affects one
row (too many or too few cells) is reported with that row and never stops
the import.

A processor's ``encoding`` (``cp1252``, ``latin-1``) is how lines that are
not UTF-8 are read; a line that is UTF-8 is read as UTF-8 all the same,
so the pending files an import writes (always UTF-8) can be dropped again.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from datacenter.config import DEFAULT_MAX_LINE_BYTES
from datacenter.errors import DataCenterError
from datacenter.importing import diagnosis
from datacenter.storage import fs

# A cell longer than 128 KiB is data, not an error; how long a row (and so a
# cell) may be is the row limit's business, which _Lines enforces per file.
csv.field_size_limit(1 << 30)

_BOM = b"\xef\xbb\xbf"


class FatalCSVError(DataCenterError, ValueError):
    """The file as a whole cannot be imported; the message says where and why."""


def naming(error: object, path: str) -> str:
    """The error's (or reason's) text, beginning with the file's name (added if missing)."""
    text, name = str(error), os.path.basename(path)
    return text if text.startswith(name) else f"{name}: {text}"


@dataclass
class Row:
    """One data row: its first physical line number and its cells."""

    line: int
    cells: list[str]


class _Lines:
    """Decoded physical lines of a binary file, counting them as they go.

    Decoding line by line is what lets an encoding error name its line.
    No row may be longer than *limit* bytes: a line, or the lines a row
    with a quoted multi-line cell spans since :meth:`new_row` (the csv
    module would hold all of them), so memory stays bounded whatever the file.
    """

    def __init__(self, name: str, handle: IO[bytes], limit: int, encoding: str = "utf-8",
                 processor: str | None = None) -> None:
        self.name = name
        #: Lines that are not UTF-8 are read in this encoding; None: they are an error.
        self.fallback = None if codecs.lookup(encoding).name == "utf-8" else encoding
        self.processor = processor
        self.handle = handle
        self.limit = limit
        self.number = 0
        self.sha256 = hashlib.sha256()
        self._row_bytes = 0
        self._row_line = 1

    def new_row(self) -> None:
        """The reader finished a row: the next line begins a new one."""
        self._row_bytes, self._row_line = 0, self.number + 1

    def __iter__(self) -> Iterator[str]:
        readline, limit = self.handle.readline, self.limit
        while raw := readline(limit + 1 - self._row_bytes):
            self.number += 1
            self._row_bytes += len(raw)
            if self._row_bytes > limit:
                raise FatalCSVError(
                    f"{self.name}: line {self._row_line}: a row longer than {limit:,} bytes "
                    "(the limit is max_line_bytes in the config's [import] table)")
            self.sha256.update(raw)
            if self.number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if self.fallback is None:
                    hint = diagnosis.not_utf8_hint(raw, self.processor)
                    raise FatalCSVError(
                        f"{self.name}: line {self.number}: not UTF-8 "
                        f"(byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                        + (f"{hint}" if hint else "save the file as UTF-8 and drop it again")
                    ) from None
                yield self._decode(raw)

    def _decode(self, raw: bytes) -> str:
        """A line that is not UTF-8, in the processor's encoding."""
        try:
            return raw.decode(self.fallback or "utf-8")
        except UnicodeDecodeError as exc:
            raise FatalCSVError(
                f"{self.name}: line {self.number}: neither UTF-8 nor {self.fallback} "
                f"(byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "save the file as CSV UTF-8 and drop it again") from None


class CSVSource:
    """A CSV file opened for import: its header, then its rows.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), 'x.csv')
    >>> _ = open(path, 'wb').write(b'\\xef\\xbb\\xbfid , name\\r\\n1,Ada\\r\\n\\r\\n2,"Bo\\nla"')
    >>> with CSVSource(path) as source:
    ...     print(source.header, [(r.line, r.cells) for r in source.rows()])
    ['id', 'name'] [(2, ['1', 'Ada']), (4, ['2', 'Bo\\nla'])]
    """

    def __init__(self, path: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 encoding: str = "utf-8", processor: str | None = None, *,
                 shared: bool = True) -> None:
        """*encoding*: lines that are not UTF-8 (see above); *processor*: named in hints;
        *shared* False: a file with a second name is refused too (PlantedLinkError),
        as a download refuses it (the import's own staging links need True)."""
        self.path = path
        self.name = os.path.basename(path)
        self._handle = fs.open_read(path, shared=shared)  # never through a symlink
        self._lines = _Lines(self.name, self._handle, max_line_bytes, encoding, processor)
        try:
            #: ``,``, or ``;`` or a tab when the header line says so (no comma, those).
            self.delimiter = self._sniff()
            self._reader = csv.reader(self._lines, strict=True, delimiter=self.delimiter)
            self.header = self._read_header()
        except BaseException:
            self._handle.close()
            raise

    def _sniff(self) -> str:
        """The delimiter, after FatalCSVError for a workbook or UTF-16 (see diagnosis)."""
        head = self._handle.read(4096)
        self._handle.seek(0)
        problem = diagnosis.not_csv(head)
        if problem is not None:
            raise FatalCSVError(f"{self.name}: {problem}")
        first = head.removeprefix(_BOM).lstrip(b"\r\n").split(b"\n", 1)[0]
        return diagnosis.delimiter(first) or ","

    def _read_header(self) -> list[str]:
        for cells in self._guarded():
            if any(cell.strip() for cell in cells):
                return [cell.strip() for cell in cells]
        raise FatalCSVError(f"{self.name}: the file is empty: no header line")

    def _guarded(self) -> Iterator[list[str]]:
        started = self._lines.number + 1
        try:
            for cells in self._reader:
                self._lines.new_row()
                yield cells
                started = self._lines.number + 1
        except csv.Error as exc:
            reason = str(exc)
            if "unexpected end of data" in reason:
                reason = "a quoted cell is never closed (a missing \")"
            raise FatalCSVError(f"{self.name}: line {started}: {reason}") from None

    def rows(self) -> Iterator[Row]:
        """The data rows; blank lines are skipped."""
        line = self._lines.number + 1
        for cells in self._guarded():
            # The first cell decides for almost every row; only then look at all.
            if cells and ((cells[0] and not cells[0].isspace())
                          or any(cell.strip() for cell in cells)):
                yield Row(line, cells)
            line = self._lines.number + 1

    @property
    def lines_read(self) -> int:
        """Physical lines read so far (after the header: the lines it took, blank ones too)."""
        return self._lines.number

    @property
    def position(self) -> int:
        """Bytes read so far."""
        return self._handle.tell()

    @property
    def sha256(self) -> str:
        """The SHA-256 of the bytes read so far (all of them once rows() is done)."""
        return self._lines.sha256.hexdigest()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> CSVSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: How far :func:`only_a_header` reads at most: a first line longer than that is
#: no header a writer puts down before its rows; such a file counts as one with rows.
HEADER_CHECK_BYTES = 1 << 20


def only_a_header(path: str, limit: int = HEADER_CHECK_BYTES) -> bool:
    """Does the file at *path* hold at most one line that is not blank (no rows yet)?

    Reads from the start until a second such line shows, *limit* bytes at
    most; a file that goes on beyond them counts as one with rows. Never
    through a symlink.
    """
    lines, budget = 0, limit
    with fs.open_read(path, shared=True) as handle:
        while budget > 0:
            line = handle.readline(budget)
            if not line:
                return True
            budget -= len(line)
            lines += bool(line.strip())
            if lines > 1:
                return False
        return not handle.read(1)
