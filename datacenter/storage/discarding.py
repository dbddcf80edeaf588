"""Giving up a pending file: its rows kept in a file of their own, its chain closed.

Some failed rows can never be imported (a student who never enrolled, a
department of a faculty that was closed). ``datacenter discard NAME`` gives
up the pending file ``NAME`` = ``x.<mode>.pending.csv`` at the root, in one
journal group (all of it happens, or none, across a crash):

* its rows, each with who discarded it when (``--DISCARDED-BY--``,
  ``--DISCARDED-AT--``, the first two columns) and its reason (``--ERRORS--``), join
  ``finished/x.<mode>.discarded.csv`` beside the chain's finished rows
  ``finished/x.<mode>.finished.csv`` (a second discard of the same name
  adds its rows to it, with the finished files' merge rules);
* the chain's source ``unfinished/x.csv`` moves to ``finished/x.csv``, and
  with it the same-name sources that waited beside it (``x.job<N>.csv``):
  no row of them is pending any more, so they count as done, and
  ``unfinished/`` keeps only sources with rows still waiting. A name
  already taken in ``finished/`` (a later ``x.csv`` that imported fully) is
  never replaced: the chain's source becomes ``finished/x.job<N>.csv``, N
  the job that filed it into ``unfinished/``. The moves are the ones a
  chain that succeeds makes, so a folder mounted from another disk is no
  obstacle;
* the pending file is removed (the very file that was read: a file put in
  its place meanwhile stays).

``finished/`` then tells the whole story of ``x.csv``: the source, the rows
imported, the rows given up and why.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

from datacenter.errors import DataCenterError
from datacenter.storage import csvmerge, distribution, fs, layout, links
from datacenter.storage.identity import FileIdentity
from datacenter.storage.journal import Group
from datacenter.storage.steps import Unlink

BY_COLUMN = "--DISCARDED-BY--"
AT_COLUMN = "--DISCARDED-AT--"
SUFFIX = ".discarded.csv"


class DiscardError(DataCenterError, ValueError):
    """The file cannot be discarded; nothing changed."""


@dataclass(frozen=True)
class Discarded:
    """What one discard did (paths relative to the storage)."""

    name: str  # the pending file given up
    rows: int
    dest: str  # finished/x.<mode>.discarded.csv (or a name beside it)
    source: str | None  # finished/x.csv, where the chain's source went; None: no chain
    user: str
    at: str  # ISO 8601, with the UTC offset


def target(storage: str, name: str) -> tuple[str, str | None]:
    """``(discarded file, chain source in unfinished/ or None)`` of *name*.

    DiscardError for a name that is no pending file (``x.<mode>.pending.csv``).
    """
    layout.plain_name(name, "pending file name")
    origin = distribution.pending_origin(name)
    if origin is None:
        raise DiscardError(f"{name}: not a pending file; only x.<mode>.pending.csv files at "
                           "the storage's root are discarded")
    mode = origin[1]
    stem = distribution.output_stem(name, mode)
    finished = os.path.join(storage, layout.FINISHED)
    # Two bytes longer than the pending file's name: cut to fit, never refused.
    dest = os.path.join(finished, layout.fitted(finished, stem, f".{mode}{SUFFIX}"))
    return dest, distribution.chain_source(storage, name)


def plan(group: Group, storage: str, name: str, user: str, when: float, job: int = 0,
         ) -> tuple[Discarded, list[str]]:
    """Add every step of discarding pending file *name* to *group*; the warnings to log.

    *job* numbers the name a chain's source gets when its own is taken in
    ``finished/`` (the job that filed it into ``unfinished/``).
    """
    path = os.path.join(storage, name)
    before = FileIdentity.at(path)
    if before is None or not os.path.isfile(path):
        raise DiscardError(f"{name}: no such pending file at the storage's root")
    dest, source = target(storage, name)
    dest, warning = links.steer(dest, SUFFIX, "the discarded rows")
    at = dt.datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")
    staged = group.staged_path("discarded.csv")
    rows = _stage(path, staged, user, at)
    if FileIdentity.at(path) != before:
        raise DiscardError(f"{name}: changed while it was being discarded; nothing was "
                           "discarded, try again")
    csvmerge.plan_merge(group, staged, dest, "discarded-rows.csv")
    moves = [] if source is None else distribution.closing_moves(storage, source, job)
    distribution.plan_moves(group, storage, moves)
    group.add(Unlink.if_unchanged(path))
    done = Discarded(name, rows, os.path.relpath(dest, storage),
                     os.path.relpath(moves[0][1], storage) if moves else None, user, at)
    return done, [warning] if warning else []


def _stage(path: str, staged: str, user: str, at: str) -> int:
    """Write the rows of *path*, with who and when, to *staged*; returns how many."""
    count = 0
    with fs.new_file(staged, sync=False) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        rows = _rows(path)
        header = next(rows, None)
        if header is None:
            raise DiscardError(f"{os.path.basename(path)}: empty, no header line")
        # Who and when go first: a row longer than its header (kept whole in a pending
        # file) cannot push them out of their columns. A file discarded before has them.
        known = BY_COLUMN in header and AT_COLUMN in header
        if not known:
            header[:0] = [BY_COLUMN, AT_COLUMN]
        by, when = header.index(BY_COLUMN), header.index(AT_COLUMN)
        writer.writerow(header)
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if not known:
                row[:0] = ["", ""]
            row += [""] * (max(by, when) + 1 - len(row))
            row[by], row[when] = user, at
            writer.writerow(row)
            count += 1
        text.flush()
        text.detach()
    return count


def _rows(path: str) -> Iterator[list[str]]:
    binary = fs.open_read(path)  # the storage's own file: never through a link
    with io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape",
                          newline="") as handle:
        for n, row in enumerate(csv.reader(handle)):
            if n == 0 and row and row[0].startswith("\ufeff"):
                row[0] = row[0][1:]
            yield row
