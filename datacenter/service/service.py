"""``datacenter serve``: import each complete file at the storage's root, once.

The folder is the truth; watch events only wake the service. One thread (the
caller of :meth:`Service.serve`) does all that matters: it drains the hints
of :mod:`datacenter.watcher`, scans the root at start, every ``watch.rescan``
seconds and when events may have been lost, keeps the watch on the storage,
and imports, one at a time, the files :mod:`datacenter.readiness` calls
complete. Exactly once is the importer's business (one commit per import,
recovery on opening); the service adds that nothing is tried again for
nothing, and that an exception from one file never ends the loop.

The loop looks and keeps time; taking each complete file, importing it and
acting on the result is :mod:`.intake`'s, what the service says
:mod:`.voice`'s, and what others read of it (and the service lock)
:mod:`.state`'s.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import Iterator
from typing import Any, TextIO

from datacenter.config import WatchSettings
from datacenter.importing.importer import Importer
from datacenter.importing.progress import Meter
from datacenter.records.backend import UNAVAILABLE_ERRORS
from datacenter.service import verdicts
from datacenter.service.cluster import membership
from datacenter.service.intake import BATCH, Intake
from datacenter.service.readiness import Hint, Readiness
from datacenter.service.state import StateFile, hold_service_lock, last_state, state_file
from datacenter.service.verdicts import Verdicts
from datacenter.service.voice import Voice
from datacenter.service.watcher import HintQueue, Watcher
from datacenter.storage.identity import FileIdentity
from datacenter.storage.lock import LockHeldError, StorageLock

PENDING, REJECTED, UNROUTED = verdicts.PENDING, verdicts.REJECTED, verdicts.UNROUTED
RETRYING = verdicts.RETRYING
HEALTH_INTERVAL = 0.5  # seconds between two checks of the watch
#: Seconds between two writes of the state file when nothing changes: its
#: ``updated`` moment is the heartbeat ``/healthz`` reads.
HEARTBEAT = 5.0
RETRY_FIRST, RETRY_CAP = 5.0, 600.0  # back-off of pending-file retries, seconds
#: The exit status of ``--once`` when a file was still being written (1 wins).
STILL_WRITING = 3
_log = logging.getLogger(__name__)


class Service:
    """Imports the complete files of one storage as they arrive."""

    def __init__(self, importer: Importer, watch: WatchSettings | None = None, *,
                 polling: bool = False, once: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
        watch = watch or importer.conf.watch
        self.importer = importer
        self.settle, self.rescan_every = watch.settle, max(watch.rescan, 0.05)
        self.polling, self.once = polling, once
        self.voice = Voice(importer, out, err)
        self.readiness = Readiness(watch.settle, polling=polling,
                                   stale=max(watch.rescan, watch.settle))
        self.verdicts = Verdicts(0.0 if once else RETRY_FIRST, RETRY_CAP)
        self.queue = HintQueue()
        self.watcher = Watcher(self.storage, self.queue, polling=polling,
                               poll_interval=max(0.05, min(1.0, watch.settle / 2)),
                               report=self.voice.warn)
        self.intake = Intake(importer, self.readiness, self.verdicts, self.voice, once=once,
                             publish=self._publish, filing_failed=self._filing_failed,
                             stopping=lambda: self.stopping)
        #: Scans of the root done so far: "a reconcile scan later" can be waited for.
        self.scans = 0
        self.stopping = False  # a plain flag: a signal handler must not take locks
        self._moved_to: str | None = None  # set by another thread: the storage moved
        self._lock: StorageLock | None = None
        self._state: StateFile | None = None  # None: no state to write yet
        self._shown: tuple[int, ...] = ()  # what the state file last showed, in brief
        self._next_scan = self._next_check = self._next_heartbeat = 0.0
        #: When committed imports left unfiled are tried again, and the back-off.
        self._next_filing, self._filing_wait = time.monotonic() + self.rescan_every, RETRY_FIRST
        self._started = time.time()
        #: With PostgreSQL, this service as one instance of several (else None).
        self.member = membership(importer, self.queue.wake.set)
        self._down_wait = 1.0  # seconds between tries while the record store does not answer

    @property
    def storage(self) -> str:
        return self.importer.storage

    @property
    def in_hand(self) -> str | None:
        """The file being imported (or ``"N files"``), or None."""
        return self.intake.in_hand

    @property
    def meter(self) -> Meter | None:
        """The progress of the file in hand, when it is imported alone."""
        return self.intake.meter

    @property
    def counts(self) -> dict[str, int]:
        """Files imported, rejected and unrouted so far."""
        return self.intake.counts

    @property
    def exit_code(self) -> int:
        """0, 1 (see :attr:`Voice.exit_code`) or :data:`STILL_WRITING`."""
        return self.voice.exit_code

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
                    self._store_back()
                except UNAVAILABLE_ERRORS as error:  # the database gone or restarting
                    self._store_gone(error)
                except Exception:  # one bad moment (a full disk...) must not end the service
                    _log.exception("datacenter: the service loop failed; going on")
                    self.queue.wait(1.0)
                self._sleep()
        return self.exit_code

    def _store_gone(self, error: Exception) -> None:
        """The record store does not answer: one line, then quiet tries with back-off.

        Nothing moves meanwhile: every file stays where it is; the loop
        tries again, more slowly each time, up to every 30 seconds.
        """
        if self.intake.store_down is None:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            self.voice.warn(f"the record store does not answer ({reason}); every file stays "
                            "where it is, and the service tries again")
            self.intake.store_down, self._down_wait = reason, 1.0
        else:
            self._down_wait = min(self._down_wait * 2, 30.0)
        self.queue.wait(self._down_wait)

    def _store_back(self) -> None:
        """After an outage: once the store answers a question, say so (once)."""
        if self.intake.store_down is not None:
            self.importer.recent_jobs(1)  # raises while it still does not answer
            self.intake.store_down = None
            self._down_wait = 1.0
            self.importer.log("service: the record store answers again; going on")

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
                self.intake.work(limit=0)
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
                self.voice.exit_code = self.voice.exit_code or STILL_WRITING
                self.voice.warn(f"{name}: still being written; left for the next run")
                self.voice.say(f"datacenter: still being written: {name} (it changed within "
                               f"{self.settle:g} s); left for the next run", error=True)

    @contextlib.contextmanager
    def _running(self, watch: bool) -> Iterator[None]:
        self._lock = self._hold_storage()
        try:
            self._state = self._state_file()
            self._state.sweep()  # with PostgreSQL, not: another instance may be writing now
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
            if self.member is not None:
                self.member.leave()
            self.watcher.stop()
            with contextlib.suppress(ValueError):
                self.importer.unsubscribe(self._storage_moved)
            self._publish(force=True, state="stopped")
            self.importer.log(f"service: stopped, {self.counts['imported']} file(s) imported")
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def _hold_storage(self) -> StorageLock | None:
        """The service lock of the storage where it is now (None: shared by instances).

        A move made by another process after the importer opened the storage
        is followed first; once this lock is held, moves by other processes
        are refused (they look for it under the storage's lock). With
        PostgreSQL no service holds the storage alone: ``move-storage`` asks
        the record store which instances are alive instead.
        """
        if self.member is not None:
            return None
        while True:
            lock = hold_service_lock(self.storage)
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
            self.intake.observe(name, hint)
        self._hear_others()
        self.intake.work(limit=BATCH)
        if time.monotonic() >= self._next_filing:
            self._file_unfiled()
        shown = (len(self.readiness), len(self.verdicts), sum(self.counts.values()))
        if ((self._state and self._state.dirty) or shown != self._shown
                or time.monotonic() >= self._next_heartbeat):
            self._shown = shown
            self._next_heartbeat = time.monotonic() + HEARTBEAT
            self._publish()

    def _hear_others(self) -> None:
        """What the other instances said: rows committed, files let go."""
        if self.member is None:
            return
        for message in self.member.heard():
            if message.get("event") == "committed":
                for processor in message.get("processors") or []:
                    self.intake.verdicts.parent_committed(str(processor))
            else:  # an instance left or let files go: what it held is to be taken now
                self.queue.request_rescan()

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
            self.intake.observe(name, Hint.STARTUP if startup else Hint.SCANNED, st)
        present = {name for name, _ in entries}
        for name in self.readiness.names():
            if name not in present:
                self.readiness.forget(name)
        self.verdicts.keep_only(present)
        self.intake.check_ledger()
        if self.member is not None:  # the state files of instances gone
            self._state_file().sweep_others(self.member.claims.alive())
        self.scans += 1

    def _follow_move(self) -> None:
        new, self._moved_to = self._moved_to, None
        if new is None:
            return
        try:
            lock = hold_service_lock(new)
        except LockHeldError as error:
            self.voice.warn(f"the storage moved to {new}, which another service holds "
                            f"({error}); stopping")
            self.voice.exit_code = 1
            self.stop()
            return
        if self._lock is not None:
            self._lock.release()
        self._lock = lock
        for name in self.readiness.names():
            self.readiness.forget(name)
        self._state = self._state_file()
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

    # -- the state file ------------------------------------------------------------------------

    def _state_file(self) -> StateFile:  # with PostgreSQL, this instance's own
        return state_file(self.storage, self.member.claims.instance if self.member else None)

    def _publish(self, force: bool = False, state: str = "running") -> None:
        if self.member is not None:
            self.member.show(self.in_hand)
            if self._state is not None and self._state.path != (fresh := self._state_file()).path:
                self._state, force = self._state.replaced_by(fresh), True  # a new instance id
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
            "counts": dict(self.counts), "last_imports": list(self.intake.last_imports),
            UNROUTED: listed(UNROUTED), REJECTED: listed(REJECTED), PENDING: listed(PENDING),
        }

    def _load_state(self) -> None:
        """Take back the last run's verdicts: a restart does not repeat them."""
        data = last_state(self.storage, shared=self.member is not None)
        for kind in (UNROUTED, REJECTED, PENDING):
            self.verdicts.load(kind, data.get(kind))
        self.intake.skip_past_jobs()

