"""The operator's day: ``find KEY``, ``pending [NAME]``, ``discard NAME``.

``find`` says where a record stands (the store and the import that last
wrote it, finished files, pending rows and their reasons, discarded rows,
backups); ``pending`` groups failed rows by reason; ``discard`` gives up a
pending file's rows in one journal group, which a crash at any step of it
(and of its recovery) leaves either undone or done, never half.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import (
    ROOT,
    check_clean,
    drop,
    fake_devices,
    make_importer,
    read,
    snapshot,
    table,
    write,
)

from datacenter import DataCenter
from datacenter.cli.main import main
from datacenter.importing.importer import Outcome, Request
from datacenter.importing.pendingfiles import DiscardError, discard
from datacenter.testing.crashpoints import enumerate_crashes, run_child

STUDENTS = ("student_id,name,email,birthday,level,state\r\n"
            "S0001,Ada Obi,ada@example.org,2004-03-15,100,admitted\r\n"
            "S0002,Bola Eze,bola@example.org,2003-11-02,400,graduated\r\n"
            "S0003,Chidi Nwosu,chidi@example,2002-07-21,300,returning\r\n"
            "S0004,Dayo Ade,dayo@example.org,2001-01-09,abc,returning\r\n"
            "S0005,Efe Oke,efe@example.org,2001-01-09,x1,returning\r\n")
EXTRA = """
[processors.enrolments]
key    = ["student", "course"]
fields = { student = "str", course = "str", year = "int" }

[processors.rooms]
key    = ["number"]
fields = { number = "int", name = "str" }
"""
WHEN = 1_700_000_000.0


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """The project's datacenter.toml (plus two processors), storage and store beside it."""
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8") + EXTRA
    path = Path(write(tmp_path / "conf" / "datacenter.toml", text))
    DataCenter(str(path.parent / "storage"))  # made, as `init` or `serve` would
    return path


def run(capsys: pytest.CaptureFixture[str], conf: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(conf), *args])
    out, err = capsys.readouterr()
    return code, out, err


def storage(conf: Path) -> Path:
    return conf.parent / "storage"


def imported(capsys: pytest.CaptureFixture[str], conf: Path, name: str, text: str) -> None:
    path = write(conf.parent / "home" / name, text)
    assert run(capsys, conf, "import", path)[0] in (0, 3)


def found(capsys: pytest.CaptureFixture[str], conf: Path, *args: str) -> list[dict[str, object]]:
    code, out, _ = run(capsys, conf, "find", "--json", *args)
    assert code == 0, out
    result: list[dict[str, object]] = json.loads(out)
    return result


def sightings(capsys: pytest.CaptureFixture[str], conf: Path, *args: str,
              ) -> list[dict[str, object]]:
    [record] = found(capsys, conf, *args)
    return record["sightings"]  # type: ignore[return-value]


# -- find ----------------------------------------------------------------------------------


def test_find_says_which_import_last_wrote_a_record(conf: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "students.csv", STUDENTS)
    imported(capsys, conf, "students_fix.update.csv", "student_id,level\r\nS0001,200\r\n")
    seen = sightings(capsys, conf, "S0001")
    store = [s for s in seen if s["kind"] == "store"]
    assert [[job["id"], job["source"], job["mode"]] for s in store
            for job in s["jobs"]] == [[2, "students_fix.update.csv", "update"]]  # type: ignore[attr-defined]
    finished = {s["file"]: [job["id"] for job in s["jobs"]]  # type: ignore[attr-defined]
                for s in seen if s["kind"] == "finished"}
    assert finished["finished/students.create.finished.csv"] == [1]
    assert [ids for name, ids in finished.items() if "students_fix" in name] == [[2]]
    assert [s["jobs"][0]["id"] for s in sightings(capsys, conf, "S0002")  # type: ignore[index]
            if s["kind"] == "store"] == [1]
    code, out, _ = run(capsys, conf, "find", "S0001")
    assert code == 0 and "in the store since job 2: students_fix.update.csv, update mode" in out


