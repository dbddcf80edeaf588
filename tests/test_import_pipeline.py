"""The import pipeline, as a user of the storage folder sees it.

Every test drops files at the storage's root, imports them through an
:class:`~datacenter.importing.importer.Importer` built on the documented
processors of ``datacenter.toml`` (the ``imp`` fixture), and then looks at
both the record store and the files a user finds in the folders:
``finished/``, ``unfinished/``, ``deleted/``, ``graduated/`` and the pending
files at the root; in each mode, through chains of pending files, and
when the commit itself fails.
"""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    EXISTS,
    NO_PARENT,
    NO_REMOVE,
    NO_UPDATE,
    ROOT,
    STUDENT_HEADER,
    at,
    drop,
    job_folders,
    load_students,
    make_importer,
    raw,
    student,
    students_csv,
    table,
    visible,
    write,
)

from datacenter.importing.importer import Importer
from datacenter.testing.faults import FaultConfig, FaultInjector


@pytest.fixture
def imp(tmp_path: Path, database: str) -> Iterator[Importer]:
    """An importer on each record store (SQLite, PostgreSQL): the pipeline behaves the same."""
    importer = make_importer(tmp_path, database=database)
    yield importer
    importer.close()

# -- create mode -----------------------------------------------------------------------


def test_create_imports_rows_and_files_the_source_away(imp: Importer) -> None:
    text = (ROOT / "examples" / "faculties.csv").read_text(encoding="utf-8")
    outcome = imp.import_file(drop(imp, "faculties.csv", text))
    assert (outcome.processor, outcome.mode, outcome.rows, outcome.ok, outcome.failed) == (
        "faculties", "create", 3, 3, 0)
    assert outcome.pending is None
    assert outcome.summary() == "Imported 3 rows from faculties.csv: 3 ok, 0 failed"
    assert imp.store.count("faculties") == 3
    assert imp.store.get(imp.schemas["faculties"], ("FAC2",)) == {
        "code": "FAC2", "title": "Faculty of Arts"}
    assert visible(imp) == {"finished/faculties.csv", "finished/faculties.create.finished.csv"}
    assert raw(at(imp, "finished", "faculties.csv")) == text  # the source, unchanged
    assert table(at(imp, "finished", "faculties.create.finished.csv")) == [
        ["code", "title"], ["FAC1", "Faculty of Science"], ["FAC2", "Faculty of Arts"],
        ["FAC3", "Faculty of Medicine"]]
    assert imp.dc.getPendingFiles() == []
    assert job_folders(imp) == []


def test_create_fails_rows_whose_key_exists(imp: Importer) -> None:
    imp.import_file(drop(imp, "faculties.csv", "code,title\nFAC1,Science\n"))
    outcome = imp.import_file(drop(imp, "faculties_more.csv",
                                   "code,title\nFAC1,Renamed\nFAC2,Arts\nFAC2,Arts again\n"))
    assert (outcome.rows, outcome.ok, outcome.failed) == (3, 1, 2)
    assert outcome.pending == "faculties_more.create.pending.csv"
    faculties = imp.schemas["faculties"]
    assert imp.store.get(faculties, ("FAC1",)) == {"code": "FAC1", "title": "Science"}
    assert imp.store.get(faculties, ("FAC2",)) == {"code": "FAC2", "title": "Arts"}
    assert imp.store.count("faculties") == 2
    assert table(at(imp, "faculties_more.create.pending.csv")) == [
        ["code", "title", "--ERRORS--"],
        ["FAC1", "Renamed", EXISTS],
        ["FAC2", "Arts again", EXISTS],
    ]
    assert os.path.isfile(at(imp, "unfinished", "faculties_more.csv"))
    assert not os.path.exists(at(imp, "faculties_more.csv"))
    # Finished files of different sources never mix.
    assert table(at(imp, "finished", "faculties_more.create.finished.csv"))[1:] == [
        ["FAC2", "Arts"]]


# -- update mode ---------------------------------------------------------------------


def test_pending_rows_keep_the_order_of_the_source(imp: Importer) -> None:
    imp.import_file(drop(imp, "faculties.csv", "code,title\nF1,Science\n"))
    outcome = imp.import_file(drop(imp, "faculties_2.csv",
                                   "code,title\nF1,Again\nF2,\nF3,Arts\nF3,Twice\n"))
    assert [row[0] for row in table(at(imp, outcome.pending or "?"))] == [
        "code", "F1", "F2", "F3"]


