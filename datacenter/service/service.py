"""``datacenter serve``: import each complete file at the storage's root, once.

The folder is the truth; watch events only wake the service. One thread (the
caller of :meth:`Service.serve`) does all that matters: it drains the hints
of :mod:`datacenter.watcher`, scans the root at start, every ``watch.rescan``
seconds and when events may have been lost, keeps the watch on the storage,
and imports, one at a time, the files :mod:`datacenter.readiness` calls
complete. Exactly once is the importer's business (one commit per import,
recovery on opening); the service adds that nothing is tried again for
nothing, and that an exception from one file never ends the loop.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import stat
import sys
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple, TextIO

from datacenter.config import WatchSettings
from datacenter.importing.csvinput import FatalCSVError, naming, only_a_header
from datacenter.importing.importer import Importer, Outcome, Request, UntouchedPendingError
from datacenter.importing.progress import Meter
from datacenter.importing.routing import UnroutedError
from datacenter.records.store import Job, StoreUnavailableError
from datacenter.service import verdicts
from datacenter.service.readiness import Hint, Readiness
from datacenter.service.state import StateFile, read_state
from datacenter.service.verdicts import Note, Verdicts
from datacenter.service.watcher import HintQueue, Watcher
from datacenter.storage import layout
from datacenter.storage.identity import FileIdentity
from datacenter.storage.lock import LockHeldError, StorageLock
from datacenter.storage.logs import printable

PENDING, REJECTED, UNROUTED = verdicts.PENDING, verdicts.REJECTED, verdicts.UNROUTED
RETRYING = verdicts.RETRYING
BIG_FILE = 1 << 20  # the state file is written before a long import, to show it in hand
HEALTH_INTERVAL = 0.5  # seconds between two checks of the watch
#: Files taken between two looks at the hints, the watch and the clock, and
#: imported together: one database commit and one journal group for all.
BATCH = 64
RETRY_FIRST, RETRY_CAP = 5.0, 600.0  # back-off of pending-file retries, seconds
#: The exit status of ``--once`` when a file was still being written (1 wins).
STILL_WRITING = 3
#: How often ``--once`` tries a file that failed for a passing reason (a full disk).
ONCE_TRIES = 3
_log = logging.getLogger(__name__)


class _Ready(NamedTuple):
    """A file about to be imported, and why (``" (retry)"`` or nothing).

    A retry is wanted as it is; anything else is imported only if it is no
    pending file as an import left it (see :meth:`Service._untouched`).
    """

    name: str
    processor: str
    mode: str
    ident: FileIdentity
    why: str


class Service:
    """Imports the complete files of one storage as they arrive."""

    def __init__(self, importer: Importer, watch: WatchSettings | None = None, *,
                 polling: bool = False, once: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
        watch = watch or importer.conf.watch
        self.importer = importer
        self.settle, self.rescan_every = watch.settle, max(watch.rescan, 0.05)
        self.polling, self.once, self.out, self.err = polling, once, out, err
        self.readiness = Readiness(watch.settle, polling=polling,
                                   stale=max(watch.rescan, watch.settle))
        self.verdicts = Verdicts(0.0 if once else RETRY_FIRST, RETRY_CAP)
        self.queue = HintQueue()
        self.watcher = Watcher(self.storage, self.queue, polling=polling,
                               poll_interval=max(0.05, min(1.0, watch.settle / 2)),
                               report=self._warn)
        self.in_hand: str | None = None
        #: The progress of the file in hand, when it is imported alone.
        self.meter: Meter | None = None
        self.last_imports: deque[dict[str, Any]] = deque(maxlen=20)
        self.counts = {"imported": 0, REJECTED: 0, UNROUTED: 0}
        #: Scans of the root done so far: "a reconcile scan later" can be waited for.
        self.scans = 0
        #: 0, or 1 when the service could not go on (its storage moved into another
        #: service's hands) or, under --once, a file was rejected as a whole. A
        #: rejection never fails a watching service: stopping it cleanly is no failure.
        self.exit_code = 0
        self.stopping = False  # a plain flag: a signal handler must not take locks
        self._moved_to: str | None = None  # set by another thread: the storage moved
        self._lock: StorageLock | None = None
        self._state: StateFile | None = None  # None: no state to write yet
        self._shown: tuple[int, ...] = ()  # what the state file last showed, in brief
        self._next_scan = self._next_check = 0.0
        #: When committed imports left unfiled are tried again, and the back-off.
        self._next_filing, self._filing_wait = time.monotonic() + self.rescan_every, RETRY_FIRST
        self._last_job = 0
        self._own_jobs: set[int] = set()
        self._once_failures: dict[str, int] = {}  # passing failures per file, under --once
        self._started = time.time()

    @property
    def storage(self) -> str:
        return self.importer.storage

    def stop(self, wake: bool = True) -> None:
        """Take no new file; the one in hand is finished first.

        A signal handler passes ``wake=False``: waking takes a lock the
        interrupted thread may hold, and the loop looks at least every second.
        """
        self.stopping = True
        if wake:
            self.queue.wake.set()

    def _storage_moved(self, old: str, new: str) -> None:
        self._moved_to = new
        self.queue.wake.set()

    # -- the loop ------------------------------------------------------------------------------

    def serve(self) -> int:
        """Watch and import until :meth:`stop`; LockHeldError if the storage is served."""
        with self._running(watch=True):
            while not self.stopping:
                try:
                    self._step()
                except Exception:  # one bad moment (a full disk...) must not end the service
                    _log.exception("datacenter: the service loop failed; going on")
                    self.queue.wait(1.0)
                self._sleep()
        return self.exit_code

    def drain(self) -> int:
        """Import every complete file present now, however long that takes; then return.

        Each file present at the start gets one settle period: unchanged
        through it, it is imported, whatever other imports cost meanwhile
        (no deadline cuts a complete file off); changed during it, it is
        still being written: it is named on stderr and left for the next
        run, and the status is :data:`STILL_WRITING`. Files that arrive
        meanwhile are the next run's too.
        """
        with self._running(watch=False):
            first_seen = self._identities(self.readiness.names())
            while not self.stopping:
                self._leave_changing(first_seen)
                self._work(limit=0)
                if not len(self.readiness) and self.verdicts.next_due() is None:
                    break
                self.queue.wait(max(0.01, min(self.settle / 4, 0.25)))
        return self.exit_code

    def _identity(self, name: str) -> FileIdentity | None:
        try:
            return FileIdentity.of(os.lstat(os.path.join(self.storage, name)))
        except OSError:
            return None

    def _identities(self, names: list[str]) -> dict[str, FileIdentity | None]:
        return {name: self._identity(name) for name in names}

    def _leave_changing(self, first_seen: dict[str, FileIdentity | None]) -> None:
        """Drop (and name) the waiting files that changed since *first_seen*."""
        for name in self.readiness.names():
            now = self._identity(name)
            if now is None:
                self.readiness.forget(name)
            elif first_seen.setdefault(name, now) != now:
                self.readiness.forget(name)
                self.exit_code = self.exit_code or STILL_WRITING
                self._warn(f"{name}: still being written; left for the next run")
                self._say(f"datacenter: still being written: {name} (it changed within "
                          f"{self.settle:g} s); left for the next run", error=True)

    @contextlib.contextmanager
    def _running(self, watch: bool) -> Iterator[None]:
        self._lock = self._hold_storage()
        try:
            self._state = StateFile(self.storage)
            self._state.sweep()
            self._load_state()
            self.importer.subscribe(self._storage_moved)
            if watch:
                self.watcher.start()  # before the first scan: nothing falls in between
            mode = "polling" if self.polling else "inotify" if watch else "once"
            self.importer.log(f"service: started on {self.storage} ({mode}), "
                                 f"process {os.getpid()}")
            self._scan(startup=True)
            self._next_scan = time.monotonic() + self.rescan_every
            self._publish()
            yield
        finally:
            self.watcher.stop()
            with contextlib.suppress(ValueError):
                self.importer.unsubscribe(self._storage_moved)
            self._publish(force=True, state="stopped")
            self.importer.log(f"service: stopped, {self.counts['imported']} file(s) imported")
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _hold_storage(self) -> StorageLock:
        """The service lock of the storage where it is now.

        A move made by another process after the importer opened the storage
        is followed first; once this lock is held, moves by other processes
        are refused (they look for it under the storage's lock).
        """
        while True:
            lock = _hold(layout.state_path(self.storage, layout.SERVICE_LOCK))
            try:
                moved = self.importer.follow()
            except BaseException:
                lock.release()
                raise
            if not moved:
                return lock
            lock.release()
            self.watcher.root = self.storage

    def _step(self) -> None:
        self._follow_move()
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + HEALTH_INTERVAL
            if self.watcher.check():
                self.readiness.lost_track()
        if self.queue.rescan.is_set() or time.monotonic() >= self._next_scan:
            self.queue.rescan.clear()
            self._scan()
            self._next_scan = time.monotonic() + self.rescan_every
        for name, hint in self.queue.take().items():
            self._observe(name, hint)
        self._work(limit=BATCH)
        if time.monotonic() >= self._next_filing:
            self._file_unfiled()
        shown = (len(self.readiness), len(self.verdicts), sum(self.counts.values()))
        if (self._state and self._state.dirty) or shown != self._shown:
            self._shown = shown
            self._publish()

    def _sleep(self) -> None:
        if self.stopping or self.readiness.due(1) or self.verdicts.due():
            return
        times = [self._next_scan, self._next_check, self.readiness.next_due(),
                 self.verdicts.next_due(), self._next_filing,
                 self._state.next_write if self._state and self._state.dirty else None]
        wait = min(t for t in times if t is not None) - time.monotonic()
        self.queue.wait(min(max(wait, 0.0), 1.0))

    # -- looking -------------------------------------------------------------------------------

    def _scan(self, startup: bool = False) -> None:
        entries = self.watcher.scan()
        if entries is None:
            return
        for name, st in entries:
            self._observe(name, Hint.STARTUP if startup else Hint.SCANNED, st)
        present = {name for name, _ in entries}
        for name in self.readiness.names():
            if name not in present:
                self.readiness.forget(name)
        self.verdicts.keep_only(present)
        self._check_ledger()
        self.scans += 1

    def _observe(self, name: str, hint: Hint, st: os.stat_result | None = None) -> None:
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

    def _check_ledger(self) -> None:
        """Imports committed by other processes (``datacenter import``) wake pending files."""
        jobs = self.importer.recent_jobs(50)
        for job in jobs:
            if job.id <= self._last_job:
                break
            if job.ok and job.id not in self._own_jobs:
                self.verdicts.parent_committed(job.processor)
        self._last_job = max([self._last_job, *(job.id for job in jobs[:1])])
        self._own_jobs = {j for j in self._own_jobs if j > self._last_job}

    def _follow_move(self) -> None:
        new, self._moved_to = self._moved_to, None
        if new is None:
            return
        try:
            lock = _hold(layout.state_path(new, layout.SERVICE_LOCK))
        except LockHeldError as error:
            self._warn(f"the storage moved to {new}, which another service holds ({error}); "
                       "stopping")
            self.exit_code = 1
            self.stop()
            return
        if self._lock is not None:
            self._lock.release()
        self._lock = lock
        for name in self.readiness.names():
            self.readiness.forget(name)
        self._state = StateFile(new)
        with contextlib.suppress(OSError):  # else the next check tries again
            self.watcher.restart(new)
        self.queue.request_rescan()

    def _file_unfiled(self) -> None:
        """File what committed but could not be filed yet: by itself, with back-off.

        Nothing left: looked at again with the reconcile scans (a cheap query).
        """
        try:
            left = bool(self.importer.file_unfiled())
        except Exception as error:  # the importer logged what failed; recovery keeps it
            _log.warning("datacenter: filing committed imports failed: %s", error)
            left = True
        now = time.monotonic()
        if left:
            self._next_filing = now + self._filing_wait
            self._filing_wait = min(self._filing_wait * 2, RETRY_CAP)
        else:
            self._next_filing, self._filing_wait = now + self.rescan_every, RETRY_FIRST

    def _filing_failed(self) -> None:
        """An import committed but its filing failed: try again soon, not at the next scan."""
        self._next_filing = min(self._next_filing, time.monotonic() + self._filing_wait)

    # -- importing -----------------------------------------------------------------------------

    def _work(self, limit: int) -> None:
        ready = []
        for name in sorted(self.readiness.due(limit), key=self._depth):
            if self.stopping:
                return
            ready.extend(self._take(name))
        self._import_all(ready)
        retries = []
        for name in self.verdicts.due():
            if self.stopping:
                return
            retries.extend(self._retry(name))
        self._import_all(retries)

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
            self._observe(name, Hint.CHANGED, st)
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
            self._observe(name, Hint.CHANGED, st)  # a person changed it: a new file now
            return []
        return [_Ready(name, processor, mode, note.ident, " (retry)")]

    def _import_batch(self, batch: list[_Ready]) -> None:
        if not batch or self.stopping:
            return
        self.in_hand = batch[0].name if len(batch) == 1 else f"{len(batch)} files"
        # Rows of one file make a rate and an ETA; a batch is many small files, soon done.
        self.meter = Meter(batch[0].name, batch[0].ident.size) if len(batch) == 1 else None
        self._publish(force=batch[0].ident.size >= BIG_FILE)
        requests = [Request(os.path.join(self.storage, item.name), item.processor, item.mode,
                            unless_untouched=not item.why) for item in batch]
        try:
            results: list[Outcome | Exception] = self.importer.import_many(
                requests, progress=self._progress if self.meter is not None else None)
        except Exception as error:  # after the commit: recovery files them next time
            results = [error] * len(batch)
        finally:
            self.in_hand = self.meter = None
            self._publish()
        for item, result in zip(batch, results, strict=True):
            self._handle(item, result)
        if any(isinstance(r, OSError) or (isinstance(r, Outcome) and not r.filed)
               for r in results):
            self._filing_failed()

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
        self._publish(force=first)

    def _handle(self, item: _Ready, result: Outcome | Exception) -> None:
        name, ident = item.name, item.ident
        if isinstance(result, Outcome):
            self._imported(name, result, item.why)
        elif isinstance(result, UntouchedPendingError):
            self._untouched(name, ident, result.job)
        elif isinstance(result, FatalCSVError):
            self._leave(name, Note(REJECTED, ident, naming(result, name)), "rejected")
        elif not os.path.lexists(os.path.join(self.storage, name)):
            # Taken by someone else (`datacenter import`?), deleted, or filed away by
            # recovery of a batch whose commit went through.
            self._warn(f"{name} went away before it was imported ({result})")
        elif isinstance(result, (OSError, StoreUnavailableError)):
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
                self.exit_code = 1
                self._warn(f"{reason}; left for the next run")
                self._say(f"datacenter: error: {reason}; left for the next run", error=True)
                return
        wait = self.verdicts.failed_for_now(name, Note(RETRYING, ident, reason))
        self._warn(f"{reason}; trying again in {wait:.0f} s")

    def _imported(self, name: str, outcome: Outcome, why: str) -> None:
        self.counts["imported"] += 1
        self._own_jobs.add(outcome.job)
        self.last_imports.appendleft({
            "source": name, "processor": outcome.processor, "mode": outcome.mode,
            "rows": outcome.rows, "ok": outcome.ok, "failed": outcome.failed,
            "pending": outcome.pending, "job": outcome.job, "at": time.time()})
        self._say(outcome.summary())
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
            self.exit_code = 1
        self._say(f"datacenter: {'error' if fatal else what}: {note.reason}", error=True)

    def _say(self, line: str, error: bool = False) -> None:
        stream = (self.err or sys.stderr) if error else (self.out or sys.stdout)
        with contextlib.suppress(OSError, ValueError):  # a closed pipe must not stop imports
            print(printable(line), file=stream, flush=True)

    def _warn(self, message: str) -> None:
        self.importer.log(f"service: {message}", level=logging.WARNING)

    # -- the state file ------------------------------------------------------------------------

    def _publish(self, force: bool = False, state: str = "running") -> None:
        if self._state is not None:
            self._state.write(lambda: self._snapshot(state), force)

    def _snapshot(self, state: str) -> dict[str, Any]:
        def listed(kind: str) -> list[dict[str, Any]]:
            return [self.verdicts.describe(name)
                    for name, _ in itertools.islice(self.verdicts.items(kind), 1000)]
        return {
            "state": state, "pid": os.getpid(), "storage": self.storage, "once": self.once,
            "mode": "polling" if self.polling else "inotify", "watch": dict(self.watcher.counts),
            "started": self._started, "updated": time.time(), "in_hand": self.in_hand,
            "progress": self.meter.report() if self.meter is not None else None,
            "queue": {"count": len(self.readiness), "files": self.readiness.names(50)},
            "counts": dict(self.counts), "last_imports": list(self.last_imports),
            UNROUTED: listed(UNROUTED), REJECTED: listed(REJECTED), PENDING: listed(PENDING),
        }

    def _load_state(self) -> None:
        """Take back the last run's verdicts: a restart does not repeat them."""
        data = read_state(self.storage)
        for kind in (UNROUTED, REJECTED, PENDING):
            self.verdicts.load(kind, data.get(kind))
        jobs = self.importer.recent_jobs(1)
        self._last_job = jobs[0].id if jobs else 0


def _hold(path: str, patience: float = 1.0) -> StorageLock:
    """The service lock, or LockHeldError when another service holds it.

    Not at the first refusal: ``service_running`` (``datacenter status``)
    takes a shared lock for an instant to see whether anybody holds it.
    """
    lock = StorageLock(path)
    deadline = time.monotonic() + patience
    while True:
        try:
            lock.acquire(blocking=False)
            return lock
        except LockHeldError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)

