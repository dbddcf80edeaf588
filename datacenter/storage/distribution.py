"""Where the results of an import go: Kofa's ``distProcessedFiles``, as a journal group.

Importing ``x.csv`` in mode ``create`` yields ``finished/x.create.finished.csv``
(the imported rows, appended to earlier ones) and, if rows failed,
``x.create.pending.csv`` at the root. The source goes to ``finished/`` or
``unfinished/``. A pending file imported while ``unfinished/x.csv`` exists
continues that chain: when it finally succeeds, ``unfinished/x.csv`` moves
to ``finished/`` and the pending file disappears. A mode the name says
already is never repeated: ``x.update.csv`` yields ``x.update.pending.csv``
(whose chain is ``unfinished/x.update.csv``), and a pending file dropped with
no chain in ``unfinished/`` keeps its name for its own failed rows.

A source is never filed over an earlier one of the same name when the
importer files it (the request names its job): the first ``x.csv`` keeps
its name, a later one becomes ``x.job<N>.csv`` (N: the job that filed it),
in ``finished/`` as in ``unfinished/``; one that waited in ``unfinished/``
beside an open chain joins ``finished/`` with the chain. Kofa's
``distProcessedFiles`` (no job) still replaces, as Kofa did.

This module only *plans*: it stages bytes and adds steps to a
:class:`~datacenter.journal.Group`. Nothing visible changes until the group
is committed, and then all of it changes, even across a crash.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from datacenter.config import MODES
from datacenter.errors import DataCenterError
from datacenter.storage import csvmerge, layout, links
from datacenter.storage.journal import Group
from datacenter.storage.steps import Cleanup, Replace, Unlink

_PENDING_SUFFIX = ".pending.csv"


@dataclass(frozen=True)
class Destinations:
    """The names one distribution uses, derived from the source's name."""

    basename: str  # the original source's name (x.csv), also for a pending chain
    chain: bool  # the source is a pending file continuing unfinished/x.csv
    finished: str  # finished/x.<mode>.finished.csv
    pending: str  # x.<mode>.pending.csv at the root (the source itself in a chain)
    source_finished: str  # finished/x.csv
    source_unfinished: str  # unfinished/x.csv


def pending_origin(name: str) -> tuple[str, str] | None:
    """``x.create.pending.csv`` -> ``("x.csv", "create")``; None for other names."""
    if not name.lower().endswith(_PENDING_SUFFIX):
        return None
    base, _, mode = name[: -len(_PENDING_SUFFIX)].rpartition(".")
    return (base + ".csv", mode) if base else None


class OutputNameError(DataCenterError, ValueError):
    """A file's outputs would need names longer than the filesystem allows."""


def kept_aside(storage: str, source: str, job: int) -> str:
    """Where job *job*'s failed rows of *source* go when a person edited that pending
    file meanwhile: ``unfinished/<stem>.job<N>.csv``, beside the chain, never over it
    (the stem cut short if the name would be too long)."""
    stem = source[:-4] if source.lower().endswith(".csv") else source
    folder = os.path.join(storage, layout.UNFINISHED)
    return os.path.join(folder, layout.fitted(folder, stem, f".job{job}.csv"))


def check_names(storage: str, source_path: str, mode: str,
                outputs: Iterable[str] | None = None) -> Destinations:
    """The destinations of *source_path*, after OutputNameError if one cannot be named.

    *outputs* are the paths to check (default: every name an import of it
    may need: its finished and pending files, and its own places in
    ``finished/`` and ``unfinished/``). Checked against the limit of each
    folder's filesystem, before anything is staged or committed.
    """
    names = destinations(storage, source_path, mode)
    if outputs is None:
        outputs = (names.finished, names.pending, names.source_finished,
                   names.source_unfinished)
    problems = [why for why in map(layout.overlong, outputs) if why is not None]
    if problems:
        raise OutputNameError(f"{os.path.basename(source_path)}: name too long for the "
                              f"outputs it needs: {'; '.join(problems)}")
    return names


