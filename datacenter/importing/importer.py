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
   not yet marked distributed. :class:`.Filing` (:mod:`.filing`) does this
   half; the :class:`Importer` owns one and asks it.

The requests, outcomes and refusals are in :mod:`.outcomes`, and are
importable from here too. With PostgreSQL the importer is one instance of
several on its storage (:mod:`.sharing`): files are claimed before they are
parsed, parsed and committed outside the storage's lock, and filed under it.

Longer than 400 lines because the pipeline's two ways (the only process on
an SQLite storage, one instance of several on a PostgreSQL one) share every
step but the locking around them, and read best side by side.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence

from datacenter.config import Config
from datacenter.importing.csvinput import FatalCSVError, naming
from datacenter.importing.filing import Filing
from datacenter.importing.jobfolders import JobFolders
from datacenter.importing.outcomes import (
    HeldError,
    NameTooLongError,
    Outcome,
    Plan,
    Request,
    UnfiledError,
    UntouchedPendingError,
    failed,
    not_yet,
)
from datacenter.importing.outputs import ImportResult
from datacenter.importing.plugins import Processors, UnknownProcessorError, resolve_processors
from datacenter.importing.processors import BatchProcessor
from datacenter.importing.routing import Router, UnroutedError
from datacenter.importing.sharing import NOT_NOW, Sharing
from datacenter.records.backend import UNAVAILABLE_ERRORS, is_url, open_store
from datacenter.records.claims import ClaimBook
from datacenter.records.postgres import PostgresStore
from datacenter.records.store import Job
from datacenter.storage import distribution, fs, layout
from datacenter.storage.center import DataCenter
from datacenter.storage.distribution import OutputNameError, destinations
from datacenter.storage.identity import FileIdentity
from datacenter.storage.logs import default_user

# Names of the pipeline's requests and answers, importable from here as ever.
__all__ = ["HeldError", "Importer", "NameTooLongError", "Outcome", "Request", "UnfiledError",
           "UnroutedError", "UntouchedPendingError"]

_log = logging.getLogger(__name__)


