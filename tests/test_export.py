"""``datacenter export``: atomic CSV/JSON exports of JSON lists and of processors."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacenter import config, export
from datacenter.cli import main as datacenter_main
from datacenter.records.backend import Store, open_store
from datacenter.records.schema import load_processors
from datacenter.storage import fs
from datacenter.testing.faults import FaultConfig, FaultInjector

PEOPLE = [
    {"id": 1, "name": "Ada", "level": 3},
    {"id": 2, "name": "Bob", "email": "bob@example.org"},
    {"id": 3, "name": "=cmd|'/C calc'!A0", "level": -2, "active": True},
    {"id": 4, "name": "Dörte", "tags": ["a", "b"], "note": None},
]

CONFIG = """
database = "records.sqlite"

[processors.students]
key      = ["student_id"]
required = ["name"]

[processors.students.fields]
student_id = "str"
name       = "str"
email      = "email"
birthday   = "date"
level      = "int"
state      = "choice:admitted,returning,graduated"

[processors.kinds]
key    = ["code"]

[processors.kinds.fields]
code  = "str"
count = "int"
ratio = "float"
ok    = "bool"
day   = "date"
at    = "datetime"
"""


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str) -> None:
    """Each test on each record store: PostgreSQL named by $DATACENTER_DATABASE."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    if database.startswith("postgresql://"):
        monkeypatch.setenv("DATACENTER_DATABASE", database)
    else:
        monkeypatch.delenv("DATACENTER_DATABASE", raising=False)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = datacenter_main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def dump(path: str | Path, data: object) -> str:
    Path(path).write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def rows(path: str | Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def raw(path: str | Path) -> str:
    return Path(path).read_bytes().decode("utf-8")


def listing(folder: str | Path = ".") -> list[str]:
    return sorted(os.listdir(folder))


def reset(**files: str) -> None:
    """Fresh files (new inodes: a backup may share the old ones with its target)."""
    for name, text in files.items():
        path = Path(name.replace("_", "."))
        path.unlink(missing_ok=True)
        path.write_text(text)


def students_store(tmp_path: Path) -> Store:
    (tmp_path / "datacenter.toml").write_text(CONFIG, encoding="utf-8")
    conf = config.load(str(tmp_path / "datacenter.toml"))
    return open_store(conf.database, load_processors(conf.processors))


# -- JSON lists ----------------------------------------------------------------


def test_json_list_to_csv_with_default_name(capsys: pytest.CaptureFixture[str]) -> None:
    dump("people.json", PEOPLE)
    code, out, err = cli(capsys, "--input", "people.json")
    assert (code, out, err) == (0, "Exported 4 records to people.csv (atomic write)\n", "")
    assert rows("people.csv") == [
        ["id", "name", "level", "email", "active", "tags", "note"],
        ["1", "Ada", "3", "", "", "", ""],
        ["2", "Bob", "", "bob@example.org", "", "", ""],
        ["3", "'=cmd|'/C calc'!A0", "-2", "", "true", "", ""],
        ["4", "Dörte", "", "", "", '["a","b"]', ""],
    ]
    assert Path("people.csv").read_bytes().endswith(b"\r\n")
    assert listing() == ["people.csv", "people.json"]


def test_inconsistent_keys_are_padded(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": 1, "b": 2}, {"b": 3, "c": 4}, {}])
    assert cli(capsys, "--input", "x.json", "--output", "out.csv")[0] == 0
    assert rows("out.csv") == [["a", "b", "c"], ["1", "2", ""], ["", "3", "4"], ["", "", ""]]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_cells_are_neutralised(start: str, capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"cell": f"{start}1+1", start + "key": "plain", "n": -1.5}])
    assert cli(capsys, "--input", "x.json")[0] == 0
    assert rows("x.csv") == [["cell", f"'{start}key", "n"], [f"'{start}1+1", "plain", "-1.5"]]
    assert cli(capsys, "--input", "x.json", "--raw-cells")[0] == 0
    assert rows("x.csv") == [["cell", f"{start}key", "n"], [f"{start}1+1", "plain", "-1.5"]]