def chain_sources(name: str) -> list[str]:
    """The names the source of pending file *name*'s chain may have in ``unfinished/``.

    ``x.update.pending.csv`` -> ``["x.update.csv", "x.csv"]``: the source of a
    name that said its mode (whose pending file does not repeat it), then the
    plain one. Empty for a name that is no pending file.
    """
    origin = pending_origin(name)
    if origin is None:
        return []
    original, mode = origin
    return [f"{original[:-4]}.{mode}.csv", original]


def chain_source(storage: str, name: str) -> str | None:
    """``unfinished/<source>`` whose chain pending file *name* continues, or None."""
    unfinished = os.path.join(storage, layout.UNFINISHED)
    return next((os.path.join(unfinished, n) for n in chain_sources(name)
                 if os.path.isfile(os.path.join(unfinished, n))), None)


def output_stem(name: str, mode: str) -> str:
    """The stem of the outputs of source *name* imported in *mode*.

    A mode the name says already is not repeated (``x.update.csv`` ->
    ``x``: ``x.update.pending.csv``, ``finished/x.update.finished.csv``),
    and a pending file stands for its original (``x.update.pending.csv`` -> ``x``).
    """
    origin = pending_origin(name)
    if origin is not None and origin[1] in MODES:
        name = origin[0]
    stem = os.path.splitext(name)[0]
    suffix = f".{mode}"
    if stem.endswith(suffix) and len(stem) > len(suffix):
        stem = stem[: -len(suffix)]
    return stem


def destinations(storage: str, source_path: str, mode: str) -> Destinations:
    """The names importing *source_path* in *mode* uses.

    A pending file continues the chain of its source in ``unfinished/``
    (:func:`chain_source`). One with no chain there (a person dropped it)
    stands for its original: ``x.update.pending.csv`` is filed as
    ``x.csv`` would be, so its own failed rows keep its name and the next
    fix of it continues the chain of ``unfinished/x.csv``.
    """
    basename = pending_name = os.path.basename(source_path)
    chained = chain_source(storage, basename)
    chain = chained is not None
    origin = pending_origin(basename)
    if chained is not None:
        basename = os.path.basename(chained)
    elif origin is not None and origin[1] in MODES:
        basename = origin[0]
    stem, ext = output_stem(basename, mode), os.path.splitext(basename)[1]
    if not chain:
        pending_name = f"{stem}.{mode}.pending{ext}"
    finished = os.path.join(storage, layout.FINISHED)
    unfinished = os.path.join(storage, layout.UNFINISHED)
    return Destinations(
        basename=basename,
        chain=chain,
        finished=os.path.join(finished, f"{stem}.{mode}.finished{ext}"),
        pending=os.path.join(storage, pending_name),
        source_finished=os.path.join(finished, basename),
        source_unfinished=os.path.join(unfinished, basename),
    )


@dataclass(frozen=True)
class Request:
    """One ``distProcessedFiles`` call's arguments (paths absolute)."""

    successful: bool
    source: str
    finished_file: str
    pending_file: str | None
    mode: str = "create"
    move_orig: bool = True
    #: Where the pending rows go instead of ``x.<mode>.pending.csv`` (None: there).
    pending_dest: str | None = None
    #: Where the finished rows go instead of ``finished/x.<mode>.finished.csv``.
    finished_dest: str | None = None
    #: The import (job) filing it: a source whose name is taken in ``finished/``
    #: or ``unfinished/`` is filed as ``<stem>.job<N>.csv`` beside the earlier
    #: one. None (Kofa's ``distProcessedFiles``): it replaces the earlier one.
    job: int | None = None
    #: Keep the folder of the result files once they are consumed (an importer
    #: reuses its empty job folders: see ``Importer``); else a scratch folder goes.
    keep_folder: bool = False

    def check(self, storage: str) -> Destinations:
        """The destinations, after FileNotFoundError for a missing input and
        OutputNameError for an output whose name is too long."""
        for path, what in ((self.finished_file, "finished file"),
                           (self.pending_file, "pending file")):
            if path is not None and not os.path.isfile(path):
                raise FileNotFoundError(f"{what} not found: {path}")
        names = destinations(storage, self.source, self.mode)
        source = names.source_unfinished if names.chain and self.successful else self.source
        if self.move_orig and not os.path.isfile(source):
            raise FileNotFoundError(f"source not found: {self.source}")
        outputs = [names.finished]
        if self.pending_file is not None:
            outputs.append(self.pending_dest or names.pending)
        if self.move_orig:
            outputs += [names.source_finished, names.source_unfinished]
        check_names(storage, self.source, self.mode, outputs)
        return names

    def touches(self, storage: str, names: Destinations) -> set[str]:
        """Every path this distribution reads or changes, or whose state decides it.

        A pending file's chain depends on ``unfinished/<original>``, which an
        earlier distribution in the same batch may be about to create.
        """
        paths = {self.source, names.finished, names.pending, names.source_finished,
                 names.source_unfinished, self.pending_dest or names.pending,
                 self.finished_dest or names.finished}
        paths.update(path for move in source_moves(storage, self, names) for path in move)
        paths |= {os.path.join(storage, folder, name)
                  for name in chain_sources(os.path.basename(self.source))
                  for folder in (layout.FINISHED, layout.UNFINISHED)}
        return paths


