"""Where a record stands: ``datacenter find KEY``, read only.

"Why did student U00038 fail?" is answered without grepping: a key is
looked up, for every processor whose key has that many fields (or the one
asked for), in

* the record store: is it there, and since which import (the ledger job
  that last created or updated it: every record keeps its job's id);
* the finished files of that processor's imports (``finished/``, found
  through the ledger): which rows of which jobs' files hold the key;
* the pending files at the root (with the reason of each failed row), the
  files waiting there to be imported, and ``unfinished/`` (sources still
  open, failed rows kept aside);
* the discarded rows (``finished/*.discarded.csv``: who gave them up, when);
* the backups of removed records (``deleted/<processor>.csv``,
  ``graduated/<processor>.csv``).

Cells match a key part when their text is the same (spaces aside) or,
for typed fields, when they parse to the same value (``007`` is ``7``).
Nothing is written: the store is read as :func:`read_record` reads it,
files through the storage's own readers (never through a link).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from datacenter.config import DEFAULT_MAX_LINE_BYTES
from datacenter.errors import DataCenterError
from datacenter.importing.csvinput import CSVSource, FatalCSVError
from datacenter.importing.outputs import pending_reason
from datacenter.importing.routing import Router, UnroutedError
from datacenter.records.backend import read_jobs, read_record
from datacenter.records.fieldtypes import FieldType
from datacenter.records.schema import ERRORS_COLUMN, ProcessorSchema
from datacenter.records.store import Job, to_db
from datacenter.storage import discarding, distribution, fs, layout, view

#: Where a key was seen; the order ``find`` reports them in.
KINDS = ("store", "finished", "discarded", "pending", "waiting", "unfinished", "deleted",
         "graduated")
#: Kept-aside and link-steered names carry a marker the routing does not know.
_MARKERS = re.compile(r"\.(?:job\d+|aside\d*)(?=\.)")


class FindError(DataCenterError, ValueError):
    """The question cannot be asked (an unknown processor, a key of the wrong length)."""


def iso(timestamp: float) -> str:
    """*timestamp* in ISO 8601, local time with its UTC offset."""
    return dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def job_dict(job: Job) -> dict[str, object]:
    return {"id": job.id, "source": job.source, "processor": job.processor, "mode": job.mode,
            "user": job.user, "finished": job.finished, "at": iso(job.finished)}


@dataclass
class Sighting:
    """One place a key was seen."""

    kind: str  # one of KINDS
    file: str | None = None  # relative to the storage
    line: int | None = None  # the row's first line in that file
    reason: str | None = None  # why the row failed (pending, unfinished, discarded)
    jobs: list[Job] = field(default_factory=list)  # store: the last writer; finished: its jobs
    by: str | None = None  # discarded: who gave the row up
    at: str | None = None  # discarded: when

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"kind": self.kind}
        for name in ("file", "line", "reason", "by", "at"):
            if getattr(self, name) is not None:
                found[name] = getattr(self, name)
        if self.kind in ("store", "finished", "discarded"):
            found["jobs"] = [job_dict(job) for job in self.jobs]
        return found


@dataclass
class Whereabouts:
    """Everything found of one processor's record with one key."""

    processor: str
    key: dict[str, str]
    sightings: list[Sighting] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"processor": self.processor, "key": self.key,
                "sightings": [s.as_dict() for s in self.sightings]}


@dataclass
class Findings:
    """The answer of :func:`find`: records with sightings, and files that could not be read."""

    found: list[Whereabouts] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<file>: <reason>"


class KeyMatcher:
    """Does a row hold this key? Built once per processor and key."""

    def __init__(self, schema: ProcessorSchema, texts: Sequence[str]) -> None:
        self.schema = schema
        self.fields = schema.key
        self.types = [schema.fields[name] for name in schema.key]
        self.wanted = [text.strip() for text in texts]
        self.canonical = [_canonical(t, w) for t, w in zip(self.types, self.wanted, strict=True)]

    def positions(self, header: Sequence[str]) -> list[int] | None:
        """Where the key's columns are in *header*; None if one is missing."""
        index: dict[str, int] = {}
        for n, name in enumerate(header):  # the first column feeding a field
            index.setdefault(self.schema.field_of(name) or "", n)
        found = [index.get(name) for name in self.fields]
        return None if any(n is None for n in found) else found  # type: ignore[return-value]

    def matches(self, cells: Sequence[str], positions: Sequence[int]) -> bool:
        for position, wanted, canonical, ftype in zip(positions, self.wanted, self.canonical,
                                                      self.types, strict=True):
            cell = cells[position].strip() if position < len(cells) else ""
            if cell == wanted:
                continue
            if canonical is None or ftype.name == "str" or _canonical(ftype, cell) != canonical:
                return False
        return True

    def stored(self) -> tuple[object, ...] | None:
        """The key as the store holds it; None when a part is no valid value of its field."""
        try:
            return tuple(to_db(t, t.parse(w)) for t, w in zip(self.types, self.wanted,
                                                              strict=True))
        except ValueError:
            return None


def _canonical(ftype: FieldType, text: str) -> str | None:
    try:
        return ftype.format(ftype.parse(text))
    except ValueError:
        return None


