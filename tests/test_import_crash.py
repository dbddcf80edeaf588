"""The whole import pipeline under SIGKILL: every fs step and the database commit.

Through the columnar engine (the row engine's imports are killed the same way
in the other crash tests).

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
from datacenter.importing import columnar
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


@pytest.fixture(autouse=True)
def _columnar_small_files_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every import here goes through the columnar engine, small files too: the row
    engine's kills are enumerated by the other crash tests (their files are small)."""
    monkeypatch.setattr(columnar, "MIN_BYTES", 0)


def _conf(work: Path, database: str = "") -> Config:
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


COLUMNAR = {
    "departments": {"key": ["code"], "fields": {"code": "str", "title": "str"}},
    "students": {"key": ["id"],
                 "fields": {"id": "str", "name": "str", "email": "email", "born": "date",
                            "level": "int", "state": "choice:admitted,graduated",
                            "department": "str"},
                 "required": ["name"], "graduated": {"state": "graduated"},
                 "parents": {"department": "departments"}},
}


def _columnar_rows(n: int, bad_every: int) -> str:
    rows = ["id,name,email,born,level,state,department"]
    for i in range(n):
        level = "x" if bad_every and i % bad_every == 3 else str(i % 5 * 100)
        department = "D9" if i % 11 == 5 else "D1"  # D9 does not exist: the row waits
        rows.append(f"S{i % 37:03d},Student {i},s{i}@example.org,2001-02-{1 + i % 28:02d},"
                    f"{level},{'graduated' if i % 4 == 0 else 'admitted'},{department}")
    rows.insert(7, "S900,short row")
    return "\r\n".join(rows) + "\r\n"


def _storage_state(conf: Config) -> dict[str, object]:
    """Everything a user sees: the records (with the job that wrote them) and the files."""
    importer = Importer(conf)
    try:
        records = {name: sorted(map(repr, importer.store.stored_rows(name)))
                   for name in COLUMNAR}
    finally:
        importer.close()
    files = {}
    for folder, dirs, names in os.walk(conf.storage):
        dirs[:] = [d for d in dirs if d not in (".datacenter", "logs")]
        for name in names:
            files[os.path.relpath(os.path.join(folder, name), conf.storage)] = \
                Path(folder, name).read_bytes()
    state = os.path.join(conf.storage, ".datacenter")
    leftovers = [os.path.join(area, n) for area in ("journal", "staging", "jobs")
                 for n in os.listdir(os.path.join(state, area))]
    return {"records": records, "files": files, "leftovers": leftovers}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["create", "update", "remove"])
