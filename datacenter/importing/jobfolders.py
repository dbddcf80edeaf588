"""The job folders of one importer: made for each import, durable once per batch.

An import writes its finished, pending and backup files into a folder of
its own, ``.datacenter/jobs/<id>/``, which must be on the disk, with its
files, before the import commits (its ledger row names the folder). For a
burst of small files the folder costs more than the rows: making and
removing one per file, and an fsync of each file, folder and of ``jobs/``
one after the other. So:

* the files and folders of a whole batch are made durable in one step,
  just before the batch's commit (:meth:`JobFolders.make_durable`: their
  fsyncs issued together, ``jobs/`` once);
* during a burst the folders that filing emptied are kept and reused
  (:meth:`JobFolders.keep`), instead of one folder made and removed for
  each file: freed inodes also slow down every new one on some
  filesystems. What a crash leaves is swept by recovery, as any job folder
  no committed job owns.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Sequence

from datacenter.records.store import Job
from datacenter.storage import fs, layout

#: Empty job folders kept for reuse, at most.
SPARE_FOLDERS = 256


class JobFolders:
    """Job folders in ``jobs/`` of the storage that *storage()* names now."""

    def __init__(self, storage: Callable[[], str],
                 prefix: Callable[[], str] = lambda: "") -> None:
        self._storage = storage
        #: Starts the name of every new folder (an instance's, when several share one),
        #: asked at each: an instance silent past its lease carries on under a new id.
        self.prefix = prefix
        #: Names of empty folders in ``jobs/`` kept for the next imports.
        self._spare: list[str] = []

    @property
    def jobs(self) -> str:
        return layout.state_path(self._storage(), layout.JOBS)

    def make(self) -> str:
        """A job folder for one import: a kept one, or a new one (not yet durable)."""
        jobs = self.jobs
        name = self._spare.pop() if self._spare else self.prefix() + uuid.uuid4().hex
        workdir = os.path.join(jobs, name)
        fs.makedirs(jobs)
        fs.mkdir(workdir, sync=False)  # durable with the batch's (make_durable)
        return workdir

    def make_durable(self, jobs: Sequence[Job]) -> None:
        """Every file of the *jobs*' folders, their entries, and theirs in ``jobs/``, durable.

        Called inside the transaction, just before its commit: the commit
        point needs every output on the disk. Done once for the batch, not
        for each file (one step: :func:`datacenter.storage.fs.sync_all`), and
        ``jobs/`` is fsynced once, not once per job.
        """
        if not jobs:
            return
        workdirs = [os.path.join(self._storage(), job.workdir) for job in jobs]
        files = [os.path.join(workdir, name) for workdir in workdirs
                 for name in sorted(os.listdir(workdir))]
        fs.sync_all(files, [*workdirs, self.jobs])

    def keep(self, filed: Sequence[Job]) -> None:
        """Keep the folders of *filed* jobs that their filing left empty, for reuse."""
        for job in filed:
            if len(self._spare) >= SPARE_FOLDERS:
                return
            workdir = os.path.join(self._storage(), job.workdir)
            try:
                empty = not os.listdir(workdir)
            except OSError:
                continue
            if empty:
                self._spare.append(os.path.basename(workdir))

    def forget(self) -> None:
        """Keep none (the storage moved with them: its recovery sweeps them)."""
        self._spare.clear()

    def drop(self) -> None:
        """Remove the kept folders.

        Those another process's recovery swept already are gone; one that
        is not empty is left to recovery.
        """
        if not self._spare:
            return
        jobs = self.jobs
        for name in self._spare:
            with contextlib.suppress(OSError):
                fs.rmdir(os.path.join(jobs, name), sync=False)
        self._spare.clear()
