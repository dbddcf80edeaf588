"""A pending file as a grid of failed rows, and its rows fixed in place.

:func:`read_grid` reads a ``*.pending.csv`` file at the storage's root as
its header (the ``--ERRORS--`` column apart), and a page of its rows, each
with its cells by column position (two columns may share a name: two
``--IGNORE--``), its reason (the last cell of a row longer than the
header), and the fields the reason names (``level: invalid integer
'abc'`` names ``level``; a row waiting for its parent names the parent's
columns): the cells to mark. Nothing is written.

:func:`replace_rows` writes the rows back, fixed: the whole file, or the
rows of one page with the others copied byte for byte, in one atomic replace
(readers see the old file or the new one). The reasons stay in the
``--ERRORS--`` column until the import says again; the service sees a
changed file (a new identity) and imports it again. It is refused when
the file changed since it was read (*version*, its identity then), so a
fix never overwrites an import's newer result or someone else's edit.
Before the new file takes the name, the fix is recorded in the ledger's
actions under the account, with the new file's identity: the import that
follows is recorded under the same name.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from datacenter.config import DEFAULT_MAX_LINE_BYTES
from datacenter.errors import DataCenterError
from datacenter.importing.csvinput import CSVSource, FatalCSVError
from datacenter.importing.outputs import pending_reason
from datacenter.importing.routing import Router, UnroutedError, original_name
from datacenter.records.backend import Store
from datacenter.records.schema import ERRORS_COLUMN, ProcessorSchema
from datacenter.storage import fs, layout
from datacenter.storage.identity import FileIdentity

PENDING_SUFFIX = ".pending.csv"
FIX = "fix"
_PARENTS_MISSING = "parents"
_CHUNK = 1 << 20


class FixError(DataCenterError, ValueError):
    """The rows cannot be written back; nothing changed. The message says why."""


class StaleError(FixError):
    """The pending file changed since it was read (imported again, or edited)."""


@dataclass
class GridRow:
    """One failed row: its line, its cells by column position, its reason, the fields it names."""

    line: int
    cells: list[str]
    errors: str
    fields: list[str] = field(default_factory=list)

    def as_dict(self, header: Sequence[str] = ()) -> dict[str, object]:
        """``cells`` by name (the columns whose name is unique), ``values`` by position."""
        unique = {column for column in header if header.count(column) == 1}
        return {"line": self.line,
                "cells": {c: v for c, v in zip(header, self.cells, strict=False) if c in unique},
                "values": self.cells, "errors": self.errors, "fields": self.fields}


@dataclass
class Grid:
    """A page of a pending file's rows; *version* is the file's identity when read."""

    name: str
    processor: str | None
    header: list[str]
    rows: list[GridRow]
    total: int
    offset: int
    version: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "processor": self.processor, "header": self.header,
                "rows": [row.as_dict(self.header) for row in self.rows], "total": self.total,
                "offset": self.offset, "version": self.version}


def pending_path(storage: str, name: str) -> str:
    """The path of pending file *name* at the root; FileNotFoundError or ValueError."""
    layout.plain_name(name, "pending file name")
    if not name.lower().endswith(PENDING_SUFFIX):
        raise ValueError(f"{name}: not a pending file (x.<mode>.pending.csv)")
    path = os.path.join(storage, name)
    if not os.path.isfile(path) or os.path.islink(path):
        raise FileNotFoundError(f"{name}: no such pending file at the storage's root")
    return path


def read_grid(storage: str, name: str, schemas: Mapping[str, ProcessorSchema], router: Router,
              offset: int = 0, limit: int | None = None,
              max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Grid:
    """Rows *offset* to *offset* + *limit* of pending file *name* (all: *limit* None)."""
    path = pending_path(storage, name)
    ident = FileIdentity.at(path)
    processor = _processor(router, name)
    schema = schemas.get(processor) if processor is not None else None
    rows: list[GridRow] = []
    total = 0
    with CSVSource(path, max_line_bytes, shared=False) as source:
        header, errors = _columns(source.header)
        names = [column for _, column in header]
        for row in source.rows():
            if total >= offset and (limit is None or len(rows) < limit):
                cells = [row.cells[n] if n < len(row.cells) else "" for n, _ in header]
                reason = pending_reason(row.cells, len(source.header), errors)
                rows.append(GridRow(row.line, cells, reason,
                                    failing_fields(reason, names, schema)))
            total += 1
    return Grid(name, processor, [column for _, column in header], rows, total, offset,
                ident.to_ledger() if ident else "")


def failing_fields(reason: str, header: Sequence[str], schema: ProcessorSchema | None,
                   ) -> list[str]:
    """The columns of *header* that *reason* blames.

    >>> failing_fields("level: invalid integer 'x'; name: required value missing",
    ...                ["name", "level"], None)
    ['level', 'name']
    >>> failing_fields("Not all parents do exist yet. Skipping", ["code", "fac"], None)
    []
    """
    found = []
    for part in reason.split("; "):
        column = part.split(": ", 1)[0].strip()
        if ": " in part and column in header and column not in found:
            found.append(column)
    if not found and schema is not None and _PARENTS_MISSING in reason.lower():
        found = [column for column in schema.parents if column in header]
    return found


def replace_rows(storage: str, name: str, rows: Sequence[Mapping[str, object]],
                 store: Store, user: str, *, version: str | None = None,
                 offset: int = 0, count: int | None = None,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> int:
    """Write *rows* in place of rows *offset*..+*count* (all of them: *count* None).

    Each row is ``{"cells": ...}``: a list of the values of every column in
    the header's order, or an object of values by column name (a column
    left out keeps its value; a name two columns share must be sent as a
    list). A row keeps its reason and any cells past the header. Rows
    outside the range are copied byte for byte. *rows* must be as many as
    *count* (as the file's rows when *count* is None), and the range must
    lie in the file. Returns how many rows the file holds now. Call it
    under the storage's lock: an import of the same file must not run in
    between.
    """
    path = pending_path(storage, name)
    before = FileIdentity.at(path)
    if version is not None and (before is None or before.to_ledger() != version):
        raise StaleError(f"{name}: changed since it was read (imported again, or edited); "
                         "nothing was saved: load it again")
    with CSVSource(path, max_line_bytes, shared=False) as source:
        header, _ = _columns(source.header)
        width, delimiter = len(source.header), source.delimiter
        ends = [source.position]  # where each row ends (blank lines go with the next)
        old = []
        for row in source.rows():
            old.append(row.cells)
            ends.append(source.position)
    if count is None:
        if len(rows) != len(old):
            raise FixError(f"{name}: {len(rows)} row(s) sent for the {len(old)} in the file; "
                           "to replace some of them, say which (offset and count)")
        offset, count = 0, len(old)
    if offset < 0 or count < 0 or offset + count > len(old):
        raise FixError(f"{name}: rows {offset + 1} to {offset + count} are not all in the "
                       f"file ({len(old)} row(s)); nothing was saved")
    if len(rows) != count:
        raise FixError(f"{name}: {len(rows)} row(s) sent to replace {count}; nothing was saved")
    fixed = [_fixed(header, width, cells, sent, name)
             for cells, sent in zip(old[offset:offset + count], rows, strict=True)]
    tmp = fs.temp_name(storage)
    try:
        with fs.new_file(tmp, sync=False) as handle, fs.open_read(path) as was:
            _copy(was, handle, ends[offset])
            if ends[offset] and not _ends_a_line(was):
                handle.write(b"\r\n")
            handle.write(_csv(fixed, delimiter))
            was.seek(ends[offset + count])
            _copy(was, handle, None)
        ident = FileIdentity.at(tmp)
        if FileIdentity.at(path) != before:
            raise StaleError(f"{name}: changed while it was being saved; nothing was saved: "
                             "load it again")
        action = store.record_action(
            FIX, name, user, ident=ident.to_ledger() if ident else "",
            detail=f"{len(fixed)} row(s) fixed, {len(old)} in the file",
            storage=os.path.realpath(storage))
        try:
            fs.replace(tmp, path)
        except BaseException:
            store.withdraw_action(action)  # the fix did not happen
            raise
    finally:
        fs.unlink(tmp, missing_ok=True)
    return len(old)


def _processor(router: Router, name: str) -> str | None:
    try:
        return router.route(original_name(name)[0])[0]
    except UnroutedError:
        return None


def _columns(header: list[str]) -> tuple[list[tuple[int, str]], int | None]:
    """The header's columns with their positions (the reason's apart), and the reason's."""
    errors = header.index(ERRORS_COLUMN) if ERRORS_COLUMN in header else None
    return [(n, column) for n, column in enumerate(header) if n != errors], errors