def test_update_keeps_values_of_empty_cells_and_fails_missing_records(imp: Importer) -> None:
    load_students(imp)
    outcome = imp.import_file(drop(imp, "students_fix.update.csv",
                                   "student_id,name,email,level\r\n"
                                   "S1,,,200\r\n"
                                   "S9,Nobody,,100\r\n"
                                   "S2,Bola Eze-Obi,, \r\n"))
    assert (outcome.mode, outcome.rows, outcome.ok, outcome.failed) == ("update", 3, 2, 1)
    s1, s2 = student(imp, "S1"), student(imp, "S2")
    assert s1 is not None and s2 is not None
    assert (s1["name"], s1["email"], s1["level"]) == ("Ada Obi", "ada@example.org", 200)
    assert (s2["name"], s2["email"], s2["level"]) == ("Bola Eze-Obi", "bola@example.org", 400)
    assert student(imp, "S9") is None
    assert imp.store.count("students") == 2
    pending = table(at(imp, outcome.pending or "?"))
    assert pending == [["student_id", "name", "email", "level", "--ERRORS--"],
                       ["S9", "Nobody", "", "100", NO_UPDATE]]
    finished = table(at(imp, "finished", "students_fix.update.finished.csv"))
    assert finished == [["student_id", "name", "email", "level"],
                        ["S1", "", "", "200"], ["S2", "Bola Eze-Obi", "", " "]]
    assert os.path.isfile(at(imp, "unfinished", "students_fix.update.csv"))


def test_update_checks_values_and_parents(imp: Importer) -> None:
    imp.import_file(drop(imp, "faculties.csv", "code,title\nF1,Science\n"))
    imp.import_file(drop(imp, "departments.csv", "code,faculty_code,title\nD1,F1,Physics\n"))
    outcome = imp.import_file(drop(imp, "departments.update.csv",
                                   "code,faculty_code\nD1,F9\n"))
    assert outcome.failed == 1
    assert table(at(imp, outcome.pending or "?"))[1] == ["D1", "F9", NO_PARENT]
    assert imp.store.get(imp.schemas["departments"], ("D1",)) == {
        "code": "D1", "faculty_code": "F1", "title": "Physics"}


# -- remove mode -----------------------------------------------------------------------


def test_remove_backs_records_up_to_deleted_and_graduated(imp: Importer) -> None:
    load_students(imp)
    outcome = imp.import_file(drop(imp, "students_x.remove.csv",
                                   "student_id,name\r\nS1,anything\r\nS2,\r\nS7,\r\n"))
    assert (outcome.processor, outcome.mode) == ("students", "remove")
    assert (outcome.rows, outcome.ok, outcome.failed) == (3, 2, 1)
    assert student(imp, "S1") is None and student(imp, "S2") is None
    assert imp.store.count("students") == 0
    header = STUDENT_HEADER.split(",")
    assert table(at(imp, "deleted", "students.csv")) == [
        header, ["S1", "Ada Obi", "ada@example.org", "2004-03-15", "100", "admitted"]]
    assert table(at(imp, "graduated", "students.csv")) == [
        header, ["S2", "Bola Eze", "bola@example.org", "2003-11-02", "400", "graduated"]]
    assert table(at(imp, "students_x.remove.pending.csv")) == [
        ["student_id", "name", "--ERRORS--"], ["S7", "", NO_REMOVE]]
    assert table(at(imp, "finished", "students_x.remove.finished.csv")) == [
        ["student_id", "name"], ["S1", "anything"], ["S2", ""]]
    assert os.path.isfile(at(imp, "unfinished", "students_x.remove.csv"))
    assert job_folders(imp) == []


def test_remove_appends_to_existing_backups(imp: Importer) -> None:
    load_students(imp)
    imp.import_file(drop(imp, "students_a.remove.csv", "student_id\nS1\n"))
    imp.import_file(drop(imp, "students_more.csv", students_csv(
        "S3,Chidi,,,,admitted")))
    imp.import_file(drop(imp, "students_b.remove.csv", "student_id\nS3\n"))
    assert [row[0] for row in table(at(imp, "deleted", "students.csv"))] == [
        "student_id", "S1", "S3"]
    assert not os.path.exists(at(imp, "graduated", "students.csv"))


def test_remove_of_a_missing_record_fails_and_backs_nothing_up(imp: Importer) -> None:
    outcome = imp.import_file(drop(imp, "students.remove.csv", "student_id\nS1\n"))
    assert (outcome.ok, outcome.failed) == (0, 1)
    assert table(at(imp, "students.remove.pending.csv"))[1] == ["S1", NO_REMOVE]
    assert os.listdir(imp.dc.deleted_path) == [] and os.listdir(imp.dc.graduated_path) == []


# -- parents -------------------------------------------------------------------------


def test_departments_wait_for_their_faculty_then_the_chain_finishes(imp: Importer) -> None:
    departments = "code,faculty_code,title\r\nD1,F1,Physics\r\nD2,F1,Chemistry\r\nD3,F2,History\r\n"
    first = imp.import_file(drop(imp, "departments.csv", departments))
    assert (first.rows, first.ok, first.failed) == (3, 0, 3)
    assert first.pending == "departments.create.pending.csv"
    assert [row[-1] for row in table(at(imp, first.pending))[1:]] == [NO_PARENT] * 3
    assert imp.store.count("departments") == 0
    assert raw(at(imp, "unfinished", "departments.csv")) == departments

    imp.import_file(drop(imp, "faculties.csv", "code,title\nF1,Science\nF2,Arts\n"))
    again = imp.import_file(at(imp, "departments.create.pending.csv"))
    assert (again.processor, again.mode, again.rows, again.ok, again.failed) == (
        "departments", "create", 3, 3, 0)
    assert again.pending is None
    assert imp.store.count("departments") == 3
    assert imp.store.get(imp.schemas["departments"], ("D3",)) == {
        "code": "D3", "faculty_code": "F2", "title": "History"}
    assert not os.path.exists(at(imp, "departments.create.pending.csv"))
    assert not os.path.exists(at(imp, "unfinished", "departments.csv"))
    assert raw(at(imp, "finished", "departments.csv")) == departments
    assert table(at(imp, "finished", "departments.create.finished.csv")) == [
        ["code", "faculty_code", "title"], ["D1", "F1", "Physics"], ["D2", "F1", "Chemistry"],
        ["D3", "F2", "History"]]
    assert imp.dc.getPendingFiles() == []


