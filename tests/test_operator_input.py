"""The operator's day: help for files a spreadsheet saved the wrong way.

* a ``;``- or tab-separated file (a European spreadsheet's CSV) is read
  with that delimiter, and the log line of its import says so;
* UTF-16, Latin-1 / Windows-1252 and a workbook renamed ``.csv`` are named
  as such, with what to do;
* a header that lacks required columns shows the header found and the
  columns it probably meant;
* ``status`` lists the workbooks and other files at the root it will never
  import, one line each, and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT, write

from datacenter.cli import main
from datacenter.importing import CSVSource


@pytest.fixture
def conf_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    (tmp_path / "storage").mkdir()
    return Path(write(tmp_path / "datacenter.toml", text))


def run(capsys: pytest.CaptureFixture[str], conf_path: Path, *argv: str) -> tuple[int, str]:
    code = main(["--config", str(conf_path), *argv])
    out, err = capsys.readouterr()
    return code, out + err


def import_bytes(capsys: pytest.CaptureFixture[str], conf_path: Path, name: str,
                 data: bytes) -> tuple[int, str]:
    path = conf_path.parent / "in" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return run(capsys, conf_path, "import", str(path))


def log_text(conf_path: Path) -> str:
    return (conf_path.parent / "storage" / "logs" / "datacenter.log").read_text()


@pytest.mark.parametrize(("sep", "said"), [(";", "read as ;-separated"),
                                            ("\t", "read as tab-separated")])
def test_a_semicolon_or_tab_separated_file_is_read_with_its_delimiter(
        sep: str, said: str, capsys: pytest.CaptureFixture[str], conf_path: Path) -> None:
    data = f"student_id{sep}name{sep}level\r\nS1{sep}Ann, Jr.{sep}100\r\n".encode()
    code, out = import_bytes(capsys, conf_path, "students.csv", data)
    assert code == 0, out
    assert "1 ok, 0 failed" in out
    assert said in log_text(conf_path)
    code, out = run(capsys, conf_path, "export", "students", "--output", "-")
    assert "S1,\"Ann, Jr.\"" in out


def test_a_utf16_file_is_named_as_such(capsys: pytest.CaptureFixture[str],
                                       conf_path: Path) -> None:
    text = "student_id,name\r\nS1,Ann\r\n"
    for data in (text.encode("utf-16"), text.encode("utf-16-le")):
        code, out = import_bytes(capsys, conf_path, "students.csv", data)
        assert code == 1
        assert "saved as UTF-16; save it as CSV UTF-8" in out, out


def test_a_latin1_file_says_what_it_looks_like(capsys: pytest.CaptureFixture[str],
                                               conf_path: Path) -> None:
    data = "student_id,name\r\nS1,Zoë Müller\r\n".encode("cp1252")
    code, out = import_bytes(capsys, conf_path, "students.csv", data)
    assert code == 1
    assert "line 2: not UTF-8" in out
    assert "looks like Latin-1 or Windows-1252" in out


def test_a_workbook_renamed_csv_is_named_a_workbook(capsys: pytest.CaptureFixture[str],
                                                    conf_path: Path) -> None:
    data = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb7\xa8[Content_Types].xml"
    code, out = import_bytes(capsys, conf_path, "students.csv", data)
    assert code == 1
    assert "a spreadsheet workbook (xlsx), not CSV: save it as CSV UTF-8" in out
    assert "not UTF-8" not in out


def test_a_header_mismatch_shows_the_header_found_and_the_closest_names(
        capsys: pytest.CaptureFixture[str], conf_path: Path) -> None:
    code, out = import_bytes(capsys, conf_path, "students.csv",
                             b"Student ID,Name\r\nS1,Ann\r\n")
    assert code == 1
    assert ("missing: student_id, name; found header: Student ID, Name; did you mean: "
            "'Student ID' -> student_id (case, spaces)") in out


def test_a_one_column_header_with_a_semicolon_in_quotes_stays_comma_separated(
        tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text('"remark;comment"\n"x;y"\n', encoding="utf-8")
    with CSVSource(str(path)) as source:
        assert source.delimiter == ","
        assert source.header == ["remark;comment"]
        assert [row.cells for row in source.rows()] == [["x;y"]]
