"""Bad and odd CSV input: the corpus in ``tests/corpus/`` and CSVSource.

A file that cannot be read as CSV at all is rejected whole and left
untouched; a row that cannot be imported fails alone, with its reason in
the pending file; odd but valid input (a BOM, blank lines, CRLF, long or
multi-line cells) imports as a user expects.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from helpers import (
    CORPUS,
    at,
    drop,
    drop_corpus,
    job_folders,
    load_students,
    student,
    table,
    visible,
)

from datacenter.importing.csvinput import CSVSource, FatalCSVError
from datacenter.importing.importer import Importer


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
