"""Walls that hold: what ``export`` and ``import`` refuse to write over or to read.

* ``export --output`` replaces only a regular file (or makes a new name): a
  FIFO, a device node, a socket, a folder or a symlink is refused in one line
  naming the path and what it is, and left as it was;
* formula prefixes are neutralised after leading white space and invisible
  characters too, and in their full-width forms;
* ``import`` and ``export --input`` say what a path is when it is no regular
  file, and never open a FIFO (the open would block until a writer came).

Every case that could block runs under an alarm, so a regression fails the
test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from helpers import ROOT, write

from datacenter import config, export
from datacenter.cli import main
from datacenter.records.schema import load_processors
from datacenter.records.store import RecordStore
from datacenter.storage import fs

STUDENTS = """
database = "records.sqlite"

[processors.students]
key      = ["student_id"]

[processors.students.fields]
student_id = "str"
name       = "str"
level      = "int"
"""


class Hung(Exception):  # noqa: N818 - it says what happened
    """Raised by the alarm: the command blocked (an open of a FIFO waits for a writer)."""


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)

    def hung(signum: int, frame: FrameType | None) -> None:
        raise Hung("blocked for 10 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def dump(path: str, data: object) -> str:
    Path(path).write_text(json.dumps(data), encoding="utf-8")
    return path


def rows(path: str) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def entries(folder: str = ".") -> dict[str, tuple[int, int]]:
    """Each entry of *folder* with its file type and inode: what "nothing changed" means."""
    found = {}
    for name in os.listdir(folder):
        st = os.lstat(os.path.join(folder, name))
        found[name] = (stat.S_IFMT(st.st_mode), st.st_ino)
    return found


def _socket(path: str) -> str:
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)  # the node stays after the socket is closed
    server.close()
    return "a socket, not a regular file"


# -- 1. export --output replaces only a regular file ----------------------------------------


def _fifo(path: str) -> str:
    os.mkfifo(path)
    return "a FIFO (named pipe), not a regular file"


def _symlink(path: str) -> str:
    Path("real.csv").write_text("mine\n")
    os.symlink("real.csv", path)
    return "a symbolic link; name the real file"


def _dangling_symlink(path: str) -> str:
    os.symlink("nowhere.csv", path)
    return "a symbolic link; name the real file"


def _folder(path: str) -> str:
    os.mkdir(path)
    return "Is a directory"  # as before this change


def _device(path: str) -> str:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    except PermissionError:
        pytest.skip("making a device node needs root")
    return "a character device, not a regular file"


@pytest.mark.parametrize("make", [_fifo, _symlink, _dangling_symlink, _folder, _socket, _device])
def test_output_that_is_no_regular_file_is_refused(make: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": "1"}])
    reason = make("out.csv")
    before = entries()
    code, out, err = cli(capsys, "export", "--input", "x.json", "--output", "out.csv")
    assert (code, out, err) == (1, "", f"datacenter: error: out.csv: {reason}\n")
    assert entries() == before  # the node itself, no backup, no temporary file
    if make is _symlink:
        assert Path("real.csv").read_text() == "mine\n"


def test_a_regular_file_and_a_new_name_are_still_written(
        capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": "1"}])
    Path("old.csv").write_text("old\n")
    assert cli(capsys, "export", "--input", "x.json", "--output", "old.csv")[0] == 0
    assert cli(capsys, "export", "--input", "x.json", "--output", "new.csv")[0] == 0
    assert rows("old.csv") == rows("new.csv") == [["a"], ["1"]]
    assert Path("old.csv.bak").read_text() == "old\n"


def test_a_backup_name_that_is_no_regular_file_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The old file would be kept under <name>.bak, replacing what is there.
    dump("x.json", [{"a": "1"}])
    Path("out.csv").write_text("old\n")
    os.mkfifo("out.csv.bak")
    before = entries()
    code, _, err = cli(capsys, "export", "--input", "x.json", "--output", "out.csv")
    assert (code, err) == (
        1, "datacenter: error: out.csv.bak: a FIFO (named pipe), not a regular file\n")
    assert entries() == before and Path("out.csv").read_text() == "old\n"


def test_dev_null_is_refused_and_stays_a_device(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def never(path: str, **options: object) -> None:
        raise AssertionError(f"the export was about to replace {path}")

    # Should the refusal ever break, the machine's /dev/null must still not be replaced.
    monkeypatch.setattr(fs, "atomic_writer", never)
    mode = os.stat("/dev/null").st_mode
    assert stat.S_ISCHR(mode)
    dump("x.json", [{"a": "1"}])
    code, out, err = cli(capsys, "export", "--input", "x.json", "--output", "/dev/null")
    assert (code, out) == (1, "")
    assert err == "datacenter: error: /dev/null: a character device, not a regular file\n"
    assert os.stat("/dev/null").st_mode == mode


def test_dry_run_refuses_such_an_output_too(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": "1"}])
    os.mkfifo("out.csv")
    code, _, err = cli(capsys, "export", "--input", "x.json", "--output", "out.csv", "--dry-run")
    assert code == 1 and "out.csv: a FIFO (named pipe)" in err


def test_a_target_replaced_during_the_export_is_left_alone() -> None:
    # A long export leaves time for the name to change: it is checked again just
    # before the rename, so a FIFO made meanwhile is not replaced either.
    def swap_in_a_fifo(column: str, value: object) -> object:
        if not stat.S_ISFIFO(os.lstat("out.csv").st_mode):
            os.unlink("out.csv")
            os.mkfifo("out.csv")
        return value

    Path("out.csv").write_text("old\n")
    with pytest.raises(export.ExportError, match=r"^out.csv: a FIFO \(named pipe\), not a "):
        export.export_records([{"a": 1}], ["a"], "out.csv", formatter=swap_in_a_fifo)
    assert sorted(entries()) == ["out.csv"] and stat.S_ISFIFO(os.lstat("out.csv").st_mode)


def test_standard_output_is_still_dash(capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"a": "1"}])
    code, out, _ = cli(capsys, "export", "--input", "x.json", "--output", "-")
    assert (code, out) == (0, "a\r\n1\r\n")


# -- 2. formula prefixes behind white space, invisible characters, full width ---------------

FULL_WIDTH = ["\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1:A2)"]  # full-width = + - @
BEHIND = [
    " =1+1", "   +1", "\u00a0=1+1", "\u200b=1+1", "\ufeff=1+1", "\u200c-1", "\u200d@x",
    "\u2060=1", "\u3000=1", "\u2003+1", "\u202f=1", "\n=1", "\v=1", "\f=1", "\x1c=1",
    "\u00ad=1", "\u202e=1", "\u2066=1", " \u200b\u00a0\uff1d1",
]
FORMULAS = FULL_WIDTH + BEHIND
INERT = ["", " ", "\u200b", "plain", " plain", "\u00a0x", "a=b", " 1-2", "D\u00f6rte",
         "\u00d6laf", "\u540d\u524d", "\u200b\u540d", "'=quoted", "x-1", "\uff21=1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_hidden_formula_starts_are_neutralised(text: str) -> None:
    assert export.neutralise_cell(text) == "'" + text
    assert export.cell_text(text) == "'" + text
    assert export.cell_text(text, neutralise=False) == text


@pytest.mark.parametrize("text", INERT)
def test_text_that_starts_no_formula_is_kept(text: str) -> None:
    assert export.neutralise_cell(text) == text


def test_todays_rules_still_hold() -> None:
    for text in ("=1", "+1", "-x", "@x", "\tx", "\rx", "-", "\t", "\r"):
        assert export.neutralise_cell(text) == "'" + text
    assert [export.cell_text(v) for v in (-5, -0.5, "-5")] == ["-5", "-0.5", "'-5"]


def test_json_input_export_neutralises_and_raw_cells_keeps(
        capsys: pytest.CaptureFixture[str]) -> None:
    dump("x.json", [{"cell": text} for text in FORMULAS + INERT])
    assert cli(capsys, "export", "--input", "x.json")[0] == 0
    assert [row[0] for row in rows("x.csv")[1:]] == [
        "'" + text for text in FORMULAS] + [text for text in INERT]
    assert cli(capsys, "export", "--input", "x.json", "--raw-cells")[0] == 0
    assert [row[0] for row in rows("x.csv")[1:]] == FORMULAS + INERT


def _store_with(names: list[str]) -> str:
    write("datacenter.toml", STUDENTS)
    conf = config.load("datacenter.toml")
    store = RecordStore(conf.database, load_processors(conf.processors))
    schema = store.schemas["students"]
    with contextlib.closing(store), store.transaction():
        for n, name in enumerate(names):
            store.insert(schema, {"student_id": f"S{n:03d}", "name": name, "level": -n})
    return "datacenter.toml"


def test_store_export_neutralises_and_raw_cells_keeps(capsys: pytest.CaptureFixture[str]) -> None:
    conf = _store_with(FORMULAS + INERT)
    assert cli(capsys, "--config", conf, "export", "students")[0] == 0
    exported = rows("students.csv")[1:]
    assert [row[1] for row in exported] == ["'" + t for t in FORMULAS] + INERT
    assert [row[2] for row in exported][:3] == ["0", "-1", "-2"]  # numbers are data
    assert cli(capsys, "--config", conf, "export", "students", "--raw-cells")[0] == 0
    assert [row[1] for row in rows("students.csv")[1:]] == FORMULAS + INERT


# -- 3. import says what a path is, and never opens a FIFO ----------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's datacenter.toml; storage and store relative to it."""
    return Path(write(tmp_path / "conf" / "datacenter.toml",
                      (ROOT / "datacenter.toml").read_text(encoding="utf-8")))


