"""Filing committed imports away: from their job folders into the storage's folders.

An import that committed left everything in its job folder
``.datacenter/jobs/<id>/``; :class:`Filing` asks the storage to file it
(``DataCenter.distribute``, Kofa's ``distProcessedFiles``): backups join
``deleted/``/``graduated/``, the finished rows their finished file, the
failed rows the pending file, the source ``finished/`` or ``unfinished/``.
Each step consumes its input in an all-or-nothing journal group, so the
ledger rows not yet marked distributed say what is left, and recovery does
it. A job whose filing cannot be done without harm is held for a person.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
from collections.abc import Callable, Sequence

from datacenter.importing.outputs import backups_in
from datacenter.records.backend import Store
from datacenter.records.store import Job
from datacenter.storage import fs, layout
from datacenter.storage.center import DataCenter
from datacenter.storage.distribution import OutputNameError, destinations, kept_aside
from datacenter.storage.distribution import Request as DistRequest
from datacenter.storage.identity import FileIdentity
from datacenter.storage.journal import SetAsideError


class Filing:
    """Files the jobs of one storage's committed imports; the importer owns one."""

    def __init__(self, dc: DataCenter, store: Store,
                 guard: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
                 keep: Callable[[list[str]], set[str]] | None = None) -> None:
        """*guard* is the storage's lock (the importer's: with several instances, theirs
        too); *keep* says which job folders with no committed job are in use elsewhere."""
        self.dc = dc
        self.store = store
        self._guard = guard or (lambda: self.dc.lock)
        self._keep = keep or (lambda names: set())

    def finish_jobs(self, jobs: Sequence[Job], keep_folders: bool = False) -> list[Job]:
        """File away what committed imports left in their job folders.

        With *keep_folders* the job folders are left in place once emptied
        (the importer that made them reuses them); else they go.

        Every step consumes its input atomically, so this can run again
        after any crash and does only what is left. The distributions share
        journal groups where they can; if that fails, each job is tried
        alone, so one that cannot be filed does not hold up the others.
        Returns the jobs still not filed (each failure is logged), those
        held for a person included (see :meth:`held`).
        """
        # A pending file's own chain first: it replaces that file, and a later
        # job in the batch may have failed rows to add to it.
        jobs = sorted(jobs, key=lambda job: not job.source.endswith(".pending.csv"))
        held = self.held(jobs)
        todo = [job for job in jobs if job.id not in held]
        pending: dict[int, str | None] = {}
        try:
            requests = [self.request(job, keep_folders) for job in todo]
            # Named before the filing: it changes what the names are (a chain begins).
            pending = {job.id: _pending_name(self.dc.storage, request, job)
                       for job, request in zip(todo, requests, strict=True)}
            self.dc.distribute([r for r in requests if r is not None])
            failed: list[Job] = []
        except Exception:
            held |= self.held(todo)  # a group set aside holds the part that failed
            failed = [job for job in todo if job.id not in held and not self._file_alone(job)]
            held |= {job.id for job in failed if self.is_held(job)}
        filed = [job.id for job in todo if job not in failed and job.id not in held]
        self.store.mark_distributed(filed, _left_at_root(self.dc.storage, pending, filed))
        return [job for job in jobs if job.id in held or job in failed]

    def _file_alone(self, job: Job) -> bool:
        try:
            request = self.request(job)
            if request is not None:
                self.dc.distribute([request])
        except (OutputNameError, SetAsideError) as error:
            # Trying again cannot help: a person decides (see held).
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

    def held(self, jobs: Sequence[Job]) -> set[int]:
        """The ids of *jobs* whose filing waits for a person.

        A job is held when its filing cannot be done and trying again could
        do harm: its outputs cannot be named (an earlier version committed
        it), or the journal set aside a group that was filing it, half
        applied perhaps (planning it again could append its rows twice). Its
        ledger row stays not distributed: its rows are in the store exactly
        once, its outputs wait in its job folder with a note
        (``needs-a-person.txt``), and its source, if still at the root, is
        not imported again (``HeldError``). A person files the outputs
        by hand, takes the source away, and deletes the job folder; the next
        opening then marks the job filed. (Putting a set-aside intent back is
        no remedy: the other jobs of its group were filed again since, and an
        append planned before later ones is refused, see ``fs.append_file``.)
        """
        held = {job.id for job in jobs if self.is_held(job)}
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

    def is_held(self, job: Job) -> bool:
        return os.path.exists(os.path.join(self.dc.storage, job.workdir, layout.HELD))

    def _hold(self, job: Job, reason: str) -> None:
        """Leave *job* unfiled for a person, with a note in its job folder, said once."""
        workdir = os.path.join(self.dc.storage, job.workdir)
        text = f"{job.source}: imported (job {job.id}), but filing it away needs a person: {reason}"
        fs.makedirs(workdir)
        fs.atomic_write(os.path.join(workdir, layout.HELD), (text + "\n").encode("utf-8"))
        self.dc.log(f"{text}; its outputs wait in {job.workdir}", level=logging.ERROR)

    def request(self, job: Job, keep_folder: bool = False) -> DistRequest | None:
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
                           move_orig=same, pending_dest=keep_aside, job=job.id,
                           keep_folder=keep_folder)

    def unfiled(self) -> list[Job]:
        """This storage's committed imports not filed yet, newest first (another storage
        sharing the record store files its own)."""
        return self.store.jobs(undistributed=True, storage=os.path.realpath(self.dc.storage))

    def file_unfiled(self) -> list[Job]:
        """File committed imports whose filing failed so far; returns those still unfiled.

        Cheap when there is nothing to do (no lock is taken then).
        """
        if not self.unfiled() and not self.dc.journal.pending_intents():
            return []
        with self._guard():
            return [job for job in self.finish_unfiled() if not self.is_held(job)]

    def finish_unfiled(self) -> list[Job]:
        """File committed imports that are not yet; returns those that still cannot be.

        The caller holds the storage's lock.
        """
        # Interrupted moves first: a source may be on its way to this root.
        self.dc.recover()
        jobs = self.unfiled()
        return self.finish_jobs(list(reversed(jobs))) if jobs else []

    def recover(self) -> int:
        """Finish every committed import; drop what uncommitted ones left.

        Returns how many committed imports were filed away now.
        """
        with self._guard():
            jobs = self.unfiled()
            stuck = self.finish_unfiled()
            folder = layout.state_path(self.dc.storage, layout.JOBS)
            found = os.listdir(folder) if os.path.isdir(folder) else []
            # Who is alive is asked before which jobs committed: an instance
            # found dead cannot commit any more, so no folder of a job that
            # commits meanwhile is taken for garbage.
            kept = self._keep(found) if found else set()
            owned = {os.path.basename(job.workdir)
                     for job in (self.unfiled() if kept else stuck)}
            for name in found:
                if name not in owned and name not in kept:
                    fs.rmtree(os.path.join(folder, name))
        filed = len(jobs) - len(stuck)
        if filed:
            self.dc.log(f"recovered: {filed} committed import(s) filed away")
        return filed


def _pending_name(storage: str, request: DistRequest | None, job: Job) -> str | None:
    """The pending file at the root that filing *request* writes, or None (none, or aside).

    No request left (a kill came after the filing's journal group committed,
    before the ledger said so; recovery applied the group): the pending file
    that group wrote, for a job with failed rows. Recorded as the import's,
    it is not imported again as a person's new file.
    """
    if request is None and job.failed:
        return os.path.basename(destinations(storage, os.path.join(storage, job.source),
                                             job.mode).pending)
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
