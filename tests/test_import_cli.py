"""``datacenter import``, ``processors`` and ``status`` as a user runs them.

Each test writes its own ``datacenter.toml`` (a copy of the project's, with
the storage and the record store relative to it) into a temporary folder,
and runs :func:`datacenter.cli.main` with ``--config`` (and ``--storage``).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from helpers import write

from datacenter.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLES = ROOT / "examples"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the project's datacenter.toml: storage and database relative to it."""
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    assert re.search(r'^storage\s*=\s*"storage"', text, re.MULTILINE)
    assert re.search(r'^database\s*=\s*"records.sqlite"', text, re.MULTILINE)
    path = tmp_path / "conf" / "datacenter.toml"
    write(path, text)
    (path.parent / "storage").mkdir()  # made by `init` or `serve`: import never makes one
    return path


def storage_of(config: Path) -> Path:
    return config.parent / "storage"


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def user_file(tmp_path: Path, name: str, data: str | bytes) -> Path:
    """A file in the user's own folder, outside the storage."""
    path = tmp_path / "home" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def files_in(folder: Path) -> set[str]:
    """Files a user sees below *folder* (hidden state and logs left out)."""
    found = set()
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in (".datacenter", "logs")]
        found.update(os.path.relpath(os.path.join(top, f), folder) for f in files)
    return found


