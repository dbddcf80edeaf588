"""The whole import pipeline under SIGKILL: every fs step and the database commit.

After each kill and a recovery (itself killed at each of its steps in
turn), the rows in the record store plus the rows in pending files must
be the rows of the source, each exactly once; the source must be in
exactly one place with its bytes intact; and importing again must end
where an uninterrupted import ends.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
from pathlib import Path

import pytest
from helpers import reset_database, write

from datacenter.config import Config
from datacenter.importing.csvinput import FatalCSVError
from datacenter.importing.importer import Importer, Request
from datacenter.testing.crashpoints import enumerate_crashes

PROCESSORS = {
    "faculties": {"key": ["code"], "fields": {"code": "str", "title": "str"},
                  "required": ["title"]},
    "departments": {"key": ["code"], "fields": {"code": "str", "faculty_code": "str",
                                                "title": "str"},
                    "required": ["title", "faculty_code"],
                    "parents": {"faculty_code": "faculties"}},
    "students": {"key": ["id"], "fields": {"id": "str", "name": "str", "state": "str"},
                 "required": ["name"], "graduated": {"state": "graduated"}},
}
DEPARTMENTS = ("code,faculty_code,title\r\nD1,F1,Physics\r\nD2,F9,Nowhere\r\n"
               "D3,F1,Chemistry\r\nD4,F2,\r\nD5,F2,History\r\n")


def _conf(work: Path, database: str) -> Config:
    """The storage in *work*; the record store *database* when it is a server's, else in *work*."""
    return Config(path=None, storage=str(work / "storage"),
                  database=database if "://" in database else str(work / "db.sqlite"),
                  processors=PROCESSORS)


def _kind(database: str) -> str:
    return "postgresql" if "://" in database else "sqlite"


