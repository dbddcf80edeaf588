"""Verdicts that hold until the file changes, and retries with back-off.

A file no processor claims, one rejected as a whole, or a pending file an
import wrote (the service's, or another process's: the ledger says which)
is not looked at again until it changes (device, inode, size or mtime).
Such a pending file is retried only after an import into a parent
processor committed, at most once per back-off period, which doubles
while retries make no progress. Like :mod:`datacenter.service.readiness`
it does no I/O, so every rule can be tested with a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from datacenter.service.readiness import Clock
from datacenter.storage.identity import FileIdentity

UNROUTED = "unrouted"
REJECTED = "rejected"
PENDING = "pending"
#: An import failed for a passing reason (a full disk, an I/O error, a busy
#: database): the file is tried again later, without anyone touching it.
RETRYING = "retrying"


@dataclass
class Note:
    """Why a file is left alone, and the identity it had then."""

    kind: str  # UNROUTED, REJECTED or PENDING
    ident: FileIdentity
    reason: str = ""
    parents: tuple[str, ...] = ()  # PENDING: processors whose imports may help it


@dataclass
class _Retry:
    parents: frozenset[str]
    delay: float
    not_before: float
    attempts: int = 0
    wanted: bool = False


class Verdicts:
    """Files left alone until they change, and retries of the pending files the service wrote.

    A pending file the service wrote waits for a commit into one of its
    parent processors; then it is retried, but never sooner than the
    back-off after its last try, which doubles (from *retry_first* up to
    *retry_cap*) while retries make no progress.
    """

    def __init__(self, retry_first: float = 5.0, retry_cap: float = 600.0,
                 clock: Clock = time.monotonic) -> None:
        self.retry_first, self.retry_cap, self.clock = retry_first, retry_cap, clock
        self._notes: dict[str, Note] = {}
        self._retries: dict[str, _Retry] = {}

    def __len__(self) -> int:
        return len(self._notes)

    def holds(self, name: str, ident: FileIdentity) -> bool:
        """Is there a verdict on *name*, made about the file as it is now?"""
        note = self._notes.get(name)
        return note is not None and note.ident == ident

    def note(self, name: str) -> Note | None:
        return self._notes.get(name)

    def leave(self, name: str, note: Note) -> None:
        self._notes[name] = note
        self._retries.pop(name, None)

    def wrote_pending(self, name: str, note: Note, progressed: bool = True) -> None:
        """The service (re)wrote pending file *name*; *progressed*: rows got in this time."""
        self._notes[name] = note
        old = self._retries.pop(name, None)
        if not note.parents:
            return  # nothing to wait for: only a person's change helps
        if old is None:  # its first import just failed those rows: the next parent may help
            retry = _Retry(frozenset(note.parents), self.retry_first, self.clock())
        else:  # a retry: back off, the longer the more retries got nothing in
            wait = self.retry_first if progressed else old.delay
            retry = _Retry(frozenset(note.parents), min(wait * 2, self.retry_cap),
                           self.clock() + wait, old.attempts + 1)
        self._retries[name] = retry

    def failed_for_now(self, name: str, note: Note) -> float:
        """Try *name* again after a back-off that doubles while it keeps failing.

        Returns the seconds until the next try.
        """
        self._notes[name] = note
        old = self._retries.pop(name, None)
        delay = max(self.retry_first, 0.1) if old is None else min(old.delay * 2, self.retry_cap)
        attempts = 0 if old is None else old.attempts + 1
        self._retries[name] = _Retry(frozenset(), delay, self.clock() + delay, attempts,
                                     wanted=True)
        return delay

    def forget(self, name: str) -> bool:
        """Drop what was decided about *name*; True if there was something."""
        self._retries.pop(name, None)
        return self._notes.pop(name, None) is not None

    def keep_only(self, present: Iterable[str]) -> None:
        """Drop the verdicts on files that are gone."""
        for name in set(self._notes).difference(present):
            self.forget(name)

    def parent_committed(self, processor: str) -> None:
        """Rows went into *processor*: wake the pending files waiting for it."""
        for retry in self._retries.values():
            retry.wanted = retry.wanted or processor in retry.parents

    def wake(self, name: str) -> None:
        """Retry pending file *name* as soon as its back-off allows (a parent came in)."""
        retry = self._retries.get(name)
        if retry is not None:
            retry.wanted = True

    def due(self) -> list[str]:
        now = self.clock()
        return [n for n, r in self._retries.items() if r.wanted and now >= r.not_before]

    def next_due(self) -> float | None:
        return min((r.not_before for r in self._retries.values() if r.wanted), default=None)

    def items(self, kind: str) -> Iterator[tuple[str, Note]]:
        return ((n, note) for n, note in sorted(self._notes.items()) if note.kind == kind)

    def describe(self, name: str) -> dict[str, Any]:
        """One verdict for the state file: enough to take it back after a restart."""
        note = self._notes[name]
        found: dict[str, Any] = {"name": name, "reason": note.reason, "ident": note.ident.to_list(),
                                 "parents": list(note.parents)}
        retry = self._retries.get(name)
        if retry is not None:
            wait = max(0.0, retry.not_before - self.clock())
            found.update(retries=retry.attempts, retry_wanted=retry.wanted,
                         next_retry_in=round(wait, 1))
        return found

    def load(self, kind: str, entries: Any) -> None:
        """Take back verdicts saved by :meth:`describe`; skips what is malformed."""
        for entry in entries if isinstance(entries, list) else []:
            try:
                note = Note(kind, FileIdentity.from_list(entry["ident"]),
                            str(entry.get("reason", "")),
                            tuple(str(p) for p in entry.get("parents", ())))
                name = str(entry["name"])
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if kind == PENDING:
                self.wrote_pending(name, note)
            else:
                self.leave(name, note)
