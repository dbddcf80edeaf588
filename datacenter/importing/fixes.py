"""A pending file as a grid of failed rows, and its rows fixed in place.

:func:`read_grid` reads a ``*.pending.csv`` file at the storage's root as
its header (the ``--ERRORS--`` column apart), and a page of its rows, each
with its cells by column, its reason, and the fields the reason names
(``level: invalid integer 'abc'`` names ``level``; a row waiting for its
parent names the parent's columns): the cells to mark. Nothing is written.

:func:`replace_rows` writes the rows back, fixed: the whole file, or the
rows of one page with the others kept as they were, in one atomic replace
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

from datacenter.config import DEFAULT_MAX_LINE_BYTES
from datacenter.errors import DataCenterError
from datacenter.importing.csvinput import CSVSource, FatalCSVError
from datacenter.importing.routing import Router, UnroutedError, original_name
from datacenter.records.backend import Store
from datacenter.records.schema import ERRORS_COLUMN, ProcessorSchema
from datacenter.storage import fs, layout
from datacenter.storage.identity import FileIdentity

PENDING_SUFFIX = ".pending.csv"
FIX = "fix"
_PARENTS_MISSING = "parents"


class FixError(DataCenterError, ValueError):
    """The rows cannot be written back; nothing changed. The message says why."""


class StaleError(FixError):
    """The pending file changed since it was read (imported again, or edited)."""


@dataclass
class GridRow:
    """One failed row: its line, its cells by column, its reason, the fields it names."""

    line: int
    cells: dict[str, str]
    errors: str
    fields: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "cells": self.cells, "errors": self.errors,
                "fields": self.fields}


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
                "rows": [row.as_dict() for row in self.rows], "total": self.total,
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
    with CSVSource(path, max_line_bytes) as source:
        header, errors = _columns(source.header)
        for row in source.rows():
            if total >= offset and (limit is None or len(rows) < limit):
                cells = {column: row.cells[n] if n < len(row.cells) else ""
                         for n, column in header}
                reason = row.cells[errors] if errors is not None and errors < len(
                    row.cells) else ""
                rows.append(GridRow(row.line, cells, reason,
                                    failing_fields(reason, list(cells), schema)))
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
    """Write *rows* (cells by column) in place of rows *offset*..+*count* (all: None).

    Returns how many rows the file holds now. Call it under the storage's
    lock: an import of the same file must not run in between.
    """
    path = pending_path(storage, name)
    before = FileIdentity.at(path)
    if version is not None and (before is None or before.to_ledger() != version):
        raise StaleError(f"{name}: changed since it was read (imported again, or edited); "
                         "nothing was saved: load it again")
    with CSVSource(path, max_line_bytes) as source:
        header, errors = _columns(source.header)
        columns = [column for _, column in header]
        old = [row.cells for row in source.rows()]
    end = len(old) if count is None else min(len(old), offset + count)
    kept_reasons = [cells[errors] if errors is not None and errors < len(cells) else ""
                    for cells in old[offset:end]]
    new = [_cells(columns, row, name) for row in rows]
    reasons = kept_reasons + [""] * (len(new) - len(kept_reasons))
    fixed = [[*cells, reason] for cells, reason in zip(new, reasons, strict=False)]
    kept = [[*[c[n] if n < len(c) else "" for n, _ in header],
             c[errors] if errors is not None and errors < len(c) else ""]
            for c in old[:offset] + old[end:]]
    body = kept[:offset] + fixed + kept[offset:]
    data = _csv([*columns, ERRORS_COLUMN], body)
    tmp = fs.temp_name(storage)
    try:
        with fs.new_file(tmp, sync=False) as handle:
            handle.write(data)
        ident = FileIdentity.at(tmp)
        if FileIdentity.at(path) != before:
            raise StaleError(f"{name}: changed while it was being saved; nothing was saved: "
                             "load it again")
        store.record_action(FIX, name, user, ident=ident.to_ledger() if ident else "",
                            detail=f"{len(new)} row(s) fixed, {len(body)} in the file",
                            storage=os.path.realpath(storage))
        fs.replace(tmp, path)
    finally:
        fs.unlink(tmp, missing_ok=True)
    return len(body)


def _processor(router: Router, name: str) -> str | None:
    try:
        return router.route(original_name(name)[0])[0]
    except UnroutedError:
        return None


def _columns(header: list[str]) -> tuple[list[tuple[int, str]], int | None]:
    """The header's columns with their positions (the reason's apart), and the reason's."""
    errors = header.index(ERRORS_COLUMN) if ERRORS_COLUMN in header else None
    return [(n, column) for n, column in enumerate(header) if n != errors], errors


def _cells(columns: list[str], row: Mapping[str, object], name: str) -> list[str]:
    cells = row.get("cells", row)
    if not isinstance(cells, Mapping):
        raise FixError(f"{name}: each row must be an object of cells by column")
    unknown = sorted(set(map(str, cells)) - set(columns))
    if unknown:
        raise FixError(f"{name}: no column {unknown[0]!r} in this file (columns: "
                       f"{', '.join(columns)})")
    values = []
    for column in columns:
        value = cells.get(column, "")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise FixError(f"{name}: cell {column!r} must be text, not {value!r}")
        values.append(str(value))
    return values


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


__all__ = ["FatalCSVError", "FixError", "Grid", "GridRow", "StaleError", "failing_fields",
           "read_grid", "replace_rows"]
