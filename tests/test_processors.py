"""The BatchProcessor: Kofa's per-row API, header checks, conversion, doImport.

What a processor says of a header (required, doubled, ignored and unknown
columns), how it converts values (and what the finished files then hold),
and Kofa's attributes, entry helpers, hooks and ``doImport``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers import (
    CORPUS,
    PROCESSORS,
    ROOT,
    STUDENT_HEADER,
    at,
    drop,
    load_students,
    make_importer,
    raw,
    student,
    students_csv,
    table,
    write_tmp,
)

from datacenter.importing.csvinput import FatalCSVError
from datacenter.importing.importer import Importer
from datacenter.importing.processors import BatchProcessor

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
