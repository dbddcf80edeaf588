"""The import pipeline: one file in, exactly once, whatever crashes.

1. The rows are applied to the record store inside one transaction, while
   the finished, pending and backup files are written to a job folder
   ``.datacenter/jobs/<id>/`` and made durable.
2. The transaction commits together with the job's ledger row: the single
   commit point. A crash before it rolls everything back; the source is
   still pending and imports again later as if nothing had happened.
3. The job is finished: backups join ``deleted/``/``graduated/``, and
   ``distProcessedFiles`` files the source and the results. Each of these
   steps consumes its input in the same all-or-nothing journal group, so
   recovery can tell what is left to do, and does it, from the ledger rows
   not yet marked distributed.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from datacenter.config import Config
from datacenter.errors import DataCenterError
from datacenter.importing.csvinput import FatalCSVError, naming
from datacenter.importing.outputs import ImportResult, backups_in
from datacenter.importing.plugins import Processors, UnknownProcessorError, resolve_processors
from datacenter.importing.processors import BatchProcessor
from datacenter.importing.routing import Router, UnroutedError
from datacenter.records.store import Job, RecordStore
from datacenter.storage import distribution, fs, layout
from datacenter.storage.center import DataCenter
from datacenter.storage.distribution import OutputNameError, destinations, kept_aside
from datacenter.storage.distribution import Request as DistRequest
from datacenter.storage.identity import FileIdentity
from datacenter.storage.journal import SetAsideError
from datacenter.storage.logs import default_user

#: A file ready to import: its path, its processor and the mode.
_Plan = tuple[str, BatchProcessor, str]
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """A file to import; processor and mode default to the routing.

    *unless_untouched*: a pending file exactly as an import's filing left
    it is not imported (the result is :class:`UntouchedPendingError`): the
    service takes only what someone changed; a retry it wants says False.
    """

    path: str
    processor: str | None = None
    mode: str | None = None
    unless_untouched: bool = False


@dataclass
class Outcome:
    """What importing one file did."""

    source: str
    processor: str
    mode: str
    rows: int
    ok: int
    failed: int
    pending: str | None  # the pending file's name at the root, if rows failed
    job: int
    #: Filed away (False: committed, filing failed for now; it is tried again).
    filed: bool = True

    def summary(self) -> str:
        text = f"Imported {self.rows} rows from {self.source}: {self.ok} ok, {self.failed} failed"
        return text + (f" -> {self.pending}" if self.pending else "")


class Importer:
    """Imports files into one storage and its record store."""

    def __init__(self, conf: Config, datacenter: DataCenter | None = None,
                 processors: Processors | None = None) -> None:
        """An importer of *conf*'s storage (or *datacenter*), recovering what a kill left.

        Everything the config says is checked before the storage is touched;
        a caller that opens the storage itself resolves the *processors* first.
        """
        self.conf = conf
        self.processors = processors if processors is not None else resolve_processors(conf)
        self.schemas = self.processors.schemas
        self.router = Router(conf.routes, self.processors.names())
        self.dc = datacenter or DataCenter(conf.storage)
        fs.makedirs(os.path.dirname(os.path.abspath(conf.database)))
        _private_store(conf.database)
        self.store = RecordStore(conf.database, self.schemas)
        #: Committed imports filed away when this importer was opened.
        self.recovered = self.recover()

    def close(self) -> None:
        self.store.close()

    def processor(self, name: str) -> BatchProcessor:
        try:
            cls = self.processors.processor_class(name)
        except UnknownProcessorError as error:
            raise UnroutedError(str(error)) from None
        processor = cls(self.schemas[name], self.store, self.dc)
        processor.max_line_bytes = self.conf.imports.max_line_bytes
        return processor

    # -- what a service asks of it --------------------------------------------------

    @property
    def storage(self) -> str:
        """The storage's root now (it follows a relocation)."""
        return self.dc.storage

    def log(self, message: str, level: int = logging.INFO) -> None:
        """One line in the storage's log."""
        self.dc.log(message, level=level)

    def recent_jobs(self, limit: int) -> list[Job]:
        """The last *limit* imports that committed, newest first."""
        return self.store.jobs(limit=limit)

    def parents_of(self, processor: str) -> list[str]:
        """The processors whose records *processor*'s rows name as parents."""
        schema = self.schemas.get(processor)
        return sorted(set(schema.parents.values())) if schema is not None else []

    def subscribe(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(old, new)`` when the storage is relocated."""
        self.dc.subscribe(callback)

    def unsubscribe(self, callback: Callable[[str, str], None]) -> None:
        self.dc.unsubscribe(callback)

    def follow(self) -> bool:
        """Follow a move of the storage made by another process; True when it moved."""
        return self.dc.follow()

    # -- routing -------------------------------------------------------------------

    def route(self, filename: str) -> tuple[str, str]:
        """``(processor, mode)`` for a file name, or UnroutedError (see :mod:`.routing`)."""
        return self.router.route(filename)

    # -- importing ---------------------------------------------------------------------

    def import_file(self, path: str, processor: str | None = None, mode: str | None = None,
                    user: str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Outcome:
        """Import a file lying at the storage's root, exactly once.

        Raises FatalCSVError (the file stays where it is, nothing imported),
        UnroutedError, or OSError (nothing imported, or: see UnfinishedError).
        """
        result = self.import_many([Request(path, processor, mode)], user, progress)[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def import_many(self, requests: Sequence[Request], user: str | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    ) -> list[Outcome | Exception]:
        """Import several files in one transaction, and file them in one journal group.

        Each file still happens entirely or not at all: it has a savepoint of
        its own, so a file that cannot be imported is rolled back alone and
        its error takes its place in the result. Sharing the commit and the
        filing is what makes a burst of small files cheap (one fsync of the
        database and of each folder, not one per file).
        """
        user = user or default_user()
        planned = [self._planned(request, user) for request in requests]
        with self.dc.lock:
            try:
                self.dc.check_folders()  # a folder linked away since the storage was opened
            except fs.PlantedLinkError as error:
                return [error for _ in requests]
            # An earlier import whose filing failed comes first; a source whose
            # import committed but could not be filed yet must not import twice.
            unfiled = {job.source: (job, self._is_held(job)) for job in self._finish_unfiled()}
            planned = [self._untouched(_not_yet(plan, unfiled), request)
                       for plan, request in zip(planned, requests, strict=True)]
            staged = self._commit_imports(planned, user, progress)
            jobs = [item[0] for item in staged if isinstance(item, tuple)]
            left = {job.id for job in self.finish_jobs(jobs)}
        return [item if isinstance(item, Exception)
                else self._outcome(*item, filed=item[0].id not in left) for item in staged]

    def _untouched(self, plan: _Plan | Exception, request: Request) -> _Plan | Exception:
        """The plan, or UntouchedPendingError for a pending file nobody changed since its filing.

        Asked under the storage's lock, so a filing in another process
        (``datacenter import``) is over and its pending file recorded.
        """
        if isinstance(plan, Exception) or not request.unless_untouched:
            return plan
        job = self.left_pending(plan[0])
        return plan if job is None else UntouchedPendingError(plan[0], job)

    def left_pending(self, path: str) -> Job | None:
        """The import whose filing left pending file *path* as it is now, if nobody changed it.

        Its name and its identity (device, inode, size, mtime) are recorded
        in the ledger when it is filed; an edit, a replacement or a rename
        makes it a new file.
        """
        job = self.store.left_pending(os.path.basename(path))
        ident = FileIdentity.at(path)
        if job is None or ident is None or FileIdentity.from_ledger(job.pending_ident) != ident:
            return None
        return job

    def helped_since(self, job: Job) -> bool:
        """Did an import into one of *job*'s parent processors get rows in after it?"""
        return self.store.committed_into(self.parents_of(job.processor), after=job.id)

    def _planned(self, request: Request, user: str) -> _Plan | Exception:
        path = os.path.abspath(request.path)
        name = os.path.basename(path)
        if os.path.dirname(path) != self.dc.storage:
            return ValueError(f"{path}: only files at the storage's root are imported")
        try:
            if request.processor is None:
                processor, routed_mode = self.route(name)
            else:
                processor = request.processor
                routed_mode = self.router.mode_for(name, processor)
            mode = request.mode or routed_mode
            self._check_names(path, processor, mode)
            return path, self.processor(processor), mode
        except UnroutedError as error:
            return error
        except OutputNameError as error:
            # Before anything commits: a job whose outputs cannot be named
            # could never be filed, and would wait for a person for ever.
            rejected = NameTooLongError(str(error))
            self.dc.log(f"rejected: {naming(rejected, path)}", user=user, level=logging.ERROR)
            return rejected

    def _check_names(self, path: str, processor: str, mode: str) -> None:
        """OutputNameError unless every name importing *path* may need fits its folder."""
        distribution.check_names(self.dc.storage, path, mode)
        if mode == "remove":  # removed records are backed up
            backups = [os.path.join(self.dc.storage, folder, f"{processor}.csv")
                       for folder in (layout.DELETED, layout.GRADUATED)]
            distribution.check_names(self.dc.storage, path, mode, backups)

    def _commit_imports(
        self, planned: list[_Plan | Exception], user: str,
        progress: Callable[[int, int], None] | None,
    ) -> list[tuple[Job, ImportResult, BatchProcessor] | Exception]:
        staged: list[tuple[Job, ImportResult, BatchProcessor] | Exception] = []
        try:
            with self.store.transaction():
                for plan in planned:
                    staged.append(plan if isinstance(plan, Exception)
                                  else self._stage_one(*plan, user, progress))
        except BaseException as error:
            for done in staged:  # the shared commit failed: none of them happened
                if isinstance(done, tuple):
                    fs.rmtree(os.path.join(self.dc.storage, done[0].workdir))
            if not isinstance(error, Exception):
                raise
            return [_failed(plan, staged[n] if n < len(staged) else None, error)
                    for n, plan in enumerate(planned)]
        for done in staged:
            if isinstance(done, tuple):
                job, result, batch = done
                batch.log_result(os.path.join(self.dc.storage, job.source), job.mode, user,
                                 result)
        return staged

    def _stage_one(self, path: str, batch: BatchProcessor, mode: str, user: str,
                   progress: Callable[[int, int], None] | None,
                   ) -> tuple[Job, ImportResult, BatchProcessor] | Exception:
        """One file's rows and ledger row, in a savepoint of the shared transaction."""
        ident, started = FileIdentity.at(path), time.time()
        if ident is None:
            return FileNotFoundError(errno.ENOENT, "filed away by an earlier import", path)
        workdir = os.path.join(layout.state_path(self.dc.storage, layout.JOBS), uuid.uuid4().hex)
        try:
            fs.makedirs(workdir)
            with self.store.savepoint():
                job_id = self.store.next_job_id()  # its rows name it (find says so)
                with self.store.provenance(job_id):
                    result = batch.import_rows(path, None, mode, True, workdir, progress)
                fields = dict(
                    source=os.path.basename(path), sha256=result.sha256, processor=batch.name,
                    mode=mode, user=user, rows=result.rows, ok=result.ok, failed=result.failed,
                    outcome="finished" if not result.failed else "pending", started=started,
                    workdir=os.path.relpath(workdir, self.dc.storage), ident=ident.to_ledger(),
                    finished=time.time(), storage=self.dc.storage,
                )
                self.store.record_job(id=job_id, **fields)
        except Exception as error:  # this file's: its savepoint undid its rows
            fs.rmtree(workdir)
            if isinstance(error, FatalCSVError):
                self.dc.log(f"rejected: {naming(error, path)}", user=user, level=logging.ERROR)
            elif not isinstance(error, OSError):
                _log.error("importing %s failed", path, exc_info=error)
            return error
        except BaseException:
            fs.rmtree(workdir)
            raise
        return Job(id=job_id, distributed=False, **fields), result, batch  # type: ignore[arg-type]

    def _outcome(self, job: Job, result: ImportResult, batch: BatchProcessor,
                 filed: bool = True) -> Outcome:
        pending = None
        if result.failed:
            path = os.path.join(self.dc.storage, job.source)
            pending = os.path.basename(destinations(self.dc.storage, path, job.mode).pending)
        return Outcome(job.source, batch.name, job.mode, result.rows, result.ok,
                       result.failed, pending, job.id, filed)

    def finish_jobs(self, jobs: Sequence[Job]) -> list[Job]:
        """File away what committed imports left in their job folders.

        Every step consumes its input atomically, so this can run again
        after any crash and does only what is left. The distributions share
        journal groups where they can; if that fails, each job is tried
        alone, so one that cannot be filed does not hold up the others.
        Returns the jobs still not filed (each failure is logged), those
        held for a person included (see :meth:`_held`).
        """
        # A pending file's own chain first: it replaces that file, and a later
        # job in the batch may have failed rows to add to it.
        jobs = sorted(jobs, key=lambda job: not job.source.endswith(".pending.csv"))
        held = self._held(jobs)
        todo = [job for job in jobs if job.id not in held]
        pending: dict[int, str | None] = {}
        try:
            requests = [self._filing(job) for job in todo]
            # Named before the filing: it changes what the names are (a chain begins).
            pending = {job.id: _pending_name(self.dc.storage, request)
                       for job, request in zip(todo, requests, strict=True)}
            self.dc.distribute([r for r in requests if r is not None])
            failed: list[Job] = []
        except Exception:
            held |= self._held(todo)  # a group set aside holds the part that failed
            failed = [job for job in todo if job.id not in held and not self._file_alone(job)]
            held |= {job.id for job in failed if self._is_held(job)}
        filed = [job.id for job in todo if job not in failed and job.id not in held]
        self.store.mark_distributed(filed, _left_at_root(self.dc.storage, pending, filed))
        return [job for job in jobs if job.id in held or job in failed]

    def _file_alone(self, job: Job) -> bool:
        try:
            request = self._filing(job)
            if request is not None:
                self.dc.distribute([request])
        except (OutputNameError, SetAsideError) as error:
            # Trying again cannot help: a person decides (see _held).
            self._hold(job, str(error))
            return False
        except Exception as error:
            if getattr(error, "errno", None) == errno.ENAMETOOLONG:
                self._hold(job, str(error))  # found while planning: no retry makes it fit
                return False
            self.dc.log(f"{job.source}: imported (job {job.id}), but filing it away failed: "
                        f"{error}; it is tried again later, and before the next import",
                        level=logging.ERROR)
            return False
        return True

    def _held(self, jobs: Sequence[Job]) -> set[int]:
        """The ids of *jobs* whose filing waits for a person.

        A job is held when its filing cannot be done and trying again could
        do harm: its outputs cannot be named (an earlier version committed
        it), or the journal set aside a group that was filing it, half
        applied perhaps (planning it again could append its rows twice). Its
        ledger row stays not distributed: its rows are in the store exactly
        once, its outputs wait in its job folder with a note
        (``needs-a-person.txt``), and its source, if still at the root, is
        not imported again (:class:`HeldError`). A person files the outputs
        by hand, takes the source away, and deletes the job folder; the next
        opening then marks the job filed. (Putting a set-aside intent back is
        no remedy: the other jobs of its group were filed again since, and an
        append planned before later ones is refused, see ``fs.append_file``.)
        """
        held = {job.id for job in jobs if self._is_held(job)}
        inputs = self.dc.journal.held_inputs() if len(held) < len(jobs) else {}
        for job in jobs:
            workdir = os.path.join(self.dc.storage, job.workdir)
            entry = next((e for path, e in inputs.items() if os.path.dirname(path) == workdir),
                         None)
            if job.id not in held and entry is not None:
                where = os.path.relpath(entry.path, self.dc.storage)
                self._hold(job, f"its filing was set aside with {where}: {entry.reason}")
                held.add(job.id)
        return held

    def _is_held(self, job: Job) -> bool:
        return os.path.exists(os.path.join(self.dc.storage, job.workdir, layout.HELD))

    def _hold(self, job: Job, reason: str) -> None:
        """Leave *job* unfiled for a person, with a note in its job folder, said once."""
        workdir = os.path.join(self.dc.storage, job.workdir)
        text = f"{job.source}: imported (job {job.id}), but filing it away needs a person: {reason}"
        fs.makedirs(workdir)
        fs.atomic_write(os.path.join(workdir, layout.HELD), (text + "\n").encode("utf-8"))
        self.dc.log(f"{text}; its outputs wait in {job.workdir}", level=logging.ERROR)

    def _filing(self, job: Job) -> DistRequest | None:
        """Back up what the job removed; then what is left to distribute, if anything."""
        workdir = os.path.join(self.dc.storage, job.workdir)
        for backup in backups_in(workdir, job.processor):  # a cascade's too (deleted.<p>.csv)
            self.dc.backup_file(backup.processor, backup.path, backup.graduated, consume=True)
        finished = os.path.join(workdir, "finished.csv")
        if not os.path.exists(finished):
            return None
        source = os.path.join(self.dc.storage, job.source)
        same = _is_source_of(source, job)
        pending = os.path.join(workdir, "pending.csv")
        names = destinations(self.dc.storage, source, job.mode)
        keep_aside = None
        if not same:
            self.dc.log(f"{job.source} changed since its import (job {job.id}); "
                        "it stays where it is", level=logging.WARNING)
            if names.pending == source:  # a person's edit of the pending file: never overwrite
                keep_aside = kept_aside(self.dc.storage, job.source, job.id)
        return DistRequest(job.failed == 0, source, finished,
                           pending if os.path.exists(pending) else None, job.mode,
                           move_orig=same, pending_dest=keep_aside, job=job.id)

    def file_unfiled(self) -> list[Job]:
        """File committed imports whose filing failed so far; returns those still unfiled.

        The service calls this by itself now and then, so that a filing that
        failed for a while (a full disk, an archive disk gone) is finished
        without waiting for the next import. Cheap when there is nothing to do.
        """
        if not self.store.jobs(undistributed=True) and not self.dc.journal.pending_intents():
            return []
        with self.dc.lock:
            return [job for job in self._finish_unfiled() if not self._is_held(job)]

    def _finish_unfiled(self) -> list[Job]:
        """File committed imports that are not yet; returns those that still cannot be."""
        # Interrupted moves first: a source may be on its way to this root.
        self.dc.recover()
        jobs = self.store.jobs(undistributed=True)
        return self.finish_jobs(list(reversed(jobs))) if jobs else []

    def recover(self) -> int:
        """Finish every committed import; drop what uncommitted ones left.

        Returns how many committed imports were filed away now.
        """
        with self.dc.lock:
            jobs = self.store.jobs(undistributed=True)
            stuck = self._finish_unfiled()
            owned = {os.path.basename(job.workdir) for job in stuck}
            folder = layout.state_path(self.dc.storage, layout.JOBS)
            for name in os.listdir(folder) if os.path.isdir(folder) else []:
                if name not in owned:
                    fs.rmtree(os.path.join(folder, name))
        filed = len(jobs) - len(stuck)
        if filed:
            self.dc.log(f"recovered: {filed} committed import(s) filed away")
        return filed


class NameTooLongError(FatalCSVError):
    """The file's outputs would need names longer than the filesystem allows."""


class HeldError(FatalCSVError):
    """The file was imported already, and its filing waits for a person: not again."""


class UnfiledError(DataCenterError, OSError):
    """The file's import committed, but filing it away failed; it is retried."""


class UntouchedPendingError(DataCenterError):
    """Not a failure: a pending file is as an import left it; nothing to do until it changes.

    The answer to a :class:`Request` with ``unless_untouched``; *job* is the
    import whose filing left it.
    """

    def __init__(self, path: str, job: Job) -> None:
        super().__init__(f"{os.path.basename(path)}: as job {job.id} left it "
                         f"({job.failed} row(s) failed); nobody changed it since")
        self.job = job


def _pending_name(storage: str, request: DistRequest | None) -> str | None:
    """The pending file at the root that filing *request* writes, or None (none, or aside)."""
    if request is None or request.pending_file is None or request.pending_dest is not None:
        return None
    return os.path.basename(destinations(storage, request.source, request.mode).pending)


def _left_at_root(storage: str, pending: dict[int, str | None], filed: list[int],
                  ) -> dict[int, tuple[str, str]]:
    """The name and identity of each pending file the *filed* jobs left at the root.

    Looked at right after the filing: what is there then is what the
    import wrote (a planted link steered the rows aside, and is no file of
    ours).
    """
    left = {}
    for job_id in filed:
        name = pending.get(job_id)
        path = os.path.join(storage, name) if name else None
        ident = FileIdentity.at(path) if path and fs.planted(path) is None else None
        if name and ident is not None:
            left[job_id] = (name, ident.to_ledger())
    return left


def _not_yet(plan: _Plan | Exception, unfiled: dict[str, tuple[Job, bool]]
             ) -> _Plan | Exception:
    """A planned import, unless its source still waits to be filed from an earlier one."""
    if isinstance(plan, Exception):
        return plan
    name = os.path.basename(plan[0])
    job, held = unfiled.get(name, (None, False))
    if job is None:
        return plan
    if held:
        return HeldError(f"{name}: imported already (job {job.id}), but filing it away "
                         "needs a person; see datacenter status")
    return UnfiledError(errno.EBUSY, f"imported already (job {job.id}) but not filed away yet; "
                        "see the log", plan[0])


def _failed(plan: object, done: object, error: Exception) -> Exception:
    """What a file's result is when the transaction it shared failed."""
    if isinstance(done, Exception):
        return done  # its own failure, found before
    return plan if isinstance(plan, Exception) else error


def _is_source_of(path: str, job: Job) -> bool:
    """Is the file at *path* the very file *job* imported?

    The same inode, size and time say so at once; otherwise (a move across
    filesystems gives a new inode) the content must hash the same.
    """
    if not os.path.isfile(path):
        return False
    recorded = FileIdentity.from_ledger(job.ident)
    if recorded is not None and recorded == FileIdentity.at(path):
        return True
    digest = hashlib.sha256()
    with fs.open_read(path, shared=True) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == job.sha256


def _private_store(database: str) -> None:
    """The record store's files are the owner's alone: they hold every record.

    SQLite gives its -wal and -shm files the mode of the database file, so
    creating that one private first is enough; older ones are restricted.
    """
    fs.create_private(database)
    for suffix in ("-wal", "-shm", "-journal"):
        fs.restrict(database + suffix, layout.PRIVATE_FILE)
