"""Noticing files at the storage's root: watchdog events as hints, and scans.

Events only wake the service: each one becomes a hint in a de-duplicating
:class:`HintQueue` that the service's thread drains. The handler never
decides anything and never raises into watchdog, because an exception in a
handler ends watchdog's dispatcher thread for good and every later event is
silently lost. Whatever can make events go missing asks the queue for a
rescan: a handler failure, an inotify queue overflow, a dead observer, or a
watch on a folder that is no longer the storage (:meth:`Watcher.check`
rebuilds the watch then).

Overflow: watchdog (7.x) reads the kernel's ``IN_Q_OVERFLOW``, logs
"Inotify queue overflowed; ..." on ``watchdog.observers.inotify_c`` and
delivers no event for what was dropped; there is no public callback, so a
logging handler listens for that message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from watchdog.events import (
    DirDeletedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from datacenter.service.readiness import Hint, ignored_reason

_log = logging.getLogger(__name__)

OVERFLOW_LOGGER = "watchdog.observers.inotify_c"
OVERFLOW_MESSAGE = "Inotify queue overflowed"
#: Only what readiness needs: opens and reads (our own, too) would be noise.
_EVENTS: list[type[FileSystemEvent]] = [
    FileMovedEvent, FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileDeletedEvent,
    DirDeletedEvent,
]
_HINTS: dict[type[FileSystemEvent], Hint] = {
    FileCreatedEvent: Hint.CREATED,
    FileClosedEvent: Hint.CLOSED,
    FileModifiedEvent: Hint.CHANGED,
    FileDeletedEvent: Hint.CHANGED,
}


class HintQueue:
    """Hints per file name, de-duplicated, and the event that wakes the service."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._hints: dict[str, Hint] = {}
        self.wake = threading.Event()
        self.rescan = threading.Event()

    def put(self, name: str, hint: Hint) -> None:
        if ignored_reason(name):
            return
        with self._mutex:
            # "Look again" must not wipe out what a stronger event told before.
            if hint is not Hint.CHANGED or name not in self._hints:
                self._hints[name] = hint
        self.wake.set()

    def take(self) -> dict[str, Hint]:
        with self._mutex:
            hints, self._hints = self._hints, {}
        return hints

    def request_rescan(self) -> None:
        self.rescan.set()
        self.wake.set()

    def wait(self, timeout: float) -> None:
        self.wake.wait(timeout)
        self.wake.clear()  # before the drain that follows: a later hint sets it again


class _OverflowListener(logging.Handler):
    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.getMessage().startswith(OVERFLOW_MESSAGE):
                self._on_overflow()
        except Exception:  # runs on watchdog's reader thread: must not raise
            self.handleError(record)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._watcher._forward(event)
        except Exception:
            self._watcher._handler_failed()


