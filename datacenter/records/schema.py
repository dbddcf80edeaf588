"""Processor definitions: which fields a record has, and how rows become records.

The batch importer turns each row's cell texts into typed values with
:meth:`ProcessorSchema.convert`; the exporter checks JSON records with
:meth:`ProcessorSchema.validate_record` and writes canonical text with
:meth:`ProcessorSchema.format_record`. :func:`load_processors` builds the
schemas from the ``[processors.*]`` tables of ``datacenter.toml``.

Any header text can be a field name (``"Contact Phone Number"``); which
names are refused, and how a header is matched, is :mod:`.naming`'s.
A processor may also map a header to a field
(``columns = { "Contact Phone Number" = "phone" }``).
:meth:`ProcessorSchema.field_of` is the one place where a header cell
meets a field: every engine and reader asks it.

Field types themselves live in :mod:`datacenter.fieldtypes`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from datacenter.config import MODES as MODES
from datacenter.config import ConfigError
from datacenter.records.fieldtypes import KNOWN_TYPES, FieldType, lookup
from datacenter.records.naming import ERRORS_COLUMN as ERRORS_COLUMN
from datacenter.records.naming import IGNORE_COLUMN as IGNORE_COLUMN
from datacenter.records.naming import JOB_COLUMN as JOB_COLUMN
from datacenter.records.naming import collision, header_key, header_problem

MISSING = "required value missing"
#: Processor names appear in file names (``<processor>[_anything][.<mode>].csv``)
#: and table names: lowercase letters, digits and ``_``, so routing stays unambiguous.
_PROCESSOR_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SETTINGS = ("key", "fields", "required", "parents", "graduated", "on_remove", "encoding",
             "columns")
_KEY_SHAPE = "key must be a non-empty list of field names"
#: What removing a record does to the records naming it as their parent: the row
#: fails ("still referenced by ..."), they are removed too, or they are left as they are.
ON_REMOVE = ("refuse", "cascade", "keep")


class SchemaError(ConfigError):
    """A processor definition is wrong; the message names the file and the processor."""


_Fail = Callable[[str], SchemaError]


def _processor_name_problem(name: str) -> str | None:
    if _PROCESSOR_NAME.fullmatch(name):
        return None
    return f"invalid processor name {name!r} (use lowercase letters, digits, _)"


@dataclass(frozen=True)
class ProcessorSchema:
    """What one processor's records look like, and how rows become them.

    The property names follow Kofa (``location_fields``, ``required_fields``,
    ``available_fields``, ``req``) so that Kofa processors' code carries over.
    """

    name: str
    key: tuple[str, ...]
    # Dicts are not hashable: the schema hashes by name, key and required.
    fields: Mapping[str, FieldType] = field(hash=False)
    required: tuple[str, ...] = ()
    parents: Mapping[str, str] = field(default_factory=dict, hash=False)
    graduated: Mapping[str, object] = field(default_factory=dict, hash=False)
    #: What removing a record does to the records that name it as parent (:data:`ON_REMOVE`).
    on_remove: str = "refuse"
    #: How the CSV files dropped for this processor are encoded (what it writes is UTF-8).
    encoding: str = "utf-8"
    #: Headers that name a field other than by its name: ``{"Contact Phone Number": "phone"}``.
    columns: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Own copies, so the caller's later changes cannot reach a frozen schema. Plain
        # dicts rather than read-only proxies: those break pickle, deepcopy and asdict().
        for name, kind in (("key", tuple), ("required", tuple), ("fields", dict),
                           ("parents", dict), ("graduated", dict), ("columns", dict)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        reason = self._problem()
        if reason is not None:
            raise SchemaError(f"[processors.{self.name}]: {reason}")

    def _problem(self) -> str | None:
        checks = (
            [_processor_name_problem(self.name)]
            + [header_problem(name) for name in self.fields]
            + [collision(list(self.fields), "fields")]
            + [None if self.key else _KEY_SHAPE]
            + [_not_a_field("key field", name, self.fields) for name in self.key]
            + [_not_a_field("required field", name, self.fields) for name in self.required]
            + [_not_a_field("parent field", name, self.fields) for name in self.parents]
            + [self._graduated_problem(name, value) for name, value in self.graduated.items()]
            + [_on_remove_problem(self.on_remove), _encoding_problem(self.encoding)]
            + [self._columns_problem()]
        )
        return next((reason for reason in checks if reason is not None), None)

    def _columns_problem(self) -> str | None:
        """Why ``columns`` cannot map headers to fields, or None."""
        targets: dict[str, str] = {}
        own = {header_key(name): name for name in self.fields}
        for header, name in self.columns.items():
            reason = header_problem(header, "header")
            if reason is not None:
                return f"columns: {reason}"
            if not isinstance(name, str) or name not in self.fields:
                return f"columns: {header!r} maps to {name!r}, which is not a field"
            if header_key(header) in own:
                return (f"columns: {header!r} is the header of field "
                        f"{own[header_key(header)]!r} already")
            if name in targets:
                return f"columns: {targets[name]!r} and {header!r} both map to field {name!r}"
            targets[name] = header
        clash = collision(list(self.columns), "headers", columns=False)
        return None if clash is None else f"columns: {clash}"

    @cached_property
    def _fields_by_header(self) -> dict[str, str]:
        found = {header_key(name): name for name in self.fields}
        found.update((header_key(header), name) for header, name in self.columns.items())
        return found

    def field_of(self, header: str) -> str | None:
        """The field a header cell feeds (a field's name, or a header of ``columns``).

        Matched by :func:`header_key`: blanks at either end and Unicode forms do
        not matter, case does. None for any other column, ``--IGNORE--`` and
        ``--ERRORS--`` included. Every engine and reader maps headers here.
        """
        return self._fields_by_header.get(header_key(header))

    def _graduated_problem(self, name: str, value: object) -> str | None:
        if name not in self.fields:
            return f"graduated field {name!r} is not a field"
        ftype = self.fields[name]
        try:
            # TOML users may quote a value ("4" for an int): any text the type parses will do.
            ftype.format(value)
        except ValueError as exc:
            return f"graduated value for {name!r} is not a valid {ftype.name.split(':')[0]}: {exc}"
        return None

    @property
    def location_fields(self) -> tuple[str, ...]:
        return self.key

    @property
    def required_fields(self) -> tuple[str, ...]:
        """Key fields and required ones, in field order: location fields are always required."""
        wanted = set(self.key) | set(self.required)
        return tuple(name for name in self.fields if name in wanted)

    @property
    def available_fields(self) -> tuple[str, ...]:
        return tuple(self.fields)

    @property
    def req(self) -> dict[str, tuple[str, ...]]:
        """The columns each import mode needs (Kofa's ``req``)."""
        return {"create": self.required_fields, "update": self.key, "remove": self.key}

    def csv_header(self) -> list[str]:
        """The columns of a CSV template (Kofa's ``get_csv_skeleton``)."""
        return list(self.fields)

    def csv_template(self) -> str:
        """The header line of a CSV template, quoted where a name needs it, ending in CRLF."""
        line = io.StringIO()
        csv.writer(line, lineterminator="\r\n").writerow(self.csv_header())
        return line.getvalue()

    def convert(
        self, row: Mapping[str, str | None], mode: str = "create", ignore_empty: bool = True
    ) -> tuple[dict[str, object], list[str]]:
        """Typed values of a CSV row, and the errors ``<field>: <reason>`` in field order.

        An empty cell is left out with *ignore_empty* (in update mode: keep the
        stored value), else it becomes None (clear the value). In remove mode
        only the key is converted: other cells cannot matter to a removal, so
        a malformed one must not keep the row pending.
        """
        needed = self._needed(mode)
        values: dict[str, object] = {}
        errors: list[str] = []
        for name, ftype in self.fields.items():
            if mode == "remove" and name not in needed:
                continue
            cell = row.get(name)
            if cell is None or not cell.strip():
                if name in needed or (cell is not None and not ignore_empty
                                      and name in self.required_fields):
                    errors.append(f"{name}: {MISSING}")  # a required value cannot be cleared
                elif cell is not None and not ignore_empty:
                    values[name] = None
                continue
            try:
                values[name] = ftype.parse(cell)
            except ValueError as exc:
                errors.append(f"{name}: {exc}")
        return values, errors

    def _needed(self, mode: str) -> frozenset[str]:
        try:
            return self._needed_by_mode[mode]
        except KeyError:
            raise ValueError(f"unknown mode {mode!r} (use one of: {', '.join(MODES)})") from None

    @cached_property
    def _needed_by_mode(self) -> dict[str, frozenset[str]]:
        # Computed once: convert runs for every row of imports a million rows long.
        return {mode: frozenset(names) for mode, names in self.req.items()}

    def format_record(self, values: Mapping[str, object]) -> dict[str, str]:
        """Canonical text of the fields present in *values*, in field order (None -> "")."""
        texts: dict[str, str] = {}
        for name, ftype in self.fields.items():
            if name in values:
                value = values[name]
                try:
                    texts[name] = "" if value is None else ftype.format(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return texts

    def validate_record(self, record: Mapping[str, object]) -> list[str]:
        """Errors ``<field>: <reason>`` of a JSON record, in field order; other keys are fine."""
        required = set(self.required_fields)
        errors: list[str] = []
        for name, ftype in self.fields.items():
            value = record.get(name)
            if value is None or value == "":
                if name in required:
                    errors.append(f"{name}: {MISSING}")
                continue
            reason = ftype.problem(value)
            if reason is not None:
                errors.append(f"{name}: {reason}")
        return errors

    def is_graduated(self, values: Mapping[str, object]) -> bool:
        """Whether a record matches every graduated rule (compared as canonical text)."""
        if not self.graduated:
            return False
        return all(
            _canonical(self.fields[name], values.get(name)) == self.fields[name].format(rule)
            for name, rule in self.graduated.items()
        )


def _on_remove_problem(value: object) -> str | None:
    if isinstance(value, str) and value in ON_REMOVE:
        return None
    return f"on_remove must be one of {', '.join(map(repr, ON_REMOVE))}, not {value!r}"


def _encoding_problem(value: object) -> str | None:
    """Why *value* cannot be the encoding of dropped CSV files, or None."""
    hint = "(use \"utf-8\", \"cp1252\" or \"latin-1\")"
    if not isinstance(value, str):
        return f"encoding must be a string such as \"cp1252\", not {value!r}"
    try:
        codecs.lookup(value)
        # Lines are split on b"\n" and the delimiter found in bytes: ASCII must stay ASCII.
        ascii_safe = "id,name;\t\r\n".encode(value) == b"id,name;\t\r\n"
    except (LookupError, ValueError):
        return f"unknown encoding {value!r} {hint}"
    return None if ascii_safe else f"encoding {value!r} does not keep ASCII as it is {hint}"


def _not_a_field(what: str, name: str, fields: Mapping[str, FieldType]) -> str | None:
    return None if name in fields else f"{what} {name!r} is not a field"


def _canonical(ftype: FieldType, value: object) -> str | None:
    if value is None:
        return None
    try:
        return ftype.format(value)
    except ValueError:
        return None


def load_processors(
    processors: Mapping[str, Any], source: str = "datacenter.toml"
) -> dict[str, ProcessorSchema]:
    """Schemas from the raw ``[processors.*]`` tables; SchemaError names *source* and the table."""
    schemas: dict[str, ProcessorSchema] = {}
    for name, table in processors.items():
        try:
            schemas[name] = _load_one(name, table, processors)
        except SchemaError as exc:
            raise SchemaError(f"{source}: {exc}") from None
    return schemas


def _load_one(name: str, table: Any, processors: Mapping[str, Any]) -> ProcessorSchema:
    def fail(reason: str) -> SchemaError:
        # ProcessorSchema's own errors look the same; load_processors adds the file.
        return SchemaError(f"[processors.{name}]: {reason}")

    reason = _processor_name_problem(name) or _table_problem(table)
    if reason is not None:
        raise fail(reason)
    key = table.get("key")
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise fail(_KEY_SHAPE)
    schema = ProcessorSchema(
        name=name,
        fields=_fields(table.get("fields"), fail),
        key=_names(key, "key", fail),
        required=_names(table.get("required", []), "required", fail),
        parents=_table(table.get("parents", {}), "parents", "processor", fail, str),
        graduated=_table(table.get("graduated", {}), "graduated", "value", fail),
        on_remove=table.get("on_remove", "refuse"),
        encoding=table.get("encoding", "utf-8"),
        columns=_columns(table.get("columns", {}), fail),
    )
    for field_name, parent in schema.parents.items():
        if parent not in processors:
            raise fail(f"parent {field_name!r} refers to unknown processor {parent!r}")
        parent_key = processors[parent].get("key") if isinstance(processors[parent], Mapping) \
            else None
        if isinstance(parent_key, list) and len(parent_key) != 1:
            raise fail(f"parent {field_name!r} refers to processor {parent!r}, whose key has "
                       f"{len(parent_key)} fields; one field must name a parent record")
    return schema


def _table_problem(table: Any) -> str | None:
    if not isinstance(table, Mapping):
        return f"must be a table, not {table!r}"
    # Unknown settings are most likely typos that would otherwise be ignored silently.
    unknown = [setting for setting in table if setting not in _SETTINGS]
    return f"unknown setting {unknown[0]!r}" if unknown else None


def _fields(raw: Any, fail: _Fail) -> dict[str, FieldType]:
    if not isinstance(raw, Mapping) or not raw:
        raise fail("fields must be a non-empty table of field name = type")
    fields: dict[str, FieldType] = {}
    for name, spec in raw.items():
        reason = header_problem(name)
        if reason is not None:
            raise fail(reason)
        if not isinstance(spec, str):
            raise fail(f"type of field {name!r} must be a string such as \"int\", not {spec!r}")
        try:
            found = lookup(spec)
        except ValueError as exc:
            raise fail(f"field {name!r}: {exc}") from None
        if found is None:
            raise fail(f"unknown field type {spec!r} for field {name!r} {KNOWN_TYPES}")
        fields[name] = found
    return fields


def _columns(raw: Any, fail: _Fail) -> dict[str, str]:
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise fail('columns must be a table of "header" = "field"')
    return dict(raw)


def _names(raw: Any, setting: str, fail: _Fail) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise fail(f"{setting} must be a list of field names")
    duplicates = [item for item in raw if raw.count(item) > 1]
    if duplicates:
        raise fail(f"{setting} lists {duplicates[0]!r} twice")
    return tuple(raw)


def _table(
    raw: Any, setting: str, what: str, fail: _Fail, kind: type = object
) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or not all(isinstance(v, kind) for v in raw.values()):
        raise fail(f"{setting} must be a table of field = {what}")
    return dict(raw)