def test_find_names_the_pending_file_line_and_reason(conf: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "students.csv", STUDENTS)
    seen = sightings(capsys, conf, "S0004")
    assert {"kind": "pending", "file": "students.create.pending.csv", "line": 3,
            "reason": "level: invalid integer 'abc'"} in seen
    assert not [s for s in seen if s["kind"] == "store"]
    assert {"kind": "unfinished", "file": "unfinished/students.csv", "line": 5} in seen
    code, out, _ = run(capsys, conf, "find", "S0004")
    assert code == 0
    assert "pending     students.create.pending.csv line 3: level: invalid integer 'abc'" in out


def test_find_names_the_backup_of_a_removed_record(conf: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "students.csv", STUDENTS)
    imported(capsys, conf, "students_gone.remove.csv", "student_id\r\nS0001\r\nS0002\r\n")
    assert {"kind": "deleted", "file": "deleted/students.csv", "line": 2} in \
        sightings(capsys, conf, "S0001")
    seen = sightings(capsys, conf, "S0002")
    assert {"kind": "graduated", "file": "graduated/students.csv", "line": 2} in seen
    assert not [s for s in seen if s["kind"] == "store"]


def test_find_narrows_to_a_processor_and_takes_composite_keys(
        conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "faculties.csv", "code,title\r\nX1,Science\r\n")
    imported(capsys, conf, "departments.csv", "code,faculty_code,title\r\nX1,X1,Physics\r\n")
    imported(capsys, conf, "enrolments.csv", "student,course,year\r\nX1,C1,2024\r\n"
             "X1,C2,2025\r\n")
    assert [r["processor"] for r in found(capsys, conf, "X1")] == ["faculties", "departments"]
    assert [r["processor"] for r in found(capsys, conf, "X1", "--processor", "departments")] \
        == ["departments"]
    [record] = found(capsys, conf, "X1", "C2")
    assert record["processor"] == "enrolments"
    assert record["key"] == {"student": "X1", "course": "C2"}
    assert {"kind": "finished", "file": "finished/enrolments.create.finished.csv", "line": 3} \
        .items() <= record["sightings"][1].items()  # type: ignore[index]
    code, _, err = run(capsys, conf, "find", "X1", "--processor", "enrolments")
    assert code == 1 and err == ("datacenter: error: enrolments: its key has 2 field(s) "
                                 "(student, course); 1 given\n")
    code, _, err = run(capsys, conf, "find", "X1", "--processor", "nope")
    assert code == 1 and "unknown processor 'nope'" in err


def test_find_matches_typed_keys_by_value(conf: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "rooms.csv", "number,name\r\n007,Lab\r\n8,Hall\r\n")
    seen = sightings(capsys, conf, "7", "--processor", "rooms")
    assert [s["kind"] for s in seen] == ["store", "finished"]


def test_find_of_nothing_exits_1(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "students.csv", STUDENTS)
    code, out, err = run(capsys, conf, "find", "U00038", "--json")
    assert (code, json.loads(out)) == (1, [])
    assert err.startswith("datacenter: error: U00038: no record and no row with that key")


def test_find_and_pending_write_nothing(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "students.csv", STUDENTS)

    def everything() -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in conf.parent.rglob("*")}

    before = everything()
    assert run(capsys, conf, "find", "S0004")[0] == 0
    assert run(capsys, conf, "pending")[0] == 0
    assert everything() == before


# -- pending -------------------------------------------------------------------------------