def test_a_chain_keeps_only_the_rows_still_failing(imp: Importer) -> None:
    text = (ROOT / "examples" / "departments.csv").read_text(encoding="utf-8")
    imp.import_file(drop(imp, "departments.csv", text))
    imp.import_file(drop(imp, "faculties.csv",
                         (ROOT / "examples" / "faculties.csv").read_text(encoding="utf-8")))
    again = imp.import_file(at(imp, "departments.create.pending.csv"))
    assert (again.ok, again.failed, again.pending) == (3, 1, "departments.create.pending.csv")
    assert table(at(imp, "departments.create.pending.csv")) == [
        ["code", "faculty_code", "title", "--ERRORS--"],
        ["DEP4", "FAC9", "Department of Nowhere", NO_PARENT]]
    assert raw(at(imp, "unfinished", "departments.csv")) == text
    assert not os.path.exists(at(imp, "finished", "departments.csv"))


# -- fixing a pending file -----------------------------------------------------------


def test_fixed_pending_file_finishes_the_chain(imp: Importer) -> None:
    source = (ROOT / "examples" / "students.csv").read_text(encoding="utf-8")
    first = imp.import_file(drop(imp, "students.csv", source))
    assert (first.ok, first.failed) == (2, 2)
    pending = at(imp, "students.create.pending.csv")
    rows = table(pending)
    assert rows[0] == [*STUDENT_HEADER.split(","), "--ERRORS--"]
    assert [row[0] for row in rows[1:]] == ["S0003", "S0004"]

    # A human fixes the first row only and saves the file, --ERRORS-- column and all.
    rows[1][2] = "chidi@example.org"
    with open(pending, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    second = imp.import_file(pending)
    assert (second.rows, second.ok, second.failed) == (2, 1, 1)
    rows = table(pending)
    assert rows[0].count("--ERRORS--") == 1
    assert rows == [[*STUDENT_HEADER.split(","), "--ERRORS--"],
                    ["S0004", "Dayo Ade", "dayo.ade@example.org", "2001-01-09", "abc",
                     "graduated", "level: invalid integer 'abc'"]]

    rows[1][4] = "400"
    with open(pending, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    third = imp.import_file(pending)
    assert (third.rows, third.ok, third.failed, third.pending) == (1, 1, 0, None)

    assert imp.store.count("students") == 4
    s4 = student(imp, "S0004")
    assert s4 is not None and (s4["level"], s4["state"]) == (400, "graduated")
    assert not os.path.exists(pending)
    assert raw(at(imp, "finished", "students.csv")) == source
    assert os.listdir(imp.dc.unfinished_path) == []
    finished = table(at(imp, "finished", "students.create.finished.csv"))
    assert finished[0] == STUDENT_HEADER.split(",")
    assert [row[0] for row in finished[1:]] == ["S0001", "S0002", "S0003", "S0004"]
    assert all(len(row) == 6 for row in finished)


def test_an_errors_column_anywhere_is_replaced_not_duplicated(imp: Importer) -> None:
    outcome = imp.import_file(drop(imp, "students_z.csv",
                                   "student_id,--ERRORS--,name,level\r\n"
                                   "S1,old reason,Ada,abc\r\n"
                                   "S2,old reason,Bola,2\r\n"))
    assert (outcome.ok, outcome.failed) == (1, 1)
    assert table(at(imp, "students_z.create.pending.csv")) == [
        ["student_id", "name", "level", "--ERRORS--"],
        ["S1", "Ada", "abc", "level: invalid integer 'abc'"]]
    assert table(at(imp, "finished", "students_z.create.finished.csv")) == [
        ["student_id", "name", "level"], ["S2", "Bola", "2"]]


# -- the commit point -------------------------------------------------------------------


def test_a_failed_commit_rolls_back_and_the_next_import_works(tmp_path: Path) -> None:
    """COMMIT itself fails (a full disk): nothing is kept, nothing stays open."""
    imp = make_importer(tmp_path)
    path = write(os.path.join(imp.dc.storage, "faculties.csv"), "code,title\nF1,Science\n")
    injector = FaultInjector(seed=1)
    injector.add(FaultConfig(target="store.commit", nth=1,
                             exception=OSError(errno.ENOSPC, "No space left on device")))
    with injector.installed(), pytest.raises(OSError, match="No space"):
        imp.import_file(path)
    assert imp.store.count("faculties") == 0 and os.path.exists(path)
    assert imp.import_file(path).ok == 1
