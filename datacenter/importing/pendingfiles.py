"""Pending files as an operator sees them: ``pending`` groups failed rows, ``discard`` gives up.

:func:`summarize` reads the root's ``*.pending.csv`` files (or one) and
groups their rows by reason: how many rows each reason holds, and the keys
of the first few. Reasons that differ only in the value quoted
(``level: invalid integer 'abc'``, ``... 'x'``) or the line they name are
one group, shown as ``level: invalid integer '…'``. Nothing is written.

:func:`discard` gives up a pending file's rows for good
(:mod:`datacenter.storage.discarding` says where everything goes), after
filing away any committed import that is not yet: one of them may be the
last import of that very file. The ledger's actions record who discarded
what (``datacenter discard --user``, or the console's account).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from datacenter.config import DEFAULT_MAX_LINE_BYTES
from datacenter.importing.csvinput import CSVSource, FatalCSVError
from datacenter.importing.importer import Importer
from datacenter.importing.outputs import pending_reason
from datacenter.importing.routing import Router
from datacenter.importing.whereabouts import routed
from datacenter.records.schema import ERRORS_COLUMN, ProcessorSchema
from datacenter.storage import fs, layout, view
from datacenter.storage.discarding import Discarded, DiscardError
from datacenter.storage.distribution import chain_sources

__all__ = ["DiscardError", "Discarded", "PendingFile", "Reason", "discard", "reason_group",
           "summarize"]

PENDING_SUFFIX = ".pending.csv"
#: The ledger's name for giving up a pending file (:func:`discard`).
DISCARD = "discard"
#: Keys shown per reason unless told.
KEYS_SHOWN = 5
_QUOTED = re.compile(r"'[^']*'")
_LINE = re.compile(r"^line \d+: ")
_COUNT = re.compile(r"^\d+ cells, but the header has \d+$")


def reason_group(reason: str) -> str:
    """The group a row's reason belongs to: its values and line numbers left out."""
    label = _QUOTED.sub("'…'", _LINE.sub("", reason.strip()))
    return "N cells, but the header has M" if _COUNT.match(label) else label or "(no reason)"


@dataclass
class Reason:
    """One group of failed rows."""

    reason: str  # the group's label
    count: int = 0
    keys: list[str] = field(default_factory=list)  # of the first rows
    example: str = ""  # the first row's reason as written

    def as_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "count": self.count, "keys": self.keys,
                "example": self.example}


@dataclass
class PendingFile:
    """One pending file's failed rows, grouped by reason (most rows first)."""

    name: str
    processor: str | None
    rows: int = 0
    reasons: list[Reason] = field(default_factory=list)
    key: list[str] = field(default_factory=list)  # the columns the keys shown come from
    problem: str | None = None  # why it could not be read

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"name": self.name, "processor": self.processor,
                                    "rows": self.rows, "key": self.key,
                                    "reasons": [r.as_dict() for r in self.reasons]}
        if self.problem is not None:
            found["problem"] = self.problem
        return found


def summarize(storage: str, schemas: Mapping[str, ProcessorSchema], router: Router,
              name: str | None = None, keys_shown: int = KEYS_SHOWN,
              max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[PendingFile]:
    """The pending files at the root of *storage* (or the one named), rows grouped by reason."""
    if name is not None:
        layout.plain_name(name, "pending file name")
        path = os.path.join(storage, name)
        if not os.path.isfile(path) or os.path.islink(path):
            raise FileNotFoundError(f"{name}: no such pending file at the storage's root")
        names = [name]
    else:
        names = [f.name for f in view.iter_files(storage, "pending")
                 if f.name.lower().endswith(PENDING_SUFFIX)]
    return [_summary(storage, n, schemas, router, keys_shown, max_line_bytes) for n in names]


def _summary(storage: str, name: str, schemas: Mapping[str, ProcessorSchema], router: Router,
             keys_shown: int, max_line_bytes: int) -> PendingFile:
    processor = routed(router, name)
    found = PendingFile(name, processor)
    groups: dict[str, Reason] = {}
    try:
        with CSVSource(os.path.join(storage, name), max_line_bytes, shared=False) as source:
            header = source.header
            schema = schemas.get(processor) if processor is not None else None
            # Key fields by the header that feeds them (a ``columns`` header too).
            index = {column: n for n, column in enumerate(header)}
            if schema is not None:
                index = {schema.field_of(column) or column: n for n, column in
                         reversed(list(enumerate(header)))}
            key = list(schema.key) if schema is not None else []
            if not key or any(k not in index for k in key):
                key = header[:1]
                index[key[0]] = 0
            found.key = key
            where = [index[k] for k in key]
            errors = index.get(ERRORS_COLUMN)
            for row in source.rows():
                found.rows += 1
                reason = pending_reason(row.cells, len(header), errors)
                group = groups.setdefault(reason_group(reason),
                                          Reason(reason_group(reason), example=reason))
                group.count += 1
                if len(group.keys) < keys_shown:
                    group.keys.append(",".join(row.cells[n] if n < len(row.cells) else ""
                                               for n in where))
    except (FatalCSVError, fs.PlantedLinkError, OSError) as error:
        found.problem = str(error)
    found.reasons = sorted(groups.values(), key=lambda r: (-r.count, r.reason))
    return found


def discard(importer: Importer, name: str, user: str | None = None,
            when: float | None = None) -> Discarded:
    """Give up pending file *name* of the importer's storage (one journal group).

    Committed imports not filed away yet are filed first, under the same
    lock: the rows given up are those of the pending file as it stands
    once everything imported is in its place. If an import of this very
    file still cannot be filed, nothing is discarded (DiscardError).
    """
    with importer.dc.lock:
        importer.recover()
        stuck = [job.id for job in importer.filing.unfiled() if job.source == name]
        if stuck:  # its filing would replace the very file: give up what it leaves, later
            raise DiscardError(f"{name}: imported (job {stuck[0]}) but not filed away yet; "
                               "nothing was discarded (see the log, then try again)")
        done = importer.dc.discard(name, user, when, _chain_job(importer, name))
    # The ledger says who gave the rows up, as it says who imported them.
    importer.store.record_action(DISCARD, name, done.user,
                                 detail=f"{done.rows} row(s) -> {done.dest}",
                                 storage=os.path.realpath(importer.storage))
    return done


def _chain_job(importer: Importer, name: str) -> int:
    """The newest job that imported the source of pending file *name*'s chain (or 0)."""
    sources = {name, *chain_sources(name)}
    return next((job.id for job in importer.store.jobs() if job.source in sources), 0)

