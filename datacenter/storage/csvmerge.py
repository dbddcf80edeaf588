"""Adding the rows of a new CSV file to an existing one, as a journal step.

Kofa rewrote the whole finished file on every import. Here, when the new
rows have the same header as the file they join, only the new rows are
staged and appended: the cost grows with the new rows, never with the file.
When the headers differ, a merged file is staged whose header keeps the
existing columns in their order and adds new ones at the end.

Files are read as UTF-8 with ``surrogateescape``: bytes that are not UTF-8
pass through unchanged instead of stopping the merge. A byte order mark
never ends up inside a column name, and appended rows use the line ending
the existing file already uses.

The file joined is the storage's own: it is read only as such, never
through a symlink nor with a second name (:func:`fs.open_read`); callers
steer clear of a planted one first (:mod:`.links`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterator, Mapping
from typing import IO, Any

from datacenter.storage import fs
from datacenter.storage.journal import Group
from datacenter.storage.steps import Append, Replace

_BOM = "\ufeff"
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"
csv.field_size_limit(1 << 30)  # a long cell is data, not an attack on memory


@contextlib.contextmanager
def _reader(path: str, shared: bool = False,
            ) -> Iterator[tuple[list[str] | None, Iterator[list[str]]]]:
    """The header (BOM removed; None for an empty file) and the row iterator.

    *shared*: the file may have a second name (new rows staged by a link).
    """
    binary = fs.open_read(path, shared=shared)
    with io.TextIOWrapper(binary, encoding=_ENCODING, errors=_ERRORS, newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header and header[0].startswith(_BOM):
            header[0] = header[0][len(_BOM):]
        yield header, rows


def line_ending(path: str, default: str = "\r\n") -> str:
    """The line ending of the file's first line, or *default* if it has none."""
    with fs.open_read(path) as handle:
        head = handle.read(1 << 16)
    newline = head.find(b"\n")
    if newline < 0:
        return default
    return "\r\n" if newline and head[newline - 1:newline] == b"\r" else "\n"


def _ends_with_newline(path: str) -> bool:
    with fs.open_read(path) as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def plan_merge(group: Group, new_file: str, dest: str, label: str) -> None:
    """Add to *group* the steps that make *dest* hold its rows plus *new_file*'s.

    Nothing visible changes until the group runs. *label* names the staged
    file within the group's staging folder.
    """
    if not os.path.lexists(dest) or os.lstat(dest).st_size == 0:
        group.add(Replace(src=group.stage_file(new_file, label), dst=dest))
        return
    with _reader(dest) as (old_header, _), _reader(new_file, True) as (new_header, rows):
        if new_header is None:
            return  # nothing to add, not even a header
        if old_header == new_header:
            _plan_append(group, rows, dest, label)
        else:
            _plan_rewrite(group, old_header or [], new_header, rows, dest, label)


def _plan_append(group: Group, rows: Iterator[list[str]], dest: str, label: str) -> None:
    terminator = line_ending(dest)
    size = os.lstat(dest).st_size
    staged = group.staged_path(label)
    written = 0
    with fs.new_file(staged, sync=False) as binary:
        text = _text(binary)
        if not _ends_with_newline(dest):
            text.write(terminator)
        writer = csv.writer(text, lineterminator=terminator)
        for row in rows:
            writer.writerow(row)
            written += 1
        text.flush()
        text.detach()
    if written:
        group.add(Append(src=staged, dst=dest, size=size))


def _plan_rewrite(
    group: Group,
    old_header: list[str],
    new_header: list[str],
    new_rows: Iterator[list[str]],
    dest: str,
    label: str,
) -> None:
    known = set(old_header)  # not a scan of the old header per new column
    header = old_header + [c for c in new_header if c not in known]
    terminator = line_ending(dest)
    staged = group.staged_path(label)
    with fs.new_file(staged, sync=False) as binary:
        text = _text(binary)
        writer = csv.writer(text, lineterminator=terminator)
        writer.writerow(header)
        with _reader(dest) as (_, old_rows):
            _write_in_order(writer, old_header, header, old_rows)
        _write_in_order(writer, new_header, header, new_rows)
        text.flush()
        text.detach()
    group.add(Replace(src=staged, dst=dest))


def _write_in_order(
    writer: Any,  # the csv writer's type is private to typeshed
    columns: list[str],
    header: list[str],
    rows: Iterator[list[str]],
) -> None:
    """Write *rows* (in *columns* order) rearranged to *header*; gaps empty."""
    index = {name: i for i, name in enumerate(columns)}
    picks = [index.get(name) for name in header]
    for row in rows:
        writer.writerow(["" if i is None or i >= len(row) else row[i] for i in picks])


def write_records(path: str, records: list[Mapping[str, object]]) -> None:
    """Write *records* as a new durable CSV file; the header is the union of keys."""
    header: dict[str, None] = {}
    for record in records:
        header.update(dict.fromkeys(record))
    with fs.new_file(path, sync=False) as binary:
        text = _text(binary)
        writer = csv.DictWriter(text, fieldnames=list(header), restval="",
                                lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(records)
        text.flush()
        text.detach()


def _text(binary: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary, encoding=_ENCODING, errors=_ERRORS, newline="")
