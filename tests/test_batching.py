"""Batch processors and the import pipeline, as a user of the storage folder sees them.

Every test drops files at the storage's root, imports them through an
:class:`~datacenter.importing.importer.Importer` built on the documented processors of
``datacenter.toml``, and then looks at both the record store and the files a
user finds in the folders: ``finished/``, ``unfinished/``, ``deleted/``,
``graduated/`` and the pending files at the root. Malformed input lives in
``tests/corpus/``.
"""

from __future__ import annotations

import csv
import gc
import importlib.metadata
import io
import logging
import os
import re
import shutil
import tempfile
import tomllib
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from helpers import write

from datacenter.config import Config, Route
from datacenter.importing.csvinput import CSVSource, FatalCSVError
from datacenter.importing.importer import Importer, UnroutedError
from datacenter.importing.processors import BatchProcessor
from datacenter.records.fieldtypes import field_type
from datacenter.records.schema import ProcessorSchema, SchemaError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
TOML = tomllib.loads((ROOT / "datacenter.toml").read_text(encoding="utf-8"))
PROCESSORS: dict[str, Any] = TOML["processors"]
ROUTES = [Route(**route) for route in TOML["routes"]]
STUDENT_HEADER = "student_id,name,email,birthday,level,state"
EXISTS = "This object already exists. Skipping."
NO_PARENT = "Not all parents do exist yet. Skipping"
NO_UPDATE = "Cannot update: no such entry"
NO_REMOVE = "Cannot remove: no such entry"


# -- helpers -------------------------------------------------------------------------


def make_importer(tmp_path: Path, processors: Mapping[str, Any] | None = None) -> Importer:
    conf = Config(path=None, storage=str(tmp_path / "storage"),
                  database=str(tmp_path / "db.sqlite"),
                  processors=dict(processors if processors is not None else PROCESSORS),
                  routes=list(ROUTES))
    return Importer(conf)


@pytest.fixture
def imp(tmp_path: Path) -> Iterator[Importer]:
    importer = make_importer(tmp_path)
    yield importer
    importer.close()