def test_kill_anywhere_in_a_columnar_import(tmp_path: Path, mode: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The columnar engine, in batches of a few rows, killed at every step: afterwards
    the storage and the store are those of an import that was never interrupted."""
    monkeypatch.setattr(columnar, "BLOCK_BYTES", 300)  # batches end all over the file
    name = {"create": "students_new.csv", "update": "students_fix.update.csv",
            "remove": "students_gone.remove.csv"}[mode]
    text = {"create": _columnar_rows(60, 9), "update": _columnar_rows(50, 7),
            "remove": "id\r\nS001\r\nS002\r\nS002\r\nS404\r\nS004\r\n"}[mode]

    def prepare_in(work: Path) -> Config:
        shutil.rmtree(work, ignore_errors=True)
        conf = Config(path=None, storage=str(work / "storage"),
                      database=str(work / "db.sqlite"), processors=COLUMNAR)
        importer = Importer(conf)
        write(os.path.join(conf.storage, "departments.csv"), "code,title\nD1,Physics\n")
        importer.import_file(os.path.join(conf.storage, "departments.csv"))
        if mode != "create":
            write(os.path.join(conf.storage, "students.csv"), _columnar_rows(40, 0))
            importer.import_file(os.path.join(conf.storage, "students.csv"))
        importer.close()
        write(os.path.join(conf.storage, name), text)
        return conf

    # The reference: the same import, never interrupted, through the columnar engine.
    engine, used = columnar.import_file, []
    monkeypatch.setattr(columnar, "import_file",
                        lambda *a, **k: used.append(engine(*a, **k)) or used[-1])
    reference_conf = prepare_in(tmp_path / "reference")
    Importer(reference_conf).import_file(os.path.join(reference_conf.storage, name))
    assert used and all(done is not None for done in used), "the row engine imported"
    expected = _storage_state(reference_conf)

    work = tmp_path / "work"
    conf = Config(path=None, storage=str(work / "storage"), database=str(work / "db.sqlite"),
                  processors=COLUMNAR)

    def act() -> None:
        Importer(conf).import_file(os.path.join(conf.storage, name))

    def check() -> None:
        if os.path.exists(os.path.join(conf.storage, name)):
            act()  # rolled back: the next attempt imports it
        assert _storage_state(conf) == expected

    report = enumerate_crashes(lambda: prepare_in(work), act, lambda: Importer(conf).close(),
                               check, target="*")
    assert report.points >= 20
    print(f"columnar {mode}: {report.points} crash points, {report.runs} runs, "
          f"{report.recovery_crashes} crashes inside recovery")
# Two batches as the service imports a burst: the second reuses the job folders the first
# emptied. Good files, failing rows, files that cannot be read at all, an unroutable name,
# a parent and its child in one batch, updates after the create of their records (in the
# same batch, and in the next).
BURST: list[list[tuple[str, bytes]]] = [
    [("faculties_a.csv", b"code,title\nF1,Science\nF2,Arts\n"),
     ("departments_x.csv", b"code,faculty_code,title\nD1,F1,Physics\nD2,F9,Nowhere\nD4,F2,\n"),
     ("faculties_d.update.csv", b"code,title\nF2,Fine Arts\n"),
     ("faculties_bad.csv", b"code,title\nF8,\"open\n"),
     ("faculties_latin1.csv", b"code,title\nF7,Caf\xe9\n"),
     ("faculties_nohead.csv", b""),
     ("nobody.csv", b"code\nX\n")],
    [("faculties_b.csv", b"code,title\nF3,Law\n"),
     ("departments_y.csv", b"code,faculty_code,title\nD6,F3,Contracts\n"),
     ("faculties_c.update.csv", b"code,title\nF1,Natural Science\n")],
]
LEFT_AT_ROOT = {"faculties_bad.csv", "faculties_latin1.csv", "faculties_nohead.csv",
                "nobody.csv"}


def _import_burst(conf: Config) -> None:
    """Both batches, each file not filed yet: what the service does again after a crash."""
    importer = Importer(conf)
    for batch in BURST:
        requests = [Request(os.path.join(conf.storage, name)) for name, _ in batch
                    if name not in LEFT_AT_ROOT
                    and os.path.exists(os.path.join(conf.storage, name))]
        requests += [Request(os.path.join(conf.storage, name)) for name in sorted(LEFT_AT_ROOT)
                     if any(name == n for n, _ in batch)]
        results = importer.import_many(requests, keep_folders=True)
        for request, result in zip(requests, results, strict=True):
            name = os.path.basename(request.path)
            assert isinstance(result, Exception) == (name in LEFT_AT_ROOT), (name, result)
    importer.close()


def _burst_state(conf: Config) -> dict[str, object]:
    importer = Importer(conf)  # recovery first
    try:
        store = {kind: sorted(tuple(str(v) for v in r.values())
                              for r in importer.store.iter_records(kind))
                 for kind in ("faculties", "departments")}
    finally:
        importer.close()
    storage = conf.storage
    pending = {name: _rows(os.path.join(storage, name)) for name in os.listdir(storage)
               if name.endswith(".pending.csv")}
    sources = {}
    for batch in BURST:
        for name, data in batch:
            places = [folder for folder in ("", "finished", "unfinished")
                      if os.path.exists(os.path.join(storage, folder, name))]
            for folder in places:
                with open(os.path.join(storage, folder, name), "rb") as handle:
                    assert handle.read() == data, f"{folder}/{name} changed"
            sources[name] = places
    state = os.path.join(storage, ".datacenter")
    leftovers = [os.path.join(area, n) for area in ("journal", "staging", "jobs")
                 for n in os.listdir(os.path.join(state, area))]
    return {"store": store, "pending": pending, "sources": sources, "leftovers": leftovers}


@pytest.mark.slow
def test_kill_anywhere_in_a_burst_of_batches(tmp_path: Path) -> None:
    """SIGKILL at every step of two batched imports (folders reused by the second);
    after recovery (itself killed at each of its steps) and the service's next
    attempt, every valid row is stored once, every failed row is in one pending
    file once, every source is in one place, and nothing is left in the state."""
    work = tmp_path / "work"
    conf = _conf(work)

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        Importer(conf).close()
        for batch in BURST:
            for name, data in batch:
                Path(conf.storage, name).write_bytes(data)

    def check() -> None:
        _import_burst(conf)  # the next attempt files what the crash left at the root
        state = _burst_state(conf)
        assert state["leftovers"] == []
        assert state["store"] == {
            "faculties": [("F1", "Natural Science"), ("F2", "Fine Arts"), ("F3", "Law")],
            "departments": [("D1", "F1", "Physics"), ("D6", "F3", "Contracts")]}
        # the failed rows, each once, in one pending file
        assert state["pending"] == {"departments_x.create.pending.csv": [
            ("D2", "F9", "Nowhere"), ("D4", "F2", "")]}
        expected = {name: [""] if name in LEFT_AT_ROOT else ["finished"]
                    for batch in BURST for name, _ in batch}
        expected["departments_x.csv"] = ["unfinished"]
        assert state["sources"] == expected

    report = enumerate_crashes(prepare, lambda: _import_burst(conf),
                               lambda: Importer(conf).close(), check, target="*")
    assert report.points >= 40
    print(f"burst of two batches ({sum(map(len, BURST))} files): {report.points} crash "
          f"points, {report.runs} runs (kills and completions), "
          f"{report.recovery_crashes} kills inside recovery")
