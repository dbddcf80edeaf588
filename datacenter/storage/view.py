"""A read-only view of a storage: what ``status``, ``ls`` and ``logs`` look at.

Opening a :class:`~datacenter.storage.center.DataCenter` changes things: it
creates missing folders, takes the operations lock (a file it may create
and writes its pid into) and recovers interrupted work. Looking must do none
of that: it would fail on a read-only storage, and it would finish work
behind the back of whoever asked only to see. A :class:`StorageView`
writes nothing at all: it follows a storage that moved by reading the note
left behind, lists files, reads logs, and counts interrupted work instead
of recovering it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Literal

from datacenter.storage import layout, logs
from datacenter.storage.files import DataCenterFile
from datacenter.storage.journal import Journal

SortOrder = Literal["name", "date"]
#: Folders that ``list_files`` knows, and the root's pending files.
FOLDERS = ("pending", *layout.SUBFOLDERS)
#: How many forwarding notes are followed, in case of a loop of moves.
MAX_HOPS = 8


class StorageView:
    """The storage at *path* (or where its forwarding notes lead), for reading only."""

    #: At most this many finished files are listed by getFinishedFiles.
    max_files = 100

    def __init__(self, path: str | os.PathLike[str]) -> None:
        #: The folder asked for; :attr:`storage` differs when the storage moved away.
        self.asked = os.path.abspath(os.fspath(path))
        if os.path.exists(self.asked) and not os.path.isdir(self.asked):
            raise ValueError(f"The storage path is not a directory: {self.asked}")
        self.storage = self.asked
        for _ in range(MAX_HOPS):
            moved_to = forwarding(self.storage)
            if moved_to is None:
                break
            self.storage = moved_to

    @property
    def moved(self) -> bool:
        return self.storage != self.asked

    @property
    def exists(self) -> bool:
        return os.path.isdir(self.storage)

    def list_files(self, folder: str = "pending", sort: SortOrder = "name"
                   ) -> list[DataCenterFile]:
        return list_files(self.storage, folder, sort)

    def getFinishedFiles(self) -> list[DataCenterFile]:  # noqa: N802 - Kofa's name
        """The ``*.finished.csv`` files, newest first, at most ``max_files``."""
        return finished_files(self.storage, self.max_files)

    def queryLogfiles(  # noqa: N802 - Kofa's name
        self, basename: str, query: str | None = None, limit: int = 0, start: int = 0,
        on_skip: logs.SkipNote | None = None,
    ) -> Iterator[str]:
        """Lines of log *basename* and its rotations, as DataCenter.queryLogfiles."""
        return query_logs(self.storage, basename, query, limit, start, on_skip)

    def needs_a_person(self) -> list[str]:
        return needs_a_person(self.storage)

    def interrupted_operations(self) -> int:
        """Committed journal groups a crash left unfinished (recovery would finish them)."""
        return len(Journal(self.storage).pending_intents())


def query_logs(storage: str, basename: str, query: str | None = None, limit: int = 0,
               start: int = 0, on_skip: logs.SkipNote | None = None) -> Iterator[str]:
    """Lines of log *basename* and its rotations (oldest first) matching *query*.

    *query* is a regular expression; *start* skips that many matches and
    *limit* (0: no limit) caps how many are returned. A log file that is
    a symlink or has a second name is never read: it is skipped, and
    ``on_skip(path, reason)`` told of it.
    """
    skip = on_skip or (lambda path, reason: None)
    paths = logs.rotations(os.path.join(storage, layout.LOGS), basename, skip)
    return logs.query(paths, query, limit, start, skip)


def needs_a_person(storage: str) -> list[str]:
    """What waits for a person, one line each: operations that were set aside
    because they cannot be finished, and imports whose filing was held.

    Neither stops anything else; each line says where it waits and why.
    """
    lines = [f"{os.path.relpath(entry.path, storage)}: step {entry.step + 1} "
             f"cannot be done: {entry.reason}" for entry in Journal(storage).set_aside()]
    jobs = layout.state_path(storage, layout.JOBS)
    for entry in sorted(scan(jobs), key=lambda e: e.name):
        note = os.path.join(entry.path, layout.HELD)
        try:
            with open(note, encoding="utf-8", errors="replace") as handle:
                reason = handle.read().strip()
        except (FileNotFoundError, NotADirectoryError):
            continue
        lines.append(f"{os.path.relpath(entry.path, storage)}: {reason}")
    return lines


def forwarding(storage: str) -> str | None:
    """Where the storage moved from *storage* went, if it did and that folder exists."""
    try:
        with open(layout.state_path(storage, layout.MOVED_TO), encoding="utf-8") as handle:
            target = handle.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return target if target and target != storage and os.path.isdir(target) else None


def list_files(storage: str, folder: str = "pending", sort: SortOrder = "name"
               ) -> list[DataCenterFile]:
    """Regular files of *folder* (``pending`` means the root's CSV files).

    Symlinks are never listed: one could point anywhere on the machine.
    """
    if folder not in FOLDERS:
        raise ValueError(f"unknown folder {folder!r}: choose one of {', '.join(FOLDERS)}")
    if sort not in ("name", "date"):
        raise ValueError(f"unknown sort order {sort!r}: choose name or date")
    pending = folder == "pending"
    path = storage if pending else os.path.join(storage, folder)
    result = []
    for entry in scan(path):
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        if pending and not entry.name.lower().endswith(".csv"):
            continue
        st = entry.stat(follow_symlinks=False)
        result.append(DataCenterFile(entry.path, "" if pending else folder, st))
    if sort == "date":
        result.sort(key=lambda f: (-f.getTimeStamp(), f.name))
    else:
        result.sort(key=lambda f: f.name)
    return result


def finished_files(storage: str, max_files: int) -> list[DataCenterFile]:
    """The ``*.finished.csv`` files of *storage*, newest first, at most *max_files*."""
    files = [f for f in list_files(storage, layout.FINISHED, "date")
             if f.name.endswith(".finished.csv")]
    return files[:max_files]


def scan(path: str) -> list[os.DirEntry[str]]:
    """The entries of folder *path*; none when it does not exist."""
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except FileNotFoundError:
        return []
