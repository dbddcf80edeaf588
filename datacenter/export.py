"""``datacenter export``: records out to CSV or JSON, never half-written.

Sources: a processor's records, streamed from the record store in key order
(memory stays flat for millions), or a JSON list (``--input``), loaded whole:
its CSV header is the union of all keys, known only once all were seen.

A crash at any step leaves the old file or the new one under the target's
name, and the old backup or the new one under ``<name>.bak``: the file is
written with :func:`datacenter.storage.fs.atomic_writer`, which writes a
hidden temporary file beside the target, makes the old target durable as
``<name>.bak`` (a hard link, a copy where there are none), then renames the
new file over the target. Only a regular file or a new name is a target: a
rename would replace a FIFO, a device node, a socket or a symlink itself.

CSV text cells starting with ``= + - @``, a tab or a carriage return get a
leading ``'`` (OWASP's advice against CSV injection), so that spreadsheets do
not run them as formulas; so do cells whose first character after leading
white space and invisible characters (NBSP, zero-width space, BOM, ...) is
one of ``= + - @`` or its full-width form (U+FF1D, U+FF0B, U+FF0D, U+FF20),
since spreadsheets skip or fold those. ``--raw-cells`` is for trusted
programs. Numbers are never touched: ``-5`` is data, not a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import itertools
import json
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from datacenter.columnar_export import Guard, write_csv
from datacenter.errors import DataCenterError
from datacenter.formulas import FORMULA_STARTS as FORMULA_STARTS
from datacenter.formulas import PLAIN_STARTS as PLAIN_STARTS
from datacenter.formulas import neutralise_cell as neutralise_cell
from datacenter.records.backend import Store
from datacenter.records.fieldtypes import IsoType
from datacenter.records.schema import ProcessorSchema
from datacenter.records.store import ColumnarReadError, RecordStore
from datacenter.storage import fs, kinds

FORMATS = ("csv", "json")
#: The ``--output`` meaning standard output (not atomic: a stream has no old file).
STDOUT = "-"
#: Validation lists at most this many problems, then how many more there are.
MAX_PROBLEMS = 50
# Records per write: enough to amortise the calls, few enough to keep memory flat.
_CHUNK = 2000
_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
          int: "a number", float: "a number", type(None): "null"}

Emit = Callable[[Any], object]
#: Turns ``(column, value)`` into the value to write.
Formatter = Callable[[str, object], object]


class ExportError(DataCenterError, ValueError):
    """An export that cannot be done; the message is one line naming the path."""


# -- cells, records, validation -------------------------------------------------


def cell_text(value: object, neutralise: bool = True) -> str:
    """The CSV text of *value*: str as is, None empty, bool ``true``/``false``,
    numbers by ``str``/``repr`` (the shortest text that reads back the same),
    dates ISO as their field types format them, lists and objects as compact
    JSON. Only text can be a formula, so only text is neutralised.

    >>> [cell_text(v) for v in ("-x", -5, 0.1, True, None, [1, {"a": 2}])]
    ["'-x", '-5', '0.1', 'true', '', '[1,{"a":2}]']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_value)
    text = value if isinstance(value, str) else str(value)
    return neutralise_cell(text) if neutralise else text


def _json_value(value: object) -> object:
    if isinstance(value, dt.date):  # and datetime: ISO text, as their field types format them
        return str(value)
    raise ExportError(f"cannot write a {type(value).__name__} as JSON")


_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_json_value)