class Watcher:
    """Watches one folder (not recursively) and puts hints about its files in *queue*."""

    def __init__(self, root: str, queue: HintQueue, *, polling: bool = False,
                 poll_interval: float = 1.0, report: Callable[[str], None] = _log.warning) -> None:
        self.root = os.path.abspath(root)
        self.queue = queue
        self.polling = polling
        self.poll_interval = poll_interval
        self._report = report
        self._trouble: str | None = None
        self._observer: BaseObserver | None = None
        self._identity: tuple[int, int] | None = None
        self._listener = _OverflowListener(self.overflowed)
        self._counts_lock = threading.Lock()
        #: How often each kind of trouble happened (shown by the status).
        self.counts = {"rebuilds": 0, "overflows": 0, "handler_errors": 0}

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Watch the root; raises OSError when it cannot be watched."""
        st = os.stat(self.root)
        observer: BaseObserver
        if self.polling:
            observer = PollingObserver(timeout=self.poll_interval)
        else:
            # Full events: a rename from outside arrives as a move with an empty
            # source (proof of completeness) rather than as a plain creation.
            observer = InotifyObserver(generate_full_events=True)
        observer.schedule(_Handler(self), self.root, recursive=False, event_filter=_EVENTS)
        observer.start()
        if not self.polling:
            _prompt_moves(observer)
            logger = logging.getLogger(OVERFLOW_LOGGER)
            if not logger.isEnabledFor(logging.WARNING):
                logger.setLevel(logging.WARNING)  # the overflow notice must get through
            logger.addHandler(self._listener)
        self._observer = observer
        self._identity = (st.st_dev, st.st_ino)

    def stop(self) -> None:
        logging.getLogger(OVERFLOW_LOGGER).removeHandler(self._listener)
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=10)

    def restart(self, root: str | None = None) -> None:
        """Stop, then watch *root* (default: the same path) afresh."""
        self.stop()
        if root is not None:
            self.root = os.path.abspath(root)
        self.start()
        self._count("rebuilds")
        self.queue.request_rescan()  # what happened while nobody watched

    def check(self) -> bool:
        """Rebuild the watch if it stopped watching the root; True when rebuilt."""
        problem = self.problem()
        if problem is None:
            return False
        if problem != self._trouble:  # said once per spell of trouble
            self._trouble = problem
            self._report(f"watching {self.root}: {problem}; rebuilding the watch")
        try:
            self.restart()
        except OSError:
            return False  # tried again at the next check
        self._trouble = None
        return True

    def scan(self) -> list[tuple[str, os.stat_result]] | None:
        """The root's candidate entries with their ``lstat``; None if unreadable."""
        try:
            with os.scandir(self.root) as found:
                entries = [e for e in found if not ignored_reason(e.name)]
        except OSError as error:
            _log.warning("datacenter: cannot scan %s: %s", self.root, error)
            return None
        result = []
        for entry in entries:
            with contextlib.suppress(OSError):  # gone since the listing
                result.append((entry.name, entry.stat(follow_symlinks=False)))
        return result

    def problem(self) -> str | None:
        """Why the current watch no longer delivers the root's events, or None.

        An inotify watch follows an inode: once the folder is renamed away or
        replaced, the watch stays on the old one and reports nothing about the
        path, so the folder's device and inode are compared with the start's.
        """
        observer = self._observer
        if observer is None:
            return "not watching"
        if not observer.is_alive():
            return "the observer thread stopped"
        if not observer.emitters or not all(e.is_alive() for e in observer.emitters):
            return "the watch ended (the folder was deleted or moved away)"
        try:
            st = os.stat(self.root)
        except OSError as error:
            return f"the folder cannot be read: {error.strerror or error}"
        if (st.st_dev, st.st_ino) != self._identity:
            return "the folder was replaced (renamed or re-created)"
        return None

    # -- events -----------------------------------------------------------------------------------

    def _forward(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if isinstance(event, DirDeletedEvent) and os.fsdecode(event.src_path) == self.root:
                self.queue.request_rescan()
            return
        if isinstance(event, FileMovedEvent):
            self._tell(event.src_path, Hint.CHANGED)  # moved away (or renamed)
            self._tell(event.dest_path, Hint.CHANGED if self.polling else Hint.MOVED_IN)
            return
        self._tell(event.src_path, _HINTS.get(type(event), Hint.CHANGED))

    def _tell(self, path: bytes | str, hint: Hint) -> None:
        if not path:
            return
        text = os.fsdecode(path)
        folder, name = os.path.split(text)
        if folder == self.root:
            self.queue.put(name, hint)

    def overflowed(self) -> None:
        """The kernel dropped events (also a hook for tests): rescan."""
        self._count("overflows")
        self.queue.request_rescan()

    def _handler_failed(self) -> None:
        # Whatever the event was, it is lost: a rescan finds its file.
        try:
            self._count("handler_errors")
            _log.exception("datacenter: a watch event could not be handled; rescanning")
            self.queue.request_rescan()
        except Exception:  # noqa: S110 - nothing may escape into watchdog
            pass

    def _count(self, what: str) -> None:
        with self._counts_lock:
            self.counts[what] += 1


def _prompt_moves(observer: BaseObserver) -> None:
    """Deliver inotify events without the 0.5 s hold after a move away.

    watchdog holds every ``IN_MOVED_FROM`` for 0.5 s to pair it with an
    ``IN_MOVED_TO``, and its queue is first-in first-out, so each file the
    service files away (a move out of the root) delays every later event by
    up to 0.5 s. Pairing is of no use to a non-recursive watch of files:
    both halves are hints either way. The hold lives in private attributes,
    so this is best effort; if they change, events are merely later.
    """
    for emitter in observer.emitters:
        queue: Any = getattr(getattr(getattr(emitter, "_inotify", None),
                                     "_move_event_grouper", None), "_queue", None)
        if queue is not None and hasattr(queue, "delay"):
            queue.delay = 0.0
