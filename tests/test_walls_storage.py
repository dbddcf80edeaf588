"""Walls that hold, for the storage as a whole: one decision per move, filing across disks.

* A move is decided under the storage's operation lock: a storage that moved
  meanwhile, or that another process serves, is not moved (again).
* Filing into a folder of the storage that lives on another filesystem
  (``finished/`` mounted from an archive disk) goes the journaled copy way,
  and the service files what is left unfiled by itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import (
    FIN1,
    FIN2,
    PEND1,
    ROOT,
    Dist,
    check_clean,
    drop,
    fake_devices,
    make_importer,
    snapshot,
    tree,
    write,
)

from datacenter import DataCenter
from datacenter.cli.main import main
from datacenter.config import WatchSettings
from datacenter.service import Service
from datacenter.service import service as service_module
from datacenter.storage import layout
from datacenter.storage.lock import StorageLock
from datacenter.storage.relocation import (
    RelocationRefusedError,
    StorageMovedError,
    StorageServedError,
)
from datacenter.testing.crashpoints import enumerate_crashes

PYTHON_M = [sys.executable, "-m", "datacenter"]
FILES = {"a.csv": "id\n1\n", "finished/x.create.finished.csv": "id\n1\n2\n",
         "unfinished/y.csv": "id\n", "deep/er/f.txt": "deep\n"}


def _populate(storage: str) -> None:
    DataCenter(storage)
    for rel, text in FILES.items():
        write(os.path.join(storage, rel), text)


def _files(root: str | Path) -> dict[str, str]:
    """The files of a storage with their text, its log left out."""
    return {rel: text for rel, text in tree(root).items()
            if not rel.startswith(layout.LOGS + os.sep)}


def _config(tmp_path: Path) -> Path:
    """The repository's config, with its storage and store in *tmp_path*."""
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    path = tmp_path / "datacenter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _configured_storage(conf: Path) -> str:
    for line in conf.read_text(encoding="utf-8").splitlines():
        if line.startswith("storage"):
            value = line.split("=", 1)[1].strip().strip('"')
            return value if os.path.isabs(value) else str(conf.parent / value)
    raise AssertionError("no storage line")


def _waiters(lock_path: str) -> int:
    """How many processes wait for the flock on *lock_path* (Linux: /proc/locks)."""
    ino = os.stat(lock_path).st_ino
    with open("/proc/locks", encoding="ascii") as handle:
        return sum(1 for line in handle if "->" in line and f":{ino} " in line)