def test_cell_rules() -> None:
    assert [export.neutralise_cell(t) for t in ("", "a=b", "@x", "-")] == ["", "a=b", "'@x", "'-"]
    values = [None, True, False, 7, -7, 0.1, 1e300, "x", {"k": [1, None]}, dt.date(2024, 2, 29),
              dt.datetime(2024, 2, 29, 8, 30)]
    assert [export.cell_text(v) for v in values] == [
        "", "true", "false", "7", "-7", "0.1", "1e+300", "x", '{"k":[1,null]}', "2024-02-29",
        "2024-02-29 08:30:00"]
    assert export.cell_text("-x", neutralise=False) == "-x"


def test_json_output_is_typed_streamed_utf8(capsys: pytest.CaptureFixture[str]) -> None:
    dump("people.json", PEOPLE)
    code, out, _ = cli(capsys, "--input", "people.json", "--output", "out.json")
    assert (code, out) == (0, "Exported 4 records to out.json (atomic write)\n")
    text = Path("out.json").read_text(encoding="utf-8")
    assert text.startswith('[\n{"id": 1, "name": "Ada", "level": 3},\n{"id": 2,')
    assert text.endswith('"note": null}\n]\n') and "Dörte" in text
    assert json.loads(text) == PEOPLE
    dump("none.json", [])
    assert cli(capsys, "--input", "none.json", "--output", "empty.json")[0] == 0
    assert Path("empty.json").read_text() == "[]\n"


def test_output_over_the_input_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    dump("people.json", PEOPLE)
    code, _, err = cli(capsys, "--input", "people.json", "--format", "json")
    assert code == 1
    assert err == "datacenter: error: people.json: is the input file; choose another --output\n"
    assert json.loads(Path("people.json").read_text()) == PEOPLE


def test_backup_keeps_the_old_content(capsys: pytest.CaptureFixture[str]) -> None:
    for n in (1, 2, 3):
        dump("x.json", [{"version": n}])
        assert cli(capsys, "--input", "x.json")[0] == 0
    assert rows("x.csv") == [["version"], ["3"]]
    assert rows("x.csv.bak") == [["version"], ["2"]]
    assert not os.path.samefile("x.csv", "x.csv.bak")
    assert listing() == ["x.csv", "x.csv.bak", "x.json"]


def test_backup_is_copied_where_hard_links_fail(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"v": 1}])
    cli(capsys, "--input", "x.json")
    dump("x.json", [{"v": 2}])
    injector = FaultInjector()
    injector.add(FaultConfig(target="fs.link", exception=OSError(errno.EPERM, "no links")))
    with injector.installed():
        assert cli(capsys, "--input", "x.json")[0] == 0
    assert rows("x.csv.bak") == [["v"], ["1"]] and rows("x.csv") == [["v"], ["2"]]
    assert listing() == ["x.csv", "x.csv.bak", "x.json"]


def test_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": "=1"}, {"b": 2}])
    code, out, err = cli(capsys, "--input", "x.json", "--output", "-")
    assert (code, out) == (0, "a,b\r\n'=1,\r\n,2\r\n")
    assert err == "Exported 2 records to standard output\n"
    code, out, _ = cli(capsys, "--input", "x.json", "--output", "-", "--format", "json")
    assert json.loads(out) == [{"a": "=1"}, {"b": 2}]
    assert listing() == ["x.json"]


