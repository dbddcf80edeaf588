"""The operator's day: ``status`` shows the last imports of its own storage only.

Two storages may share one record store; each one's ``status`` lists the
imports into it, never those of the other. A ledger made by an earlier
version (no storage column) is still read.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from helpers import ROOT, write

from datacenter.cli import main
from datacenter.records.store import read_ledger


def config(folder: Path, database: Path) -> Path:
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    text = text.replace('database = "records.sqlite"', f'database = "{database}"')
    (folder / "storage").mkdir(parents=True)
    return Path(write(folder / "datacenter.toml", text))


def run(capsys: pytest.CaptureFixture[str], conf: Path, *argv: str) -> tuple[int, str]:
    code = main(["--config", str(conf), *argv])
    out, err = capsys.readouterr()
    return code, out + err


def test_two_storages_sharing_one_store_each_show_their_own_imports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    database = tmp_path / "shared.sqlite"
    one, two = config(tmp_path / "one", database), config(tmp_path / "two", database)
    write(tmp_path / "in" / "faculties_one.csv", "code,title\nF1,Science\n")
    write(tmp_path / "in" / "faculties_two.csv", "code,title\nF2,Arts\n")
    assert run(capsys, one, "import", str(tmp_path / "in" / "faculties_one.csv"))[0] == 0
    assert run(capsys, two, "import", str(tmp_path / "in" / "faculties_two.csv"))[0] == 0
    for conf, mine, other in ((one, "faculties_one.csv", "faculties_two.csv"),
                              (two, "faculties_two.csv", "faculties_one.csv")):
        code, out = run(capsys, conf, "status", "--json")
        assert code == 0
        sources = [job["source"] for job in json.loads(out)["last_imports"]]
        assert sources == [mine]
        code, out = run(capsys, conf, "status")
        assert mine in out and other not in out


def test_a_ledger_without_the_storage_column_is_still_read(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("""CREATE TABLE datacenter_jobs (id INTEGER PRIMARY KEY, source TEXT,
            sha256 TEXT, processor TEXT, mode TEXT, user TEXT, rows INTEGER, ok INTEGER,
            failed INTEGER, outcome TEXT, started REAL, finished REAL, workdir TEXT,
            ident TEXT, distributed INTEGER)""")
        db.execute("INSERT INTO datacenter_jobs VALUES (1, 'x.csv', '', 'faculties', 'create',"
                   " 'me', 1, 1, 0, 'finished', 0, 0, 'w', '', 1)")
    db.close()
    ledger = read_ledger(str(database), storage=str(tmp_path / "storage"))
    assert [job.source for job in ledger.last] == ["x.csv"]


def test_the_imports_of_a_moved_storage_show_where_it_went(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    conf = config(tmp_path / "one", tmp_path / "db.sqlite")
    write(tmp_path / "in" / "faculties_one.csv", "code,title\nF1,Science\n")
    assert run(capsys, conf, "import", str(tmp_path / "in" / "faculties_one.csv"))[0] == 0
    (tmp_path / "new").mkdir()
    assert run(capsys, conf, "move-storage", str(tmp_path / "new"), "--move")[0] == 0
    code, out = run(capsys, conf, "status", "--json")
    assert code == 0, out
    report = json.loads(out[: out.rindex("}") + 1])
    assert [job["source"] for job in report["last_imports"]] == ["faculties_one.csv"]


def test_status_names_the_files_no_import_takes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    conf = config(tmp_path / "one", tmp_path / "db.sqlite")
    storage = tmp_path / "one" / "storage"
    (storage / "students.xlsx").write_bytes(b"PK\x03\x04")
    (storage / "notes.pdf").write_bytes(b"%PDF")
    (storage / "students.csv.part").write_bytes(b"")  # still being written: not said
    code, out = run(capsys, conf, "status")
    assert code == 0, out
    assert "  students.xlsx: a spreadsheet workbook: save it as CSV UTF-8" in out
    assert "  notes.pdf: not a CSV file" in out
    assert "students.csv.part" not in out
    code, out = run(capsys, conf, "status", "--json")
    report = json.loads(out[: out.rindex("}") + 1])
    assert [item["name"] for item in report["not_importable"]] == ["notes.pdf", "students.xlsx"]


def test_a_storage_spelled_through_a_link_shows_its_own_imports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    conf = config(tmp_path / "one", tmp_path / "db.sqlite")
    alias = tmp_path / "alias"
    alias.symlink_to(tmp_path / "one" / "storage")
    write(tmp_path / "in" / "faculties_one.csv", "code,title\nF1,Science\n")
    source = str(tmp_path / "in" / "faculties_one.csv")
    assert run(capsys, conf, "--storage", str(alias), "import", source)[0] == 0
    code, out = run(capsys, conf, "status", "--json")
    assert code == 0, out
    report = json.loads(out[: out.rindex("}") + 1])
    assert [job["source"] for job in report["last_imports"]] == ["faculties_one.csv"], out