def _import(capsys: pytest.CaptureFixture[str], project: Path,
            path: str) -> tuple[int, str, str]:
    return cli(capsys, "--config", str(project), "import", path)


@pytest.mark.parametrize(("make", "reason"), [
    (os.mkfifo, "a FIFO (named pipe), not a regular file"),
    (os.mkdir, "a folder, not a file"),
    (lambda path: None, "no such file"),
    (lambda path: os.symlink("nowhere.csv", path), "no such file"),
    (_socket, "a socket, not a regular file"),
])
def test_import_says_what_the_path_is(make: Any, reason: str, project: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    make("faculties.csv")
    code, out, err = _import(capsys, project, "faculties.csv")
    assert (code, out, err) == (1, "", f"datacenter: error: faculties.csv: {reason}\n")
    assert not (project.parent / "storage").exists()  # refused before the storage opened
    assert not (project.parent / "records.sqlite").exists()


def test_import_of_a_device_names_it(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _import(capsys, project, "/dev/null")
    assert (code, err) == (1, "datacenter: error: /dev/null: a character device, "
                              "not a regular file\n")


def test_import_through_a_symlink_to_a_fifo_names_the_fifo(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo("pipe")
    os.symlink("pipe", "faculties.csv")
    code, _, err = _import(capsys, project, "faculties.csv")
    assert (code, err) == (1, "datacenter: error: faculties.csv: a FIFO (named pipe), "
                              "not a regular file\n")


def test_import_of_a_fifo_inside_the_storage(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    storage = project.parent / "storage"
    storage.mkdir()
    os.mkfifo(storage / "faculties.csv")
    code, _, err = _import(capsys, project, str(storage / "faculties.csv"))
    assert code == 1 and err.endswith("faculties.csv: a FIFO (named pipe), not a regular file\n")
    assert sorted(os.listdir(storage)) == ["faculties.csv"]


def test_import_of_a_regular_file_still_works(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    write("faculties.csv", (ROOT / "examples" / "faculties.csv").read_text(encoding="utf-8"))
    (project.parent / "storage").mkdir()  # import never makes a storage
    code, out, _ = _import(capsys, project, "faculties.csv")
    assert (code, out) == (0, "Imported 3 rows from faculties.csv: 3 ok, 0 failed\n")


# -- 4. export --input of a FIFO or a folder ------------------------------------------------


@pytest.mark.parametrize(("make", "reason"), [
    (os.mkfifo, "a FIFO (named pipe), not a regular file"),
    (os.mkdir, "a folder, not a file"),
    (_socket, "a socket, not a regular file"),
])
def test_export_input_says_what_the_path_is(make: Any, reason: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    make("people.json")
    code, out, err = cli(capsys, "export", "--input", "people.json")
    assert (code, out, err) == (1, "", f"datacenter: error: people.json: {reason}\n")
    assert sorted(os.listdir()) == ["people.json"]


def test_export_input_of_a_device_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "export", "--input", "/dev/null", "--output", "out.csv")
    assert (code, err) == (1, "datacenter: error: /dev/null: a character device, "
                              "not a regular file\n")
    assert not os.path.exists("out.csv")


def test_export_input_through_a_symlink_still_reads(capsys: pytest.CaptureFixture[str]) -> None:
    dump("real.json", [{"a": "1"}])
    os.symlink("real.json", "people.json")
    assert cli(capsys, "export", "--input", "people.json")[0] == 0
    assert rows("people.csv") == [["a"], ["1"]]


def test_a_fifo_swapped_in_after_the_check_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kind is checked again on the open file: a FIFO made between the check and
    # the open is refused at once, not waited on.
    dump("people.json", [])
    real_stat = os.stat

    def swap(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)
        if path == "people.json":
            os.unlink(path)
            os.mkfifo(path)
        return result

    monkeypatch.setattr(os, "stat", swap)
    with pytest.raises(export.ExportError, match=re.escape("people.json: a FIFO (named pipe)")):
        export.load_json_records("people.json")