def test_pending_groups_failed_rows_by_reason(conf: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "students.csv", STUDENTS)
    imported(capsys, conf, "departments.csv", "code,faculty_code,title\r\nD1,F1,A\r\n"
             "D2,F1,B\r\nD3,F2,C\r\n")
    code, out, _ = run(capsys, conf, "pending", "--json")
    assert code == 0
    files = {f["name"]: f for f in json.loads(out)}
    assert set(files) == {"students.create.pending.csv", "departments.create.pending.csv"}
    students = files["students.create.pending.csv"]
    assert (students["processor"], students["rows"], students["key"]) == (
        "students", 3, ["student_id"])
    assert students["reasons"] == [
        {"reason": "level: invalid integer '…'", "count": 2, "keys": ["S0004", "S0005"],
         "example": "level: invalid integer 'abc'"},
        {"reason": "email: invalid email address '…'", "count": 1, "keys": ["S0003"],
         "example": "email: invalid email address 'chidi@example'"}]
    code, out, _ = run(capsys, conf, "pending", "departments.create.pending.csv", "--keys", "2")
    assert code == 0 and out.splitlines() == [
        "departments.create.pending.csv (departments): 3 row(s) failed; keys: code",
        "       3  Not all parents do exist yet. Skipping  [D1, D2, ...]"]
    code, _, err = run(capsys, conf, "pending", "nope.csv")
    assert code == 1 and "nope.csv: no such pending file" in err


# -- discard -------------------------------------------------------------------------------


def test_discard_keeps_the_rows_closes_the_chain_and_logs_who(
        conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "students.csv", STUDENTS)
    root = storage(conf)
    pending = read(root / "students.create.pending.csv")
    code, out, _ = run(capsys, conf, "discard", "students.create.pending.csv", "--user", "alice",
                       "--json")
    assert code == 0
    done = json.loads(out)
    assert (done["rows"], done["discarded"], done["source"], done["user"]) == (
        3, "finished/students.create.discarded.csv", "finished/students.csv", "alice")
    assert not (root / "students.create.pending.csv").exists()
    assert not (root / "unfinished" / "students.csv").exists()
    assert (root / "finished" / "students.csv").read_bytes() == STUDENTS.encode()
    rows = table(str(root / "finished" / "students.create.discarded.csv"))
    assert rows[0][:2] == ["--DISCARDED-BY--", "--DISCARDED-AT--"]
    assert [r[2:] for r in rows] == [r for r in table_text(pending)]
    assert {(r[0], r[1]) for r in rows[1:]} == {("alice", done["at"])}
    log = read(root / "logs" / "datacenter.log")
    assert ("alice - discarded: students.create.pending.csv, 3 row(s) -> "
            "finished/students.create.discarded.csv; its source is now "
            "finished/students.csv") in log
    seen = sightings(capsys, conf, "S0004")
    assert {"kind": "discarded", "file": "finished/students.create.discarded.csv", "line": 3,
            "reason": "level: invalid integer 'abc'", "by": "alice",
            "at": done["at"]}.items() <= seen[0].items()


def table_text(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.splitlines() if line]


def test_discard_again_adds_to_the_discarded_file(conf: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "students.csv", STUDENTS)
    assert run(capsys, conf, "discard", "students.create.pending.csv")[0] == 0
    imported(capsys, conf, "students.csv", STUDENTS.replace("S000", "T000"))
    code, out, _ = run(capsys, conf, "discard", "students.create.pending.csv", "--user", "bob")
    assert code == 0 and out.startswith("Discarded 3 row(s) of students.create.pending.csv")
    rows = table(str(storage(conf) / "finished" / "students.create.discarded.csv"))
    assert [r[2] for r in rows[1:]] == ["S0003", "S0004", "S0005", "T0003", "T0004", "T0005"]


def test_discard_of_a_pending_file_without_a_chain(tmp_path: Path) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    write(os.path.join(dc.storage, "x.update.pending.csv"), "id,--ERRORS--\r\n1,bad\r\n")
    done = dc.discard("x.update.pending.csv", user="op", when=WHEN)
    assert (done.rows, done.dest, done.source) == (1, "finished/x.update.discarded.csv", None)
    assert os.listdir(dc.storage + "/finished") == ["x.update.discarded.csv"]
    assert not os.path.exists(os.path.join(dc.storage, "x.update.pending.csv"))


@pytest.mark.parametrize("name", ["x.csv", "../x.create.pending.csv", "y.create.pending.csv"])
def test_discard_refuses_what_is_no_pending_file(tmp_path: Path, name: str) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    write(os.path.join(dc.storage, "x.csv"), "id\r\n1\r\n")
    before = snapshot(dc.storage)
    with pytest.raises(ValueError, match="pending file"):
        dc.discard(name, user="op")
    assert snapshot(dc.storage) == before
    check_clean(dc.storage)


