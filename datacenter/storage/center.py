"""The data center: a storage folder, what is in it, and how files move through it."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from datacenter.storage import (
    backups,
    discarding,
    distribution,
    fs,
    layout,
    links,
    logs,
    relocation,
    view,
)
from datacenter.storage.files import DataCenterFile, LogFile
from datacenter.storage.journal import Group, Journal, UnfinishedError, run_group
from datacenter.storage.lock import StorageLock
from datacenter.storage.view import FOLDERS, SortOrder

Subscriber = Callable[[str, str], None]
__all__ = ["FOLDERS", "DataCenter", "SortOrder"]


class DataCenter:
    """A storage folder managed the way Kofa's data center manages it.

    ``DataCenter()`` uses ``$DATACENTER_STORAGE`` or else a new temporary
    folder; ``DataCenter(path)`` creates *path* and its sub-folders if
    needed. Opening a storage first finishes or rolls back whatever a crash
    interrupted there.

    A folder of the storage that is a symbolic link is refused (a
    PlantedLinkError, and a warning in the log): whatever the storage put
    in it would land elsewhere. It is checked when the storage is opened
    and again before every change, under the storage's lock.
    """

    #: At most this many finished files are listed by getFinishedFiles.
    max_files = 100

    def __init__(self, storage: str | os.PathLike[str] | None = None) -> None:
        if storage is None:
            storage = os.environ.get("DATACENTER_STORAGE") or tempfile.mkdtemp()
        path = os.path.abspath(os.fspath(storage))
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"The storage path is not a directory: {path}")
        fs.makedirs(path)
        self._storage = path
        self._subscribers: list[Subscriber] = []
        self.logger = logs.storage_logger(lambda: self._storage)
        self._open()

    # -- where things are ----------------------------------------------------

    @property
    def storage(self) -> str:
        return self._storage

    @property
    def deleted_path(self) -> str:
        return os.path.join(self._storage, layout.DELETED)

    @property
    def graduated_path(self) -> str:
        return os.path.join(self._storage, layout.GRADUATED)

    @property
    def finished_path(self) -> str:
        return os.path.join(self._storage, layout.FINISHED)

    @property
    def unfinished_path(self) -> str:
        return os.path.join(self._storage, layout.UNFINISHED)

    @property
    def logs_path(self) -> str:
        return os.path.join(self._storage, layout.LOGS)

    @property
    def lock(self) -> StorageLock:
        """The storage's operation lock: hold it to make several calls one operation.

        It is re-entrant, so the calls made while holding it take it again freely.
        """
        return self._lock

    @property
    def journal(self) -> Journal:
        return Journal(self._storage, report=self._error)

    def _open(self, follow: int = 8) -> None:
        """Create missing folders and recover, holding the storage's lock.

        A root the storage was moved away from says where it went; that is
        followed (at most *follow* hops, in case of a loop of moves).
        """
        fs.makedirs(layout.state_path(self._storage))
        self.check_folders()  # the lock itself lives in the state folder
        fs.restrict(layout.state_path(self._storage), layout.PRIVATE_FOLDER)  # made before 0700
        self._lock = StorageLock(layout.state_path(self._storage, layout.OPS_LOCK))
        with self._lock:
            # Recovery first: a relocation into this root may still have to
            # move the sub-folders here.
            self.journal.ensure_dirs()
            rolled = self.journal.recover()
            moved_to = view.forwarding(self._storage) if follow else None
            if moved_to is None:
                for name in layout.SUBFOLDERS:
                    fs.makedirs(os.path.join(self._storage, name))
                self._sweep_temporaries()
        #: Interrupted operations finished when this storage was opened.
        self.recovered = rolled
        if rolled:
            self.log(f"recovered: {rolled} interrupted operation(s) finished")
        if moved_to is not None:
            # The storage was moved from here (perhaps by a move that a crash
            # interrupted, or while whoever asked was gone): follow it.
            old, self._storage = self._storage, moved_to
            self.log(f"storage {old} has moved to {moved_to}; using it there")
            self._open(follow - 1)

    def check_folders(self) -> None:
        """Refuse (PlantedLinkError, with a warning in the log) a symlinked folder."""
        try:
            links.check_folders(self._storage)
        except fs.PlantedLinkError as error:
            self.log(str(error), level=logging.WARNING)
            raise

    def _sweep_temporaries(self) -> None:
        """Remove temporary files a crash left beside their destinations.

        A temporary name is only ever renamed into place once complete, so
        one still standing is garbage of an interrupted write.
        """
        # Not the state folder: only the service writes there (its state file),
        # and sweeps it itself; a sweep from here could race its writes.
        folders = [self._storage, *(os.path.join(self._storage, n) for n in layout.SUBFOLDERS)]
        # A move of an intent set aside may hold a source or its copy beside
        # it (their names carry the group's id): those wait for a person too.
        held = [entry.id for entry in self.journal.set_aside()]
        for folder in folders:
            for entry in view.scan(folder):
                if entry.name.startswith(fs.TEMP_PREFIX) and not any(
                        group_id in entry.name for group_id in held):
                    fs.rmtree(entry.path)

    def log(self, message: str, user: str | None = None, level: int = logging.INFO) -> None:
        """One line in ``logs/datacenter.log``."""
        self.logger.log(level, message, extra={"user": user or logs.default_user()})

    def held_log(self) -> contextlib.AbstractContextManager[None]:
        """Lines logged inside are written together when it ends (a batch's lines)."""
        return logs.held(self.logger)

    def _warn(self, message: str) -> None:
        self.log(message, level=logging.WARNING)

    def _error(self, message: str) -> None:
        self.log(message, level=logging.ERROR)

    # -- listing ---------------------------------------------------------------

    def getPendingFiles(self, sort: SortOrder = "name") -> list[DataCenterFile]:  # noqa: N802
        """The CSV files waiting at the root, by name or newest first."""
        return self.list_files("pending", sort)

    def getFinishedFiles(self) -> list[DataCenterFile]:  # noqa: N802
        """The ``*.finished.csv`` files, newest first, at most ``max_files``."""
        return view.finished_files(self._storage, self.max_files)

    def getLogFiles(self, exclude_backups: bool = True) -> list[LogFile]:  # noqa: N802
        """The logs, by name; rotations (``x.log.1``) only when asked."""
        return [LogFile(p) for p in logs.log_files(self.logs_path, exclude_backups)]

    def queryLogfiles(  # noqa: N802
        self, basename: str, query: str | None = None, limit: int = 0, start: int = 0,
        on_skip: logs.SkipNote | None = None,
    ) -> Iterator[str]:
        """Lines of log *basename* and its rotations matching *query* (see
        :func:`datacenter.storage.view.query_logs`)."""
        return view.query_logs(self._storage, basename, query, limit, start, on_skip)

    def list_files(self, folder: str = "pending", sort: SortOrder = "name") -> list[DataCenterFile]:
        """Regular files of *folder* (``pending`` means the root's CSV files).

        Symlinks are never listed: one could point anywhere on the machine.
        """
        return view.list_files(self._storage, folder, sort)

    # -- changing things -------------------------------------------------------

    def distProcessedFiles(  # noqa: N802
        self,
        successful: bool,
        source_path: str,
        finished_file: str,
        pending_file: str | None,
        mode: str = "create",
        move_orig: bool = True,
    ) -> None:
        """Put the source and the results of processing it where they belong.

        All of it happens or none of it, even across a crash (see
        :mod:`datacenter.distribution` for the names and places).
        """
        self.distribute([distribution.Request(
            successful, os.path.abspath(source_path), os.path.abspath(finished_file),
            os.path.abspath(pending_file) if pending_file else None, mode, move_orig)])

    def distribute(self, requests: Sequence[distribution.Request]) -> None:
        """Several ``distProcessedFiles`` at once: one group for those that can share.

        Each is all-or-nothing as ever; sharing a group (one journal commit,
        one fsync of each folder) is what makes a burst of imports cheap.
        Distributions that touch the same paths go into successive groups.
        """
        with self._lock:
            self.check_folders()
            chunk: list[tuple[distribution.Request, distribution.Destinations]] = []
            touched: set[str] = set()
            for request in requests:
                names = request.check(self._storage)
                request = self._steered(request, names)
                paths = request.touches(self._storage, names)
                if paths & touched:
                    self._distribute_group(chunk)
                    chunk, touched = [], set()
                chunk.append((request, names))
                touched |= paths
            self._distribute_group(chunk)

    def _steered(self, request: distribution.Request,
                 names: distribution.Destinations) -> distribution.Request:
        """*request*, its rows going beside a planted finished or pending file (warned)."""
        request, warnings = distribution.steer_clear(self._storage, request, names)
        for warning in warnings:
            self.log(warning, level=logging.WARNING)
        return request

    def _distribute_group(
        self, chunk: list[tuple[distribution.Request, distribution.Destinations]]
    ) -> None:
        if not chunk:
            return

        moves: list[list[tuple[str, str]]] = []

        def plan(group: Group) -> None:
            moves.clear()
            for n, (request, _) in enumerate(chunk):
                moves.append(distribution.plan(group, self._storage, request, label=f"{n}-"))

        run_group(self.journal, plan, log=self._warn)
        for (request, _), moved in zip(chunk, moves, strict=True):
            outcome = "finished" if request.successful else "pending rows left"
            # A pending file dropped with no chain is filed as its original (x.csv).
            origin = distribution.pending_origin(os.path.basename(request.source))
            usual = {origin[0]} if origin else set()
            chained = [os.path.relpath(dst, self._storage) for src, dst in moved
                       if os.path.basename(dst) in usual - {os.path.basename(src)}]
            renamed = [os.path.relpath(dst, self._storage) for src, dst in moved
                       if os.path.basename(dst) not in usual | {os.path.basename(src)}]
            kept = f"; filed as {', '.join(renamed)}: the name was taken" if renamed else ""
            if chained:
                kept += f"; filed as {', '.join(chained)}, the source of its pending rows"
            self.log(f"distributed: {os.path.basename(request.source)}, {request.mode} mode, "
                     f"{outcome}{kept}")

    def discard(self, name: str, user: str | None = None,
                when: float | None = None, job: int = 0) -> discarding.Discarded:
        """Give up pending file *name*: its rows kept aside, its chain closed (one group).

        See :mod:`datacenter.storage.discarding` for where everything goes
        (*job* numbers a source whose name is taken in ``finished/``). The
        log says who (*user*, default: the OS user) and when.
        """
        user = user or logs.default_user()
        found: list[discarding.Discarded] = []
        with self._lock:
            self.check_folders()

            def plan(group: Group) -> None:
                done, warnings = discarding.plan(group, self._storage, name, user,
                                                 time.time() if when is None else when, job)
                for warning in warnings:
                    self._warn(warning)
                found.append(done)

            run_group(self.journal, plan, log=self._warn)
        done = found[-1]
        moved = f"; its source is now {done.source}" if done.source else ""
        self.log(f"discarded: {name}, {done.rows} row(s) -> {done.dest}{moved}", user=user)
        return done

    def backupRecords(  # noqa: N802
        self, processor: str, rows: Iterable[Mapping[str, object]], graduated: bool = False
    ) -> str:
        """Append *rows* to ``deleted/<processor>.csv`` (or ``graduated/``), durably.

        Records are backed up before an import removes them. The rows join
        the file with the finished files' merge rules (new columns are added
        at the end). Returns the backup file's path (see :mod:`.backups`).
        """
        return backups.back_up_records(self, processor, rows, graduated)

    def backup_file(self, processor: str, rows_file: str, graduated: bool = False,
                    consume: bool = False) -> str:
        """Like backupRecords, with the rows in a CSV file.

        With *consume* the file is removed in the same all-or-nothing step,
        so a crash can neither lose its rows nor back them up twice.
        """
        return backups.back_up_file(self, processor, rows_file, graduated, consume)

    def setStoragePath(  # noqa: N802
        self, path: str | os.PathLike[str], move: bool = False, overwrite: bool = False
    ) -> list[str]:
        """Use *path* as the storage from now on; with *move*, take the contents along.

        Returns the names that were not moved because they exist in the
        target already (``[]``: everything moved). Raises ValueError when
        *path* is missing or not a folder, and a RelocationRefusedError when
        the move is no longer to be made once the storage's lock is held:
        the storage moved meanwhile (another move was queued before this
        one), or a service of another process serves it or the target.
        """
        new = os.path.abspath(os.fspath(path))
        old = self._storage
        relocation.check_target(old, new)
        not_moved: list[str] = []
        if move and new != old:
            try:
                not_moved = relocation.relocate(self.journal, self._lock, old, new, overwrite,
                                                self._warn)
            except UnfinishedError:
                self._storage = new  # committed: the storage has moved, recovery finishes
                raise
        self._storage = new
        try:
            if not move:  # asked for this very folder: a note to go elsewhere is stale
                fs.unlink(layout.state_path(new, layout.MOVED_TO), missing_ok=True)
            self._open()
        except Exception as error:
            if move and new != old:
                error.add_note(f"the storage was moved to {new}; opening it there failed")
            raise
        if new != old:
            self.log(f"storage moved: {old} -> {new}, {len(not_moved)} name(s) not moved")
            for callback in list(self._subscribers):
                callback(old, new)
        return not_moved

    def follow(self) -> bool:
        """Follow a move another process made since this storage was opened.

        Opening the storage again finds the note the move left; subscribers
        are told as after :meth:`setStoragePath`. True when it had moved.
        """
        old = self._storage
        with self._lock:
            if view.forwarding(old) is None:
                return False
        self._open()
        for callback in list(self._subscribers):
            callback(old, self._storage)
        return True

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(old, new)`` after every change of the storage path."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        self._subscribers.remove(callback)

    def needs_a_person(self) -> list[str]:
        """What waits for a person (see :func:`datacenter.storage.view.needs_a_person`)."""
        return view.needs_a_person(self._storage)

    def recover(self) -> int:
        """Finish or roll back interrupted work; returns the groups finished."""
        with self._lock:
            rolled = self.journal.recover()
        if rolled:
            self.log(f"recovered: {rolled} interrupted operation(s) finished")
        return rolled