def records(config: Path, name: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(config.parent / "records.sqlite")
    try:
        return db.execute(f'SELECT * FROM "rec_{name}" ORDER BY 1').fetchall()
    finally:
        db.close()


def test_import_of_good_rows_exits_0(tmp_path: Path, config: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = (EXAMPLES / "faculties.csv").read_bytes()
    mine = user_file(tmp_path, "faculties.csv", data)
    code, out, err = run(capsys, config, "import", str(mine))
    assert (code, err) == (0, "")
    assert out == "Imported 3 rows from faculties.csv: 3 ok, 0 failed\n"
    assert mine.read_bytes() == data  # the user's file stays; the storage got a copy
    storage = storage_of(config)
    assert files_in(storage) == {"finished/faculties.csv",
                                 "finished/faculties.create.finished.csv"}
    assert (storage / "finished" / "faculties.csv").read_bytes() == data
    assert [row[0] for row in records(config, "faculties")] == ["FAC1", "FAC2", "FAC3"]


def test_import_with_failed_rows_exits_3(tmp_path: Path, config: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    mine = user_file(tmp_path, "students.csv", (EXAMPLES / "students.csv").read_bytes())
    code, out, _ = run(capsys, config, "import", str(mine))
    assert code == 3
    assert out == ("Imported 4 rows from students.csv: 2 ok, 2 failed "
                   "-> students.create.pending.csv\n")
    storage = storage_of(config)
    pending = (storage / "students.create.pending.csv").read_text(encoding="utf-8")
    assert "level: invalid integer 'abc'" in pending
    assert (storage / "unfinished" / "students.csv").is_file()
    assert [row[0] for row in records(config, "students")] == ["S0001", "S0002"]


def test_import_of_a_file_already_in_the_storage(config: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(config)
    dropped = write(storage / "faculties.csv", "code,title\nF1,Science\n")
    code, out, _ = run(capsys, config, "import", dropped)
    assert code == 0 and out.startswith("Imported 1 rows from faculties.csv: 1 ok")
    assert not os.path.exists(dropped)
    assert (storage / "finished" / "faculties.csv").is_file()


@pytest.mark.parametrize(("corpus_name", "message"), [
    ("latin1.csv", "students.csv: line 3: not UTF-8"),
    ("empty.csv", "students.csv: the file is empty"),
    ("png.csv", "students.csv: line 1: not UTF-8"),
    ("unterminated_quote.csv", "students.csv: line 3: a quoted cell is never closed"),
])
def test_fatal_file_exits_1_and_leaves_everything_as_it_was(
        tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str],
        corpus_name: str, message: str) -> None:
    data = (CORPUS / corpus_name).read_bytes()
    mine = user_file(tmp_path, "students.csv", data)
    code, out, err = run(capsys, config, "import", str(mine))
    assert code == 1 and out == ""
    assert err.startswith(f"datacenter: error: {message}")
    assert err.count("\n") == 1
    assert mine.read_bytes() == data
    storage = storage_of(config)
    assert files_in(storage) == set()  # no copy left, nothing filed away
    assert os.listdir(storage / ".datacenter" / "jobs") == []
    assert records(config, "students") == []
    code, out, _ = run(capsys, config, "logs", "--query", "rejected")
    assert code == 0 and out.count("\n") == 1 and message in out


def test_missing_columns_exit_1_naming_the_file(tmp_path: Path, config: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    mine = user_file(tmp_path, "students.csv", "student_id,email\nS1,a@example.org\n")
    code, _, err = run(capsys, config, "import", str(mine))
    assert code == 1
    assert err.startswith("datacenter: error: students.csv: Need at least columns")
    assert "missing: name" in err
    assert files_in(storage_of(config)) == set()


def test_unroutable_file_exits_1_and_leaves_no_copy(tmp_path: Path, config: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    mine = user_file(tmp_path, "people.csv", "code,title\nF1,Science\n")
    code, _, err = run(capsys, config, "import", str(mine))
    assert code == 1 and "people.csv: no processor claims this file" in err
    assert files_in(storage_of(config)) == set()
    assert mine.is_file()


def test_missing_file_exits_1(tmp_path: Path, config: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, config, "import", str(tmp_path / "nowhere.csv"))
    assert code == 1 and "nowhere.csv: no such file" in err


def test_import_refuses_to_overwrite_a_waiting_file(tmp_path: Path, config: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    waiting = write(storage_of(config) / "faculties.csv", "code,title\nF9,Waiting\n")
    mine = user_file(tmp_path, "faculties.csv", "code,title\nF1,Mine\n")
    code, out, err = run(capsys, config, "import", str(mine))
    assert code == 1 and out == ""
    assert "a pending file of that name is waiting already" in err
    assert Path(waiting).read_text(encoding="utf-8") == "code,title\nF9,Waiting\n"
    assert records(config, "faculties") == []


def test_processor_and_mode_options_override_routing(tmp_path: Path, config: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, config, "import",
                     str(user_file(tmp_path, "people.csv", "student_id,name\nS1,Ada\nS2,Bo\n")),
                     "--processor", "students", "--mode", "create")
    assert code == 0
    code, out, _ = run(capsys, config, "import",
                       str(user_file(tmp_path, "students_fix.csv",
                                     "student_id,name\nS1,Ada Obi\nS7,Nobody\n")),
                       "--mode", "update")
    assert code == 3
    assert out.endswith("1 ok, 1 failed -> students_fix.update.pending.csv\n")
    assert records(config, "students")[0][:2] == ("S1", "Ada Obi")
    storage = storage_of(config)
    assert (storage / "students_fix.update.pending.csv").is_file()
    assert (storage / "finished" / "people.create.finished.csv").is_file()
    code, _, err = run(capsys, config, "import",
                       str(user_file(tmp_path, "students_x.csv", "student_id\nS1\n")),
                       "--processor", "nope", "--mode", "remove")
    assert code == 1 and "unknown processor 'nope'" in err
    assert not (storage / "students_x.csv").exists()


def test_processor_option_alone_imports_in_create_mode(
        tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = user_file(tmp_path, "people.csv", "student_id,name\nS1,Ada\n")
    code, out, _ = run(capsys, config, "import", str(mine), "--processor", "students")
    assert code == 0 and out.startswith("Imported 1 rows from people.csv: 1 ok")


def test_user_option_shows_in_the_log(tmp_path: Path, config: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    mine = user_file(tmp_path, "faculties.csv", "code,title\nF1,Science\n")
    assert run(capsys, config, "import", str(mine), "--user", "alice")[0] == 0
    code, out, _ = run(capsys, config, "logs", "--query", "processed:")
    assert code == 0
    assert re.search(r" - alice - processed: faculties\.csv, create mode, 1 lines "
                     r"\(1 successful/ 0 failed\)", out)


def test_storage_option_wins_over_the_config(tmp_path: Path, config: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    mine = user_file(tmp_path, "faculties.csv", "code,title\nF1,Science\n")
    assert main(["--config", str(config), "--storage", str(other), "import", str(mine)]) == 0
    assert (other / "finished" / "faculties.csv").is_file()
    assert not (storage_of(config) / "finished" / "faculties.csv").exists()


def test_processors_lists_all(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, config, "processors")
    assert code == 0
    assert "students  (key: student_id)" in out
    assert re.search(r"^  faculty_code\s+str required -> faculties$", out, re.MULTILINE)
    assert re.search(r"^  level\s+int$", out, re.MULTILINE)
    assert [line.split()[0] for line in out.splitlines() if not line.startswith(" ")] == [
        "faculties", "departments", "students"]


def test_processors_template(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, config, "processors", "students", "--template")
    assert code == 0
    assert out == "student_id,name,email,birthday,level,state\n"
    code, _, err = run(capsys, config, "processors", "--template")
    assert code == 1 and "--template needs a processor NAME" in err


def test_processors_unknown_name(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, config, "processors", "nope")
    assert code == 1 and out == ""
    assert "unknown processor 'nope' (known: departments, faculties, students)" in err


def test_processors_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, config, "processors", "--json")
    assert code == 0
    described = {item["name"]: item for item in json.loads(out)}
    assert set(described) == {"faculties", "departments", "students"}
    assert described["students"] == {
        "name": "students",
        "key": ["student_id"],
        "fields": {"student_id": "str", "name": "str", "email": "email", "birthday": "date",
                   "level": "int", "state": "choice:admitted,returning,graduated"},
        "required": ["student_id", "name"],
        "parents": {},
        "graduated": {"state": "graduated"},
        "encoding": "utf-8",
        "columns": {},
    }
    assert described["departments"]["parents"] == {"faculty_code": "faculties"}
    code, out, _ = run(capsys, config, "processors", "faculties", "--json")
    assert [item["name"] for item in json.loads(out)] == ["faculties"]


def test_status_json_shows_last_imports(tmp_path: Path, config: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, config, "status", "--json")
    assert code == 0 and json.loads(out)["last_imports"] == []
    run(capsys, config, "import", str(user_file(tmp_path, "faculties.csv",
                                                "code,title\nF1,Science\n")))
    run(capsys, config, "import", str(user_file(tmp_path, "students.csv",
                                                (EXAMPLES / "students.csv").read_bytes())),
        "--user", "bob")
    code, out, _ = run(capsys, config, "status", "--json")
    report = json.loads(out)
    assert code == 0
    last = report["last_imports"]
    assert [(job["source"], job["processor"], job["mode"], job["rows"], job["ok"],
             job["failed"], job["outcome"]) for job in last] == [
        ("students.csv", "students", "create", 4, 2, 2, "pending"),
        ("faculties.csv", "faculties", "create", 1, 1, 0, "finished"),
    ]
    assert last[0]["user"] == "bob"
    assert report["files"]["pending"] == 1 and report["files"]["unfinished"] == 1
    assert report["interrupted"] == 0
    code, out, _ = run(capsys, config, "status")
    assert code == 0 and "students.csv  students/create  4 rows: 2 ok, 2 failed  (bob)" in out
