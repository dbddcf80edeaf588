"""The files an import writes as it goes: finished rows, pending rows, backups.

They are written row by row beside the import (in its job folder) and made
durable before the import commits, so that whatever the commit decided can
be filed away afterwards, even after a crash.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from datacenter.records.schema import ERRORS_COLUMN, ProcessorSchema
from datacenter.storage import fs


@dataclass
class ImportResult:
    """What one pass over a file did; the output files are in ``workdir``."""

    workdir: str
    rows: int = 0
    failed: int = 0
    finished_path: str = ""
    pending_path: str | None = None
    #: Staged backups of removed records by name: ``deleted`` / ``graduated`` for the
    #: processor's own, ``deleted.<processor>`` for records a removal cascaded to.
    backups: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    sha256: str = ""
    #: What the log line of the import adds (``read as ;-separated``).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.rows - self.failed

    def found_outputs(self, own: str, started: float) -> ImportResult:
        """Itself, knowing the files in ``workdir`` (*own*: the importing processor) and
        the seconds since *started* (``time.perf_counter``)."""
        self.seconds = time.perf_counter() - started
        self.finished_path = os.path.join(self.workdir, "finished.csv")
        if self.failed:
            self.pending_path = os.path.join(self.workdir, "pending.csv")
        for backup in backups_in(self.workdir, own):
            self.backups[backup.stem] = backup.path
        return self


class Outputs:
    """The finished, pending and backup files of one import, written as rows come."""

    def __init__(self, workdir: str, header: list[str], schema: ProcessorSchema) -> None:
        self.workdir = workdir
        self.schema = schema
        self._files: dict[str, io.TextIOWrapper] = {}
        self._writers: dict[str, Any] = {}
        columns = [c for c in header if c != ERRORS_COLUMN]
        self.finished = self._open("finished.csv", columns)
        self.pending_header = [*columns, ERRORS_COLUMN]

    def _open(self, name: str, header: list[str]) -> Any:
        binary = fs.open_new(os.path.join(self.workdir, name))
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        self._files[name], self._writers[name] = text, writer
        return writer

    def writer(self, name: str, header: list[str]) -> Any:
        return self._writers.get(name) or self._open(name, header)

    def close(self, sync: bool = True) -> None:
        """Flush and fsync every file and their folder: they must outlive a crash.

        ``sync=False`` only closes them: the caller makes the job folders of
        a whole batch durable at once (:func:`datacenter.storage.fs.sync_all`)
        before the commit.
        """
        for text in self._files.values():
            text.flush()
            if sync:
                fs.fsync(text.buffer.raw.fd)  # type: ignore[attr-defined]
            text.close()
        if sync:
            fs.fsync_dir(self.workdir)

    def write_finished(self, parts: list[memoryview]) -> None:
        """Append finished rows already encoded as CSV (the columnar engine's)."""
        text = self._files["finished.csv"]
        text.flush()  # the header, written through the text layer
        for part in parts:
            text.buffer.write(part)  # type: ignore[arg-type]

    def discard(self) -> None:
        for text in self._files.values():
            text.close()

    def remove(self) -> None:
        """Close and delete every file written so far (another engine writes them anew)."""
        self.discard()
        for name in self._files:
            fs.unlink(os.path.join(self.workdir, name), missing_ok=True, sync=False)
        self._files.clear()
        self._writers.clear()


_BACKUP = re.compile(r"(?P<kind>deleted|graduated)(?:\.(?P<processor>[a-z][a-z0-9_]*))?\.csv")


@dataclass(frozen=True)
class Backup:
    """A staged backup of removed records, to join ``<kind>/<processor>.csv``."""

    processor: str
    graduated: bool
    path: str

    @property
    def stem(self) -> str:
        return os.path.basename(self.path)[:-4]


def backup_name(kind: str, processor: str, own: str) -> str:
    """The staged backup's name: ``deleted.csv`` for *own* records, else
    ``deleted.<processor>.csv``."""
    return f"{kind}.csv" if processor == own else f"{kind}.{processor}.csv"


def backups_in(workdir: str, own: str) -> list[Backup]:
    """The staged backups an import of processor *own* left in *workdir*, by name."""
    try:
        names = sorted(os.listdir(workdir))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        match = _BACKUP.fullmatch(name)
        if match:
            found.append(Backup(match["processor"] or own, match["kind"] == "graduated",
                                os.path.join(workdir, name)))
    return found


def pending_cells(cells: list[str], header: list[str], reason: str) -> list[str]:
    """The row's original cells, then why it failed.

    An old ``--ERRORS--`` cell (a pending file dropped again) gives way to
    the new reason; a short row is padded so the reason stays in its
    column; the cells of a long row are all kept, nothing is cut.
    """
    kept = [c for c, name in zip(cells, header, strict=False) if name != ERRORS_COLUMN]
    kept += cells[len(header):]
    width = len([name for name in header if name != ERRORS_COLUMN])
    kept += [""] * (width - len(kept))
    return [*kept, reason]


def pending_reason(cells: list[str], width: int, errors: int | None) -> str:
    """The reason of a pending file's row: its ``--ERRORS--`` cell, or its last if longer.

    :func:`pending_cells` keeps every cell of a row longer than the header,
    the reason after them.

    >>> pending_reason(["S2", "Smith", " John", "why"], 3, 2)
    'why'
    >>> pending_reason(["S2", "why"], 3, 2)
    ''
    """
    if errors is None:
        return ""
    if len(cells) > width and errors == width - 1:
        return cells[-1]
    return cells[errors] if errors < len(cells) else ""

