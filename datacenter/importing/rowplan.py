"""A row plan: one import's columns compiled once, applied to a million rows.

``ProcessorSchema.convert`` is general (any mapping, any mode). An import
knows its header before its first row, so the work per cell can be decided
once: which column feeds which field, how its text is parsed, rendered
back as canonical text, and handed to SQLite. The result is the same as
``convert`` + ``format_record``; only the bookkeeping per row is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from datacenter.records.fieldtypes import FieldType
from datacenter.records.schema import ERRORS_COLUMN, MISSING, ProcessorSchema
from datacenter.records.store import to_db


class _Column(NamedTuple):
    position: int  # of the column in the row's cells
    name: str
    parse: Callable[[str], object]
    render: Callable[[object], str] | None  # None: the cell is its own canonical text
    to_db: Callable[[object], object] | None  # None: SQLite takes the value as it is
    needed: bool  # the mode needs a value
    required: bool  # a value can never be cleared


def _db_adapter(ftype: FieldType) -> Callable[[object], object] | None:
    if ftype.name in ("str", "email", "int", "float") or ftype.name.startswith("choice:"):
        return None
    return lambda value: to_db(ftype, value)


@dataclass
class Converted:
    """One row, converted: typed values, their SQLite form, the finished cells."""

    values: dict[str, object]
    params: list[object]  # the values for SQLite, in ``names`` order
    names: tuple[str, ...]
    finished: list[str]


class RowPlan:
    """How the cells of one header become typed values and finished text."""

    def __init__(self, schema: ProcessorSchema, header: list[str], mapping: dict[int, str],
                 mode: str, ignore_empty: bool) -> None:
        needed = set(schema.req[mode])
        self.ignore_empty = ignore_empty
        self.width = len(header)
        required = set(schema.required_fields)
        field_order = {name: n for n, name in enumerate(schema.fields)}  # no index() per column
        self.columns = [
            # A str cell is its own canonical text; other types may differ (spaces).
            _Column(index, name, ftype.parse, None if ftype.name == "str" else ftype.render,
                    _db_adapter(ftype), name in needed, name in required)
            for index, name in sorted(mapping.items(), key=lambda item: field_order[item[1]])
            for ftype in (schema.fields[name],)
        ]
        self.missing = [name for name in schema.req[mode] if name not in mapping.values()]
        # Finished rows keep every column but the old error column, in file order.
        self.kept = [i for i, name in enumerate(header) if name != ERRORS_COLUMN]
        self.dropped = len(self.kept) != len(header)

    def convert(self, cells: list[str]) -> Converted | list[str]:
        """The converted row, or the errors ``<field>: <reason>`` in field order."""
        values: dict[str, object] = {}
        params: list[object] = []
        names: list[str] = []
        errors = [f"{name}: {MISSING}" for name in self.missing] if self.missing else None
        texts: dict[int, str] | None = None
        for position, name, parse, render, adapt, needed, required in self.columns:
            cell = cells[position]
            if not cell or cell.isspace():
                if needed or (required and not self.ignore_empty):
                    errors = (errors or []) + [f"{name}: {MISSING}"]
                elif not self.ignore_empty:
                    values[name] = None
                    params.append(None)
                    names.append(name)
                continue
            try:
                value = parse(cell)
            except ValueError as exc:
                errors = (errors or []) + [f"{name}: {exc}"]
                continue
            values[name] = value
            params.append(value if adapt is None else adapt(value))
            names.append(name)
            if render is not None:
                text = render(value)
                if text != cell:
                    if texts is None:
                        texts = {}
                    texts[position] = text
        if errors:
            return errors
        if texts is None:
            finished = [cells[i] for i in self.kept] if self.dropped else cells
        else:
            finished = [texts.get(i, cells[i]) for i in self.kept]
        return Converted(values, params, tuple(names), finished)