def test_format_follows_the_output_suffix(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": 1}])
    assert cli(capsys, "--input", "x.json", "--output", "y.json")[0] == 0
    assert json.loads(Path("y.json").read_text()) == [{"a": 1}]


# -- validation and dry runs -------------------------------------------------------


def test_validate_lists_record_numbers_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "datacenter.toml").write_text(CONFIG, encoding="utf-8")
    Path("students.csv").write_text("old\n")
    dump("in.json", [
        {"student_id": "S1", "name": "Ada", "level": 1},
        {"student_id": "S2", "name": "Bob", "birthday": "2001-02-30"},
        {"student_id": "S3", "level": "abc"},
        "not a record",
    ])
    code, out, err = cli(capsys, "--input", "in.json", "--processor", "students", "--validate")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "record 2: birthday: invalid date '2001-02-30' (use YYYY-MM-DD)",
        "record 3: name: required value missing",
        "record 3: level: invalid integer 'abc'",
        "record 4: not an object (found a string)",
        "datacenter: error: 4 problems found; nothing written",
    ]
    assert Path("students.csv").read_text() == "old\n"
    assert listing() == ["datacenter.toml", "in.json", "students.csv"]


def test_records_must_be_objects_even_without_validate(
        capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": 1}, [1], 2, None])
    code, _, err = cli(capsys, "--input", "x.json")
    assert code == 1 and err.splitlines() == [
        "record 2: not an object (found a list)",
        "record 3: not an object (found a number)",
        "record 4: not an object (found null)",
        "datacenter: error: 3 problems found; nothing written",
    ]
    assert listing() == ["x.json"]


def test_validate_caps_the_listing(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", list(range(60)))
    code, _, err = cli(capsys, "--input", "x.json", "--validate")
    lines = err.splitlines()
    assert code == 1 and len(lines) == export.MAX_PROBLEMS + 2
    assert lines[0] == "record 1: not an object (found a number)"
    assert lines[-2:] == ["... and 10 more problems",
                          "datacenter: error: 60 problems found; nothing written"]


def test_dry_run_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": 1}, {"b": 2}])
    Path("x.csv").write_text("old\n")
    code, out, err = cli(capsys, "--input", "x.json", "--dry-run")
    assert (code, err) == (0, "")
    assert out == ("Dry run: 2 records would be exported to x.csv as csv; nothing written\n"
                   "columns: a, b\n")
    assert Path("x.csv").read_text() == "old\n" and listing() == ["x.csv", "x.json"]
    dump("bad.json", [{"a": 1}, 5])
    code, out, err = cli(capsys, "--input", "bad.json", "--dry-run")
    assert code == 1 and out == "" and "record 2: not an object" in err


def test_library_validate_and_header(tmp_path: Path) -> None:
    schema = load_processors({"p": {"key": ["k"], "fields": {"k": "str", "n": "int"}}})["p"]
    assert export.validate([{"k": "a", "n": "x"}, {"n": 1}], schema) == [
        "record 1: n: invalid integer 'x'", "record 2: k: required value missing"]
    assert export.validate([{"k": "a"}, 3]) == ["record 2: not an object (found a number)"]
    assert export.csv_header([{"b": 1}, {"a": 1, "b": 2}]) == ["b", "a"]
    assert export.csv_header([{"z": 1, "n": 2}], schema) == ["k", "n", "z"]


# -- errors: paths, input, faults ---------------------------------------------------


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": 1}])
    target = str(tmp_path / "no" / "out.csv")
    code, out, err = cli(capsys, "--input", "x.json", "--output", target)
    assert (code, out, err) == (1, "", f"datacenter: error: {target}: No such file or directory\n")


def test_parent_is_a_file_and_target_is_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": 1}])
    Path("file").write_text("")
    os.mkdir("folder")
    code, _, err = cli(capsys, "--input", "x.json", "--output", "file/out.csv")
    assert (code, err) == (1, "datacenter: error: file/out.csv: Not a directory\n")
    code, _, err = cli(capsys, "--input", "x.json", "--output", "folder")
    assert (code, err) == (1, "datacenter: error: folder: Is a directory\n")
    assert listing() == ["file", "folder", "x.json"] and listing("folder") == []


@pytest.mark.parametrize(("content", "reason"), [
    (None, "No such file or directory"),
    ('[\n  {"a": 1},\n    ]', "not valid JSON: Expecting value (line 3, column 5)"),
    ('{"a": 1}', "not a JSON list of records (found an object)"),
    ('"text"', "not a JSON list of records (found a string)"),
    ("[NaN]", "not valid JSON: NaN is not a JSON value"),
    (b"[\"\xff\"]", "not valid JSON: not UTF-8 text"),
])
def test_bad_input(content: str | bytes | None, reason: str,
                   capsys: pytest.CaptureFixture[str]) -> None:
    if isinstance(content, bytes):
        Path("data.json").write_bytes(content)
    elif content is not None:
        Path("data.json").write_text(content)
    code, out, err = cli(capsys, "--input", "data.json")
    assert (code, out, err) == (1, "", f"datacenter: error: data.json: {reason}\n")
    assert not os.path.exists("data.csv")


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["students", "--input", "x.json"], ["a", "--processor", "b"]):
        with pytest.raises(SystemExit) as exit_:
            cli(capsys, *argv)
        assert exit_.value.code == 2
        assert "usage: datacenter export" in capsys.readouterr().err


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EIO])
def test_a_fault_at_every_step_leaves_the_old_file(
        code: int, capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"n": i} for i in range(3)])
    new = "n\r\n0\r\n1\r\n2\r\n"
    steps: list[str] = []
    for nth in range(1, 100):
        reset(x_csv="old\n", x_csv_bak="older\n")
        injector = FaultInjector()
        injector.add(FaultConfig(target="fs.*", exception=OSError(code, os.strerror(code)),
                                 nth=nth))
        with injector.installed():
            status, out, err = cli(capsys, "--input", "x.json")
        assert listing() == ["x.csv", "x.csv.bak", "x.json"]  # no temporary file left
        if not injector.events:
            assert status == 0 and raw("x.csv") == new
            break
        steps.append(injector.events[0].target)
        assert status == 1 and out == "" and len(err.splitlines()) == 1
        assert raw("x.csv.bak") in ("older\n", "old\n")
        if raw("x.csv") == "old\n":
            assert err == f"datacenter: error: x.csv: {os.strerror(code)}\n"
        else:  # only the folder's fsync after the final rename can fail this late
            assert raw("x.csv") == new and steps[-1] == "fs.fsync_dir"
            assert err == (f"datacenter: error: x.csv: {os.strerror(code)} (the new file "
                           "is in place, but may not survive a power cut)\n")
    assert steps == ["fs.write", "fs.fsync", "fs.link", "fs.replace", "fs.fsync_dir",
                     "fs.replace", "fs.fsync_dir"]


