"""Backups of the records an import removes: ``deleted/`` and ``graduated/``.

Records are backed up before an import removes them, into
``deleted/<processor>.csv`` (or ``graduated/``), with the finished files'
merge rules (new columns are added at the end), as one journal group.
:class:`~datacenter.storage.center.DataCenter` keeps Kofa's names for these
(``backupRecords``, ``backup_file``) and delegates here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from datacenter.storage import csvmerge, distribution, fs, layout, links
from datacenter.storage.journal import Group, Journal, run_group
from datacenter.storage.lock import StorageLock
from datacenter.storage.steps import Cleanup

#: Stages the rows to back up in a group; returns the staged file.
Stage = Callable[[Group], str]


class Storage(Protocol):
    """What a backup needs of the storage it is made in (a DataCenter)."""

    @property
    def storage(self) -> str: ...

    @property
    def lock(self) -> StorageLock: ...

    @property
    def journal(self) -> Journal: ...

    def check_folders(self) -> None: ...

    def log(self, message: str, user: str | None = None, level: int = logging.INFO) -> None: ...


def back_up_records(dc: Storage, processor: str, rows: Iterable[Mapping[str, object]],
                    graduated: bool = False) -> str:
    """Append *rows* to the processor's backup, durably; returns its path."""
    records = list(rows)

    def stage(group: Group) -> str:
        staged = group.staged_path("rows.csv")
        csvmerge.write_records(staged, records)
        return staged

    return back_up(dc, processor, stage, graduated, len(records))


def back_up_file(dc: Storage, processor: str, rows_file: str, graduated: bool = False,
                 consume: bool = False) -> str:
    """Like :func:`back_up_records`, with the rows in a CSV file (removed with *consume*)."""
    def stage(group: Group) -> str:
        if consume:
            return rows_file
        # A file that stays would keep a second name of the backup: copy it.
        staged = group.staged_path("rows.csv")
        fs.copy_file(rows_file, staged, sync=False)
        return staged

    return back_up(dc, processor, stage, graduated, None,
                   consumed=rows_file if consume else None)


def back_up(dc: Storage, processor: str, stage: Stage, graduated: bool,
            count: int | None, consumed: str | None = None) -> str:
    """Merge what *stage* stages into the backup of *processor*, under the storage's lock.

    *count* rows (None: not known; 0: nothing is done), *consumed* removed in
    the same group. Returns the backup file's path.
    """
    layout.plain_name(processor, "processor name")
    folder = layout.GRADUATED if graduated else layout.DELETED
    dest = os.path.join(dc.storage, folder, f"{processor}.csv")
    overlong = layout.overlong(dest)
    if overlong is not None:
        raise distribution.OutputNameError(
            f"{processor} records: name too long for the backup they need: {overlong}")
    if count == 0:
        return dest

    def warn(message: str) -> None:
        dc.log(message, level=logging.WARNING)

    with dc.lock:
        dc.check_folders()
        dest, warning = links.steer(dest, ".csv", "the records")
        if warning is not None:
            warn(warning)

        def plan(group: Group) -> None:
            csvmerge.plan_merge(group, stage(group), dest, "backup.csv")
            if consumed is not None:
                group.add(Cleanup(files=(consumed,)))

        run_group(dc.journal, plan, log=warn)
    where = os.path.relpath(dest, dc.storage)
    what = f"{count} {processor} record(s)" if count is not None else f"{processor} records"
    dc.log(f"backed up: {what} to {where}")
    return dest