def drop(imp: Importer, name: str, data: str | bytes) -> str:
    """Put a file at the storage's root, byte for byte."""
    path = os.path.join(imp.dc.storage, name)
    with open(path, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def drop_corpus(imp: Importer, corpus_name: str, name: str) -> str:
    return drop(imp, name, (CORPUS / corpus_name).read_bytes())


def at(imp: Importer, *parts: str) -> str:
    return os.path.join(imp.dc.storage, *parts)


def raw(path: str) -> str:
    """A file's text exactly as stored: no newline translation."""
    return Path(path).read_bytes().decode("utf-8")


def table(path: str) -> list[list[str]]:
    """A CSV file's rows (header first), as a user's spreadsheet reads them."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def visible(imp: Importer) -> set[str]:
    """Every file a user sees in the storage (logs and hidden state left out)."""
    found = set()
    for folder, dirs, files in os.walk(imp.dc.storage):
        dirs[:] = [d for d in dirs if d not in (".datacenter", "logs")]
        for name in files:
            found.add(os.path.relpath(os.path.join(folder, name), imp.dc.storage))
    return found


def job_folders(imp: Importer) -> list[str]:
    jobs = at(imp, ".datacenter", "jobs")
    return os.listdir(jobs) if os.path.isdir(jobs) else []


def student(imp: Importer, key: str) -> dict[str, object] | None:
    return imp.store.get(imp.schemas["students"], (key,))


def students_csv(*rows: str) -> str:
    return "\r\n".join([STUDENT_HEADER, *rows]) + "\r\n"


def load_students(imp: Importer) -> None:
    """Two students, S1 admitted and S2 graduated, imported through a file."""
    outcome = imp.import_file(drop(imp, "students_seed.csv", students_csv(
        "S1,Ada Obi,ada@example.org,2004-03-15,100,admitted",
        "S2,Bola Eze,bola@example.org,2003-11-02,400,graduated",
    )))
    assert (outcome.ok, outcome.failed) == (2, 0)


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
    finished = table(at(imp, "finished", "students_fix.update.update.finished.csv"))
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
    assert table(at(imp, "students_x.remove.remove.pending.csv")) == [
        ["student_id", "name", "--ERRORS--"], ["S7", "", NO_REMOVE]]
    assert table(at(imp, "finished", "students_x.remove.remove.finished.csv")) == [
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
    assert table(at(imp, "students.remove.remove.pending.csv"))[1] == ["S1", NO_REMOVE]
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


# -- headers -------------------------------------------------------------------------


def test_missing_required_columns_are_fatal_and_named(imp: Importer) -> None:
    batch = imp.processor("students")
    with pytest.raises(FatalCSVError) as info:
        batch.checkHeaders(["student_id", "email"], "create")
    assert "missing: name" in str(info.value)
    assert "'student_id', 'name'" in str(info.value)
    with pytest.raises(FatalCSVError, match="missing: student_id"):
        batch.checkHeaders(["name"], "update")
    assert batch.checkHeaders(["student_id", "email"], "update") is True
    assert batch.checkHeaders(["student_id"], "remove") is True
    with pytest.raises(FatalCSVError, match="unknown mode 'merge'"):
        batch.checkHeaders(["student_id", "name"], "merge")

    data = b"student_id,email\nS1,a@example.org\n"
    path = drop(imp, "students.csv", data)
    with pytest.raises(FatalCSVError, match="missing: name"):
        imp.import_file(path)
    assert Path(path).read_bytes() == data
    assert imp.store.count("students") == 0
    # The same columns are enough to update.
    path = drop(imp, "students_mail.update.csv", data)
    assert imp.import_file(path).failed == 1  # S1 does not exist, but the file is fine


def test_duplicate_column_names_are_fatal(imp: Importer) -> None:
    batch = imp.processor("students")
    with pytest.raises(FatalCSVError, match=r"Double headers.*\(name\)"):
        batch.checkHeaders(["student_id", "name", "name"])
    path = drop(imp, "students.csv", "student_id,name,level,name\nS1,A,1,B\n")
    with pytest.raises(FatalCSVError, match="Double headers"):
        imp.import_file(path)
    assert imp.store.count("students") == 0
    assert os.path.isfile(path)


def test_ignore_columns_are_skipped_but_kept_in_the_files(imp: Importer) -> None:
    outcome = imp.import_file(drop(imp, "students.csv",
                                   "--IGNORE--,student_id,name,--IGNORE--,level\r\n"
                                   "note 1,S1,Ada,x,100\r\n"
                                   "note 2,S2,Bola,y,abc\r\n"))
    assert (outcome.ok, outcome.failed) == (1, 1)
    s1 = student(imp, "S1")
    assert s1 is not None and (s1["name"], s1["level"]) == ("Ada", 100)
    assert table(at(imp, "finished", "students.create.finished.csv")) == [
        ["--IGNORE--", "student_id", "name", "--IGNORE--", "level"],
        ["note 1", "S1", "Ada", "x", "100"]]
    assert table(at(imp, "students.create.pending.csv")) == [
        ["--IGNORE--", "student_id", "name", "--IGNORE--", "level", "--ERRORS--"],
        ["note 2", "S2", "Bola", "y", "abc", "level: invalid integer 'abc'"]]


def test_unknown_columns_are_ignored_and_kept(imp: Importer) -> None:
    outcome = imp.import_file(drop(imp, "students.csv",
                                   "student_id,nickname,name\nS1,Adi,Ada\n"))
    assert (outcome.ok, outcome.failed) == (1, 0)
    assert student(imp, "S1") == {"student_id": "S1", "name": "Ada", "email": None,
                                  "birthday": None, "level": None, "state": None}
    assert table(at(imp, "finished", "students.create.finished.csv")) == [
        ["student_id", "nickname", "name"], ["S1", "Adi", "Ada"]]


def test_mapping_follows_the_header_and_mode(imp: Importer) -> None:
    batch = imp.processor("students")
    header = ["--IGNORE--", "name", "student_id", "nickname", "--ERRORS--"]
    assert batch.getMapping(header, "create") == {1: "name", 2: "student_id"}
    assert batch.getMapping(header, "remove") == {2: "student_id"}
    assert batch.applyMapping(["x", "Ada", "S1", "Adi", "old"], {1: "name", 2: "student_id"}) == {
        "name": "Ada", "student_id": "S1"}


def write_tmp(tmp_path: Path, name: str, text: str) -> str:
    return write(tmp_path / "in" / name, text)


def test_ignore_empty_through_do_import(imp: Importer, tmp_path: Path) -> None:
    load_students(imp)
    batch = imp.processor("students")
    header = ["student_id", "email", "level"]
    path = write_tmp(tmp_path, "keep.csv", "student_id,email,level\nS1,,\n")
    assert batch.doImport(path, header, "update", ignore_empty=True)[:2] == (1, 0)
    s1 = student(imp, "S1")
    assert s1 is not None and (s1["email"], s1["level"]) == ("ada@example.org", 100)

    path = write_tmp(tmp_path, "clear.csv", "student_id,email,level\nS1,,\n")
    assert batch.doImport(path, header, "update", ignore_empty=False)[:2] == (1, 0)
    s1 = student(imp, "S1")
    assert s1 is not None and (s1["email"], s1["level"]) == (None, None)
    assert s1["name"] == "Ada Obi"  # a column that is not in the file is never touched


def test_ignore_empty_false_cannot_clear_a_required_field(imp: Importer,
                                                          tmp_path: Path) -> None:
    load_students(imp)
    batch = imp.processor("students")
    path = write_tmp(tmp_path, "clear.csv", "student_id,name\nS1,\n")
    rows, failed, _, pending = batch.doImport(path, ["student_id", "name"], "update",
                                              ignore_empty=False)
    s1 = student(imp, "S1")
    assert s1 is not None and s1["name"] == "Ada Obi"
    assert (rows, failed) == (1, 1)
    assert pending is not None and table(pending)[1][-1] == "name: required value missing"


# -- conversion ------------------------------------------------------------------------


def test_conversion_errors_name_the_field_in_field_order(imp: Importer) -> None:
    # The columns are in another order than the fields: errors follow the fields.
    outcome = imp.import_file(drop(imp, "students.csv",
                                   "level,state,student_id,name,birthday,email\r\n"
                                   "abc,admitted,S1,Ada,2004-03-15,ada@example.org\r\n"
                                   "x1,alumni,S2,,2004-02-30,bola@\r\n"))
    assert (outcome.ok, outcome.failed) == (0, 2)
    reasons = [row[-1] for row in table(at(imp, "students.create.pending.csv"))[1:]]
    assert reasons[0] == "level: invalid integer 'abc'"
    assert reasons[1] == "; ".join([
        "name: required value missing",
        "email: invalid email address 'bola@'",
        "birthday: invalid date '2004-02-30' (use YYYY-MM-DD)",
        "level: invalid integer 'x1'",
        "state: invalid choice 'alumni' (choose one of: admitted, returning, graduated)",
    ])
    assert imp.store.count("students") == 0


def test_check_conversion_returns_errors_and_typed_values(imp: Importer) -> None:
    batch = imp.processor("students")
    errors, values = batch.checkConversion({"student_id": "S1", "name": "Ada", "level": " 7 "})
    assert errors == [] and values == {"student_id": "S1", "name": "Ada", "level": 7}
    errors, _ = batch.checkConversion({"student_id": "S1", "level": "abc"})
    assert errors == ["name: required value missing", "level: invalid integer 'abc'"]
    errors, values = batch.checkConversion({"student_id": "S1", "level": "abc"}, "remove")
    assert errors == [] and values == {"student_id": "S1"}


def test_finished_files_hold_canonical_text(tmp_path: Path) -> None:
    processors = dict(PROCESSORS)
    processors["events"] = {"key": ["code"], "fields": {
        "code": "str", "open": "bool", "day": "date", "at": "datetime", "score": "float",
        "size": "int"}}
    imp = make_importer(tmp_path, processors)
    source = ("code,open,day,at,score,size\r\n"
              "E1, Yes , 2024-01-02 ,2024-01-02T03:04,1.50, 0100 \r\n"
              "E2,0,2024-12-31,2024-12-31 23:59:59,-0.25,+7\r\n")
    outcome = imp.import_file(drop(imp, "events.csv", source))
    assert (outcome.ok, outcome.failed) == (2, 0)
    assert table(at(imp, "finished", "events.create.finished.csv")) == [
        ["code", "open", "day", "at", "score", "size"],
        ["E1", "true", "2024-01-02", "2024-01-02 03:04:00", "1.5", "100"],
        ["E2", "false", "2024-12-31", "2024-12-31 23:59:59", "-0.25", "7"],
    ]
    assert raw(at(imp, "finished", "events.csv")) == source  # the source is never rewritten
    record = imp.store.get(imp.schemas["events"], ("E1",))
    assert record is not None and record["open"] is True and record["size"] == 100
    imp.close()


def test_students_level_is_stored_and_finished_canonically(imp: Importer) -> None:
    imp.import_file(drop(imp, "students.csv", students_csv(
        "S1,Ada,ada@example.org, 2004-03-15 , 0100 ,admitted")))
    s1 = student(imp, "S1")
    assert s1 is not None and s1["level"] == 100
    assert table(at(imp, "finished", "students.create.finished.csv"))[1] == [
        "S1", "Ada", "ada@example.org", "2004-03-15", "100", "admitted"]


def test_email_and_choice_are_finished_as_stored(imp: Importer) -> None:
    imp.import_file(drop(imp, "students.csv", students_csv(
        "S1,Ada, ada@example.org ,2004-03-15,100, admitted ")))
    s1 = student(imp, "S1")
    assert s1 is not None and (s1["email"], s1["state"]) == ("ada@example.org", "admitted")
    assert table(at(imp, "finished", "students.create.finished.csv"))[1] == [
        "S1", "Ada", "ada@example.org", "2004-03-15", "100", "admitted"]


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


# -- routing ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("students.csv", ("students", "create")),
    ("students_2024.csv", ("students", "create")),
    ("students.update.csv", ("students", "update")),
    ("students_x.remove.csv", ("students", "remove")),
    ("departments.create.pending.csv", ("departments", "create")),
    ("students_2024.update.pending.csv", ("students", "update")),
    ("faculties.remove.csv", ("faculties", "remove")),
    ("graduates_students.csv", ("students", "update")),  # the config's route
    ("graduates_students.remove.pending.csv", ("students", "remove")),
])
def test_routing_by_name_and_config(imp: Importer, name: str, expected: tuple[str, str]) -> None:
    assert imp.route(name) == expected


@pytest.mark.parametrize("name", ["people.csv", "studentsx.csv", "Students.csv",
                                  "students.merge.csv", "notes.txt"])
def test_unroutable_names(imp: Importer, name: str) -> None:
    with pytest.raises(UnroutedError, match=re.escape(name)):
        imp.route(name)
    path = drop(imp, name, "student_id,name\nS1,Ada\n")
    with pytest.raises(UnroutedError):
        imp.import_file(path)
    assert os.path.isfile(path) and imp.store.count("students") == 0


def test_config_route_imports_in_its_mode(imp: Importer) -> None:
    load_students(imp)
    text = (ROOT / "examples" / "graduates_students.csv").read_text(encoding="utf-8")
    outcome = imp.import_file(drop(imp, "graduates_students.csv",
                                   text.replace("S0002", "S1")))
    assert (outcome.processor, outcome.mode, outcome.ok) == ("students", "update", 1)
    s1 = student(imp, "S1")
    assert s1 is not None and s1["state"] == "graduated" and s1["name"] == "Ada Obi"


def test_explicit_processor_and_mode_override_routing(imp: Importer) -> None:
    load_students(imp)
    outcome = imp.import_file(drop(imp, "students_x.csv", "student_id\nS1\n"),
                              processor="students", mode="remove")
    assert (outcome.mode, outcome.ok) == ("remove", 1)
    assert student(imp, "S1") is None
    outcome = imp.import_file(drop(imp, "people.csv", "code,title\nF1,Science\n"),
                              processor="faculties", mode="create")
    assert (outcome.processor, outcome.ok) == ("faculties", 1)
    with pytest.raises(UnroutedError, match="unknown processor 'nope'"):
        imp.import_file(drop(imp, "students_y.csv", "student_id\nS1\n"), processor="nope")


def test_explicit_processor_without_mode_needs_no_routable_name(imp: Importer) -> None:
    outcome = imp.import_file(drop(imp, "people.csv", "code,title\nF1,Science\n"),
                              processor="faculties")
    assert (outcome.processor, outcome.mode, outcome.ok) == ("faculties", "create", 1)


def test_only_files_at_the_root_are_imported(imp: Importer, tmp_path: Path) -> None:
    path = write(tmp_path / "elsewhere" / "students.csv", "student_id,name\nS1,Ada\n")
    with pytest.raises(ValueError, match="only files at the storage's root"):
        imp.import_file(path)
    assert imp.store.count("students") == 0


# -- input robustness ----------------------------------------------------------------


def test_utf8_bom_is_not_part_of_the_first_column(imp: Importer) -> None:
    with CSVSource(str(CORPUS / "bom.csv")) as source:
        assert source.header == ["student_id", "name", "level"]
    outcome = imp.import_file(drop_corpus(imp, "bom.csv", "students_bom.csv"))
    assert (outcome.ok, outcome.failed) == (2, 0)
    assert student(imp, "S1") is not None
    assert table(at(imp, "finished", "students_bom.create.finished.csv"))[0] == [
        "student_id", "name", "level"]


FATAL_CORPUS = [
    ("latin1.csv", "students_latin1.csv: line 3: not UTF-8 (byte 0xe9"),
    ("unterminated_quote.csv", "students_unterminated_quote.csv: line 3: a quoted cell is "
                               "never closed"),
    ("empty.csv", "students_empty.csv: the file is empty"),
    ("png.csv", "students_png.csv: line 1: not UTF-8 (byte 0x89"),
]


@pytest.mark.parametrize(("corpus_name", "message"), FATAL_CORPUS)
def test_fatal_files_stay_untouched_and_import_nothing(imp: Importer, corpus_name: str,
                                                       message: str) -> None:
    load_students(imp)
    before = visible(imp)
    name = "students_" + corpus_name
    path = drop_corpus(imp, corpus_name, name)
    with pytest.raises(FatalCSVError) as info:
        imp.import_file(path)
    assert str(info.value).startswith(message)
    assert Path(path).read_bytes() == (CORPUS / corpus_name).read_bytes()
    assert visible(imp) == before | {name}  # nothing filed away, no pending file
    assert imp.store.count("students") == 2  # rows before the bad line were rolled back
    assert job_folders(imp) == []
    rejected = list(imp.dc.queryLogfiles("datacenter.log", "rejected"))
    assert len(rejected) == 1
    assert f"rejected: {message}" in rejected[0]
    assert [job.source for job in imp.store.jobs()] == ["students_seed.csv"]
    assert student(imp, "S1") is not None and student(imp, "S3") is None


def test_rejected_log_line_names_the_file_for_header_errors(imp: Importer) -> None:
    with pytest.raises(FatalCSVError):
        imp.import_file(drop(imp, "students_mail.csv", "student_id,email\nS1,a@example.org\n"))
    rejected = list(imp.dc.queryLogfiles("datacenter.log", "rejected"))
    assert len(rejected) == 1 and "students_mail.csv" in rejected[0]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_a_fatal_header_leaves_no_open_file(imp: Importer) -> None:
    path = drop_corpus(imp, "png.csv", "students_png.csv")

    def still_open() -> bool:
        fds = os.listdir("/proc/self/fd")
        return any(os.path.realpath(f"/proc/self/fd/{fd}") == path for fd in fds
                   if os.path.exists(f"/proc/self/fd/{fd}"))

    with pytest.raises(FatalCSVError) as info:
        imp.import_file(path)
    assert info.value is not None
    assert not still_open()


def test_nul_bytes_fail_their_row_only(imp: Importer) -> None:
    outcome = imp.import_file(drop_corpus(imp, "nul_cell.csv", "students_nul.csv"))
    assert (outcome.rows, outcome.ok, outcome.failed) == (3, 2, 1)
    assert student(imp, "S1") is not None and student(imp, "S3") is not None
    assert student(imp, "S2") is None
    pending = Path(at(imp, "students_nul.create.pending.csv")).read_bytes()
    assert pending == (b"student_id,name,--ERRORS--\r\n"
                       b"S2,Bo\x00la,name: contains a NUL character\r\n")


def test_ragged_rows_fail_with_the_counts(imp: Importer) -> None:
    outcome = imp.import_file(drop_corpus(imp, "ragged.csv", "students_ragged.csv"))
    assert (outcome.rows, outcome.ok, outcome.failed) == (4, 2, 2)
    assert student(imp, "S1") is not None and student(imp, "S4") is not None
    rows = table(at(imp, "students_ragged.create.pending.csv"))
    assert rows[0] == ["student_id", "name", "level", "--ERRORS--"]
    # Nothing of a long row is cut; a short row is padded up to the reason.
    assert rows[1] == ["S2", "Bola", "200", "extra", "line 3: 4 cells, but the header has 3"]
    assert rows[2] == ["S3", "Chidi", "", "line 4: 2 cells, but the header has 3"]


def test_long_field_imports(imp: Importer) -> None:
    assert csv.field_size_limit() > 131072
    long_name = "x" * 200_000
    outcome = imp.import_file(drop(imp, "students_long.csv",
                                   f'student_id,name\r\nS1,"{long_name}"\r\nS2,Bo\r\n'))
    assert (outcome.ok, outcome.failed) == (2, 0)
    s1 = student(imp, "S1")
    assert s1 is not None and s1["name"] == long_name


def test_blank_lines_are_skipped_not_counted(imp: Importer) -> None:
    outcome = imp.import_file(drop_corpus(imp, "blank_lines.csv", "students_blank.csv"))
    assert (outcome.rows, outcome.ok, outcome.failed) == (2, 2, 0)
    assert table(at(imp, "finished", "students_blank.create.finished.csv")) == [
        ["student_id", "name"], ["S1", "Ada"], ["S2", "Bola"]]


def test_a_line_of_spaces_is_a_blank_line(imp: Importer) -> None:
    outcome = imp.import_file(drop_corpus(imp, "whitespace_line.csv", "students_ws.csv"))
    assert (outcome.rows, outcome.ok, outcome.failed) == (2, 2, 0)


@pytest.mark.parametrize("corpus_name", ["crlf.csv", "no_final_newline.csv",
                                         "header_spaces.csv"])
def test_line_endings_and_header_spaces(imp: Importer, corpus_name: str) -> None:
    outcome = imp.import_file(drop_corpus(imp, corpus_name, "students_" + corpus_name))
    assert outcome.failed == 0 and outcome.ok >= 1
    s1 = student(imp, "S1")
    assert s1 is not None and s1["name"] == "Ada"
    if corpus_name != "header_spaces.csv":
        s2 = student(imp, "S2")
        assert s2 is not None and s2["name"] == "Bola"  # no stray "\r", last line kept
    finished = table(at(imp, "finished", f"students_{corpus_name[:-4]}.create.finished.csv"))
    assert finished[0][:2] == ["student_id", "name"]
    assert [row[1] for row in finished[1:]] == (["Ada"] if corpus_name == "header_spaces.csv"
                                                 else ["Ada", "Bola"])


def test_header_spaces_store_the_level(imp: Importer) -> None:
    imp.import_file(drop_corpus(imp, "header_spaces.csv", "students_hs.csv"))
    s1 = student(imp, "S1")
    assert s1 is not None and s1["level"] == 100


def test_a_header_only_file_imports_zero_rows(imp: Importer) -> None:
    outcome = imp.import_file(drop_corpus(imp, "header_only.csv", "students_empty_list.csv"))
    assert (outcome.rows, outcome.ok, outcome.failed, outcome.pending) == (0, 0, 0, None)
    assert os.path.isfile(at(imp, "finished", "students_empty_list.csv"))
    assert table(at(imp, "finished", "students_empty_list.create.finished.csv")) == [
        ["student_id", "name", "email"]]


def test_multiline_quoted_cells_count_their_lines(imp: Importer) -> None:
    outcome = imp.import_file(drop(imp, "students_ml.csv",
                                   'student_id,name\r\nS1,"Ada\r\nObi"\r\nS2,Bo,extra\r\n'))
    assert (outcome.ok, outcome.failed) == (1, 1)
    s1 = student(imp, "S1")
    assert s1 is not None and s1["name"] == "Ada\r\nObi"
    assert table(at(imp, "students_ml.create.pending.csv"))[1][-1] == (
        "line 4: 3 cells, but the header has 2")


def test_row_errors_never_stop_the_import(imp: Importer) -> None:
    outcome = imp.import_file(drop_corpus(imp, "interleaved.csv", "students_mixed.csv"))
    assert (outcome.rows, outcome.ok, outcome.failed) == (9, 5, 4)
    assert imp.store.count("students") == 5
    for key in ("S1", "S3", "S5", "S7", "S9"):
        assert student(imp, key) is not None
    rows = table(at(imp, "students_mixed.create.pending.csv"))
    assert [(row[0], row[-1]) for row in rows[1:]] == [
        ("S2", "level: invalid integer 'abc'"),
        ("S4", "line 5: 2 cells, but the header has 3"),
        ("S6", "name: contains a NUL character"),
        ("S8", "name: required value missing"),
    ]
    assert [row[0] for row in table(at(imp, "finished", "students_mixed.create.finished.csv"))
            ] == ["student_id", "S1", "S3", "S5", "S7", "S9"]


# -- Kofa's attributes and doImport ------------------------------------------------------


def test_kofa_attributes(imp: Importer) -> None:
    students = imp.processor("students")
    assert students.name == "students"
    assert students.get_csv_skeleton() == STUDENT_HEADER + "\r\n"
    assert students.location_fields == ["student_id"]
    assert students.available_fields == STUDENT_HEADER.split(",")
    assert students.required_fields == ["student_id", "name"]
    assert students.req == {"create": ["student_id", "name"], "update": ["student_id"],
                            "remove": ["student_id"]}
    departments = imp.processor("departments")
    assert departments.required_fields == ["code", "faculty_code", "title"]
    assert departments.get_csv_skeleton() == "code,faculty_code,title\r\n"


def test_entry_helpers_work_on_typed_values(imp: Importer) -> None:
    batch = imp.processor("faculties")
    with imp.store.transaction():
        assert batch.addEntry({"code": "F1", "title": "Science"}) is True
        assert batch.addEntry({"code": "F1", "title": "Again"}) is False
        assert batch.entryExists({"code": "F1"}) is True
        assert batch.updateEntry({"code": "F1", "title": "Sciences"}) is True
        assert batch.getEntry({"code": "F1"}) == {"code": "F1", "title": "Sciences"}
        assert imp.processor("departments").parentsExist({"faculty_code": "F1"}) is True
        assert imp.processor("departments").parentsExist({"faculty_code": "F2"}) is False
        assert batch.delEntry({"code": "F1"}) is True
        assert batch.entryExists({"code": "F1"}) is False


LOG_LINE = re.compile(
    r" - (?P<user>[^ ]+) - processed: (?P<file>\S+), (?P<mode>\w+) mode, (?P<rows>\d+) lines "
    r"\((?P<ok>\d+) successful/ (?P<failed>\d+) failed\), [0-9.]+ s \([0-9.]+ s/item\)$")


def test_do_import_returns_kofa_tuple_and_logs(imp: Importer, tmp_path: Path) -> None:
    source = (ROOT / "examples" / "students.csv").read_text(encoding="utf-8")
    path = write_tmp(tmp_path, "students.csv", source)
    batch = imp.processor("students")
    header = STUDENT_HEADER.split(",")
    rows, failed, finished, pending = batch.doImport(path, header, user="bob")
    assert (rows, failed) == (4, 2)
    assert os.path.dirname(finished) == os.path.dirname(pending or "")
    assert not finished.startswith(imp.dc.storage)
    assert [row[0] for row in table(finished)] == ["student_id", "S0001", "S0002"]
    assert [row[0] for row in table(pending or "")] == ["student_id", "S0003", "S0004"]
    assert imp.store.count("students") == 2
    assert raw(path) == source  # doImport never moves the source

    lines = list(imp.dc.queryLogfiles("datacenter.log", "processed:"))
    assert len(lines) == 1
    match = LOG_LINE.search(lines[0])
    assert match is not None, lines[0]
    assert match.groupdict() == {"user": "bob", "file": "students.csv", "mode": "create",
                                 "rows": "4", "ok": "2", "failed": "2"}

    # Kofa's next step files it all away.
    imp.dc.distProcessedFiles(failed == 0, path, finished, pending, "create", move_orig=False)
    assert table(at(imp, "students.create.pending.csv"))[1][0] == "S0003"
    assert table(at(imp, "finished", "students.create.finished.csv"))[2][0] == "S0002"


def test_do_import_all_ok_has_no_pending_and_logs_to_a_given_logger(
        imp: Importer, tmp_path: Path) -> None:
    path = write_tmp(tmp_path, "faculties.csv", "code,title\nF1,Science\n")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.Logger("test-batching")
    logger.addHandler(Keep())
    result = imp.processor("faculties").doImport(path, ["code", "title"], user="eve",
                                                 logger=logger)
    assert result[:2] == (1, 0) and result[3] is None
    assert os.path.isfile(result[2])
    assert len(records) == 1
    assert records[0].getMessage().startswith(
        "processed: faculties.csv, create mode, 1 lines (1 successful/ 0 failed), ")
    assert records[0].user == "eve"  # type: ignore[attr-defined]
    log = os.path.join(imp.dc.logs_path, "datacenter.log")
    assert not os.path.exists(log) or "processed:" not in raw(log)


def test_do_import_remove_backs_up_at_once(imp: Importer, tmp_path: Path) -> None:
    load_students(imp)
    path = write_tmp(tmp_path, "gone.csv", "student_id\nS1\nS2\n")
    assert imp.processor("students").doImport(path, ["student_id"], "remove")[:2] == (2, 0)
    assert [row[0] for row in table(os.path.join(imp.dc.deleted_path, "students.csv"))] == [
        "student_id", "S1"]
    assert [row[0] for row in table(os.path.join(imp.dc.graduated_path, "students.csv"))] == [
        "student_id", "S2"]


def test_do_import_of_a_fatal_file_changes_nothing(imp: Importer, tmp_path: Path) -> None:
    load_students(imp)
    path = str(tmp_path / "bad.csv")
    shutil.copy(CORPUS / "latin1.csv", path)
    with pytest.raises(FatalCSVError, match=r"bad\.csv: line 3"):
        imp.processor("students").doImport(path, ["student_id", "name"])
    assert imp.store.count("students") == 2
    assert list(imp.dc.queryLogfiles("datacenter.log", "processed: bad.csv")) == []


def test_do_import_of_a_fatal_file_leaves_no_temporary_folder(
        imp: Importer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    path = str(tmp_path / "bad.csv")
    shutil.copy(CORPUS / "latin1.csv", path)
    with pytest.raises(FatalCSVError):
        imp.processor("students").doImport(path, ["student_id", "name"])
    assert os.listdir(scratch) == []


class HookedProcessor(BatchProcessor):
    """Overrides a hook without changing it: every row goes through Kofa's hooks."""

    def checkConversion(  # noqa: N802
            self, row: Mapping[str, str], mode: str = "create", ignore_empty: bool = True
    ) -> tuple[list[str], dict[str, object]]:
        return super().checkConversion(row, mode, ignore_empty)


def test_hooks_and_fast_path_give_the_same_files(tmp_path: Path) -> None:
    source = write_tmp(tmp_path, "students.csv", students_csv(
        "S1,Ada, ada@example.org ,2004-03-15, 0100 , admitted ",
        "S0,Old,,,,",
        "S2,Bola,bola@,2003-11-02,200,returning",
        "S3,Chidi,,2002-07-21,+300,graduated",
        "S3,Chidi again,,,,",
    ))
    results = []
    for kind, number in (("plain", 1), ("hooked", 2)):
        imp = make_importer(tmp_path / kind)
        schema = imp.schemas["students"]
        cls = BatchProcessor if kind == "plain" else HookedProcessor
        batch = cls(schema, imp.store, imp.dc)
        with imp.store.transaction():
            batch.addEntry({"student_id": "S0", "name": "Zero"})
        rows, failed, finished, pending = batch.doImport(source, STUDENT_HEADER.split(","))
        records = list(imp.store.iter_records("students"))
        results.append((number, rows, failed, table(finished), table(pending or ""), records))
        imp.close()
    plain, hooked = results
    assert plain[1:] == hooked[1:]


# -- memory ----------------------------------------------------------------------------


def test_memory_stays_flat_for_a_long_file(imp: Importer) -> None:
    rows = 100_000
    path = at(imp, "students_big.csv")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(STUDENT_HEADER + "\r\n")
        handle.writelines(f"S{i:07d},Student {i},s{i}@example.org,2001-01-09,{i % 5 * 100},"
                          "admitted\r\n" for i in range(rows))
    size = os.path.getsize(path)
    gc.collect()
    tracemalloc.start()
    try:
        outcome = imp.import_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (outcome.rows, outcome.ok, outcome.failed) == (rows, rows, 0)
    assert imp.store.count("students") == rows
    # A loaded file would need at least its own size, and Python objects for it many times more.
    assert peak < min(20 << 20, size), (peak, size)


# -- processors from installed packages ------------------------------------------------

COURSES = ProcessorSchema(name="courses", key=("code",),
                          fields={"code": field_type("str"), "credits": field_type("int")},
                          required=("credits",))


class CourseProcessor(BatchProcessor):
    """A processor shipped by a package: credits may never go down."""

    schema = COURSES

    def checkUpdateRequirements(  # noqa: N802
            self, entry: Mapping[str, object], values: Mapping[str, object], mode: str
    ) -> str | None:
        new, old = values.get("credits"), entry.get("credits")
        if isinstance(new, int) and isinstance(old, int) and new < old:
            return f"credits: may not go down ({old} -> {new})"
        return None


class FakeEntryPoint:
    def __init__(self, name: str, target: object) -> None:
        self.name, self.value, self.group = name, f"fake:{name}", "datacenter.processors"
        self._target = target

    def load(self) -> object:
        return self._target


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, *found: FakeEntryPoint) -> list[str]:
    asked: list[str] = []
    real = importlib.metadata.entry_points

    def entry_points(**params: Any) -> Any:
        if params.get("group") == "datacenter.processors":
            asked.append(params["group"])
            return list(found)
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return asked