def test_the_export_after_a_late_failure_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    """A failure after the backup leaves target and .bak as two names of one file."""
    dump("x.json", [{"v": 1}])
    reset(x_csv="old\n")
    injector = FaultInjector()
    injector.add(FaultConfig(target="fs.replace", exception=OSError(errno.EIO, "I/O"), nth=2))
    with injector.installed():
        assert cli(capsys, "--input", "x.json")[0] == 1
    assert os.path.samefile("x.csv", "x.csv.bak")
    assert cli(capsys, "--input", "x.json")[0] == 0
    assert raw("x.csv.bak") == "old\n" and rows("x.csv") == [["v"], ["1"]]
    assert listing() == ["x.csv", "x.csv.bak", "x.json"]


def _crash_export(nth: int) -> None:
    FaultInjector.crash_at(nth).install()
    datacenter_main(["export", "--input", "x.json"])


def test_a_crash_at_every_step_leaves_old_or_new() -> None:
    dump("x.json", [{"n": 1}])
    fork = multiprocessing.get_context("fork")
    outcomes = set()
    for nth in range(1, 100):
        reset(x_csv="old\n", x_csv_bak="older\n")
        child = fork.Process(target=_crash_export, args=(nth,))
        child.start()
        child.join()
        target, backup = raw("x.csv"), raw("x.csv.bak")
        outcomes.add((target, backup))
        assert (target, backup) in {("old\n", "older\n"), ("old\n", "old\n"),
                                    ("n\r\n1\r\n", "old\n")}
        leftovers = set(listing()) - {"x.csv", "x.csv.bak", "x.json"}
        assert all(name.startswith(fs.TEMP_PREFIX) for name in leftovers)  # hidden
        for name in leftovers:
            os.unlink(name)
        if child.exitcode == 0:
            break
    assert len(outcomes) == 3 and nth > 5