def steer_clear(storage: str, request: Request, names: Destinations,
                ) -> tuple[Request, list[str]]:
    """*request* with its rows kept out of a finished or pending file that is a planted link.

    A symlink or a file with a second name there is left alone (its target
    may be outside the storage): the finished rows go to a fresh
    ``finished/x.<mode>.aside.finished.csv`` beside it, the failed rows to
    ``unfinished/x.<mode>.aside.pending.csv``, where a person finds them as
    they find pending rows kept aside. Nothing is lost and nothing is
    imported twice: the rows only change files. Returns the warnings to log.
    """
    warnings = []
    finished, warning = links.steer(request.finished_dest or names.finished,
                                    ".finished.csv", "the imported rows")
    if warning is not None:
        warnings.append(warning)
        request = dataclasses.replace(request, finished_dest=finished)
    pending = request.pending_dest or names.pending
    if request.pending_file is not None and pending != request.source:
        unfinished = os.path.join(storage, layout.UNFINISHED)
        pending, warning = links.steer(pending, ".pending.csv", "the failed rows", unfinished)
        if warning is not None:
            warnings.append(warning)
            request = dataclasses.replace(request, pending_dest=pending)
    return request, warnings


def plan(group: Group, storage: str, request: Request, label: str = ""
         ) -> list[tuple[str, str]]:
    """Stage the results and add every step of one distribution to *group*.

    Several distributions can share a group as long as they touch different
    paths; *label* keeps their staged files apart. Returns where the
    source (and any source waiting beside its chain) goes: ``(from, to)``.
    """
    names = destinations(storage, request.source, request.mode)
    finished = request.finished_dest or names.finished
    csvmerge.plan_merge(group, request.finished_file, finished, f"{label}finished.csv")
    moves = source_moves(storage, request, names)
    pending = request.pending_dest or names.pending
    if pending == request.source:  # a dropped pending file: it is filed first, then replaced
        plan_moves(group, storage, moves)
    if request.pending_file is not None:
        _plan_pending(group, request, pending, label)
    if pending != request.source:
        plan_moves(group, storage, moves)
    if request.move_orig and request.successful and names.chain:
        group.add(Unlink.if_unchanged(request.source))  # the chain's last pending file
    _plan_cleanup(group, storage, [request.finished_file, request.pending_file],
                  request.keep_folder)
    return moves


def _plan_pending(group: Group, request: Request, dest: str, label: str) -> None:
    """The failed rows become the pending file.

    They replace the source when it is that pending file (a chain goes on);
    a pending file of another import already there is joined, not replaced,
    so that no failed row is lost.
    """
    if os.path.exists(dest) and dest != request.source:
        csvmerge.plan_merge(group, request.pending_file or "", dest, f"{label}pending.csv")
    else:
        staged = group.stage_file(request.pending_file or "", f"{label}pending.csv")
        group.add(Replace(src=staged, dst=dest))


