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
from pathlib import Path

import pytest
from helpers import FIN1, PEND1, SCENARIOS, Dist, Scenario, Snapshot, check_clean, snapshot

from datacenter import DataCenter
from datacenter.testing.crashpoints import CrashReport, enumerate_crashes, run_child


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
        check_clean(storage)

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

        scenario = Scenario("exdev", setup, Dist(False, "x.csv", FIN1, PEND1))
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
        check_clean(storage)

    return enumerate_crashes(prepare, lambda: scenario.act(storage, outside),
                             lambda: DataCenter(storage).recover(), check)