def load_json_records(path: str) -> list[object]:
    """The list in JSON file *path*; ExportError names the path and what is wrong."""
    try:
        with _open_regular(path) as handle:
            data = json.load(handle, parse_constant=_refuse_constant)
    except ExportError:  # a ValueError too, but no JSON error
        raise
    except OSError as exc:
        raise ExportError(f"{path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ExportError(f"{path}: not valid JSON: {exc.msg} ({where})") from None
    except UnicodeDecodeError:
        raise ExportError(f"{path}: not valid JSON: not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise ExportError(f"{path}: not valid JSON: {exc or 'nested too deeply'}") from None
    if not isinstance(data, list):
        raise ExportError(f"{path}: not a JSON list of records (found {_kind(data)})")
    return data


def _open_regular(path: str) -> BinaryIO:
    """*path* open for reading if it is a regular file (through symlinks), else ExportError.

    Anything else is refused before it is opened: the open of a FIFO blocks until a
    writer comes, a device may never end. The open does not block (O_NONBLOCK) and
    the open file is looked at again, in case the name changed since the first look.
    """
    what = kinds.kind_at(path)
    if what not in (None, kinds.REGULAR):  # None: the open below says why
        raise ExportError(kinds.not_a_file(path, what))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    what = kinds.kind(os.fstat(fd).st_mode)
    if what != kinds.REGULAR:
        os.close(fd)
        raise ExportError(kinds.not_a_file(path, what))
    return os.fdopen(fd, "rb")  # a regular file's reads never wait: O_NONBLOCK is moot


def _refuse_constant(name: str) -> object:
    # Python's json reads NaN and Infinity, which other JSON readers refuse.
    raise ValueError(f"{name} is not a JSON value")


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def iter_problems(records: Iterable[object], schema: ProcessorSchema | None = None
                  ) -> Iterator[str]:
    """``record <n>: <field>: <reason>`` per problem, records counted from 1.

    Records must be objects; with *schema* they must also pass its
    :meth:`~ProcessorSchema.validate_record` (required fields, value types).
    """
    for number, record in enumerate(records, 1):
        if not isinstance(record, Mapping):
            yield f"record {number}: not an object (found {_kind(record)})"
        elif schema is not None:
            for problem in schema.validate_record(record):
                yield f"record {number}: {problem}"


def validate(records: Iterable[object], schema: ProcessorSchema | None = None) -> list[str]:
    """Every problem :func:`iter_problems` finds."""
    return list(iter_problems(records, schema))


def csv_header(records: Iterable[Mapping[str, object]],
               schema: ProcessorSchema | None = None) -> list[str]:
    """The union of the records' keys in first-seen order; a schema's fields first."""
    seen: dict[str, None] = dict.fromkeys(schema.fields) if schema is not None else {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def processor_schema(schemas: Mapping[str, ProcessorSchema], name: str) -> ProcessorSchema:
    try:
        return schemas[name]
    except KeyError:
        known = ", ".join(sorted(schemas)) or "none configured"
        raise ExportError(f"unknown processor {name!r} (known: {known})") from None


#: The formula guard of the columnar CSV writer: the same function, the same starts.
_GUARD = Guard(neutralise_cell, FORMULA_STARTS)


# -- exporting -------------------------------------------------------------------


def export_records(records: Iterable[Mapping[str, object]], columns: Sequence[str], path: str,
                   fmt: str = "csv", *, neutralise: bool = True,
                   formatter: Formatter | None = None) -> int:
    """Write *records* to *path* (``-``: standard output); returns how many.

    CSV: the header is *columns*, a missing key an empty cell, values as
    :func:`cell_text` writes them. JSON: each record keeps its keys in its
    order (*columns* is unused) and its value types. *formatter* first turns
    each ``(column, value)`` into the value to write.
    """
    if formatter is not None:
        records = ({k: formatter(k, v) for k, v in record.items()} for record in records)
    if _format(fmt) == "json":
        return write_atomically(path, lambda emit: _write_json(records, emit))
    header = [cell_text(column, neutralise) for column in columns]
    rows = ([cell_text(record.get(c), neutralise) for c in columns] for record in records)
    return write_atomically(path, lambda emit: _write_csv(rows, header, emit))


def export_processor(store: Store, name: str, path: str, fmt: str = "csv", *,
                     neutralise: bool = True, columnar: bool = True) -> int:
    """Stream processor *name*'s records from *store*, in key order, to *path*.

    One read transaction: an import committing meanwhile is in the file
    completely or not at all. CSV goes the columnar way
    (:mod:`datacenter.columnar_export`, on SQLite), unless a stored value does not fit
    its column's type (written around the imports), or *columnar* is False:
    then row by row, with the same bytes.
    """
    schema = processor_schema(store.schemas, name)
    if _format(fmt) == "csv" and columnar and isinstance(store, RecordStore):
        try:
            return write_atomically(
                path, lambda emit: write_csv(
                    store, schema, _GUARD if neutralise else None, emit), binary=True)
        except ColumnarReadError:
            pass  # nothing was written: the target is as it was
    return write_atomically(path, lambda emit: write_processor(store, name, emit, fmt,
                                                                neutralise=neutralise))


def write_processor(store: Store, name: str, emit: Emit, fmt: str = "csv", *,
                    neutralise: bool = True) -> int:
    """Processor *name*'s records, in key order, row by row as CSV or JSON text
    handed to *emit* in chunks; how many.

    One read transaction, like :func:`export_processor`; CSV cells keep the
    formula guard unless *neutralise* is False.
    """
    schema = processor_schema(store.schemas, name)
    names = list(schema.fields)
    fmt = _format(fmt)
    with store.snapshot():
        rows = store.stored_rows(name, _CHUNK)
        if fmt == "json":
            records = (dict(zip(names, values, strict=True))
                       for values in _values(rows, schema, cells=False))
            return _write_json(records, emit)
        cells = _values(rows, schema, cells=True, neutralise=neutralise)
        return _write_csv(cells, names, emit)


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (use one of: {', '.join(FORMATS)})")
    return fmt


def _values(rows: Iterable[Sequence[Any]], schema: ProcessorSchema, *, cells: bool,
            neutralise: bool = False) -> Iterator[list[Any]]:
    """Stored rows made ready to write: booleans (stored 0/1) as CSV text or JSON
    booleans, free text neutralised; the writers take everything else as stored."""
    kinds = list(schema.fields.values())
    texts = [i for i, kind in enumerate(kinds) if neutralise
             and kind.sql_type == "TEXT" and not isinstance(kind, IsoType)]
    bools = [i for i, kind in enumerate(kinds) if kind.name == "bool"]
    truth: tuple[object, object] = ("false", "true") if cells else (False, True)
    for row in rows:
        values = list(row)
        for i in texts:
            text = values[i]
            if text and text[0] not in PLAIN_STARTS:  # neutralise_cell's fast path, inlined
                values[i] = neutralise_cell(text)
        for i in bools:
            if values[i] is not None:
                values[i] = truth[bool(values[i])]
        yield values


def _write_csv(rows: Iterable[Sequence[Any]], header: Sequence[str], emit: Emit) -> int:
    buffer = io.StringIO()
    # "\r\n" as RFC 4180 says, like the finished and pending files of imports.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    count = 0
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, _CHUNK)):
        writer.writerows(chunk)
        count += len(chunk)
        emit(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    emit(buffer.getvalue())
    return count


def _write_json(records: Iterable[Mapping[str, object]], emit: Emit) -> int:
    parts = ["["]
    count = 0
    for record in records:
        parts.append(",\n" if count else "\n")
        parts.append(_JSON.encode(record))
        count += 1
        if len(parts) > _CHUNK:
            emit("".join(parts))
            parts.clear()
    parts.append("\n]\n" if count else "]\n")
    emit("".join(parts))
    return count


# -- writing files atomically -----------------------------------------------------


def check_target(path: str) -> None:
    """Fail early, naming *path*, unless its folder is there and it is a regular file
    or a new name (``-`` is standard output)."""
    if path == STDOUT:
        return
    try:
        folder = os.stat(os.path.dirname(os.path.abspath(path)))
    except OSError as exc:
        raise ExportError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISDIR(folder.st_mode):
        raise ExportError(f"{path}: {os.strerror(errno.ENOTDIR)}")  # the parent is a file
    if _check_replaceable(path):
        _check_replaceable(path + ".bak", backup=True)  # the old file is kept there


def _check_replaceable(path: str, backup: bool = False) -> bool:
    """Refuse *path* unless the final rename may replace it; whether it exists.

    A rename replaces whatever has the name: a FIFO, a socket, a device node
    (``/dev/full``, run as root) would become a regular file, a symlink a file
    beside the one it names, so only a regular file is replaced.
    """
    what = kinds.kind_at(path, follow_symlinks=False)
    if what is None:
        return False
    if what == kinds.FOLDER and not backup:
        raise ExportError(f"{path}: {os.strerror(errno.EISDIR)}")
    if what == kinds.SYMLINK and not backup:
        raise ExportError(f"{path}: a symbolic link; name the real file")
    if what != kinds.REGULAR:
        raise ExportError(kinds.not_a_file(path, what))
    return True


def write_atomically(path: str, produce: Callable[[Emit], int], binary: bool = False) -> int:
    """Run *produce* with a sink that replaces *path* atomically, keeping ``<path>.bak``.

    ``-`` is standard output. A failure leaves *path* as it was and no temporary
    file, and raises ExportError naming *path*; only when the folder's fsync after
    the final rename fails is the new file in place, which the message says.
    *binary*: *produce* emits bytes (or a buffer of them), else text.
    """
    if path == STDOUT:
        sys.stdout.flush()
        count = produce(sys.stdout.buffer.write if binary else sys.stdout.write)
        (sys.stdout.buffer if binary else sys.stdout).flush()
        return count
    check_target(path)
    try:
        with fs.atomic_writer(path, text=not binary, backup=True, sync=False) as handle:
            count = produce(handle.write)
            check_target(path)  # again: the name may have changed during a long export
    except OSError as exc:
        raise ExportError(f"{path}: {exc.strerror or exc}") from exc
    try:
        fs.fsync_dir(os.path.dirname(os.path.abspath(path)))
    except OSError as exc:
        raise ExportError(f"{path}: {exc.strerror or exc} (the new file is in place, "
                          "but may not survive a power cut)") from exc
    return count