def source_moves(storage: str, request: Request, names: Destinations
                 ) -> list[tuple[str, str]]:
    """Where the source goes, as ``(from, to)`` pairs, as the folders are now.

    A chain that succeeds takes ``unfinished/x.csv`` to ``finished/``, and
    with it the same-name sources that waited beside it (``x.job<N>.csv``:
    their failed rows joined the same pending file). With a job, a name
    already taken is not replaced (see :class:`Request`).
    """
    if not request.move_orig:
        return []
    finished = os.path.join(storage, layout.FINISHED)
    if request.successful and names.chain:
        moves = _chain_closing(names.source_unfinished, finished)
    elif request.successful:
        moves = [(request.source, names.source_finished)]
    elif not names.chain:
        moves = [(request.source, names.source_unfinished)]
    else:
        moves = []
    if request.job is None:
        return moves
    taken: set[str] = set()
    return [(src, _free(dst, request.job, taken)) for src, dst in moves]


def closing_moves(storage: str, source_unfinished: str, job: int) -> list[tuple[str, str]]:
    """The moves that close the chain of ``unfinished/x.csv`` (its rows all done or given
    up): it and the same-name sources waiting beside it go to ``finished/``, where a
    name already taken is never replaced (``x.job<job>.csv`` instead)."""
    taken: set[str] = set()
    finished = os.path.join(storage, layout.FINISHED)
    return [(src, _free(dst, job, taken)) for src, dst in _chain_closing(source_unfinished,
                                                                           finished)]


def plan_moves(group: Group, storage: str, moves: list[tuple[str, str]]) -> None:
    """Add the source *moves* (see :func:`source_moves`) to *group*."""
    for src, dst in moves:
        _plan_move(group, storage, src, dst)


def _chain_closing(source_unfinished: str, finished: str) -> list[tuple[str, str]]:
    moves = [(source_unfinished, os.path.join(finished, os.path.basename(source_unfinished)))]
    return moves + [(path, os.path.join(finished, os.path.basename(path)))
                    for path in _waiting_beside(source_unfinished)]


def _waiting_beside(original: str) -> list[str]:
    """The sources ``<stem>.job<N><ext>`` filed beside *original* in its folder."""
    folder, name = os.path.split(original)
    stem, ext = os.path.splitext(name)
    pattern = re.compile(re.escape(stem) + r"\.job[0-9]+" + re.escape(ext))
    try:
        entries = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    return [os.path.join(folder, n) for n in entries if pattern.fullmatch(n)]


def _free(dst: str, job: int, taken: set[str]) -> str:
    """*dst*, or ``<stem>.job<N><ext>`` beside it when that name is taken."""
    folder, name = os.path.split(dst)
    stem, ext = os.path.splitext(name)
    tails = itertools.chain([f".job{job}"], (f".job{job}-{n}" for n in itertools.count(2)))
    path = dst
    while path in taken or os.path.lexists(path):
        path = os.path.join(folder, layout.fitted(folder, stem, next(tails) + ext))
    taken.add(path)
    return path


def _plan_move(group: Group, storage: str, src: str, dst: str) -> None:
    """Move *src* to *dst* (inside *storage*), replacing what is there (like Kofa).

    Should it have to be copied across filesystems (the caller's folder, or
    a folder of the storage mounted from another disk), the copy is made
    beside *dst* and the source set aside beside itself: each on its own
    filesystem, so that both renames stay renames.
    """
    group.add_move(src, dst, overwrite=True, trash_beside_src=True, tmp_beside_dst=True)


def _plan_cleanup(group: Group, storage: str, consumed: list[str | None],
                  keep_folder: bool = False) -> None:
    """Remove the consumed result files, and their folder when it is a scratch one.

    A folder outside the storage (the caller's temporary folder) or a
    work folder in the state folder (``.datacenter/staging/<id>``,
    ``.datacenter/jobs/<id>``) is removed once empty, unless *keep_folder*;
    the storage and anything that contains it never are.
    """
    folders: dict[str, list[str]] = {}
    for path in consumed:
        if path is not None:
            folders.setdefault(os.path.dirname(os.path.abspath(path)), []).append(path)
    for folder, files in folders.items():
        scratch = not layout.is_within(folder, storage) or layout.is_scratch(folder, storage)
        if keep_folder or layout.is_within(storage, folder):
            scratch = False
        group.add(Cleanup(files=tuple(files), folder=folder if scratch else None))