# -- processors ----------------------------------------------------------------------


def test_processor_export_streams_typed_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = students_store(tmp_path)
    kinds = store.schemas["kinds"]
    with store.transaction():
        store.insert(kinds, {"code": "b", "count": -3, "ratio": 0.1, "ok": True,
                             "day": dt.date(2024, 2, 29), "at": dt.datetime(2024, 1, 2, 3, 4, 5)})
        store.insert(kinds, {"code": "a", "count": 7, "ratio": 2, "ok": False})
        store.insert(kinds, {"code": "@c"})
    store.close()
    code, out, _ = cli(capsys, "kinds")
    assert (code, out) == (0, "Exported 3 records to kinds.csv (atomic write)\n")
    assert rows("kinds.csv") == [
        ["code", "count", "ratio", "ok", "day", "at"],
        ["'@c", "", "", "", "", ""],
        ["a", "7", "2.0", "false", "", ""],
        ["b", "-3", "0.1", "true", "2024-02-29", "2024-01-02 03:04:05"],
    ]
    assert cli(capsys, "kinds", "--format", "json")[0] == 0
    assert json.loads(Path("kinds.json").read_text()) == [
        {"code": "@c", "count": None, "ratio": None, "ok": None, "day": None, "at": None},
        {"code": "a", "count": 7, "ratio": 2.0, "ok": False, "day": None, "at": None},
        {"code": "b", "count": -3, "ratio": 0.1, "ok": True, "day": "2024-02-29",
         "at": "2024-01-02 03:04:05"},
    ]


