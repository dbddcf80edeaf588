"""Two processes on one storage take turns; a held lock names its holder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from datacenter import DataCenter
from datacenter.storage.lock import LockHeldError, StorageLock


def test_second_holder_waits_for_the_first(dc: DataCenter, tmp_path: Path) -> None:
    lock_path = os.path.join(dc.storage, ".datacenter", "lock")
    marks = tmp_path / "marks"
    read_end, write_end = os.pipe()
    started = time.monotonic()  # before the child exists: the wait covers its whole hold
    pid = os.fork()
    if pid == 0:  # child: hold the lock for a moment, then write its mark
        os.close(read_end)
        with StorageLock(lock_path):
            os.write(write_end, b"x")
            time.sleep(0.3)
            with open(marks, "a") as handle:
                handle.write("child\n")
        os._exit(0)
    os.close(write_end)
    os.read(read_end, 1)  # the child holds the lock now
    with StorageLock(lock_path):
        waited = time.monotonic() - started
        with open(marks, "a") as handle:
            handle.write("parent\n")
    os.waitpid(pid, 0)
    assert marks.read_text() == "child\nparent\n"
    assert waited >= 0.3


def test_non_blocking_acquire_names_the_holder(dc: DataCenter) -> None:
    path = os.path.join(dc.storage, ".datacenter", "serve.lock")
    holder = StorageLock(path)
    holder.acquire()
    try:
        with pytest.raises(LockHeldError, match=f"locked by process {os.getpid()}"):
            StorageLock(path).acquire(blocking=False)
    finally:
        holder.release()
    StorageLock(path).acquire(blocking=False)


def test_lock_is_reentrant_within_one_object(dc: DataCenter) -> None:
    lock = StorageLock(os.path.join(dc.storage, ".datacenter", "x.lock"))
    with lock, lock:
        assert lock.held
    assert not lock.held
    with pytest.raises(RuntimeError):
        lock.release()


def test_concurrent_processes_append_without_losing_rows(dc: DataCenter, tmp_path: Path) -> None:
    """Four processes each file ten results into one finished file at once."""
    children = []
    for worker in range(4):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                mine = DataCenter(dc.storage)
                for n in range(10):
                    src = os.path.join(dc.storage, f"w{worker}-{n}.csv")
                    Path(src).write_text("x\n")
                    res = tmp_path / f"res-{worker}-{n}"
                    res.mkdir()
                    (res / "f.csv").write_text(f"id\n{worker}-{n}\n")
                    mine.backupRecords("students", [{"id": f"{worker}-{n}"}])
                    mine.distProcessedFiles(True, src, str(res / "f.csv"), None)
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    backup = Path(dc.deleted_path, "students.csv").read_text().split()
    assert backup[0] == "id" and sorted(backup[1:]) == sorted(
        f"{w}-{n}" for w in range(4) for n in range(10))
    assert len(os.listdir(dc.finished_path)) == 80


def test_probing_a_lock_takes_nothing_and_writes_nothing(dc: DataCenter) -> None:
    path = os.path.join(dc.storage, ".datacenter", "serve.lock")
    assert StorageLock.holder(path) is None  # no such file yet
    holder = StorageLock(path)
    holder.acquire()
    try:
        assert StorageLock.holder(path) == f"process {os.getpid()}"
    finally:
        holder.release()
    with open(path, "w") as handle:
        handle.write("424242\n")
    assert StorageLock.holder(path) is None
    assert Path(path).read_text() == "424242\n"  # the probe left the note alone
    StorageLock(path).acquire(blocking=False)