def _wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class _Holder:
    """Another process that holds a lock file of a storage until it is told to stop."""

    CODE = ("import sys; from datacenter.storage.lock import StorageLock; "
            "lock = StorageLock(sys.argv[1]); lock.acquire(); print('held', flush=True); "
            "sys.stdin.read()")

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE, path], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "held\n"

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A storage whose service lock another process holds (as `datacenter serve` does)."""
    storage = str(tmp_path / "storage")
    _populate(storage)
    holder = _Holder(layout.state_path(storage, layout.SERVICE_LOCK))
    yield storage
    holder.stop()


# -- 1. two moves queued behind a busy storage ----------------------------------------------


def test_two_moves_queued_behind_a_busy_storage_only_one_moves(tmp_path: Path) -> None:
    conf = _config(tmp_path)
    storage = str(tmp_path / "storage")
    _populate(storage)
    targets = [tmp_path / "t1", tmp_path / "t2"]
    for target in targets:
        target.mkdir()
    lock_path = layout.state_path(storage, layout.OPS_LOCK)
    busy = StorageLock(lock_path)  # an import holding the storage
    busy.acquire()
    try:
        procs = [subprocess.Popen([*PYTHON_M, "--config", str(conf), "move-storage",
                                   str(target), "--move"], text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for target in targets]
        assert _wait_for(lambda: _waiters(lock_path) >= 2, timeout=60), "never queued"
    finally:
        busy.release()
    results = [(proc.wait(timeout=120), *proc.communicate()) for proc in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    winner = next(t for t, (code, _, _) in zip(targets, results, strict=True) if code == 0)
    loser_err = next(err for code, _, err in results if code == 1)
    assert len(loser_err.strip().splitlines()) == 1, loser_err
    assert "moved" in loser_err and str(winner) in loser_err
    assert _files(winner) == FILES  # every file in one place...
    assert _files(storage) == {}
    assert all(_files(t) == {} for t in targets if t != winner)
    assert _configured_storage(conf) == str(winner)  # ...and the config points there
    with open(layout.state_path(storage, layout.MOVED_TO), encoding="utf-8") as note:
        assert note.read() == str(winner)


def test_a_second_data_center_on_a_moved_storage_does_not_move_it_again(tmp_path: Path) -> None:
    storage = str(tmp_path / "storage")
    _populate(storage)
    first, second = DataCenter(storage), DataCenter(storage)
    (tmp_path / "t1").mkdir()
    (tmp_path / "t2").mkdir()
    first.setStoragePath(str(tmp_path / "t1"), move=True)
    with pytest.raises(StorageMovedError, match=f"has moved to {tmp_path / 't1'}"):
        second.setStoragePath(str(tmp_path / "t2"), move=True)
    assert second.storage == storage
    assert _files(tmp_path / "t1") == FILES and _files(tmp_path / "t2") == {}


# -- 2. a served storage is not moved, by the API either -------------------------------------


def test_the_api_refuses_to_move_a_storage_another_process_serves(
        served: str, tmp_path: Path) -> None:
    dc = DataCenter(served)
    new = tmp_path / "new"
    new.mkdir()
    with pytest.raises(StorageServedError, match="being served by process") as caught:
        dc.setStoragePath(str(new), move=True)
    assert isinstance(caught.value, RelocationRefusedError)
    assert dc.storage == served
    assert _files(served) == FILES and _files(new) == {}


def test_the_cli_refuses_too_in_one_line(served: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new"
    new.mkdir()
    assert main(["--storage", served, "move-storage", str(new), "--move"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "served" in err
    assert _files(served) == FILES


def test_the_serving_process_itself_may_move_its_storage(tmp_path: Path) -> None:
    """The service follows a move made in its own process (its subscription)."""
    storage = str(tmp_path / "storage")
    _populate(storage)
    own = StorageLock(layout.state_path(storage, layout.SERVICE_LOCK))
    own.acquire()
    try:
        new = tmp_path / "new"
        new.mkdir()
        assert DataCenter(storage).setStoragePath(str(new), move=True) == []
    finally:
        own.release()
    assert _files(new) == FILES


def test_a_service_started_after_a_move_works_where_the_storage_went(tmp_path: Path) -> None:
    """The importer opened the storage, then it moved, then the service took it."""
    importer = make_importer(tmp_path)
    try:
        old = importer.dc.storage
        new = tmp_path / "new"
        new.mkdir()
        DataCenter(old).setStoragePath(str(new), move=True)  # another process, meanwhile
        write(new / "faculties.csv", "code,title\nF1,Science\n")
        service = Service(importer, once=True, out=open(os.devnull, "w"),  # noqa: SIM115
                          err=open(os.devnull, "w"))  # noqa: SIM115
        assert service.drain() == 0
        assert importer.storage == str(new)
        assert os.path.exists(new / "finished" / "faculties.csv")
        assert not os.path.exists(os.path.join(old, "finished"))
    finally:
        importer.close()
# -- 4. filing into a folder on another filesystem -------------------------------------------


def test_filing_into_a_finished_folder_on_another_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    imp = make_importer(tmp_path)
    try:
        storage = imp.dc.storage
        refused = fake_devices(monkeypatch, os.path.join(storage, layout.FINISHED))
        outcome = imp.import_file(drop(imp, "faculties.csv", "code,title\nF1,Science\n"))
        assert (outcome.ok, outcome.failed) == (1, 0)
        outcome = imp.import_file(drop(imp, "faculties_more.csv", "code,title\nF2,Arts\n"))
        assert refused, "the fake devices were never crossed"
        assert imp.store.jobs(undistributed=True) == []
        assert _files(os.path.join(storage, layout.FINISHED)) == {
            "faculties.csv": "code,title\nF1,Science\n",
            "faculties_more.csv": "code,title\nF2,Arts\n",
            "faculties.create.finished.csv": "code,title\nF1,Science\n",
            "faculties_more.create.finished.csv": "code,title\nF2,Arts\n",
        }
        assert os.listdir(layout.state_path(storage, layout.JOURNAL)) == []
    finally:
        imp.close()
    assert main(["--storage", storage, "status"]) == 0
    assert "interrupted operations: 0" in capsys.readouterr().out


def test_a_chain_across_disks_ends_in_finished(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """unfinished/ and finished/ on two disks, the root on a third."""
    imp = make_importer(tmp_path)
    try:
        storage = imp.dc.storage
        fake_devices(monkeypatch, os.path.join(storage, layout.FINISHED),
                     os.path.join(storage, layout.UNFINISHED))
        outcome = imp.import_file(drop(imp, "faculties.csv", "code,title\nF1,Science\nF2,\n"))
        assert outcome.pending == "faculties.create.pending.csv"
        assert os.listdir(os.path.join(storage, layout.UNFINISHED)) == ["faculties.csv"]
        pending = os.path.join(storage, outcome.pending)
        write(pending, "code,title\nF2,Arts\n")
        outcome = imp.import_file(pending)
        assert (outcome.ok, outcome.failed) == (1, 0)
        assert imp.store.jobs(undistributed=True) == []
        assert os.listdir(os.path.join(storage, layout.UNFINISHED)) == []
        assert sorted(os.listdir(os.path.join(storage, layout.FINISHED))) == [
            "faculties.create.finished.csv", "faculties.csv"]
        assert not os.path.exists(pending)
    finally:
        imp.close()


def test_the_service_files_what_is_left_unfiled_by_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filing that failed for a while is tried again without a new import."""
    monkeypatch.setattr(service_module, "RETRY_FIRST", 0.1)
    imp = make_importer(tmp_path)
    storage = imp.dc.storage
    broken = {"on": True}
    real_replace = os.replace

    def replace(src: str, dst: str, *args: object, **kwargs: object) -> None:
        if broken["on"] and os.path.dirname(dst).endswith(layout.FINISHED):
            raise OSError(errno.EIO, "Input/output error", dst)
        real_replace(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    # No reconcile scan: only the retry of unfiled jobs may file it.
    service = Service(imp, WatchSettings(settle=0.1, rescan=3600.0),
                      out=open(os.devnull, "w"), err=open(os.devnull, "w"))  # noqa: SIM115
    thread = threading.Thread(target=service.serve)
    thread.start()
    try:
        drop(imp, "faculties.csv", "code,title\nF1,Science\n")
        assert _wait_for(lambda: imp.store.jobs(undistributed=True), timeout=20)
        assert not os.path.exists(os.path.join(storage, layout.FINISHED, "faculties.csv"))
        broken["on"] = False
        assert _wait_for(lambda: not imp.store.jobs(undistributed=True), timeout=20)
        assert os.path.exists(os.path.join(storage, layout.FINISHED, "faculties.csv"))
    finally:
        service.stop()
        thread.join(timeout=30)
        imp.close()


_ACROSS = {
    "fails-into-unfinished": ((), Dist(False, "x.csv", FIN1, PEND1)),
    "chain-ends-in-finished": ((Dist(False, "x.csv", FIN1, PEND1),),
                               Dist(True, "x.create.pending.csv", FIN2 + "3,Chidi\r\n", None)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_ACROSS))
def test_crash_at_every_step_of_a_filing_across_disks(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """finished/ and unfinished/ on disks of their own: a kill at any step, then
    recovery (itself killed at each step) leaves the filing undone or done."""
    earlier, act = _ACROSS[name]
    work = tmp_path / "work"
    storage, outside = str(work / "storage"), str(work / "outside")
    refused = fake_devices(monkeypatch, os.path.join(storage, layout.FINISHED),
                           os.path.join(storage, layout.UNFINISHED), outside)

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(outside)
        DataCenter(storage)
        for step in earlier:
            step.inputs(storage, outside)
            step(storage, outside)
        act.inputs(storage, outside)

    prepare()
    before = snapshot(storage, outside)
    act(storage, outside)
    after = snapshot(storage, outside)
    assert before != after and refused, "nothing crossed a disk"

    def check() -> None:
        assert snapshot(storage, outside) in (before, after)
        check_clean(storage)

    report = enumerate_crashes(prepare, lambda: act(storage, outside),
                               lambda: DataCenter(storage).recover(), check)
    assert report.points >= 10
    print(f"{name} across disks: {report.points} crash points, {report.runs} runs")