def test_processor_export_matches_the_typed_records(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fast path over stored rows writes what iter_records' typed values give."""
    store = students_store(tmp_path)
    schema = store.schemas["students"]
    with store.transaction():
        for i in range(2500):  # more than one chunk
            name = ["Ann", "-x", 'a,"b"'][i % 3]
            store.insert(schema, {"student_id": f"S{i:05d}", "name": name, "level": i % 5 - 2,
                                  "birthday": dt.date(2000, 1, 1 + i % 28), "state": "admitted"})
    assert export.export_processor(store, "students", "fast.csv") == 2500
    expected = export.export_records(store.iter_records("students"), list(schema.fields),
                                     "typed.csv")
    assert expected == 2500
    assert Path("fast.csv").read_bytes() == Path("typed.csv").read_bytes()
    assert export.export_processor(store, "students", "fast.json", "json") == 2500
    assert json.loads(Path("fast.json").read_text()) == [
        {**r, "birthday": str(r["birthday"])} for r in store.iter_records("students")]
    store.close()


# SQLite only: a PostgreSQL column holds no text where its type says integer.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_processor_validate_and_dry_run(tmp_path: Path, database: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    store = students_store(tmp_path)
    schema = store.schemas["students"]
    with store.transaction():
        store.insert(schema, {"student_id": "S1", "name": "Ada", "level": 2})
        store.insert(schema, {"student_id": "S2", "name": "Bob"})
    code, out, _ = cli(capsys, "students", "--dry-run")
    assert (code, out) == (0, "Dry run: 2 records would be exported to students.csv as csv; "
                              "nothing written\ncolumns: student_id, name, email, birthday, "
                              "level, state\n")
    with store.transaction():  # a value that bypassed the importer's checks
        store.db.execute("UPDATE rec_students SET level = 'abc' WHERE student_id = 'S2'")
    store.close()
    code, out, err = cli(capsys, "students", "--validate", "--output", "-")
    assert (code, out) == (1, "")
    assert err.splitlines() == ["record 2: level: invalid integer 'abc'",
                                "datacenter: error: 1 problem found; nothing written"]
    assert "students.csv" not in listing()


def test_processor_export_failing_mid_stream(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A fault while rows are still being read: old file kept, the store closes cleanly."""
    store = students_store(tmp_path)
    with store.transaction():  # 1.5 MB of CSV: more than one buffer of writes
        store.insert_rows_all_or_none(
            store.schemas["students"], ("student_id", "name"),
            [(f"S{i:06d}", f"student number {i}") for i in range(40_000)])
    store.close()
    steps = []
    for nth in range(1, 100):
        reset(students_csv="old\n")
        injector = FaultInjector()
        injector.add(FaultConfig(target="fs.*", exception=OSError(errno.ENOSPC, "full"), nth=nth))
        with injector.installed():
            code, out, err = cli(capsys, "students")
        if not injector.events:
            break
        steps.append(injector.events[0].target)
        assert sorted(set(listing()) - {"datacenter.toml", "records.sqlite"}) in (
            ["students.csv"], ["students.csv", "students.csv.bak"])
        assert code == 1 and len(err.splitlines()) == 1
        assert raw("students.csv") == "old\n" or steps[-1] == "fs.fsync_dir"
    assert (code, out) == (0, "Exported 40000 records to students.csv (atomic write)\n")
    assert steps[:2] == ["fs.write", "fs.write"]  # the first while rows were still read
    assert steps[-6:] == ["fs.fsync", "fs.link", "fs.replace", "fs.fsync_dir", "fs.replace",
                          "fs.fsync_dir"]


# SQLite only: a file that is missing or no database (a server says so itself).
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_unknown_processor_and_missing_store(tmp_path: Path, database: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "datacenter.toml").write_text(CONFIG, encoding="utf-8")
    code, _, err = cli(capsys, "nope")
    assert (code, err) == (1, "datacenter: error: unknown processor 'nope' "
                              "(known: kinds, students)\n")
    code, _, err = cli(capsys, "students")
    assert code == 1
    assert err == (f"datacenter: error: {tmp_path / 'records.sqlite'}: no record store "
                   "there yet (nothing imported)\n")
    Path("records.sqlite").write_text("not a database, " * 100)
    code, _, err = cli(capsys, "students")
    assert (code, err) == (1, f"datacenter: error: {tmp_path / 'records.sqlite'}: "
                              "file is not a database\n")
    dump("x.json", [{"a": 1}])
    code, _, err = cli(capsys, "--input", "x.json", "--processor", "nope")
    assert (code, err) == (1, "datacenter: error: unknown processor 'nope' "
                              "(known: kinds, students)\n")


def test_library_streams_records(capsys: pytest.CaptureFixture[str]) -> None:
    """Records are pulled while earlier ones are already written: nothing piles up."""
    seen_before: list[int] = []

    def records() -> Iterator[dict[str, object]]:
        for i in range(5000):
            if i == 4500:
                seen_before.append(capsys.readouterr().out.count("\n"))
            yield {"i": i}

    assert export.export_records(records(), ["i"], "-") == 5000
    assert seen_before[0] >= 4000
    assert capsys.readouterr().out.endswith("4999\r\n")


def test_unknown_format_and_unserialisable_values() -> None:
    with pytest.raises(export.ExportError, match="unknown format 'xml'"):
        export.export_records([], [], "x.xml", "xml")
    with pytest.raises(export.ExportError, match="cannot write a bytes as JSON"):
        export.export_records([{"a": b"x"}], ["a"], "x.json", "json")
    assert listing() == []
