"""Errors that are not crashes: a full disk, an I/O error, a refused permission.

At every single filesystem step of an operation in turn, one call fails.
The operation either completes (the failure hit a step that recovery could
redo) or raises the error having changed nothing; either way the journal
and staging are clean, and the same call, tried again, works.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from helpers import SCENARIOS, Dist, Scenario, check_clean, snapshot

from datacenter import DataCenter
from datacenter.testing.faults import FaultConfig, FaultInjector

ERRORS = {
    "ENOSPC": OSError(errno.ENOSPC, "No space left on device"),
    "EIO": OSError(errno.EIO, "Input/output error"),
    "EACCES": PermissionError(errno.EACCES, "Permission denied"),
}
CHOSEN = [s for s in SCENARIOS if s.name in (
    "seed-2-failure", "seed-6-finally-success", "header-union-merge", "relocation",
    "backup-records")]


def _prepare(scenario: Scenario, work: Path) -> tuple[str, str]:
    shutil.rmtree(work, ignore_errors=True)
    storage, outside = str(work / "storage"), str(work / "outside")
    os.makedirs(outside)
    scenario.setup(storage, outside)
    if isinstance(scenario.act, Dist):
        scenario.act.inputs(storage, outside)
    return storage, outside


@pytest.mark.parametrize("error", ERRORS, ids=str)
@pytest.mark.parametrize("scenario", CHOSEN, ids=lambda s: s.name)
def test_one_failing_step_leaves_before_or_after(scenario: Scenario, error: str,
                                                 tmp_path: Path) -> None:
    work = tmp_path / "work"
    storage, outside = _prepare(scenario, work)
    before = snapshot(storage, outside)
    scenario.act(storage, outside)
    after = snapshot(storage, outside)
    raised = completed = 0
    for step in range(1, 1000):
        storage, outside = _prepare(scenario, work)
        injector = FaultInjector(seed=step)
        injector.add(FaultConfig(target="fs.*", exception=ERRORS[error], nth=step))
        try:
            with injector.installed():
                scenario.act(storage, outside)
        except OSError as exc:
            assert exc.errno == ERRORS[error].errno, exc
            raised += 1
            if any("the storage was moved" in note for note in getattr(exc, "__notes__", [])):
                assert snapshot(storage, outside) == after, f"step {step}"
                continue  # moved, and the error says so: opening the new root failed
            assert snapshot(storage, outside) == before, f"step {step} changed something"
            check_clean(storage)
            scenario.act(storage, outside)  # the same call again works
        else:
            completed += 1
        assert snapshot(storage, outside) == after, f"step {step}"
        check_clean(storage)
        if not injector.stats["faults_triggered"]:
            break  # the call no longer reaches step N: every step was tried
    assert raised >= 5 and completed >= 1, (raised, completed)


def test_error_message_names_the_reason(dc: DataCenter, tmp_path: Path) -> None:
    src = tmp_path / "storage" / "x.csv"
    src.write_text("id\n1\n")
    finished = tmp_path / "out" / "finished.csv"
    finished.parent.mkdir()
    finished.write_text("id\n1\n")
    injector = FaultInjector(seed=1)
    injector.add(FaultConfig(target="fs.replace", exception=ERRORS["ENOSPC"], nth=1))
    with injector.installed(), pytest.raises(OSError, match="No space left on device"):
        dc.distProcessedFiles(True, str(src), str(finished), None)
    assert src.exists() and finished.exists()
    dc.distProcessedFiles(True, str(src), str(finished), None)
    assert (tmp_path / "storage" / "finished" / "x.csv").exists()
