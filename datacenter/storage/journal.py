"""The intent journal: all-or-nothing groups of filesystem changes.

A group is planned as a list of *steps*, each of which can be applied any
number of times with the same result (idempotent). Its life:

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
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from datacenter.errors import DataCenterError
from datacenter.storage import fs, layout

Step = dict[str, Any]
_log = logging.getLogger(__name__)


class JournalError(DataCenterError, RuntimeError):
    """An intent could not be read or applied; it is kept for a person to see."""


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

    def add(self, op: str, **args: Any) -> None:
        self.steps.append({"op": op, **args})

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



class Journal:
    """The journal of one storage, in ``<storage>/.datacenter/``."""

    def __init__(self, storage: str) -> None:
        self.root = storage
        self.dir = layout.state_path(storage, layout.JOURNAL)
        self.staging_dir = layout.state_path(storage, layout.STAGING)

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
        # before the intent that refers to them.
        for journal in (self, *group.mirrors):
            staging = journal.staging_for(group.id)
            if os.path.isdir(staging):
                fs.fsync_dir(staging)
        self.ensure_dirs()
        payload = {"id": group.id, "steps": group.steps, "roots": group.roots}
        data = json.dumps(payload, indent=1).encode()
        # Mirrors first, the primary copy last: writing the primary copy is
        # the commit point. A mirror's copy lets the other root finish a
        # committed group; one without its primary never committed (the
        # primary is also forgotten last), and recovery discards it.
        for mirror in group.mirrors:
            mirror.ensure_dirs()
            fs.atomic_write(mirror._intent_path(group.id), data)
        fs.atomic_write(self._intent_path(group.id), data)

    def _intent_path(self, group_id: str) -> str:
        return os.path.join(self.dir, f"{group_id}.json")

    def apply(
        self,
        group_id: str,
        steps: list[Step],
        roots: Iterable[str],
        on_applied: Callable[[], None] | None = None,
    ) -> None:
        touched: set[str] = set()
        for step in steps:
            touched.update(_APPLY[step["op"]](step))
        for directory in sorted(touched):
            if os.path.isdir(directory):
                fs.fsync_dir(directory)
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
            roots = intent.get("roots") or [self.root]
            if self.root not in roots:
                raise JournalError(
                    f"{self._intent_path(group_id)}: an interrupted operation of the storage "
                    f"at {roots[0]}; the folder was moved by hand since. Move it back there "
                    "and open it, so the operation can be finished")
            if roots[0] != self.root and not os.path.exists(
                    Journal(roots[0])._intent_path(group_id)):
                fs.unlink(self._intent_path(group_id), missing_ok=True)  # never committed
                continue
            self.apply(group_id, intent["steps"], roots)
            rolled += 1
            _log.info("recovered interrupted group %s", group_id)
        self._drop_uncommitted()
        return rolled

    def _read(self, group_id: str) -> dict[str, Any] | None:
        path = self._intent_path(group_id)
        try:
            with open(path, "rb") as handle:
                intent = json.load(handle)
        except FileNotFoundError:
            return None  # a mirror finished it meanwhile
        except (OSError, ValueError) as exc:
            raise JournalError(f"{path}: unreadable intent: {exc}") from exc
        if not isinstance(intent, dict):
            raise JournalError(f"{path}: unreadable intent: not an object")
        return intent

    def _drop_uncommitted(self) -> None:
        committed = set(self.pending_intents())
        for folder in (self.dir, self.staging_dir):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if folder == self.dir and name.endswith(".json"):
                    continue
                if folder == self.staging_dir and name in committed:
                    continue
                fs.rmtree(os.path.join(folder, name))


# -- the steps ---------------------------------------------------------------
# Each takes its step and returns the folders whose entries it changed.


def _parent(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _same(path: str, ident: list[int] | None) -> bool:
    """Does *path* still name the inode the plan saw? (None: anything there.)"""
    current = fs.identity(path)
    return current is not None and (ident is None or current == ident)


def _apply_replace(step: Step) -> set[str]:
    """Staged bytes take the destination's name."""
    if os.path.lexists(step["src"]):
        fs.replace(step["src"], step["dst"], sync=False)
    return {_parent(step["dst"])}  # the staging side is removed afterwards anyway


