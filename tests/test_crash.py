"""Crash safety: SIGKILL at every filesystem step, then recover and check.

Each scenario runs its operation in a forked child killed at step 1, 2, 3
... of the filesystem module until the operation completes untouched.
After each kill the storage is recovered (recovery itself first killed at
each of its steps in turn) and must look exactly like it did before the
call or exactly like after it: nothing lost, nothing duplicated, nothing
half-applied, no staging file left visible.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import write

from datacenter import DataCenter
from datacenter.storage.layout import SUBFOLDERS
from datacenter.testing.crashpoints import CrashReport, enumerate_crashes, run_child

Snapshot = dict[str, bytes]


def snapshot(*roots: str) -> Snapshot:
    """Every visible file under *roots* with its bytes (state and logs aside).

    Opening a storage creates its empty standard sub-folders; those are not
    the user's data and are left out.
    """
    result: Snapshot = {}
    for n, root in enumerate(roots):
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in (".datacenter", "logs")]
            rel = os.path.relpath(folder, root)
            if not files and not dirs and os.path.basename(folder) not in SUBFOLDERS:
                result[f"{n}:{rel}/"] = b""  # an empty folder of the user's counts too
            for name in files:
                with open(os.path.join(folder, name), "rb") as handle:
                    result[f"{n}:{os.path.join(rel, name)}"] = handle.read()
    return result


@dataclass
class Scenario:
    name: str
    setup: Callable[[str, str], None]  # (storage, outside) -> starting state
    act: Callable[[str, str], object]  # the call that is crashed
    roots: Callable[[str, str], tuple[str, ...]] = lambda s, o: (s, o)


def _results(outside: str, finished: str, pending: str | None) -> tuple[str, str | None]:
    folder = os.path.join(outside, "results")
    finished_path = write(os.path.join(folder, "finished.csv"), finished)
    pending_path = write(os.path.join(folder, "pending.csv"), pending) if pending else None
    return finished_path, pending_path


@dataclass
class Dist:
    """One distProcessedFiles call: its inputs are made first, then the call."""

    successful: bool
    source: str
    finished: str
    pending: str | None
    source_text: str = "id,name\n1,Ada\n2,Bola\n3,Chidi\n"

    def inputs(self, storage: str, outside: str) -> None:
        src = os.path.join(storage, self.source)
        if not os.path.exists(src):
            write(src, self.source_text)
        _results(outside, self.finished, self.pending)

    def __call__(self, storage: str, outside: str) -> None:
        folder = os.path.join(outside, "results")
        pending = os.path.join(folder, "pending.csv") if self.pending else None
        DataCenter(storage).distProcessedFiles(
            self.successful, os.path.join(storage, self.source),
            os.path.join(folder, "finished.csv"), pending, "create")


def _dist(successful: bool, source: str, finished: str, pending: str | None,
          source_text: str = "id,name\n1,Ada\n2,Bola\n3,Chidi\n") -> Dist:
    return Dist(successful, source, finished, pending, source_text)


def _chain(*steps: Callable[[str, str], object]) -> Callable[[str, str], None]:
    def run(storage: str, outside: str) -> None:
        DataCenter(storage)
        for step in steps:
            if isinstance(step, Dist):
                step.inputs(storage, outside)
            step(storage, outside)
    return run


FIN1 = "id,name\r\n1,Ada\r\n"
PEND1 = "id,name,--ERRORS--\r\n2,Bola,bad\r\n3,Chidi,bad\r\n"
FIN2 = "id,name\r\n2,Bola\r\n"
PEND2 = "id,name,--ERRORS--\r\n3,Chidi,still bad\r\n"
FIN3 = "id,name\r\n3,Chidi\r\n"
fail_first = _dist(False, "mysource.csv", FIN1, PEND1)
fail_again = _dist(False, "mysource.create.pending.csv", FIN2, PEND2)


def _relocate(storage: str, outside: str) -> None:
    DataCenter(storage).setStoragePath(os.path.join(outside, "new"), move=True)


def _relocation_setup(storage: str, outside: str) -> None:
    DataCenter(storage)
    write(os.path.join(storage, "a.csv"), "id\n1\n")
    write(os.path.join(storage, "finished", "x.create.finished.csv"), "id\n1\n2\n")
    write(os.path.join(storage, "deep", "er", "f.txt"), "deep\n")
    write(os.path.join(outside, "new", "finished", "theirs.csv"), "id\n9\n")
    write(os.path.join(outside, "new", "a.csv"), "clash\n")


def _backup(storage: str, outside: str) -> None:
    DataCenter(storage).backupRecords("students", [{"id": "S3", "name": "Chidi"}])


SCENARIOS = [
    Scenario("seed-1-success", _chain(), _dist(True, "mysource.csv", FIN1, None)),
    Scenario("seed-2-failure", _chain(), fail_first),
    Scenario("seed-3-pending-success", _chain(fail_first),
             _dist(True, "mysource.create.pending.csv", FIN2 + "3,Chidi\r\n", None)),
    Scenario("seed-4-pending-fails", _chain(fail_first), fail_again),
    Scenario("seed-5-fails-again", _chain(fail_first, fail_again),
             _dist(False, "mysource.create.pending.csv", "id,name\r\n", PEND2)),
    Scenario("seed-6-finally-success", _chain(fail_first, fail_again),
             _dist(True, "mysource.create.pending.csv", FIN3, None)),
    Scenario("append-rows", _chain(_dist(True, "a.csv", FIN1, None)),
             _dist(True, "b.csv", FIN2, None, source_text="other\n")),
    Scenario("header-union-merge", _chain(_dist(True, "a.csv", FIN1, None)),
             _dist(True, "a.csv", "name,id,email\n4,Dayo,d@example.org\n", None)),
    Scenario("relocation", _relocation_setup, _relocate),
    Scenario("backup-records", _chain(lambda s, o: DataCenter(s).backupRecords(
        "students", [{"id": "S1", "name": "Ada"}])), _backup),
]


def _check_clean(storage: str) -> None:
    state = os.path.join(storage, ".datacenter")
    assert os.listdir(os.path.join(state, "journal")) == []
    assert os.listdir(os.path.join(state, "staging")) == []
    for folder, _, files in os.walk(storage):
        assert not [f for f in files if f.startswith(".dc-tmp-")], folder


def _enumerate(scenario: Scenario, work: Path, crash_recovery: bool = True) -> CrashReport:
    storage, outside = str(work / "storage"), str(work / "outside")

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(outside)
        scenario.setup(storage, outside)
        if isinstance(scenario.act, Dist):
            scenario.act.inputs(storage, outside)

    prepare()
    roots = scenario.roots(storage, outside)
    before = snapshot(*roots)
    assert run_child(lambda: scenario.act(storage, outside), None) == "completed"
    after = snapshot(*roots)
    assert before != after, "the scenario changes nothing"

    def recover() -> None:
        DataCenter(storage).recover()
        if os.path.isdir(os.path.join(outside, "new", ".datacenter")):
            DataCenter(os.path.join(outside, "new"))

    def check() -> None:
        state = snapshot(*roots)
        assert state in (before, after), _diff(state, before, after)
        _check_clean(storage)

    return enumerate_crashes(prepare, lambda: scenario.act(storage, outside), recover, check,
                             crash_recovery=crash_recovery)


def _diff(state: Snapshot, before: Snapshot, after: Snapshot) -> str:
    def show(other: Snapshot) -> str:
        keys = sorted(set(state) | set(other))
        return "; ".join(f"{k}: {other.get(k)!r} -> {state.get(k)!r}"
                         for k in keys if state.get(k) != other.get(k))
    return f"neither before nor after.\nvs before: {show(before)}\nvs after: {show(after)}"


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_crash_at_every_step(scenario: Scenario, tmp_path: Path) -> None:
    report = _enumerate(scenario, tmp_path / "work")
    assert report.points >= 10, "suspiciously few crash points"
    print(f"{scenario.name}: {report.points} crash points, {report.runs} runs, "
          f"{report.recovery_crashes} crashes inside recovery")


@pytest.mark.slow
def test_crash_across_filesystems(other_fs: Path) -> None:
    """Results in a folder on another filesystem (tmpfs), as from /tmp."""
    work = Path(tempfile.mkdtemp(dir=other_fs))
    storage_parent = Path(tempfile.mkdtemp())
    try:
        def setup(storage: str, outside: str) -> None:
            DataCenter(storage)

        scenario = Scenario("exdev", setup, _dist(False, "x.csv", FIN1, PEND1))
        report = _enumerate_split(scenario, storage_parent / "storage", work / "outside")
        assert report.points >= 10
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(storage_parent, ignore_errors=True)


def _enumerate_split(scenario: Scenario, storage_path: Path, outside_path: Path) -> CrashReport:
    storage, outside = str(storage_path), str(outside_path)

    def prepare() -> None:
        shutil.rmtree(storage, ignore_errors=True)
        shutil.rmtree(outside, ignore_errors=True)
        os.makedirs(outside)
        scenario.setup(storage, outside)
        if isinstance(scenario.act, Dist):
            scenario.act.inputs(storage, outside)

    prepare()
    before = snapshot(storage, outside)
    assert run_child(lambda: scenario.act(storage, outside), None) == "completed"
    after = snapshot(storage, outside)

    def check() -> None:
        assert snapshot(storage, outside) in (before, after)
        _check_clean(storage)

    return enumerate_crashes(prepare, lambda: scenario.act(storage, outside),
                             lambda: DataCenter(storage).recover(), check)
