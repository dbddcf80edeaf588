"""The console's changes to the storage, killed at every filesystem step.

An upload dropped into the root and a pending file's rows replaced are
each killed (SIGKILL, in a forked child) at each step of the filesystem
module in turn; after recovery (opening the storage, itself killed at each
of its steps) the storage holds the file as it was or as it became, never
a torn one, and no temporary file.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import check_clean, snapshot, students_csv, web_conf

from datacenter import DataCenter
from datacenter.config import Config
from datacenter.importing import Importer, Router
from datacenter.importing.fixes import replace_rows
from datacenter.importing.uploads import drop, preview
from datacenter.records.schema import ProcessorSchema
from datacenter.records.store import RecordStore
from datacenter.testing.crashpoints import enumerate_crashes, run_child

UPLOAD = b"code,title\r\nF1,Science\r\nF2,Arts\r\n"


def _crash_everywhere(tmp_path: Path, setup: Callable[[Config], object],
                      act: Callable[[Config], object]) -> int:
    work = tmp_path / "work"
    conf: list[Config] = []

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        conf[:] = [web_conf(work)]
        setup(conf[0])

    def action() -> None:
        act(conf[0])

    prepare()
    before = snapshot(conf[0].storage)
    assert run_child(action, None) == "completed"
    after = snapshot(conf[0].storage)
    assert before != after

    def recover() -> None:
        DataCenter(conf[0].storage)  # opening sweeps temporary names, finishes intents

    def check() -> None:
        assert snapshot(conf[0].storage) in (before, after)
        check_clean(conf[0].storage)

    return enumerate_crashes(prepare, action, recover, check).points


def _drop(conf: Config) -> None:
    router = Router(conf.routes, list(conf.processors))
    looked = preview(UPLOAD, "faculties.csv", _schemas(conf), router)
    with contextlib.closing(RecordStore(conf.database, {})) as store:
        drop(conf.storage, UPLOAD, looked, store, "alice")


def _schemas(conf: Config) -> dict[str, ProcessorSchema]:
    importer = Importer(conf)
    try:
        return dict(importer.schemas)
    finally:
        importer.close()


def _pending(conf: Config) -> None:
    importer = Importer(conf)
    try:
        path = Path(conf.storage, "students.csv")
        path.write_text(students_csv("S1,Ada,ada@example.org,2004-03-15,abc,admitted",
                                     "S2,Bo,bo@example.org,2004-03-15,xyz,admitted"))
        importer.import_file(str(path))
    finally:
        importer.close()


def _fix(conf: Config) -> None:
    fixed = {"student_id": "S1", "name": "Ada", "email": "ada@example.org",
             "birthday": "2004-03-15", "level": "100", "state": "admitted"}
    with contextlib.closing(RecordStore(conf.database, {})) as store:
        replace_rows(conf.storage, "students.create.pending.csv", [fixed], store, "alice",
                     count=1)


@pytest.mark.slow
def test_an_upload_killed_at_every_step_is_there_whole_or_not_at_all(tmp_path: Path) -> None:
    assert _crash_everywhere(tmp_path, lambda conf: None, _drop) >= 3


@pytest.mark.slow
def test_a_fix_killed_at_every_step_leaves_the_old_rows_or_the_new(tmp_path: Path) -> None:
    assert _crash_everywhere(tmp_path, _pending, _fix) >= 3
