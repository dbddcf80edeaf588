"""Moving a whole storage to a new root, as one journal group.

Every entry of the old root moves, the hidden state folder's contents
included (but not its journal, staging and locks, which belong to each
root). A folder that exists on both sides is merged: its entries move into
the existing one, and only a name that exists on both sides as a file is a
conflict. Conflicts stay where they are and are reported as paths relative
to the root, unless ``overwrite`` is set.

A move is decided under both roots' operation locks (:func:`check_movable`):
a storage that moved meanwhile, or that a service of another process holds,
is refused with :class:`RelocationRefusedError` and nothing moves.

The intent is committed in the old root's journal and mirrored into the
new root's, so recovery finishes an interrupted relocation whichever of
the two roots is opened next.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from datacenter.errors import DataCenterError
from datacenter.storage import fs, layout, view
from datacenter.storage.journal import Group, Journal, run_group
from datacenter.storage.lock import StorageLock, service_holder
from datacenter.storage.steps import Replace, RmdirEmpty, Unlink


class RelocationRefusedError(DataCenterError, RuntimeError):
    """A move was refused before anything moved; the message says why."""


class StorageMovedError(RelocationRefusedError):
    """The storage asked to move has moved elsewhere meanwhile."""


class StorageServedError(RelocationRefusedError):
    """Another process serves the storage (``datacenter serve``)."""


def check_target(old: str, new: str) -> None:
    """ValueError unless *new* is an existing folder that does not lie inside *old*."""
    if not os.path.exists(new):
        raise ValueError(f"The path given does not exist: {new}")
    if not os.path.isdir(new):
        raise ValueError(f"The path given is not a directory: {new}")
    if new != old and layout.is_within(new, old):
        raise ValueError(f"cannot move the storage {old} into its own sub-folder {new}")


def check_movable(old: str, new: str) -> None:
    """Refuse a move of *old* to *new* unless it is still to be made; the caller holds
    both roots' operation locks, so that what this sees stays true for the move.

    A move queued behind a busy storage finds, once it holds the lock, that
    the storage has moved meanwhile (an earlier move left its note), or that
    a service of another process took it: nothing is moved then. A service
    of this very process may move its storage: it follows the move.
    """
    moved_to = view.forwarding(old)
    if moved_to is not None:
        raise StorageMovedError(f"the storage {old} has moved to {moved_to} meanwhile; "
                                "nothing moved")
    for root, what in ((old, "the storage"), (new, "the target")):
        holder = service_holder(root, others_only=True)
        if holder is not None:
            raise StorageServedError(f"{what} {root} is being served by {holder} "
                                     "(datacenter serve); stop it first, nothing moved")


def relocate(journal: Journal, lock: StorageLock, old: str, new: str, overwrite: bool,
             log: Callable[[str], object]) -> list[str]:
    """Move the storage at *old* (its *journal* and operation *lock*) to *new*.

    One group, decided and run under both roots' locks; *log* is told if it
    was finished after an error. Returns the names not moved.
    """
    fs.makedirs(layout.state_path(new))
    target = Journal(new)
    not_moved: list[str] = []

    def planner(group: Group) -> None:
        mirror = Group(target, group.id)
        not_moved.extend(plan(group, mirror, old, new, overwrite))

    with lock, StorageLock(layout.state_path(new, layout.OPS_LOCK)):
        check_movable(old, new)  # one decision, under the locks
        run_group(journal, planner, target, log=log)
    return not_moved


def plan(group: Group, target: Group, old: str, new: str, overwrite: bool) -> list[str]:
    """Add the steps moving *old*'s entries to *new*; returns the names left behind.

    *target* is a group of the new root's journal, for staging on its side.
    """
    planner = _Planner(group, target, overwrite)
    planner.walk(old, new, "", top=True)
    group.add(RmdirEmpty(folders=tuple(sorted(planner.merged, key=len, reverse=True))))
    _plan_forwarding(group, old, new)
    return planner.not_moved


def _plan_forwarding(group: Group, old: str, new: str) -> None:
    """The old root learns where the storage went; the new one forgets any such note."""
    note = group.staged_path(layout.MOVED_TO)
    with fs.new_file(note, sync=False) as handle:
        handle.write(new.encode())
    group.add(Replace(src=note, dst=layout.state_path(old, layout.MOVED_TO)))
    group.add(Unlink(path=layout.state_path(new, layout.MOVED_TO), ident=None))


class _Planner:
    def __init__(self, group: Group, target: Group, overwrite: bool) -> None:
        self.group, self.target, self.overwrite = group, target, overwrite
        self.not_moved: list[str] = []
        self.merged: list[str] = []

    def walk(self, src_dir: str, dst_dir: str, rel: str, top: bool = False,
             skip: frozenset[str] = frozenset()) -> None:
        for name in sorted(os.listdir(src_dir)):
            src, dst = os.path.join(src_dir, name), os.path.join(dst_dir, name)
            relname = os.path.join(rel, name)
            if name in skip:
                continue
            if top and name == layout.STATE:
                fs.makedirs(dst)
                self.walk(src, dst, relname, skip=layout.STATE_LOCAL)
            elif not os.path.lexists(dst):
                self._move(src, dst, overwrite=False)
            elif _is_real_dir(src) and _is_real_dir(dst):
                self.walk(src, dst, relname)
                self.merged.append(src)
            elif self.overwrite:
                self._move(src, dst, overwrite=True)
            else:
                self.not_moved.append(relname)

    def _move(self, src: str, dst: str, overwrite: bool) -> None:
        self.group.add_move(src, dst, overwrite=overwrite, dst_side=self.target)


def _is_real_dir(path: str) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)