def _fixed(header: list[tuple[int, str]], width: int, cells: list[str],
           sent: Mapping[str, object], name: str) -> list[str]:
    """The row *cells* with the values *sent* in the header's columns, the rest as it was."""
    values = _values(header, cells, sent, name)
    out = cells + [""] * (width - len(cells))
    for (n, _), value in zip(header, values, strict=True):
        out[n] = value
    return out


def _values(header: list[tuple[int, str]], cells: list[str], sent: Mapping[str, object],
            name: str) -> list[str]:
    """The values *sent* for each column of *header*, in its order."""
    columns = [column for _, column in header]
    given = sent.get("cells", sent)
    if isinstance(given, list):
        if len(given) != len(columns):
            raise FixError(f"{name}: a row's cells as a list must be {len(columns)} values, "
                           f"one per column ({', '.join(columns)}); not {len(given)}")
        pairs = list(zip(columns, given, strict=True))
    elif isinstance(given, Mapping):
        unknown = sorted(set(map(str, given)) - set(columns))
        if unknown:
            raise FixError(f"{name}: no column {unknown[0]!r} in this file (columns: "
                           f"{', '.join(columns)})")
        shared = sorted(c for c in map(str, given) if columns.count(c) > 1)
        if shared:
            raise FixError(f"{name}: {columns.count(shared[0])} columns are named "
                           f"{shared[0]!r}: send the row's cells as a list in the header's "
                           "order")
        pairs = [(c, given.get(c, cells[n] if n < len(cells) else "")) for n, c in header]
    else:
        raise FixError(f"{name}: each row's cells must be an object by column or a list")
    values = []
    for column, value in pairs:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise FixError(f"{name}: cell {column!r} must be text, not {value!r}")
        values.append(str(value))
    return values


def _copy(source: BinaryIO, target: BinaryIO, until: int | None) -> None:
    """Copy *source*'s bytes from where it is up to offset *until* (None: to its end)."""
    while until is None or source.tell() < until:
        chunk = source.read(_CHUNK if until is None else min(_CHUNK, until - source.tell()))
        if not chunk:
            return
        target.write(chunk)


def _ends_a_line(source: BinaryIO) -> bool:
    """Is the byte before *source*'s position a line break? (It stays there.)"""
    here = source.tell()
    source.seek(here - 1)
    last = source.read(1)
    return last in (b"\n", b"\r")


def _csv(rows: list[list[str]], delimiter: str) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n", delimiter=delimiter)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


__all__ = ["FatalCSVError", "FixError", "Grid", "GridRow", "StaleError", "failing_fields",
           "read_grid", "replace_rows"]
