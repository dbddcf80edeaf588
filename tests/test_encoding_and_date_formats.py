"""The operator's day, point 6: Windows-1252 files and dates as a spreadsheet writes them.

* ``[processors.<name>] encoding = "cp1252"`` (or ``latin-1``) imports files
  a Windows spreadsheet saved in its code page; what the import writes
  (finished and pending files) stays UTF-8, and a pending file dropped again
  reads right; without the setting the not-UTF-8 message names it; an
  unknown encoding is refused when the processors load, in one line;
* a field typed ``date:%d/%m/%Y`` (or ``datetime:<format>``) reads its
  cells in that format and stores and exports them as ISO text; a date
  not in the format fails its row naming the field and the format; a
  format strptime cannot read back is refused at load, in one line;
* ``datacenter processors`` shows both.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import PROCESSORS, ROOT, at, drop, make_importer, raw, student, table, write

from datacenter.cli import main
from datacenter.importing.csvinput import FatalCSVError
from datacenter.records.schema import SchemaError, load_processors


def processors(encoding: str | None = None, birthday: str | None = None) -> dict[str, Any]:
    found = copy.deepcopy(PROCESSORS)
    if encoding is not None:
        found["students"]["encoding"] = encoding
    if birthday is not None:
        found["students"]["fields"]["birthday"] = birthday
    return found


def conf_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """datacenter.toml with students in cp1252 and birthdays written day first."""
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    text = text.replace('birthday   = "date"', 'birthday   = "date:%d/%m/%Y"')
    text = text.replace("[processors.students]\n",
                        '[processors.students]\nencoding = "cp1252"\n')
    (tmp_path / "storage").mkdir()
    return Path(write(tmp_path / "datacenter.toml", text))


def run(capsys: pytest.CaptureFixture[str], conf: Path, *argv: str) -> tuple[int, str]:
    code = main(["--config", str(conf), *argv])
    out, err = capsys.readouterr()
    return code, out + err


# -- encoding --------------------------------------------------------------------------------


def test_a_cp1252_file_imports_with_encoding_cp1252_and_what_it_writes_is_utf8(
        tmp_path: Path) -> None:
    imp = make_importer(tmp_path, processors(encoding="cp1252"))
    data = "student_id,name,level\r\nS1,Zoé Müller €,100\r\nS2,Renée “Ré”,x\r\n"
    outcome = imp.import_file(drop(imp, "students_win.csv", data.encode("cp1252")))
    assert (outcome.ok, outcome.failed) == (1, 1)
    assert student(imp, "S1") == {"student_id": "S1", "name": "Zoé Müller €",
                                  "email": None, "birthday": None, "level": 100, "state": None}
    finished = at(imp, "finished", "students_win.create.finished.csv")
    assert "S1,Zoé Müller €,100" in raw(finished)  # raw() decodes strictly as UTF-8
    assert outcome.pending is not None
    pending = at(imp, outcome.pending)
    assert table(pending)[1][:3] == ["S2", "Renée “Ré”", "x"]
    # The pending file is UTF-8: fixed and dropped again, it reads right all the same.
    write(pending, raw(pending).replace(",x,", ",200,"))
    again = imp.import_file(pending)
    assert (again.ok, again.failed) == (1, 0)
    s2 = student(imp, "S2")
    assert s2 is not None and s2["name"] == "Renée “Ré”"


@pytest.mark.parametrize("encoding", ["latin-1", "iso-8859-1", "utf-8"])
def test_the_other_encodings_load(encoding: str) -> None:
    assert load_processors(processors(encoding=encoding))["students"].encoding == encoding


def test_without_the_setting_the_message_names_it(tmp_path: Path) -> None:
    imp = make_importer(tmp_path)
    data = "student_id,name\r\nS1,Zoé €\r\n".encode("cp1252")
    with pytest.raises(FatalCSVError) as info:
        imp.import_file(drop(imp, "students_win.csv", data))
    assert str(info.value) == (
        "students_win.csv: line 2: not UTF-8 (byte 0xe9 at column 6); it looks like "
        "Latin-1 or Windows-1252: save it as CSV UTF-8, or set encoding = \"cp1252\" "
        "for processor students")


def test_a_byte_the_encoding_lacks_is_named_with_its_line(tmp_path: Path) -> None:
    imp = make_importer(tmp_path, processors(encoding="cp1252"))
    with pytest.raises(FatalCSVError) as info:
        imp.import_file(drop(imp, "students_x.csv", b"student_id,name\r\nS1,A\x81\r\n"))
    assert "students_x.csv: line 2: neither UTF-8 nor cp1252 (byte 0x81" in str(info.value)


@pytest.mark.parametrize(("encoding", "said"), [
    ("klingon", "unknown encoding 'klingon'"),
    ("rot13", "unknown encoding 'rot13'"),
    ("utf-16", "encoding 'utf-16' does not keep ASCII as it is"),
    (1252, "encoding must be a string"),
])
def test_a_bad_encoding_is_refused_at_load_in_one_line(encoding: object, said: str) -> None:
    with pytest.raises(SchemaError) as info:
        load_processors(processors(encoding=encoding), source="site.toml")  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"site.toml: [processors.students]: {said}")
    assert "\n" not in message


# -- date formats ----------------------------------------------------------------------------


def test_a_day_first_date_imports_as_iso_with_the_format_and_fails_without(
        tmp_path: Path) -> None:
    plain = make_importer(tmp_path / "plain")
    outcome = plain.import_file(drop(plain, "students_b.csv",
                                     "student_id,name,birthday\r\nS1,Ann,15/03/2004\r\n"))
    assert outcome.failed == 1 and outcome.pending is not None
    assert table(at(plain, outcome.pending))[1][-1] == (
        "birthday: invalid date '15/03/2004' (use YYYY-MM-DD)")
    imp = make_importer(tmp_path, processors(birthday="date:%d/%m/%Y"))
    outcome = imp.import_file(drop(imp, "students_b.csv",
                                   "student_id,name,birthday\r\nS1,Ann,15/03/2004\r\n"))
    assert (outcome.ok, outcome.failed) == (1, 0)
    s1 = student(imp, "S1")
    assert s1 is not None and s1["birthday"] == dt.date(2004, 3, 15)
    assert table(at(imp, "finished", "students_b.create.finished.csv"))[1] == [
        "S1", "Ann", "2004-03-15"]
    # ISO text, what the finished file holds, is read too (dropped again to update).
    again = imp.import_file(drop(imp, "students_b.update.csv",
                                 "student_id,birthday\r\nS1,2004-03-16\r\n"))
    assert (again.ok, again.failed) == (1, 0)
    s1 = student(imp, "S1")
    assert s1 is not None and s1["birthday"] == dt.date(2004, 3, 16)


@pytest.mark.parametrize("cell", ["31/02/2004", "2004/03/15", "15.03.2004"])
def test_a_date_not_in_the_format_fails_its_row_naming_field_and_format(
        tmp_path: Path, cell: str) -> None:
    imp = make_importer(tmp_path, processors(birthday="date:%d/%m/%Y"))
    outcome = imp.import_file(drop(imp, "students_b.csv",
                                   f"student_id,name,birthday\r\nS1,Ann,{cell}\r\n"))
    assert outcome.failed == 1 and outcome.pending is not None
    assert table(at(imp, outcome.pending))[1][-1] == (
        f"birthday: invalid date '{cell}' (expected format %d/%m/%Y, e.g. 15/03/2004)")


def test_a_datetime_format(tmp_path: Path) -> None:
    imp = make_importer(tmp_path, processors(birthday="datetime:%d/%m/%Y %H:%M"))
    outcome = imp.import_file(drop(imp, "students_b.csv",
                                   "student_id,name,birthday\r\nS1,Ann,15/03/2004 08:30\r\n"))
    assert (outcome.ok, outcome.failed) == (1, 0)
    s1 = student(imp, "S1")
    assert s1 is not None and s1["birthday"] == dt.datetime(2004, 3, 15, 8, 30)


@pytest.mark.parametrize(("spec", "said"), [
    ("date:dd/mm/yyyy", "no directive"),
    ("date:", "no directive"),
    ("date:%d/%m", "reads back as 1900-03-15"),
    ("date:%d/%m/%Q", "strptime cannot read it back"),
    ("datetime:%H:%M", "reads back as 1900-01-01"),
    ("date:%Y-%d-%m", "reads the ISO date 2004-03-05 as 2004-05-03"),  # stored dates swap
])
def test_a_bad_date_format_is_refused_at_load_in_one_line(spec: str, said: str) -> None:
    with pytest.raises(SchemaError) as info:
        load_processors(processors(birthday=spec), source="site.toml")
    message = str(info.value)
    assert message.startswith(
        f"site.toml: [processors.students]: field 'birthday': bad format in '{spec}': ")
    assert said in message and "\n" not in message


# -- what the command line shows -------------------------------------------------------------


def test_processors_and_export_show_format_and_encoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    conf = conf_file(tmp_path, monkeypatch)
    code, out = run(capsys, conf, "processors", "students")
    assert code == 0, out
    assert "encoding: cp1252" in out
    assert any(line.split()[:2] == ["birthday", "date:%d/%m/%Y"] for line in out.splitlines())
    code, out = run(capsys, conf, "processors", "students", "--json")
    described = json.loads(out)[0]
    assert described["fields"]["birthday"] == "date:%d/%m/%Y"
    assert described["encoding"] == "cp1252"
    source = tmp_path / "in" / "students.csv"
    source.parent.mkdir()
    source.write_bytes("student_id,name,birthday\r\nS1,Zoé,15/03/2004\r\n".encode("cp1252"))
    code, out = run(capsys, conf, "import", os.fspath(source))
    assert code == 0, out
    code, out = run(capsys, conf, "export", "students", "--output", "-")
    assert code == 0, out
    assert "S1,Zoé,,2004-03-15," in out