def test_entry_point_processor_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_entry_points(monkeypatch, FakeEntryPoint("courses", CourseProcessor))
    imp = make_importer(tmp_path)
    assert asked == ["datacenter.processors"]
    assert isinstance(imp.processor("courses"), CourseProcessor)
    assert imp.route("courses_2024.update.csv") == ("courses", "update")
    imp.import_file(drop(imp, "courses.csv", "code,credits\nC1,5\nC2,5\n"))
    outcome = imp.import_file(drop(imp, "courses.update.csv", "code,credits\nC1,3\nC2,6\n"))
    assert (outcome.ok, outcome.failed) == (1, 1)
    assert table(at(imp, outcome.pending or "?")) == [
        ["code", "credits", "--ERRORS--"], ["C1", "3", "credits: may not go down (5 -> 3)"]]
    assert imp.store.get(COURSES, ("C1",)) == {"code": "C1", "credits": 5}
    assert imp.store.get(COURSES, ("C2",)) == {"code": "C2", "credits": 6}
    assert imp.store.count("students") == 0  # the config's processors are still there
    imp.close()


def test_entry_point_schema_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, FakeEntryPoint("courses", COURSES))
    imp = make_importer(tmp_path)
    assert type(imp.processor("courses")) is BatchProcessor
    outcome = imp.import_file(drop(imp, "courses.csv", "code,credits\nC1,x\n"))
    assert table(at(imp, outcome.pending or "?"))[1][-1] == "credits: invalid integer 'x'"
    imp.close()