def candidates(schemas: Mapping[str, ProcessorSchema], parts: int,
               processor: str | None) -> list[ProcessorSchema]:
    """The processors a key of *parts* parts can belong to (FindError if *processor* cannot)."""
    if processor is not None:
        if processor not in schemas:
            known = ", ".join(sorted(schemas)) or "none"
            raise FindError(f"unknown processor {processor!r} (known: {known})")
        schema = schemas[processor]
        if len(schema.key) != parts:
            raise FindError(f"{processor}: its key has {len(schema.key)} field(s) "
                            f"({', '.join(schema.key)}); {parts} given")
        return [schema]
    found = [s for s in schemas.values() if len(s.key) == parts]
    if not found:
        raise FindError(f"no processor has a key of {parts} field(s)")
    return found


def routed(router: Router, name: str) -> str | None:
    """The processor a file of this name belongs to, or None."""
    try:
        return router.route(_MARKERS.sub("", name))[0]
    except UnroutedError:
        return None


def find(storage: str, database: str, schemas: Mapping[str, ProcessorSchema], router: Router,
         key: Sequence[str], processor: str | None = None,
         max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Findings:
    """Everywhere the record with *key* (one text per key field) stands; see the module."""
    if not key or not all(part.strip() for part in key):
        raise FindError("give the key: one value per key field")
    chosen = candidates(schemas, len(key), processor)
    findings = Findings()
    matchers = {s.name: KeyMatcher(s, key) for s in chosen}
    for schema in chosen:
        found = Whereabouts(schema.name, dict(zip(schema.key, key, strict=True)))
        matcher = matchers[schema.name]
        stored = matcher.stored()
        record = read_record(database, schema, stored) if stored is not None else None
        if record is not None:
            found.sightings.append(Sighting("store", jobs=[record.job] if record.job else []))
        scan = _Scan(storage, matcher, findings.skipped, max_line_bytes)
        for path, jobs in _finished_files(storage, database, schema.name):
            kind = "discarded" if path.endswith(discarding.SUFFIX) else "finished"
            found.sightings += scan(path, kind, jobs)
        found.sightings += _loose_files(storage, router, schema.name, scan)
        for kind in (layout.DELETED, layout.GRADUATED):
            found.sightings += scan(os.path.join(storage, kind, f"{schema.name}.csv"), kind)
        found.sightings.sort(key=lambda s: KINDS.index(s.kind))
        if found.sightings:
            findings.found.append(found)
    return findings


def _finished_files(storage: str, database: str, processor: str,
                    ) -> Iterator[tuple[str, list[Job]]]:
    """The finished and discarded files of *processor*'s imports, with the jobs behind each.

    A job of source ``x.csv`` (or of its pending file ``x.<mode>.pending.csv``)
    in mode ``m`` wrote its rows to ``x.m.finished.csv``; rows given up join
    ``x.m.discarded.csv`` (whose rows say who gave them up, not which job).
    """
    files: dict[str, list[Job]] = {}
    for job in read_jobs(database, processor):
        # Today's name, and the one outputs had before a mode in the name was not
        # repeated (x.update.update.finished.csv).
        stems = {distribution.output_stem(job.source, job.mode),
                 os.path.splitext(job.source)[0]}
        for stem in sorted(stems):
            # Rows given up are no job's; a job whose every row failed wrote none.
            files.setdefault(f"{stem}.{job.mode}{discarding.SUFFIX}", [])
            if job.ok:
                files.setdefault(f"{stem}.{job.mode}.finished.csv", []).append(job)
    folder = os.path.join(storage, layout.FINISHED)
    for name in sorted(files):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            yield path, files[name]


def _loose_files(storage: str, router: Router, processor: str, scan: _Scan,
                 ) -> Iterator[Sighting]:
    """Rows in the root's CSV files (pending or waiting) and in ``unfinished/``."""
    for folder in ("pending", layout.UNFINISHED):
        for entry in view.iter_files(storage, folder):
            if routed(router, entry.name) != processor:
                continue
            kind = folder if folder == layout.UNFINISHED else None
            yield from scan(entry.context, kind)


class _Scan:
    """Rows of one file holding the key, as sightings."""

    def __init__(self, storage: str, matcher: KeyMatcher, skipped: list[str],
                 max_line_bytes: int) -> None:
        self.storage, self.matcher, self.skipped = storage, matcher, skipped
        self.max_line_bytes = max_line_bytes

    def __call__(self, path: str, kind: str | None, jobs: Sequence[Job] = ()) -> list[Sighting]:
        rel = os.path.relpath(path, self.storage)
        found: list[Sighting] = []
        try:
            with CSVSource(path, self.max_line_bytes) as source:
                header = source.header
                positions = self.matcher.positions(header)
                if positions is None:
                    return []
                errors = _position(header, ERRORS_COLUMN)
                by = _position(header, discarding.BY_COLUMN)
                at = _position(header, discarding.AT_COLUMN)
                what = kind or ("pending" if errors is not None else "waiting")
                for row in source.rows():
                    if self.matcher.matches(row.cells, positions):
                        found.append(Sighting(
                            what, rel, row.line, None if errors is None else
                            pending_reason(row.cells, len(header), errors), list(jobs),
                            _cell(row.cells, by), _cell(row.cells, at)))
        except FileNotFoundError:
            return []
        except (FatalCSVError, fs.PlantedLinkError, OSError) as error:
            self.skipped.append(f"{rel}: {error}")
            return []
        return found


def _position(header: Sequence[str], name: str) -> int | None:
    return header.index(name) if name in header else None


def _cell(cells: Sequence[str], position: int | None) -> str | None:
    if position is None or position >= len(cells):
        return None
    return cells[position]
