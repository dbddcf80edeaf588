"""A file's way in, from what the loop sees of it to what its import did.

The loop (:mod:`datacenter.service.service`) looks at the root and keeps
time; :class:`Intake` tells :mod:`.readiness` and :mod:`.verdicts` what it
saw of each file, takes the complete ones (parents first) and the retries
due, imports them, up to :data:`BATCH` in one commit (a big file alone, so
that ``status`` shows it in hand with its progress), and turns each result
into what comes next: an imported file is counted and the pending file it
wrote waits for a change or its parents, a file rejected as a whole is left
alone until it changes, a passing failure (a full disk) is tried again later.
It keeps what ``status`` shows of that work: the file in hand, its meter,
the counts and the last imports; and which committed jobs were its own, so
that only other processes' imports wake pending files.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from datacenter.importing.csvinput import FatalCSVError, naming, only_a_header
from datacenter.importing.importer import Importer, Outcome, Request, UntouchedPendingError
from datacenter.importing.progress import Meter
from datacenter.importing.routing import UnroutedError
from datacenter.records.backend import UNAVAILABLE_ERRORS
from datacenter.records.claims import ClaimedError
from datacenter.records.store import Job
from datacenter.service.readiness import Hint, Readiness
from datacenter.service.verdicts import PENDING, REJECTED, RETRYING, UNROUTED, Note, Verdicts
from datacenter.service.voice import Voice
from datacenter.storage.identity import FileIdentity

BIG_FILE = 1 << 20  # the state file is written before a long import, to show it in hand
#: Files taken between two looks at the hints, the watch and the clock, and
#: imported together: one database commit and one journal group for all.
BATCH = 64
#: How often ``--once`` tries a file that failed for a passing reason (a full disk).
ONCE_TRIES = 3
_log = logging.getLogger(__name__)


class _Ready(NamedTuple):
    """A file about to be imported, and why (``" (retry)"`` or nothing).

    A pending file's retry (its parents came) is wanted as it is; anything
    else is imported only if it is no pending file as an import left it (see
    :meth:`Intake._untouched`) -- a file tried again because the moment
    failed (a full disk, the record store away) too: it may have become
    such a pending file meanwhile (another instance filed it there).
    """

    name: str
    processor: str
    mode: str
    ident: FileIdentity
    why: str
    as_it_is: bool = False


class Intake:
    """Takes the files that are complete, imports them, and acts on what each import did.

    *publish* writes the state file (``True``: now), *filing_failed* asks
    the loop to file committed imports again soon, *stopping* says whether
    the service takes no new file.
    """

    def __init__(self, importer: Importer, readiness: Readiness, verdicts: Verdicts,
                 voice: Voice, *, once: bool, publish: Callable[[bool], None],
                 filing_failed: Callable[[], None], stopping: Callable[[], bool]) -> None:
        self.importer, self.readiness, self.verdicts, self.voice = (
            importer, readiness, verdicts, voice)
        self.once = once
        self._publish, self._filing_failed, self._stopping = publish, filing_failed, stopping
        self.in_hand: str | None = None
        #: The progress of the file in hand, when it is imported alone.
        self.meter: Meter | None = None
        self.last_imports: deque[dict[str, Any]] = deque(maxlen=20)
        self.counts = {"imported": 0, REJECTED: 0, UNROUTED: 0}
        self._last_job = 0
        self._own_jobs: set[int] = set()
        self._once_failures: dict[str, int] = {}  # passing failures per file, under --once
        #: Why the record store does not answer, while it does not (said once).
        self.store_down: str | None = None

    @property
    def storage(self) -> str:
        return self.importer.storage

    # -- the ledger ----------------------------------------------------------------------------

    def skip_past_jobs(self) -> None:
        """The jobs committed so far are the past: only later ones wake pending files."""
        jobs = self.importer.recent_jobs(1)
        self._last_job = jobs[0].id if jobs else 0

    def check_ledger(self) -> None:
        """Imports committed by other processes (``datacenter import``) wake pending files."""
        jobs = self.importer.recent_jobs(50)
        for job in jobs:
            if job.id <= self._last_job:
                break
            if job.ok and job.id not in self._own_jobs:
                self.verdicts.parent_committed(job.processor)
        self._last_job = max([self._last_job, *(job.id for job in jobs[:1])])
        self._own_jobs = {j for j in self._own_jobs if j > self._last_job}

    # -- looking and taking --------------------------------------------------------------------

    def observe(self, name: str, hint: Hint, st: os.stat_result | None = None) -> None:
        """Where *name* stands now: waiting to settle, left alone, or gone."""
        try:
            st = st or os.lstat(os.path.join(self.storage, name))
        except OSError:  # deleted or moved away: neither waiting nor left alone any more
            self.readiness.forget(name)
            self.verdicts.forget(name)  # and so out of the state file, at its next write
            return
        ident = FileIdentity.of(st)
        if stat.S_ISLNK(st.st_mode):
            self.readiness.forget(name)
            if not self.verdicts.holds(name, ident):
                reason = f"{name}: a symbolic link (it could point anywhere on the machine)"
                self._leave(name, Note(REJECTED, ident, reason), "refused", fatal=False)
        elif not stat.S_ISREG(st.st_mode) or self.verdicts.holds(name, ident):
            self.readiness.forget(name)
        else:
            self.verdicts.forget(name)  # if there was one, a person changed the file since
            self.readiness.hint(name, ident, hint)

    def work(self, limit: int) -> None:
        """Import the files that settled (up to *limit*, 0: all), then the retries due."""
        ready = []
        for name in sorted(self.readiness.due(limit), key=self._depth):
            if self._stopping():
                return
            ready.extend(self._take(name))
        self._import_all(ready)
        retries = []
        for name in self.verdicts.due():
            if self._stopping():
                return
            retries.extend(self._retry(name))
        self._import_all(retries)
        if not self.readiness.due(1):  # the burst is over: its job folders go
            self.importer.drop_spare()

    def _depth(self, name: str) -> int:
        """How many parent processors *name*'s has: parents first means fewer pending rows."""
        seen: set[str] = set()
        try:
            processor = self.importer.route(name)[0]
        except UnroutedError:
            return 0
        while processor and processor not in seen:
            seen.add(processor)
            processor = next(iter(self.importer.parents_of(processor)), "")
        return len(seen)

    def _take(self, name: str) -> list[_Ready]:
        try:
            st = os.lstat(os.path.join(self.storage, name))
        except OSError:
            self.readiness.forget(name)
            return []
        ident = FileIdentity.of(st)
        if not stat.S_ISREG(st.st_mode):
            self.observe(name, Hint.CHANGED, st)
        elif self.readiness.confirm(name, ident):  # else it changed after all: settles anew
            if self.readiness.wait_for_rows(name, lambda: self._header_only(name)):
                return []
            self.readiness.forget(name)
            try:
                processor, mode = self.importer.route(name)
            except UnroutedError as error:
                self._leave(name, Note(UNROUTED, ident, str(error)), "not imported", fatal=False)
                return []
            return [_Ready(name, processor, mode, ident, "")]
        return []

    def _header_only(self, name: str) -> bool:
        """Does *name* hold a header and no rows yet? If it cannot be read, the import says why."""
        try:
            return only_a_header(os.path.join(self.storage, name))
        except OSError:  # a planted link too (PlantedLinkError)
            return False

    def _retry(self, name: str) -> list[_Ready]:
        note = self.verdicts.note(name)
        try:
            st = os.lstat(os.path.join(self.storage, name))
            processor, mode = self.importer.route(name)
        except (OSError, UnroutedError):
            self.verdicts.forget(name)
            return []
        if note is None or note.ident != FileIdentity.of(st):
            self.observe(name, Hint.CHANGED, st)  # a person changed it: a new file now
            return []
        return [_Ready(name, processor, mode, note.ident, " (retry)", note.kind == PENDING)]

    # -- importing -----------------------------------------------------------------------------

    def _import_all(self, ready: list[_Ready]) -> None:
        """Import in batches: one commit and one journal group for up to BATCH files.

        A big file goes alone, so that status shows it in hand while it takes
        its time; parents come before children, within a batch too.
        """
        batch: list[_Ready] = []
        for item in ready:
            if item.ident.size >= BIG_FILE:
                self._import_batch([item])
                continue
            batch.append(item)
            if len(batch) >= BATCH:
                self._import_batch(batch)
                batch = []
        self._import_batch(batch)

    def _import_batch(self, batch: list[_Ready]) -> None:
        if not batch or self._stopping():
            return
        self.in_hand = batch[0].name if len(batch) == 1 else f"{len(batch)} files"
        # Rows of one file make a rate and an ETA; a batch is many small files, soon done.
        self.meter = Meter(batch[0].name, batch[0].ident.size) if len(batch) == 1 else None
        self._publish(batch[0].ident.size >= BIG_FILE)
        try:
            # A file an account uploaded or fixed in the console is imported under its
            # name (asked of the record store: in the try, as the import is).
            requests = [Request(path, item.processor, item.mode,
                                unless_untouched=not item.as_it_is,
                                user=self.importer.dropped_by(path))
                        for item in batch for path in (os.path.join(self.storage, item.name),)]
            results: list[Outcome | Exception] = self.importer.import_many(
                requests, progress=self._progress if self.meter is not None else None,
                keep_folders=True)
        except Exception as error:  # after the commit: recovery files them next time
            results = [error] * len(batch)
        finally:
            self.in_hand = self.meter = None
            self._publish(False)
        self._store_answers(results)
        with self.importer.held_log():
            for item, result in zip(batch, results, strict=True):
                self._handle(item, result)
        if any(isinstance(r, OSError) or (isinstance(r, Outcome) and not r.filed)
               for r in results):
            self._filing_failed()

    def _store_answers(self, results: list[Outcome | Exception]) -> None:
        """Say once that the record store does not answer, and once that it does again."""
        down = next((r for r in results if isinstance(r, UNAVAILABLE_ERRORS)), None)
        if down is not None and self.store_down is None:
            self.store_down = str(down).strip().splitlines()[0] if str(down).strip() else "?"
            self.voice.warn(f"the record store does not answer ({self.store_down}); "
                            f"{len(results)} file(s) stay where they are and are tried again "
                            "with back-off")
        elif down is None and self.store_down is not None and any(
                isinstance(r, Outcome) for r in results):
            self.store_down = None
            self.importer.log("service: the record store answers again; going on")

    def _progress(self, rows: int, position: int) -> None:
        """The importer's report on the file in hand (every 10,000 rows).

        Published at most a few times a second (each write of the state file
        is durable), but at once when the first rows are in: from then on
        ``status`` shows the file with its rows, rate and ETA.
        """
        meter = self.meter
        if meter is None:
            return
        first = rows > 0 and meter.rows == 0
        meter.update(rows, position)
        self._publish(first)

    # -- what came of it -----------------------------------------------------------------------

    def _handle(self, item: _Ready, result: Outcome | Exception) -> None:
        name, ident = item.name, item.ident
        if isinstance(result, Outcome):
            self._imported(name, result, item.why)
        elif isinstance(result, UntouchedPendingError):
            self._untouched(name, ident, result.job)
        elif isinstance(result, ClaimedError):
            # Another instance has it in hand: looked at again later, when it is
            # filed away (then gone) or that instance is gone (then taken over).
            self.readiness.forget(name)
            self.verdicts.failed_for_now(name, Note(RETRYING, ident, str(result)))
        elif isinstance(result, UNAVAILABLE_ERRORS) and not self.once:
            # Said once for all (see _store_answers); the file stays where it is.
            self.verdicts.failed_for_now(name, Note(RETRYING, ident, naming(
                f"the record store does not answer: {self.store_down}", name)))
        elif isinstance(result, FatalCSVError):
            self._leave(name, Note(REJECTED, ident, naming(result, name)), "rejected")
        elif not os.path.lexists(os.path.join(self.storage, name)):
            # Taken by someone else (`datacenter import`?), deleted, or filed away by
            # recovery of a batch whose commit went through.
            self.voice.warn(f"{name} went away before it was imported ({result})")
        elif isinstance(result, (OSError, *UNAVAILABLE_ERRORS)):
            self._failed_for_now(name, ident, naming(f"{type(result).__name__}: {result}", name))
        else:
            _log.error("datacenter: importing %s failed", name, exc_info=result)
            reason = naming(f"{type(result).__name__}: {result}", name)
            self._leave(name, Note(REJECTED, ident, reason), "rejected")

    def _failed_for_now(self, name: str, ident: FileIdentity, reason: str) -> None:
        """Nothing was imported (or recovery finishes it): the file is fine, the moment was not.

        It is tried again later, by itself; ``--once`` gives up after a few
        tries, so that a failure that lasts cannot keep it running.
        """
        if self.once:
            self._once_failures[name] = tries = self._once_failures.get(name, 0) + 1
            if tries >= ONCE_TRIES:
                self.verdicts.forget(name)
                self.voice.exit_code = 1
                self.voice.warn(f"{reason}; left for the next run")
                self.voice.say(f"datacenter: error: {reason}; left for the next run", error=True)
                return
        wait = self.verdicts.failed_for_now(name, Note(RETRYING, ident, reason))
        self.voice.warn(f"{reason}; trying again in {wait:.0f} s")

    def _imported(self, name: str, outcome: Outcome, why: str) -> None:
        self.counts["imported"] += 1
        self._own_jobs.add(outcome.job)
        self.last_imports.appendleft({
            "source": name, "processor": outcome.processor, "mode": outcome.mode,
            "rows": outcome.rows, "ok": outcome.ok, "failed": outcome.failed,
            "pending": outcome.pending, "job": outcome.job, "at": time.time()})
        self.voice.say(outcome.summary())
        tail = f" -> {outcome.pending}" if outcome.pending else ""
        self.importer.log(f"service: {name}{why}: {outcome.processor}/{outcome.mode}, "
                          f"{outcome.rows} rows, {outcome.ok} ok, {outcome.failed} failed{tail}")
        if outcome.pending != name:
            self.verdicts.forget(name)
        if outcome.pending:
            self._wrote_pending(outcome.pending, outcome)
        if outcome.ok:
            self.verdicts.parent_committed(outcome.processor)

    def _wrote_pending(self, name: str, outcome: Outcome) -> None:
        try:
            ident = FileIdentity.of(os.lstat(os.path.join(self.storage, name)))
        except OSError:
            return
        parents = self.importer.parents_of(outcome.processor)
        reason = f"{name}: {outcome.failed} row(s) failed; fix them there, or import parents"
        self.verdicts.wrote_pending(name, Note(PENDING, ident, reason, tuple(parents)),
                                    progressed=outcome.ok > 0)
        self.readiness.forget(name)

    def _untouched(self, name: str, ident: FileIdentity, job: Job) -> None:
        """A pending file as an import left it (``datacenter import``, the API, a past run).

        Importing it again would only fail its rows again: like a pending
        file the service wrote itself, it waits for a person's change or for
        its parents, and is retried at once if a parent came in since.
        """
        parents = tuple(self.importer.parents_of(job.processor))
        reason = f"{name}: {job.failed} row(s) failed; fix them there, or import parents"
        self.verdicts.wrote_pending(name, Note(PENDING, ident, reason, parents))
        if self.importer.helped_since(job):
            self.verdicts.wake(name)

    def _leave(self, name: str, note: Note, what: str, fatal: bool = True) -> None:
        """Leave *name* alone until it changes, and say why, once."""
        self.verdicts.leave(name, note)
        self.readiness.forget(name)
        self.counts[note.kind] += 1
        self.importer.log(f"service: {what}: {note.reason}; left where it is until it "
                          "changes", level=logging.ERROR if fatal else logging.WARNING)
        if fatal and self.once:
            self.voice.exit_code = 1
        self.voice.say(f"datacenter: {'error' if fatal else what}: {note.reason}", error=True)
