"""The intent journal: all-or-nothing groups of filesystem changes.

A group is planned as a list of *steps* (:mod:`datacenter.storage.steps`),
each of which can be applied any number of times with the same result
(idempotent). Its life, which :func:`run_group` drives:

1. stage every new byte beside its destination (in the group's staging
   folder under ``.datacenter/staging/``), fsynced;
2. :meth:`Journal.commit` writes the steps to ``.datacenter/journal/`` under
   a temporary name, fsyncs it, renames it to ``<id>.json`` and fsyncs the
   folder: that rename is the commit point;
3. the steps are applied and the touched folders fsynced;
4. the intent is forgotten (unlinked), then the staging folder removed.

A crash before 2 leaves staging garbage, which recovery removes: the group
never happened. A crash after 2 leaves a committed intent, which recovery
applies again from the start: the group happens exactly once. Recovery
itself only applies steps and forgets intents, so it may be killed at any
point and run again.

A committed intent that can *never* be applied is *set aside* for a person
instead (:mod:`datacenter.storage.setaside` keeps them), and recovery goes
on with the other intents; a relocation's intent never is.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from datacenter.errors import DataCenterError
from datacenter.storage import fs, layout, setaside
from datacenter.storage.identity import inode_at
from datacenter.storage.setaside import FAILED as FAILED
from datacenter.storage.setaside import CannotApplyError as CannotApplyError
from datacenter.storage.setaside import SetAside as SetAside
from datacenter.storage.setaside import SetAsideError as SetAsideError
from datacenter.storage.steps import JournalError as JournalError
from datacenter.storage.steps import Move, Step, step_from_json

_log = logging.getLogger(__name__)


class UnfinishedError(DataCenterError, OSError):
    """A group committed but could not be applied yet; recovery will finish it.

    For the caller the change has happened: it is durable and will be
    completed when the storage is next opened (or ``datacenter recover``).
    """

    @classmethod
    def wrapping(cls, error: BaseException) -> UnfinishedError:
        errno_ = getattr(error, "errno", None)
        reason = getattr(error, "strerror", None) or str(error)
        return cls(errno_ or 0, f"{reason}; the change is committed and will be finished "
                   "when the storage is next opened (datacenter recover)",
                   getattr(error, "filename", None))


@dataclass
class Group:
    """A planned group: its id, staging folder and steps, not yet committed."""

    journal: Journal
    id: str
    steps: list[Step] = field(default_factory=list)
    #: Other journals that get a copy of the intent (a relocation's target).
    mirrors: list[Journal] = field(default_factory=list)
    applied: bool = False
    _staging_ready: bool = field(default=False, repr=False)

    @property
    def staging(self) -> str:
        return self.journal.staging_for(self.id)

    def staged_path(self, name: str) -> str:
        """A path in the staging folder (created on first use)."""
        if not self._staging_ready:
            self.journal.ensure_dirs()
            fs.mkdir(self.staging)
            self._staging_ready = True
        return os.path.join(self.staging, name)

    def stage_file(self, src: str, name: str) -> str:
        """Stage the bytes of file *src* under *name*; returns the staged path.

        A hard link when *src* is on the same filesystem (constant time, and
        *src* stays untouched until the group commits), else a copy.
        """
        staged = self.staged_path(name)
        fs.link_or_copy(src, staged, sync=False)
        return staged

    def add(self, step: Step) -> None:
        self.steps.append(step)

    def add_move(self, src: str, dst: str, *, overwrite: bool,
                 dst_side: Group | None = None, trash_beside_src: bool = False,
                 tmp_beside_dst: bool = False) -> Move:
        """Add the step moving *src* to *dst*; returns it.

        What a move across filesystems copies (``tmp``) and a folder it
        overwrites (``old``) are staged on the destination's filesystem: in
        *dst_side* (a group of the destination root's journal), by default
        this group, or, for ``tmp``, beside the destination under a hidden
        temporary name (*tmp_beside_dst*: a folder of the storage may be a
        filesystem of its own). The source is set aside (``trash``) on its
        own filesystem: in this group's staging, or beside itself
        (*trash_beside_src*: it lies outside the storage, or in a folder of
        the storage that may be a filesystem of its own).
        """
        n = len(self.steps)
        near_dst = dst_side or self
        if trash_beside_src:
            trash = fs.temp_name(os.path.dirname(os.path.abspath(src)), f"-{self.id}.trash")
        else:
            trash = self.staged_path(f"trash-{n}")
        if tmp_beside_dst:
            tmp = fs.temp_name(os.path.dirname(os.path.abspath(dst)), f"-{self.id}.tmp")
        else:
            tmp = near_dst.staged_path(f"tmp-{n}")
        step = Move(src=src, dst=dst, tmp=tmp, trash=trash,
                    ident=inode_at(src), overwrite=overwrite,
                    old=near_dst.staged_path(f"old-{n}"))
        self.add(step)
        return step

    def run(self) -> None:
        """Commit the group, apply it and forget it."""
        self.journal.commit(self)
        self.journal.apply(self.id, self.steps, self.roots, on_applied=self._mark_applied)

    @property
    def roots(self) -> list[str]:
        """The roots whose journals hold this group's intent."""
        return [self.journal.root, *(m.root for m in self.mirrors)]

    def _mark_applied(self) -> None:
        self.applied = True

    @property
    def committed(self) -> bool:
        """Has the commit point passed (the primary copy written), or was it applied?"""
        return self.applied or os.path.exists(self.journal._intent_path(self.id))


@dataclass(frozen=True)
class Intent:
    """A committed group as its intent file holds it: every step is read before any applies."""

    steps: list[Step]
    #: The roots whose journals hold a copy, the primary first (none: this one only).
    roots: list[str]

    @classmethod
    def from_json(cls, data: Any, path: str) -> Intent:
        """JournalError naming *path* unless *data* is an intent as ``commit`` writes it."""
        if not isinstance(data, dict):
            raise JournalError(f"{path}: malformed intent: not a JSON object")
        steps, roots = data.get("steps"), data.get("roots") or []
        if not isinstance(steps, list):
            raise JournalError(f"{path}: malformed intent: 'steps' is not a list")
        if not (isinstance(roots, list) and all(isinstance(r, str) for r in roots)):
            raise JournalError(f"{path}: malformed intent: 'roots' is not a list of folders")
        return cls([step_from_json(step, path) for step in steps], roots)


class Journal:
    """The journal of one storage, in ``<storage>/.datacenter/``."""

    def __init__(self, storage: str, report: Callable[[str], object] | None = None) -> None:
        self.root = storage
        self.dir = layout.state_path(storage, layout.JOURNAL)
        self.staging_dir = layout.state_path(storage, layout.STAGING)
        self.failed_dir = os.path.join(self.dir, FAILED)
        #: Told (at error level) when an intent is set aside.
        self.report = report or _log.error

    def ensure_dirs(self) -> None:
        fs.makedirs(self.dir)
        fs.makedirs(self.staging_dir)

    def staging_for(self, group_id: str) -> str:
        return os.path.join(self.staging_dir, group_id)

    def new_group(self) -> Group:
        # Sortable by time so recovery replays groups in commit order.
        group_id = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        return Group(self, group_id)

    def commit(self, group: Group) -> None:
        # Staged files were written without their folder's fsync: one
        # fsync of each staging folder makes all their names durable
        # before the intent that refers to them (with the intent's own
        # bytes, together, when there is no mirror to write first).
        staging = [s for s in (j.staging_for(group.id) for j in (self, *group.mirrors))
                   if os.path.isdir(s)]
        if group.mirrors:
            for folder in staging:
                fs.fsync_dir(folder)
            staging = []
        self.ensure_dirs()
        payload = {"id": group.id, "steps": [step.to_json() for step in group.steps],
                   "roots": group.roots}
        # Compact: an indented dump goes through json's pure-Python encoder,
        # slow for the intent of a batch of many files.
        data = json.dumps(payload, separators=(",", ":")).encode()
        # Mirrors first, the primary copy last: writing the primary copy is
        # the commit point. A mirror's copy lets the other root finish a
        # committed group; one without its primary never committed (the
        # primary is also forgotten last), and recovery discards it.
        for mirror in group.mirrors:
            mirror.ensure_dirs()
            fs.atomic_write(mirror._intent_path(group.id), data)
        fs.atomic_write(self._intent_path(group.id), data, with_folders=staging)

    def _intent_path(self, group_id: str) -> str:
        return os.path.join(self.dir, f"{group_id}.json")

    def apply(
        self,
        group_id: str,
        steps: Sequence[Step],
        roots: Iterable[str],
        on_applied: Callable[[], None] | None = None,
    ) -> None:
        touched: set[str] = set()
        for n, step in enumerate(steps):
            try:
                touched.update(step.apply())
            except OSError as error:
                if error.errno in setaside.CANNOT_APPLY and not isinstance(error, CannotApplyError):
                    raise CannotApplyError(n, error) from error
                raise
        # Each folder once, all together (fs.sync_all: one flush for them all).
        fs.sync_all((), [d for d in sorted(touched) if os.path.isdir(d)])
        if on_applied is not None:
            on_applied()
        journals = [Journal(root) for root in roots] or [self]
        for journal in reversed(journals):  # mirrors first, the primary last
            fs.unlink(journal._intent_path(group_id), missing_ok=True)
        for journal in journals:
            # Not fsynced: staging that reappears after a power cut has no
            # intent any more, and recovery sweeps it.
            fs.rmtree(journal.staging_for(group_id), sync=False)

    def pending_intents(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json"))

    def recover(self) -> int:
        """Finish every committed group, drop every uncommitted one.

        Returns the number of groups rolled forward.
        """
        rolled = 0
        for group_id in self.pending_intents():
            intent = self._read(group_id)
            if intent is None:
                continue
            roots = intent.roots or [self.root]
            if self.root not in roots:
                raise JournalError(
                    f"{self._intent_path(group_id)}: an interrupted operation of the storage "
                    f"at {roots[0]}; the folder was moved by hand since. Move it back there "
                    "and open it, so the operation can be finished")
            if roots[0] != self.root and not os.path.exists(
                    Journal(roots[0])._intent_path(group_id)):
                fs.unlink(self._intent_path(group_id), missing_ok=True)  # never committed
                continue
            try:
                self.apply(group_id, intent.steps, roots)
            except CannotApplyError as error:
                if len(roots) > 1:
                    raise  # a relocation: set aside, it would split the storage
                self._set_aside(group_id, len(intent.steps), error)
                continue
            rolled += 1
            _log.info("recovered interrupted group %s", group_id)
        self._drop_uncommitted()
        return rolled

    def _set_aside(self, group_id: str, steps: int, error: CannotApplyError) -> None:
        """Set a committed intent that cannot be applied aside, and report it."""
        reason, path = setaside.put_aside(self.failed_dir, self._intent_path(group_id),
                                          group_id, steps, error)
        self.report(f"set aside: an interrupted operation cannot be finished (step "
                    f"{error.step + 1} of {steps}: {reason}); it waits for a person as "
                    f"{os.path.relpath(path, self.root)}")

    def set_aside(self) -> list[SetAside]:
        """The intents set aside, oldest first (see :func:`.setaside.listing`)."""
        return setaside.listing(self.failed_dir)

    def held_inputs(self) -> dict[str, SetAside]:
        """Files that set-aside intents hold: they must not be planned anew
        (see :func:`.setaside.held_inputs`)."""
        return setaside.held_inputs(self.set_aside(), _intent_steps)

    def _read(self, group_id: str) -> Intent | None:
        path = self._intent_path(group_id)
        try:
            with open(path, "rb") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return None  # a mirror finished it meanwhile
        except (OSError, ValueError) as exc:
            raise JournalError(f"{path}: unreadable intent: {exc}") from exc
        return Intent.from_json(data, path)

    def _drop_uncommitted(self) -> None:
        committed = set(self.pending_intents()) | {e.id for e in self.set_aside()}
        setaside.sweep_notes(self.failed_dir)  # a note cut short by a crash
        for folder in (self.dir, self.staging_dir):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if folder == self.dir and (name.endswith(".json") or name == FAILED):
                    continue
                if folder == self.staging_dir and name in committed:
                    continue
                fs.rmtree(os.path.join(folder, name))


def _intent_steps(path: str) -> list[Step]:
    """The steps of the intent file at *path*."""
    with open(path, "rb") as handle:
        return Intent.from_json(json.load(handle), path).steps


def run_group(journal: Journal, planner: Callable[[Group], object], *others: Journal,
              log: Callable[[str], object] = _log.warning) -> None:
    """Plan, commit and apply one group of *journal*; the caller holds the locks.

    *others* get a copy of the intent (a relocation's new root). Their
    interrupted groups are finished first. If anything fails, recovery runs
    at once: an uncommitted group is dropped and the error raised (nothing
    changed); a committed one is finished, and then the call has succeeded
    after all (*log* is told). Only when that too fails is the error raised,
    as UnfinishedError: the change is committed and will be finished when
    the storage is next opened.
    """
    journals = [journal, *others]
    for each in journals:
        if each.pending_intents():
            each.recover()
    group = journal.new_group()
    group.mirrors.extend(others)
    try:
        planner(group)
        group.run()
    except Exception as error:
        if not _finished_by_recovery(group, journals, error):
            raise
        log(f"finished after an error: {error}")


def _finished_by_recovery(group: Group, journals: list[Journal], error: Exception) -> bool:
    """Recover after *error*: was *group* committed, and so finished now?

    SetAsideError when recovery had to set it aside: it cannot be finished.
    """
    committed = group.committed
    try:
        for journal in journals:
            journal.recover()
    except Exception:
        if committed:
            raise UnfinishedError.wrapping(error) from error
        raise error from None
    aside = next((e for e in group.journal.set_aside() if e.id == group.id), None)
    if aside is not None:
        raise SetAsideError(f"{aside.reason}; the change is committed, but cannot be "
                            f"finished: it waits for a person as {aside.path}") from error
    return committed