class Importer:
    """Imports files into one storage and its record store."""

    def __init__(self, conf: Config, datacenter: DataCenter | None = None,
                 processors: Processors | None = None, kind: str = "import") -> None:
        """An importer of *conf*'s storage (or *datacenter*), recovering what a kill left.

        Everything the config says is checked before the storage is touched;
        a caller that opens the storage itself resolves the *processors* first.
        With PostgreSQL it is one *kind* of instance (``serve``, ``import``)
        among any number on the storage (:mod:`datacenter.records.claims`).
        """
        self.conf = conf
        self.processors = processors if processors is not None else resolve_processors(conf)
        self.schemas = self.processors.schemas
        self.router = Router(conf.routes, self.processors.names())
        self.dc = datacenter or DataCenter(conf.storage)
        if not is_url(conf.database):
            fs.makedirs(os.path.dirname(os.path.abspath(conf.database)))
            _private_store(conf.database)
        self.store = open_store(conf.database, self.schemas)
        self.claims: ClaimBook | None = None
        try:
            self._open(conf, kind)
        except BaseException:  # no phantom instance beating for the rest of the process
            self.close()
            raise

    def _open(self, conf: Config, kind: str) -> None:
        #: This process as one instance among several on the storage (PostgreSQL),
        #: or None: with SQLite, one process works on a storage at a time.
        self.claims = (ClaimBook(conf.database, self.dc.storage, conf.cluster.lease, kind)
                       if isinstance(self.store, PostgresStore) else None)
        self.sharing = (Sharing(self.claims, self.dc, self.store)
                        if self.claims is not None and isinstance(self.store, PostgresStore)
                        else None)
        #: Files the committed imports away (the pipeline's second half).
        self.filing = Filing(self.dc, self.store, guard=self.locked, keep=self._live_folder)
        #: Its imports' job folders: made durable per batch, reused in a burst; named
        #: after this instance when several share the storage (recovery sweeps only
        #: the job folders of instances that are gone).
        sharing = self.sharing
        self.folders = JobFolders(lambda: self.dc.storage,
                                  (lambda: sharing.folder_prefix) if sharing is not None
                                  else lambda: "")
        # A relocation made through this storage takes its ledger rows along.
        self.dc.subscribe(self._storage_moved)
        #: Committed imports filed away when this importer was opened.
        self.recovered = self.recover()

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.dc.unsubscribe(self._storage_moved)
        if hasattr(self, "folders"):  # else its opening failed before them
            self.drop_spare()
        if self.claims is not None:
            self.claims.close()
        self.store.close()

    def drop_spare(self) -> None:
        """Remove the job folders kept for reuse (see :meth:`import_many`)."""
        self.folders.drop()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The storage's operation lock; with several instances, their advisory lock too.

        The file lock holds the processes of one machine; the advisory lock
        of PostgreSQL those of all machines sharing the storage, so that no
        two instances apply or forget the same intent of the journal.
        """
        with self.dc.lock:
            if self.sharing is None:
                yield
                return
            with self.sharing.locked():
                yield

    def _live_folder(self, names: list[str]) -> set[str]:
        """The job folders among *names* of other live instances (imports in progress)."""
        return self.sharing.live_folders(names) if self.sharing is not None else set()

    def _storage_moved(self, old: str, new: str) -> None:
        self.folders.forget()  # moved along: the new root's recovery sweeps them
        self.store.relabel_storage(old, new)

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

    def held_log(self) -> contextlib.AbstractContextManager[None]:
        """Lines logged inside are written together when it ends (see :mod:`.logs`)."""
        return self.dc.held_log()

    def recent_jobs(self, limit: int) -> list[Job]:
        """The last *limit* imports that committed, newest first."""
        return self.store.jobs(limit=limit)

    def dropped_by(self, path: str) -> str | None:
        """The account that put the file at *path* there as it is now (an upload, a fix in
        the console), or None: it is recorded under the service's user then."""
        ident = FileIdentity.at(path)
        if ident is None:
            return None
        return self.store.dropped_by(os.path.basename(path), ident.to_ledger(),
                                     os.path.realpath(self.dc.storage))

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
                    progress: Callable[[int, int], None] | None = None, *,
                    keep_folders: bool = False) -> list[Outcome | Exception]:
        """Import several files in one transaction, and file them in one journal group.

        Each file still happens entirely or not at all: it has a savepoint of
        its own, so a file that cannot be imported is rolled back alone and
        its error takes its place in the result. Sharing the commit and the
        filing is what makes a burst of small files cheap (one fsync of the
        database and of each folder, not one per file). With *keep_folders*
        the emptied job folders are kept for the next call to reuse (a
        service in a burst), until :meth:`drop_spare` or :meth:`close`.
        """
        user = user or default_user()
        with self.dc.held_log(), layout.name_limits_kept():
            return self._import_many(requests, user, progress, keep_folders)

    def _import_many(self, requests: Sequence[Request], user: str,
                     progress: Callable[[int, int], None] | None, keep_folders: bool,
                     ) -> list[Outcome | Exception]:
        users = [request.user or user for request in requests]
        planned = [self._planned(request, who) for request, who in zip(requests, users,
                                                                          strict=True)]
        if self.sharing is not None:
            return self._import_shared(self.sharing, requests, planned, users, progress)
        with self.dc.lock:
            try:
                self.dc.check_folders()  # a folder linked away since the storage was opened
            except fs.PlantedLinkError as error:
                return [error for _ in requests]
            planned = self._not_filed_yet(planned, requests)
            staged = self._commit_imports(planned, users, progress)
            jobs = [item[0] for item in staged if isinstance(item, tuple)]
            left = {job.id for job in self.filing.finish_jobs(jobs, keep_folders)}
            if keep_folders:
                self.folders.keep([job for job in jobs if job.id not in left])
        return [item if isinstance(item, Exception)
                else self._outcome(*item, filed=item[0].id not in left) for item in staged]

    def _not_filed_yet(self, planned: list[Plan | Exception],
                       requests: Sequence[Request]) -> list[Plan | Exception]:
        """The plans, after filing what committed before (under the storage's lock)."""
        # An earlier import whose filing failed comes first; a source whose
        # import committed but could not be filed yet must not import twice.
        unfiled = {job.source: (job, self.filing.is_held(job))
                   for job in self.filing.finish_unfiled()}
        return [self._untouched(not_yet(plan, unfiled), request)
                for plan, request in zip(planned, requests, strict=True)]

    def _import_shared(self, sharing: Sharing, requests: Sequence[Request],
                       planned: list[Plan | Exception], users: list[str],
                       progress: Callable[[int, int], None] | None,
                       ) -> list[Outcome | Exception]:
        """:meth:`import_many` as one instance of several (PostgreSQL).

        Each file is claimed first (a file another instance has in hand is
        its, :class:`ClaimedError`); the rows are parsed and committed
        without the storage's lock, the commit confirming each claim; the
        journal's part (filing what committed) is done under the lock.
        """
        planned = sharing.claim(planned)
        try:
            with self.locked():
                try:
                    self.dc.check_folders()
                except fs.PlantedLinkError as error:
                    return [error for _ in requests]
                sharing.settle()
                planned = self._not_filed_yet(planned, requests)
            staged = self._commit_imports(planned, users, progress)
            jobs = [item[0] for item in staged if isinstance(item, tuple)]
            with self.locked():
                # Another instance may have filed them meanwhile (recovery files them all).
                unfiled = {job.id for job in self.filing.unfiled()}
                left = {job.id for job in self.finish_jobs([j for j in jobs if j.id in unfiled])}
        finally:
            sharing.release()
        processors = sorted({job.processor for job in jobs if job.ok})
        if processors:
            sharing.claims.notify({"event": "committed", "processors": processors})
        return [item if isinstance(item, Exception)
                else self._outcome(*item, filed=item[0].id not in left) for item in staged]

    def _untouched(self, plan: Plan | Exception, request: Request) -> Plan | Exception:
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
        job = self.store.left_pending(os.path.basename(path), os.path.realpath(self.dc.storage))
        ident = FileIdentity.at(path)
        if job is None or ident is None or FileIdentity.from_ledger(job.pending_ident) != ident:
            return None
        return job

    def helped_since(self, job: Job) -> bool:
        """Did an import into one of *job*'s parent processors get rows in after it?"""
        return self.store.committed_into(self.parents_of(job.processor), after=job.id)

    def _planned(self, request: Request, user: str) -> Plan | Exception:
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
            batch = self.processor(processor)
            batch.sync_outputs = False  # the batch's job folders are made durable at once
            return path, batch, mode
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
        self, planned: list[Plan | Exception], users: list[str],
        progress: Callable[[int, int], None] | None,
    ) -> list[tuple[Job, ImportResult, BatchProcessor] | Exception]:
        staged: list[tuple[Job, ImportResult, BatchProcessor] | Exception] = []
        try:
            with self.store.transaction():
                for plan, user in zip(planned, users, strict=True):
                    staged.append(plan if isinstance(plan, Exception)
                                  else self._stage_one(*plan, user, progress))
                self.folders.make_durable([d[0] for d in staged if isinstance(d, tuple)])
        except BaseException as error:
            # With a server, a connection lost at the commit hides whether it
            # happened: the job folders wait until the ledger says (Sharing.settle).
            doubt = self.sharing is not None and isinstance(error, UNAVAILABLE_ERRORS)
            for done in staged:  # the shared commit failed: none of them happened
                if isinstance(done, tuple) and self.sharing is not None and doubt:
                    self.sharing.doubt(done[0])
                elif isinstance(done, tuple):
                    fs.rmtree(os.path.join(self.dc.storage, done[0].workdir))
            if not isinstance(error, Exception):
                raise
            return [failed(plan, staged[n] if n < len(staged) else None, error)
                    for n, plan in enumerate(planned)]
        for done in staged:
            if isinstance(done, tuple):
                job, result, batch = done
                batch.log_result(os.path.join(self.dc.storage, job.source), job.mode,
                                 job.user, result)
        return staged

    def _stage_one(self, path: str, batch: BatchProcessor, mode: str, user: str,
                   progress: Callable[[int, int], None] | None,
                   ) -> tuple[Job, ImportResult, BatchProcessor] | Exception:
        """One file's rows and ledger row, in a savepoint of the shared transaction."""
        ident, started = FileIdentity.at(path), time.time()
        if ident is None:
            return FileNotFoundError(errno.ENOENT, "filed away by an earlier import", path)
        workdir = ""
        try:
            workdir = self.folders.make()
            with self.store.savepoint():
                job_id = self.store.next_job_id()  # its rows name it (find says so)
                with self.store.provenance(job_id):
                    result = batch.import_rows(path, None, mode, True, workdir, progress)
                fields = dict(
                    source=os.path.basename(path), sha256=result.sha256, processor=batch.name,
                    mode=mode, user=user, rows=result.rows, ok=result.ok, failed=result.failed,
                    outcome="finished" if not result.failed else "pending", started=started,
                    workdir=os.path.relpath(workdir, self.dc.storage), ident=ident.to_ledger(),
                    finished=time.time(), storage=os.path.realpath(self.dc.storage),
                )
                if self.sharing is not None:
                    self.sharing.confirm(path, job_id, workdir)
                self.store.record_job(id=job_id, **fields)
        except Exception as error:  # this file's: its savepoint undid its rows
            if workdir:
                fs.rmtree(workdir)
            if isinstance(error, FatalCSVError):
                self.dc.log(f"rejected: {naming(error, path)}", user=user, level=logging.ERROR)
            elif not isinstance(error, (OSError, *NOT_NOW)):
                _log.error("importing %s failed", path, exc_info=error)
            return error
        except BaseException:
            if workdir:
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

    # -- filing (see :mod:`.filing`) -------------------------------------------------

    def finish_jobs(self, jobs: Sequence[Job]) -> list[Job]:
        """File away what committed imports left in their job folders.

        Returns the jobs still not filed, those held for a person included
        (see :meth:`.Filing.finish_jobs`).
        """
        return self.filing.finish_jobs(jobs)

    def file_unfiled(self) -> list[Job]:
        """File committed imports whose filing failed so far; returns those still unfiled.

        The service calls this by itself now and then, so that a filing that
        failed for a while (a full disk, an archive disk gone) is finished
        without waiting for the next import. Cheap when there is nothing to do.
        """
        if self.sharing is not None and self.sharing.in_doubt:
            with self.locked():
                self.sharing.settle()
        return self.filing.file_unfiled()

    def recover(self) -> int:
        """Finish every committed import; drop what uncommitted ones left.

        Returns how many committed imports were filed away now. With
        PostgreSQL the instances found dead are ended first (their rows, and
        the claims of those of this machine).
        """
        if self.claims is not None:
            self.claims.reap()
        return self.filing.recover()


def _private_store(database: str) -> None:
    """The record store's files are the owner's alone: they hold every record.

    SQLite gives its -wal and -shm files the mode of the database file, so
    creating that one private first is enough; older ones are restricted.
    """
    fs.create_private(database)
    for suffix in ("-wal", "-shm", "-journal"):
        fs.restrict(database + suffix, layout.PRIVATE_FILE)