def test_entry_point_duplicate_name_is_an_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    clash = ProcessorSchema(name="students", key=("id",), fields={"id": field_type("str")})
    fake_entry_points(monkeypatch, FakeEntryPoint("mine", clash))
    with pytest.raises(SchemaError, match="processor 'students' is defined twice"):
        make_importer(tmp_path)
    fake_entry_points(monkeypatch, FakeEntryPoint("a", COURSES), FakeEntryPoint("b", COURSES))
    with pytest.raises(SchemaError, match="'courses' is defined twice"):
        make_importer(tmp_path)


def test_entry_point_without_a_schema_is_an_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, FakeEntryPoint("broken", io.StringIO))
    with pytest.raises(SchemaError, match="entry point broken"):
        make_importer(tmp_path)


def test_a_failed_commit_rolls_back_and_the_next_import_works(tmp_path: Path) -> None:
    """COMMIT itself fails (a full disk): nothing is kept, nothing stays open."""
    import errno

    from datacenter.testing.faults import FaultConfig, FaultInjector

    imp = make_importer(tmp_path)
    path = write(os.path.join(imp.dc.storage, "faculties.csv"), "code,title\nF1,Science\n")
    injector = FaultInjector(seed=1)
    injector.add(FaultConfig(target="store.commit", nth=1,
                             exception=OSError(errno.ENOSPC, "No space left on device")))
    with injector.installed(), pytest.raises(OSError, match="No space"):
        imp.import_file(path)
    assert imp.store.count("faculties") == 0 and os.path.exists(path)
    assert imp.import_file(path).ok == 1