def _apply_append(step: Step) -> set[str]:
    """The destination's first ``size`` bytes, then the staged bytes."""
    fs.append_file(step["dst"], step["src"], step["size"])
    return set()  # append_file fsyncs the file; its name did not change


def _apply_unlink(step: Step) -> set[str]:
    if _same(step["path"], step.get("ident")):
        fs.unlink(step["path"], sync=False)
    return {_parent(step["path"])}


def _apply_move(step: Step) -> set[str]:
    """Move an entry, with a crash-proof path across filesystems.

    Across filesystems the bytes are copied to ``tmp`` beside the
    destination; only when that copy is complete is the source renamed to
    ``trash`` beside itself. So when ``trash`` exists, ``tmp`` (if still
    there) is complete and can be renamed into place; a ``tmp`` without
    ``trash`` is a partial copy from an attempt that failed, and a later
    attempt that moved the source by a plain rename leaves it behind.
    """
    src, dst, tmp, trash = step["src"], step["dst"], step["tmp"], step["trash"]
    touched = {_parent(src), _parent(dst)}
    if _same(src, step.get("ident")):
        try:
            _put_in_place(src, dst, step)
            return touched
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        fs.makedirs(_parent(tmp))
        fs.makedirs(_parent(trash))
        fs.rmtree(tmp)
        fs.copy_tree(src, tmp)  # durable before the source is set aside
        fs.replace(src, trash)
    if os.path.lexists(tmp) and os.path.lexists(trash):
        _put_in_place(tmp, dst, step)
    fs.rmtree(trash)
    if step.get("old"):
        fs.rmtree(step["old"])
    return touched | {_parent(tmp)}


def _put_in_place(src: str, dst: str, step: Step) -> None:
    if fs.identity(src) == fs.identity(dst):
        fs.unlink(src)  # a no-clobber rename was cut between link and unlink
        return
    if (not step.get("overwrite") and _is_empty_dir(dst)
            and stat.S_ISDIR(os.lstat(src).st_mode)):
        fs.rmdir(dst, sync=False)  # an empty folder made meanwhile holds nothing to keep
    if step.get("overwrite") and os.path.lexists(dst):
        dst_is_dir = stat.S_ISDIR(os.lstat(dst).st_mode)
        if dst_is_dir or stat.S_ISDIR(os.lstat(src).st_mode):
            # A folder cannot be renamed over; set the old one aside first,
            # on the destination's filesystem, so a crash loses neither.
            fs.makedirs(_parent(step["old"]))
            fs.replace(dst, step["old"])
    if step.get("overwrite"):
        fs.replace(src, dst, sync=False)
    else:
        fs.rename_noreplace(src, dst, sync=False)


def _is_empty_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode) and not os.listdir(path)
    except FileNotFoundError:
        return False


def _apply_cleanup(step: Step) -> set[str]:
    """Remove consumed files, then their folder if nothing else is in it.

    Not fsynced: these are leftovers of the caller's scratch space, and
    one that reappears after a power cut does no harm.
    """
    for path in step.get("files", []):
        if os.path.lexists(path):
            fs.unlink(path, sync=False)
    folder = step.get("folder")
    if folder and os.path.isdir(folder):
        if os.listdir(folder):
            _log.warning("not removing %s: it holds files this call did not move",
                         folder)
        else:
            fs.rmdir(folder, sync=False)
    return set()


def _apply_rmdir_empty(step: Step) -> set[str]:
    """Remove folders emptied by a move (deepest first), if they are empty."""
    for folder in step["folders"]:
        if os.path.isdir(folder) and not os.listdir(folder):
            fs.rmdir(folder)
    return set()


_APPLY = {
    "replace": _apply_replace,
    "append": _apply_append,
    "unlink": _apply_unlink,
    "move": _apply_move,
    "cleanup": _apply_cleanup,
    "rmdir_empty": _apply_rmdir_empty,
}
