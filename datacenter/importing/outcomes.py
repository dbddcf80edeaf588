"""What an import is asked and what it answers: requests, outcomes and the refusals.

:class:`Request` is a file to import and :class:`Outcome` what importing it
did; the errors here are the pipeline's own answers for one file (a name
that cannot fit, a source imported already whose filing waits or failed, a
pending file nobody changed). :func:`not_yet` and :func:`failed` turn a
planned import into its answer when it cannot go ahead.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from datacenter.errors import DataCenterError
from datacenter.importing.csvinput import FatalCSVError
from datacenter.importing.processors import BatchProcessor
from datacenter.records.store import Job

#: A file ready to import: its path, its processor and the mode.
Plan = tuple[str, BatchProcessor, str]


@dataclass(frozen=True)
class Request:
    """A file to import; processor and mode default to the routing.

    *unless_untouched*: a pending file exactly as an import's filing left
    it is not imported (the result is :class:`UntouchedPendingError`): the
    service takes only what someone changed; a retry it wants says False.
    *user*: who the import is recorded under, when not the batch's (the
    account that uploaded or fixed the file in the console).
    """

    path: str
    processor: str | None = None
    mode: str | None = None
    unless_untouched: bool = False
    user: str | None = None


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


def not_yet(plan: Plan | Exception, unfiled: dict[str, tuple[Job, bool]]
            ) -> Plan | Exception:
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


def failed(plan: object, done: object, error: Exception) -> Exception:
    """What a file's result is when the transaction it shared failed."""
    if isinstance(done, Exception):
        return done  # its own failure, found before
    return plan if isinstance(plan, Exception) else error
