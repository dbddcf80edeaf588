"""The readiness rules, with a fake clock: no files, no threads, no sleeping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import Clock

from datacenter.service.readiness import Hint, Readiness, ignored_reason
from datacenter.service.verdicts import PENDING, REJECTED, UNROUTED, Note, Verdicts
from datacenter.storage.identity import FileIdentity

WALL = 1_700_000_000.0
RECENT = FileIdentity(1, 10, 100, int(WALL * 1e9))  # modified "now" on the wall clock
OLD = FileIdentity(1, 11, 100, int((WALL - 3600) * 1e9))


def ident(size: int = 100, ino: int = 10, mtime: float = WALL) -> FileIdentity:
    return FileIdentity(1, ino, size, int(mtime * 1e9))


@pytest.fixture
def clock() -> Clock:
    return Clock()


def readiness(clock: Clock, polling: bool = False, settle: float = 2.0) -> Readiness:
    return Readiness(settle, close_settle=0.5, stale=60.0, polling=polling, clock=clock,
                     wall=lambda: WALL + (clock.now - 1000.0))


@pytest.mark.parametrize(("name", "reason"), [
    ("x.csv", None), ("X.CSV", None), ("departments.create.pending.csv", None),
    (".x.csv", "hidden"), (".dc-tmp-1234.part", "hidden"), (".x.csv.part", "hidden"),
    ("x.csv.part", "temporary"), ("x.csv.tmp", "temporary"), ("x.csv.crdownload", "temporary"),
    ("x.csv~", "temporary"), ("x.CSV.PART", "temporary"),
    ("x.txt", "not a CSV file"), ("x.csv.gz", "not a CSV file"), ("csv", "not a CSV file"),
])
def test_names_that_are_never_candidates(name: str, reason: str | None) -> None:
    assert ignored_reason(name) == reason


def test_identity_changes_with_content_inode_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a\n")
    first = FileIdentity.of(os.lstat(path))
    assert FileIdentity.of(os.lstat(path)) == first
    os.utime(path, ns=(first.mtime_ns, first.mtime_ns + 1))
    touched = FileIdentity.of(os.lstat(path))
    assert touched != first and touched.size == first.size
    with open(path, "a") as handle:
        handle.write("b\n")
    os.utime(path, ns=(touched.mtime_ns, touched.mtime_ns))  # same mtime, more bytes
    assert FileIdentity.of(os.lstat(path)) != touched
    replacement = tmp_path / "y.csv"
    replacement.write_text("a\nb\n")
    os.utime(replacement, ns=(touched.mtime_ns, touched.mtime_ns))
    os.replace(replacement, path)  # same size and mtime, another inode
    assert FileIdentity.of(os.lstat(path)).ino != first.ino


def test_a_file_renamed_in_is_complete_at_once(clock: Clock) -> None:
    r = readiness(clock)
    r.hint("x.csv", RECENT, Hint.MOVED_IN)
    assert r.due() == ["x.csv"]


def test_close_write_then_short_settle(clock: Clock) -> None:
    r = readiness(clock)
    r.hint("x.csv", ident(0), Hint.CREATED)
    r.hint("x.csv", ident(50), Hint.CHANGED)
    clock.advance(30)
    assert r.due() == []  # open for writing: a slow writer is not cut in half
    r.hint("x.csv", ident(100), Hint.CLOSED)
    clock.advance(0.4)
    assert r.due() == []
    clock.advance(0.1)
    assert r.due() == ["x.csv"]
    assert r.confirm("x.csv", ident(100))


def test_a_writer_that_closes_and_reopens_restarts_the_settle(clock: Clock) -> None:
    r = readiness(clock)
    r.hint("x.csv", ident(50), Hint.CLOSED)
    clock.advance(0.3)
    r.hint("x.csv", ident(80), Hint.CHANGED)  # appended again
    clock.advance(0.3)
    assert r.due() == []
    clock.advance(0.2)
    assert r.due() == ["x.csv"]


def test_confirm_catches_a_change_no_event_told(clock: Clock) -> None:
    r = readiness(clock)
    r.hint("x.csv", ident(50), Hint.CLOSED)
    clock.advance(1)
    assert r.due() == ["x.csv"]
    assert not r.confirm("x.csv", ident(90))  # grew without an event (lost, or NFS)
    assert r.due() == []
    clock.advance(0.5)
    assert r.due() == ["x.csv"] and r.confirm("x.csv", ident(90))


def test_a_file_created_and_never_closed_waits_for_a_long_quiet(clock: Clock) -> None:
    r = readiness(clock)
    r.hint("x.csv", ident(10), Hint.CREATED)  # a hard link, or a writer that hangs
    clock.advance(59)
    assert r.due() == []
    assert r.next_due() == pytest.approx(clock.now + 1)
    clock.advance(1)
    assert r.due() == ["x.csv"]


def test_lost_events_turn_writing_into_settling(clock: Clock) -> None:
    r = readiness(clock)
    r.hint("x.csv", ident(10), Hint.CREATED)
    r.lost_track()  # the close may have been among the lost events
    clock.advance(2)
    assert r.due() == ["x.csv"]


def test_scanned_files_need_settle_seconds_unchanged(clock: Clock) -> None:
    r = readiness(clock)
    r.hint("x.csv", ident(10), Hint.SCANNED)
    clock.advance(1.5)
    r.hint("x.csv", ident(20), Hint.SCANNED)
    clock.advance(1.5)
    assert r.due() == []
    r.hint("x.csv", ident(20), Hint.SCANNED)  # the same: the clock keeps running
    clock.advance(0.5)
    assert r.due() == ["x.csv"]


def test_at_start_an_old_file_counts_as_settled(clock: Clock) -> None:
    r = readiness(clock)
    r.hint("old.csv", OLD, Hint.STARTUP)
    r.hint("new.csv", RECENT, Hint.STARTUP)
    assert r.due() == ["old.csv"]
    clock.advance(2)
    assert r.due() == ["old.csv", "new.csv"]


def test_polling_trusts_no_event(clock: Clock) -> None:
    r = readiness(clock, polling=True)
    r.hint("x.csv", ident(10), Hint.MOVED_IN)
    r.hint("y.csv", ident(10), Hint.CLOSED)
    clock.advance(1.9)
    r.hint("x.csv", ident(10), Hint.MOVED_IN)  # the same again: not a new start
    assert r.due() == []
    clock.advance(0.1)
    assert r.due() == ["x.csv", "y.csv"]


def test_due_limit_names_and_forget(clock: Clock) -> None:
    r = readiness(clock)
    for n in range(5):
        r.hint(f"f{n}.csv", RECENT, Hint.MOVED_IN)
    assert r.due(limit=2) == ["f0.csv", "f1.csv"]
    assert r.names(3) == ["f0.csv", "f1.csv", "f2.csv"] and len(r) == 5
    r.forget("f0.csv")
    assert "f0.csv" not in r and r.due(1) == ["f1.csv"]
    assert not r.confirm("f0.csv", RECENT)


def test_verdicts_hold_until_the_file_changes() -> None:
    v = Verdicts()
    v.leave("u.csv", Note(UNROUTED, ident(5), "no processor"))
    v.leave("r.csv", Note(REJECTED, ident(6), "bad header"))
    assert v.holds("u.csv", ident(5)) and v.holds("r.csv", ident(6))
    assert not v.holds("u.csv", ident(7))  # edited: a new file to look at
    assert not v.holds("u.csv", ident(5, ino=99))  # replaced
    assert not v.holds("u.csv", ident(5, mtime=WALL + 1))  # touched
    v.keep_only(["r.csv"])
    assert v.note("u.csv") is None and len(v) == 1
    assert v.forget("r.csv") and not v.forget("r.csv")


def test_pending_files_wait_for_a_parent_then_back_off(clock: Clock) -> None:
    v = Verdicts(retry_first=5, retry_cap=20, clock=clock)
    note = Note(PENDING, ident(5), "1 row failed", ("faculties",))
    v.wrote_pending("d.create.pending.csv", note)
    assert v.due() == [] and v.next_due() is None  # nothing new: no retry at all
    v.parent_committed("students")
    assert v.due() == []
    v.parent_committed("faculties")
    assert v.due() == ["d.create.pending.csv"]  # the first retry comes at once
    gaps = []
    for _ in range(4):  # retries that get nothing in back off: 5, 10, 20, 20 s
        v.wrote_pending("d.create.pending.csv", note, progressed=False)
        v.parent_committed("faculties")
        start = clock.now
        while not v.due():
            clock.advance(1)
        gaps.append(clock.now - start)
    assert gaps == [5, 10, 20, 20]
    v.wrote_pending("d.create.pending.csv", note, progressed=True)
    assert v.due() == []  # parked again: a retry only follows a parent's import
    v.parent_committed("faculties")
    clock.advance(5)
    assert v.due() == ["d.create.pending.csv"]
    assert v.describe("d.create.pending.csv")["retries"] == 5


def test_pending_files_without_parents_are_never_retried(clock: Clock) -> None:
    v = Verdicts(clock=clock)
    v.wrote_pending("s.update.pending.csv", Note(PENDING, ident(5), "bad email"))
    v.parent_committed("faculties")
    clock.advance(1000)
    assert v.due() == [] and v.holds("s.update.pending.csv", ident(5))


def test_verdicts_survive_a_restart_through_describe_and_load(clock: Clock) -> None:
    v = Verdicts(clock=clock)
    v.leave("u.csv", Note(UNROUTED, ident(5), "no processor"))
    v.wrote_pending("p.csv", Note(PENDING, ident(6), "failed", ("faculties",)))
    saved = {kind: [v.describe(n) for n, _ in v.items(kind)] for kind in (UNROUTED, PENDING)}
    w = Verdicts(clock=clock)
    for kind, entries in saved.items():
        w.load(kind, entries)
    w.load(REJECTED, [{"name": "broken"}, "junk", {"ident": [1]}])  # malformed: skipped
    w.load(REJECTED, "not a list")
    assert w.holds("u.csv", ident(5)) and w.holds("p.csv", ident(6)) and len(w) == 2
    w.parent_committed("faculties")
    assert w.due() == ["p.csv"]
