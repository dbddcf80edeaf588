"""When is a file at the storage's root complete, and worth importing (again)?

Watch events are hints; this module turns hints and observations into
decisions, with no I/O of its own (the caller stats, and passes in what it
saw), so every rule can be tested with a fake clock:

* **Names.** Hidden files, temporary suffixes and anything but ``*.csv`` are
  never candidates (:func:`ignored_reason`).
* **Completeness** (:class:`Readiness`). A file renamed into the root is
  complete at once: a rename is atomic. A file written in place is complete
  after its close-write *and* ``settle`` seconds (``[watch] settle``) with
  size and mtime unchanged: killed writers close too, and a writer that
  closes and re-opens (``echo header > f; ... >> f``) must not be cut in
  half. A file seen created but never closed (a writer that holds it open,
  a hard link) needs a long quiet period. Files found by scans, and every
  file under polling (NFS, SMB: no close events), need ``settle`` seconds
  unchanged; at start, a file not modified for ``settle`` seconds counts as
  settled already.
* **No rows yet** (:meth:`Readiness.wait_for_rows`). A settled file written
  in place that holds only a header (and blank lines) waits one settle more
  before it is imported as empty: its rows may be a moment behind.

What is left alone until it changes is :mod:`datacenter.service.verdicts`.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from datacenter.storage.identity import FileIdentity
from datacenter.storage.layout import TEMPORARY_SUFFIXES

Clock = Callable[[], float]

#: Suffixes of files still being written by some program.


def ignored_reason(name: str) -> str | None:
    """Why a root entry named *name* is never imported, or None if it may be."""
    lower = name.lower()
    if name.startswith("."):
        return "hidden"
    if lower.endswith(TEMPORARY_SUFFIXES):
        return "temporary"
    if not lower.endswith(".csv"):
        return "not a CSV file"
    return None


class Hint(enum.Enum):
    """What the caller learnt about a file."""

    MOVED_IN = "moved in"  # renamed into the root: complete
    CLOSED = "closed"  # closed after writing
    CREATED = "created"  # created: a writer has it open
    CHANGED = "changed"  # modified, attributes, moved away: just look again
    SCANNED = "scanned"  # found by a scan
    STARTUP = "startup"  # found by a scan at start (or by --once)


class _State(enum.Enum):
    COMPLETE = "complete"
    CLOSED = "closed"
    WRITING = "writing"
    UNKNOWN = "unknown"


_NEW_STATE = {
    Hint.MOVED_IN: _State.COMPLETE,
    Hint.CLOSED: _State.CLOSED,
    Hint.CREATED: _State.WRITING,
}


@dataclass
class _Track:
    ident: FileIdentity
    since: float  # clock time since which the file is known unchanged as ``ident``
    state: _State
    extra: float = 0.0  # seconds to wait on top: it held only a header when it was due


class Readiness:
    """Candidates at the root and when each one is complete.

    *settle*: seconds unchanged for a file written in place (closed, or
    without close evidence); *close_settle*: after a close-write, for tests
    of the mechanism (default: *settle*, the one knob people set); *stale*:
    for a file created and never closed (default ``max(60, settle)``).
    """

    def __init__(self, settle: float, *, close_settle: float | None = None,
                 stale: float | None = None, polling: bool = False,
                 clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self.settle = max(0.0, settle)
        self.close_settle = self.settle if close_settle is None else close_settle
        self.stale = max(60.0, self.settle) if stale is None else stale
        self.polling = polling
        self.clock = clock
        self.wall = wall
        self._tracks: dict[str, _Track] = {}

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, name: object) -> bool:
        return name in self._tracks

    def names(self, limit: int = 0) -> list[str]:
        """The candidates, oldest first (at most *limit*, 0: all)."""
        return list(itertools.islice(self._tracks, limit or None))

    def hint(self, name: str, ident: FileIdentity, hint: Hint) -> None:
        """Take note of what was learnt about *name*, whose stat is *ident* now."""
        now = self.clock()
        track = self._tracks.get(name)
        # Under polling no event says how a file arrived: every hint is "look again".
        state = None if self.polling else _NEW_STATE.get(hint)
        if track is None:
            track = self._tracks[name] = _Track(ident, now, state or _State.UNKNOWN)
            age = self.wall() - ident.mtime_ns / 1e9
            if hint is Hint.STARTUP and age >= self.settle:
                track.since = now - age  # settled before we looked, for that long
            return
        if state is not None:
            track.state, track.ident, track.since, track.extra = state, ident, now, 0.0
        elif ident != track.ident:
            self._changed(track, ident, now)

    def _changed(self, track: _Track, ident: FileIdentity, now: float) -> None:
        track.ident, track.since, track.extra = ident, now, 0.0
        if track.state is _State.COMPLETE:
            track.state = _State.CLOSED  # written to after it arrived: let it settle

    def confirm(self, name: str, ident: FileIdentity) -> bool:
        """Is *name* still as it was when it became due? If not, it settles anew."""
        track = self._tracks.get(name)
        if track is None:
            return False
        if ident == track.ident:
            return True
        self._changed(track, ident, self.clock())
        return False

    def forget(self, name: str) -> None:
        self._tracks.pop(name, None)

    def wait_for_rows(self, name: str, header_only: Callable[[], bool]) -> bool:
        """Must due file *name* wait one settle more, holding no rows yet?

        A writer that puts the header first and the rows a moment later
        (``echo header > f; ... >> f``) closes the file in between: settled,
        it looks complete with its header alone, and would be imported as
        empty, its rows rejected after. So a file that holds only a header
        must stay unchanged for one settle more. *header_only* is the
        caller's look at the file, asked only while that wait is not over
        (it reads the file). A file renamed in is complete whatever it holds.
        """
        track = self._tracks.get(name)
        if track is None or track.state is _State.COMPLETE:
            return False
        if self.clock() - track.since >= self._wait(track.state) + self.settle:
            return False  # unchanged for a settle more already: empty it is
        if not header_only():
            return False
        track.extra = self.settle
        return True

    def lost_track(self) -> None:
        """Events were lost: a file thought open may have been closed since."""
        now = self.clock()
        for track in self._tracks.values():
            if track.state is _State.WRITING:
                track.state, track.since = _State.UNKNOWN, now

    def _wait(self, state: _State) -> float:
        if state is _State.COMPLETE:
            return 0.0
        if state is _State.CLOSED:
            return self.close_settle
        return self.stale if state is _State.WRITING else self.settle

    def due(self, limit: int = 0) -> list[str]:
        """Names complete now, oldest hint first (at most *limit*, 0: all)."""
        now = self.clock()
        found = []
        for name, track in self._tracks.items():
            if now - track.since >= self._wait(track.state) + track.extra:
                found.append(name)
                if limit and len(found) >= limit:
                    break
        return found

    def next_due(self) -> float | None:
        """Clock time at which the next candidate may be complete, or None."""
        times = [t.since + self._wait(t.state) + t.extra for t in self._tracks.values()]
        return min(times, default=None)
