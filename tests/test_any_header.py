"""Any header text a field: from the config to the store, the files and the exports.

Each test writes a ``datacenter.toml`` whose fields are real headers
(``Contact Phone Number``, ``Prénom``, a name made to break SQL), runs the
command line on a real storage folder and looks at what a user sees: the
command's output, the records (``find``, ``export``), the finished and
pending files.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import unicodedata
from pathlib import Path

import pytest
from helpers import write

from datacenter.cli.main import main

NASTY = 'a"; DROP TABLE x; --'
CONFIG = f"""
storage  = "storage"
database = "records.sqlite"

[processors.people]
key      = ["Matrikel-Nr."]
required = ["Prénom"]
columns  = {{ "Telefon" = "Contact Phone Number" }}

[processors.people.fields]
"Matrikel-Nr."         = "str"
"Prénom"               = "str"
"Contact Phone Number" = "str"
"Born on"              = "date"
{json.dumps(NASTY)} = "int"
"Status ✓"             = "choice:active,graduated"

[processors.people.graduated]
"Status ✓" = "graduated"

[processors.contracts]
key     = ["Nr"]
parents = {{ "Matrikel-Nr. of the holder" = "people" }}
columns = {{ "Contract No" = "Nr" }}

[processors.contracts.fields]
"Nr"                         = "str"
"Matrikel-Nr. of the holder" = "str"
"""
HEADER = ["Matrikel-Nr.", "Prénom", "Telefon", "Born on", NASTY, "Status ✓"]


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "datacenter.toml"
    write(path, CONFIG)
    (tmp_path / "storage").mkdir()
    # A table the nasty name would drop if it ever reached SQL unquoted.
    with contextlib.closing(sqlite3.connect(tmp_path / "records.sqlite")) as db, db:
        db.execute("CREATE TABLE x (kept INTEGER)")
    return path


def run(capsys: pytest.CaptureFixture[str], conf: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(conf), *args])
    out, err = capsys.readouterr()
    return code, out, err


def csv_text(*rows: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def table_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_real_headers_import_show_and_export(
        tmp_path: Path, conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "home" / "people.csv"
    write(source, csv_text(HEADER, ["S1", "Zoë", "+49 30 1234", "2004-03-15", "7", "active"],
                           ["S2", "", "", "", "", ""],
                           ["S3", "Ada", "=1+1", "15.03.2004", "x", "active"]))
    code, out, err = run(capsys, conf, "import", str(source))
    assert (code, err) == (3, "")  # 3: some rows failed
    assert out == "Imported 3 rows from people.csv: 1 ok, 2 failed -> people.create.pending.csv\n"

    storage = tmp_path / "storage"
    assert table_of(storage / "finished" / "people.create.finished.csv") == [
        HEADER, ["S1", "Zoë", "+49 30 1234", "2004-03-15", "7", "active"]]
    pending = storage / "people.create.pending.csv"
    assert table_of(pending) == [
        [*HEADER, "--ERRORS--"],
        ["S2", "", "", "", "", "", "Prénom: required value missing"],
        ["S3", "Ada", "=1+1", "15.03.2004", "x", "active",
         "Born on: invalid date '15.03.2004' (use YYYY-MM-DD); "
         f"{NASTY}: invalid integer 'x'"]]

    # The store: one column per field, named exactly so; the table x is still there.
    with contextlib.closing(sqlite3.connect(tmp_path / "records.sqlite")) as db:
        columns = [row[1] for row in db.execute('PRAGMA table_info("rec_people")')]
        assert columns == ["Matrikel-Nr.", "Prénom", "Contact Phone Number", "Born on",
                           NASTY, "Status ✓", "--job--"]
        assert db.execute("SELECT COUNT(*) FROM x").fetchone() == (0,)

    code, out, err = run(capsys, conf, "find", "S3", "--processor", "people")
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [
        "people: Matrikel-Nr. S3",
        "  pending     people.create.pending.csv line 3: Born on: invalid date '15.03.2004' "
        f"(use YYYY-MM-DD); {NASTY}: invalid integer 'x'"]
    code, out, err = run(capsys, conf, "pending")
    assert out.splitlines()[0] == ("people.create.pending.csv (people): 2 row(s) failed; "
                                   "keys: Matrikel-Nr.")
    assert out.splitlines()[2] == "       1  Prénom: required value missing  [S2]"

    code, out, _ = run(capsys, conf, "export", "people", "--output", str(tmp_path / "p.csv"))
    assert code == 0
    exported = table_of(tmp_path / "p.csv")
    assert exported == [["Matrikel-Nr.", "Prénom", "Contact Phone Number", "Born on", NASTY,
                         "Status ✓"],
                        ["S1", "Zoë", "'+49 30 1234", "2004-03-15", "7", "active"]]
    run(capsys, conf, "export", "people", "--output", str(tmp_path / "p.json"))
    assert json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))[0][NASTY] == 7

    code, out, _ = run(capsys, conf, "processors", "people", "--template")
    assert out == ('Matrikel-Nr.,Prénom,Contact Phone Number,Born on,'
                   '"a""; DROP TABLE x; --",Status ✓\n')


def test_the_pending_file_keeps_its_headers_through_a_fix_and_a_second_import(
        tmp_path: Path, conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Blanks around a header are matched away (and trimmed in the files written);
    # the header's own text, its inner spaces and its Unicode form are kept.
    decomposed = unicodedata.normalize("NFD", "Prénom")
    header = ["Matrikel-Nr.", f" {decomposed} ", "Telefon", NASTY]
    written = ["Matrikel-Nr.", decomposed, "Telefon", NASTY]
    source = tmp_path / "home" / "people_2024.csv"
    write(source, csv_text(header, ["S1", "Zoë", "030", "1"], ["S2", "Bo", "031", "two"]))
    assert run(capsys, conf, "import", str(source))[0] == 3
    storage = tmp_path / "storage"
    pending = storage / "people_2024.create.pending.csv"
    rows = table_of(pending)
    assert rows == [[*written, "--ERRORS--"],
                    ["S2", "Bo", "031", "two", f"{NASTY}: invalid integer 'two'"]]

    rows[1][3] = "2"  # a person fixes the cell, and the file is imported again
    pending.write_text(csv_text(*rows), encoding="utf-8")
    code, out, err = run(capsys, conf, "import", str(pending))
    assert (code, err) == (0, "")
    assert out.startswith("Imported 1 rows from people_2024.create.pending.csv: 1 ok")
    assert not pending.exists()
    finished = storage / "finished" / "people_2024.create.finished.csv"
    assert table_of(finished) == [written, ["S1", "Zoë", "030", "1"], ["S2", "Bo", "031", "2"]]

    code, out, _ = run(capsys, conf, "export", "people", "--output", "-")
    assert out.splitlines()[1:] == ["S1,Zoë,030,,1,", "S2,Bo,031,,2,"]


def test_parents_and_removals_with_unusual_names(
        tmp_path: Path, conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    write(home / "people.csv", csv_text(HEADER, ["S1", "Zoë", "", "", "", "graduated"]))
    write(home / "contracts.csv", csv_text(["Contract No", "Matrikel-Nr. of the holder"],
                                           ["C1", "S1"], ["C2", "S9"]))
    assert run(capsys, conf, "import", str(home / "people.csv"))[0] == 0
    code, out, _ = run(capsys, conf, "import", str(home / "contracts.csv"))
    assert code == 3 and out.startswith("Imported 2 rows from contracts.csv: 1 ok, 1 failed")
    # The key's column is "Contract No" in the pending file: find and pending know it.
    code, out, _ = run(capsys, conf, "find", "C2", "--processor", "contracts")
    assert code == 0 and out.splitlines()[1:] == [
        "  pending     contracts.create.pending.csv line 2: Not all parents do exist yet. Skipping",
        "  unfinished  unfinished/contracts.csv line 3"]
    code, out, _ = run(capsys, conf, "pending", "contracts.create.pending.csv")
    assert out.splitlines()[0].endswith("keys: Nr") and out.splitlines()[1].endswith("[C2]")
    write(home / "people_gone.remove.csv", csv_text(["Matrikel-Nr."], ["S1"]))
    code, out, _ = run(capsys, conf, "import", str(home / "people_gone.remove.csv"))
    assert code == 3 and out.startswith(
        "Imported 1 rows from people_gone.remove.csv: 0 ok, 1 failed")
    pending = tmp_path / "storage" / "people_gone.remove.pending.csv"
    assert "still referenced" in table_of(pending)[1][-1]

    write(home / "contracts_end.remove.csv", csv_text(["Nr"], ["C1"]))
    assert run(capsys, conf, "import", str(home / "contracts_end.remove.csv"))[0] == 0
    assert run(capsys, conf, "import", str(pending))[0] == 0
    graduated = tmp_path / "storage" / "graduated" / "people.csv"
    assert table_of(graduated)[0][:6] == ["Matrikel-Nr.", "Prénom", "Contact Phone Number",
                                          "Born on", NASTY, "Status ✓"]


def test_a_field_fed_by_two_headers_is_refused_in_one_line(
        tmp_path: Path, conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "home" / "people.csv"
    write(source, csv_text(["Matrikel-Nr.", "Prénom", "Telefon", "Contact Phone Number"],
                           ["S1", "Zoë", "030", "031"]))
    code, _, err = run(capsys, conf, "import", str(source))
    assert code != 0 and len(err.splitlines()) == 1
    assert "Double headers" in err and "'Telefon' and 'Contact Phone Number' (both field " \
        "Contact Phone Number)" in err


@pytest.mark.parametrize(("fields", "extra", "reason"), [
    ('"Name" = "str"\n"name" = "str"', "",
     "fields 'Name' and 'name' would be one column (SQLite does not tell upper and lower case "
     "apart)"),
    ('"Name" = "str"', 'columns = { "Phone" = "phone" }',
     "columns: 'Phone' maps to 'phone', which is not a field"),
    ('"Name" = "str"\n"Tel" = "str"', 'columns = { "Phone" = "Tel", "Mobil" = "Tel" }',
     "columns: 'Phone' and 'Mobil' both map to field 'Tel'"),
    ('"Name" = "str"\n"--IGNORE--" = "str"', "",
     "invalid field name '--IGNORE--' (reserved for columns to skip)"),
])
def test_config_mistakes_are_one_line_naming_file_table_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: str, extra: str,
        reason: str) -> None:
    conf = tmp_path / "datacenter.toml"
    write(conf, f'storage = "storage"\n[processors.p]\nkey = ["Name"]\n{extra}\n'
                f"[processors.p.fields]\n{fields}\n")
    (tmp_path / "storage").mkdir()
    code, out, err = run(capsys, conf, "processors")
    assert (code, out) == (2, "") or (code != 0 and out == "")
    assert err == f"datacenter: error: {conf}: [processors.p]: {reason}\n"