def _rows(path: str) -> list[tuple[str, ...]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [tuple(r[:3]) for r in list(csv.reader(handle))[1:] if r]


def _state(conf: Config) -> dict[str, object]:
    importer = Importer(conf)
    try:
        store = sorted(tuple(str(v) for v in r.values())
                       for r in importer.store.iter_records("departments"))
        removed = importer.store.count("students")
    finally:
        importer.close()
    storage = conf.storage
    pending = sorted(row for name in os.listdir(storage) if name.endswith(".pending.csv")
                     for row in _rows(os.path.join(storage, name)))
    places = [p for p in (os.path.join(storage, "departments.csv"),
                          os.path.join(storage, "finished", "departments.csv"),
                          os.path.join(storage, "unfinished", "departments.csv"))
              if os.path.exists(p)]
    state = os.path.join(storage, ".datacenter")
    leftovers = [os.path.join(area, n) for area in ("journal", "staging", "jobs")
                 for n in os.listdir(os.path.join(state, area))]
    return {"store": store, "pending": pending, "places": places, "leftovers": leftovers,
            "students": removed}


@pytest.mark.slow
def test_kill_anywhere_in_an_import(tmp_path: Path, database: str) -> None:
    work = tmp_path / "work"
    conf = _conf(work, database)
    source_rows = sorted(_rows(write(tmp_path / "d.csv", DEPARTMENTS)))

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        reset_database(conf.database)
        importer = Importer(conf)
        write(os.path.join(conf.storage, "faculties.csv"), "code,title\nF1,Science\nF2,Arts\n")
        importer.import_file(os.path.join(conf.storage, "faculties.csv"))
        importer.close()
        write(os.path.join(conf.storage, "departments.csv"), DEPARTMENTS)

    def act() -> None:
        with contextlib.closing(Importer(conf)) as importer:
            importer.import_file(os.path.join(conf.storage, "departments.csv"))

    def recover() -> None:
        Importer(conf).close()

    def check() -> None:
        state = _state(conf)
        assert state["leftovers"] == []
        assert len(state["places"]) == 1, state["places"]
        with open(state["places"][0], encoding="utf-8", newline="") as handle:  # type: ignore[index]
            assert handle.read() == DEPARTMENTS
        if state["places"][0].endswith(os.path.join("storage", "departments.csv")):  # type: ignore[index]
            assert state["store"] == [] and state["pending"] == []  # rolled back
            act()  # the next attempt imports it
            state = _state(conf)
        imported = sorted(state["store"] + state["pending"])  # type: ignore[operator]
        assert imported == source_rows, "a row was lost or counted twice"
        assert [r[0] for r in state["pending"]] == ["D2", "D4"]  # type: ignore[index]

    report = enumerate_crashes(prepare, act, recover, check, target="*")
    assert report.points >= 20
    print(f"import pipeline ({_kind(database)}): {report.points} crash points, {report.runs} runs, "
          f"{report.recovery_crashes} crashes inside recovery")


@pytest.mark.slow
def test_kill_anywhere_in_a_removal(tmp_path: Path, database: str) -> None:
    """Removed records are backed up exactly once, whatever is killed when."""
    work = tmp_path / "work"
    conf = _conf(work, database)

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        reset_database(conf.database)
        importer = Importer(conf)
        write(os.path.join(conf.storage, "students.csv"),
              "id,name,state\nS1,Ada,active\nS2,Bola,graduated\nS3,Chidi,active\n")
        importer.import_file(os.path.join(conf.storage, "students.csv"))
        importer.close()
        write(os.path.join(conf.storage, "students_gone.remove.csv"), "id\nS1\nS2\nS9\n")

    def act() -> None:
        with contextlib.closing(Importer(conf)) as importer:
            importer.import_file(os.path.join(conf.storage, "students_gone.remove.csv"))

    def check() -> None:
        if os.path.exists(os.path.join(conf.storage, "students_gone.remove.csv")):
            act()
        state = _state(conf)
        assert state["leftovers"] == [] and state["students"] == 1
        deleted = _rows(os.path.join(conf.storage, "deleted", "students.csv"))
        graduated = _rows(os.path.join(conf.storage, "graduated", "students.csv"))
        assert deleted == [("S1", "Ada", "active")]
        assert graduated == [("S2", "Bola", "graduated")]

    report = enumerate_crashes(prepare, act, lambda: Importer(conf).close(), check, target="*")
    assert report.points >= 20
    print(f"removal ({_kind(database)}): {report.points} crash points, {report.runs} runs")


@pytest.mark.slow
def test_kill_anywhere_in_a_batch_of_imports(tmp_path: Path, database: str) -> None:
    """Three files in one transaction and one journal group: a good one, one with
    failing rows, one that cannot be imported at all."""
    work = tmp_path / "work"
    conf = _conf(work, database)
    names = ["faculties_a.csv", "departments.csv", "faculties_bad.csv"]
    texts = ["code,title\nF1,Science\nF2,Arts\n", DEPARTMENTS, "code,title\nF3,\"open\n"]

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        reset_database(conf.database)
        importer = Importer(conf)
        importer.close()
        for name, text in zip(names, texts, strict=True):
            write(os.path.join(conf.storage, name), text)

    def act() -> None:
        with contextlib.closing(Importer(conf)) as importer:
            results = importer.import_many(
                [Request(os.path.join(conf.storage, n)) for n in names])
        assert isinstance(results[2], FatalCSVError)

    def check() -> None:
        if os.path.exists(os.path.join(conf.storage, "faculties_a.csv")):
            act()  # rolled back as a whole: the next attempt imports the batch
        state = _state(conf)
        assert state["leftovers"] == []
        assert sorted(state["store"] + state["pending"]) == sorted(_rows(
            write(tmp_path / "d.csv", DEPARTMENTS)))
        assert os.path.exists(os.path.join(conf.storage, "faculties_bad.csv"))  # untouched
        finished = os.listdir(os.path.join(conf.storage, "finished"))
        assert "faculties_a.csv" in finished and "faculties_bad.csv" not in finished

    report = enumerate_crashes(prepare, act, lambda: Importer(conf).close(), check, target="*")
    assert report.points >= 20
    print(f"batch of three ({_kind(database)}): {report.points} crash points, {report.runs} runs")