def test_discard_steps_around_a_planted_link(tmp_path: Path) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    outside = write(tmp_path / "outside.csv", "secret\r\n")
    os.symlink(outside, os.path.join(dc.finished_path, "x.create.discarded.csv"))
    write(os.path.join(dc.storage, "x.create.pending.csv"), "id,--ERRORS--\r\n1,bad\r\n")
    done = dc.discard("x.create.pending.csv", user="op", when=WHEN)
    assert done.dest == "finished/x.create.aside.discarded.csv"
    assert Path(outside).read_bytes() == b"secret\r\n"


def test_discard_files_committed_imports_first(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An import of the pending file that committed but is not filed yet comes first; while
    it cannot be filed, nothing is discarded (its filing would replace that very file)."""
    imp = make_importer(tmp_path)
    try:
        imp.import_file(drop(imp, "students.csv", STUDENTS))
        pending = drop(imp, "students.create.pending.csv",
                       read(os.path.join(imp.storage, "students.create.pending.csv"))
                       .replace("abc", "300"))
        real = imp.dc.distribute

        def broken(requests: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(imp.dc, "distribute", broken)
        [outcome] = imp.import_many([Request(pending)])
        assert isinstance(outcome, Outcome) and outcome.failed == 2
        with pytest.raises(DiscardError, match="not filed away yet"):
            discard(imp, "students.create.pending.csv", "op")
        assert os.path.exists(pending)
        monkeypatch.setattr(imp.dc, "distribute", real)
        done = discard(imp, "students.create.pending.csv", "op")
        assert done.rows == 2  # S0004 got in when its import was filed; two rows given up
        assert imp.store.get(imp.schemas["students"], ("S0004",)) is not None
    finally:
        imp.close()


# -- discard, killed at every step --------------------------------------------------------

PENDING = "id,name,--ERRORS--\r\n2,Bola,bad\r\n3,Chidi,worse\r\n"


def _chain(storage: str, discarded_before: bool) -> None:
    DataCenter(storage)
    write(os.path.join(storage, "unfinished", "x.csv"), "id,name\r\n1,Ada\r\n2,Bola\r\n3,Chidi\r\n")
    write(os.path.join(storage, "finished", "x.create.finished.csv"), "id,name\r\n1,Ada\r\n")
    write(os.path.join(storage, "x.create.pending.csv"), PENDING)
    if discarded_before:
        write(os.path.join(storage, "finished", "x.create.discarded.csv"),
              "--DISCARDED-BY--,--DISCARDED-AT--,id,name,--ERRORS--\r\n"
              "op,2023-01-01T00:00:00+00:00,9,Old,gone\r\n")


def _discarded_rows(storage: str) -> list[list[str]]:
    """Every pending or discarded row of the chain, by its cells (who/when aside)."""
    rows = []
    pending = os.path.join(storage, "x.create.pending.csv")
    if os.path.exists(pending):
        rows += table(pending)[1:]
    discarded = os.path.join(storage, "finished", "x.create.discarded.csv")
    if os.path.exists(discarded):
        rows += [r[2:] for r in table(discarded)[1:] if r[2] != "9"]
    return sorted(rows)


@pytest.mark.slow
@pytest.mark.parametrize("discarded_before", [False, True], ids=["new-file", "append"])
def test_kill_anywhere_in_a_discard(tmp_path: Path, discarded_before: bool) -> None:
    store = str(tmp_path / "storage")

    def prepare() -> None:
        shutil.rmtree(store, ignore_errors=True)
        _chain(store, discarded_before)

    def act() -> None:
        DataCenter(store).discard("x.create.pending.csv", user="op", when=WHEN)

    prepare()
    before = snapshot(store)
    assert run_child(act, None) == "completed"
    after = snapshot(store)
    assert before != after
    rows = [["2", "Bola", "bad"], ["3", "Chidi", "worse"]]

    def check() -> None:
        state = snapshot(store)
        assert state in (before, after), sorted(set(state) ^ set(after))
        check_clean(store)
        assert _discarded_rows(store) == rows, "a row was lost or discarded twice"
        places = [p for p in ("unfinished/x.csv", "finished/x.csv")
                  if os.path.exists(os.path.join(store, p))]
        assert len(places) == 1, places

    report = enumerate_crashes(prepare, act, lambda: DataCenter(store).recover(), check)
    assert report.points >= 10, "suspiciously few crash points"
    print(f"discard ({'append' if discarded_before else 'new file'}): {report.points} crash "
          f"points, {report.runs} runs, {report.recovery_crashes} crashes inside recovery")


def test_discard_never_replaces_a_later_source_of_the_same_name(
        conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A chain open in unfinished/, a later x.csv imported fully: both sources are kept."""
    imported(capsys, conf, "faculties.csv", "code,title\nF1,Sci\nF2,\n")  # F2 fails
    imported(capsys, conf, "faculties.csv", "code,title\nF3,Arts\n")
    finished = storage(conf) / "finished"
    assert "F3,Arts" in read(finished / "faculties.csv")
    code, out, _ = run(capsys, conf, "discard", "faculties.create.pending.csv")
    assert code == 0
    assert "F3,Arts" in read(finished / "faculties.csv")  # the later source, untouched
    kept = [n for n in os.listdir(finished) if n.startswith("faculties.job")]
    assert len(kept) == 1 and "F1,Sci" in read(finished / kept[0]), out
    assert os.listdir(storage(conf) / "unfinished") == []


def test_discard_closes_every_source_waiting_beside_the_chain(
        conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(capsys, conf, "faculties.csv", "code,title\nF1,\n")
    imported(capsys, conf, "faculties.csv", "code,title\nF2,\n")  # waits beside the chain
    assert len(os.listdir(storage(conf) / "unfinished")) == 2
    assert run(capsys, conf, "discard", "faculties.create.pending.csv")[0] == 0
    assert os.listdir(storage(conf) / "unfinished") == []
    sources = sorted(n for n in os.listdir(storage(conf) / "finished")
                     if n.startswith("faculties") and ".create." not in n)
    assert len(sources) == 2 and sources[0] == "faculties.csv"
    assert sources[1].startswith("faculties.job")


def test_discard_with_unfinished_on_another_disk(
        conf: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    imported(capsys, conf, "faculties.csv", "code,title\nF1,Sci\nF2,\n")
    refused = fake_devices(monkeypatch, storage(conf) / "unfinished")
    code, _, err = run(capsys, conf, "discard", "faculties.create.pending.csv")
    assert code == 0, err
    assert refused  # the cross-device path was taken, not a plain rename
    assert "F1,Sci" in read(storage(conf) / "finished" / "faculties.csv")
    assert os.listdir(storage(conf) / "unfinished") == []
    assert run(capsys, conf, "recover")[0] == 0
    check_clean(str(storage(conf)))


def test_a_pending_file_with_the_longest_name_can_be_discarded(tmp_path: Path) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    name = "x" * (255 - len(".update.pending.csv")) + ".update.pending.csv"
    write(os.path.join(dc.storage, name), "id,--ERRORS--\r\n1,bad\r\n")
    done = dc.discard(name, user="op", when=WHEN)
    assert done.rows == 1 and done.dest.endswith(".update.discarded.csv")
    assert len(os.path.basename(done.dest).encode()) <= 255


def test_find_and_pending_say_the_reason_of_a_row_longer_than_the_header(
        capsys: pytest.CaptureFixture[str], conf: Path) -> None:
    imported(capsys, conf, "students.csv", "student_id,name,level,--IGNORE--,--IGNORE--\r\n"
                                           "S2,Smith, John,2,x,y\r\n")
    code, out, _ = run(capsys, conf, "find", "S2")
    assert code == 0 and "line 2: 6 cells, but the header has 5" in out, out
    code, out, _ = run(capsys, conf, "pending")  # grouped: its numbers as N and M
    assert "1  N cells, but the header has M  [S2]" in out, out
