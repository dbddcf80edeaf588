"""Links planted in the storage are never followed (the "walls that hold" issue, hole 3).

Someone who may write in the storage plants a symbolic link, or a hard link
of a file from elsewhere, where the service would append, read or file
something. Each test plants one such link, runs what a user runs (the
command line, or the :class:`~datacenter.importing.Importer`), and checks
what a user can see:

* the file outside keeps its bytes, its mode and its modification time;
* no line of it shows up in any file of the storage;
* the storage's log has one warning line naming the link;
* nothing is lost: rows in the store + rows pending == rows dropped.
"""

from __future__ import annotations

import csv
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from datacenter import DataCenter
from datacenter import config as configuration
from datacenter.cli.main import main
from datacenter.importing import Importer
from datacenter.storage import fs

ROOT = Path(__file__).resolve().parent.parent
FACULTIES = "code,title\r\nFAC1,Physics\r\nFAC2,Chemistry\r\nFAC3,Biology\r\n"
DEPARTMENTS = ("code,faculty_code,title\r\nDEP1,FAC9,Optics\r\nDEP2,FAC9,Lasers\r\n")
#: What an outside file holds: it must never be read into the storage.
SECRET = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin\n"


# -- helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a user can check of a file: its bytes, mode and modification time."""

    data: bytes
    mode: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> Snapshot:
        st = os.stat(path)
        return cls(path.read_bytes(), st.st_mode, st.st_mtime_ns)


@pytest.fixture
def conf_path(tmp_path: Path) -> Path:
    """A copy of the project's datacenter.toml; storage and store beside it."""
    path = tmp_path / "conf" / "datacenter.toml"
    path.parent.mkdir()
    path.write_text((ROOT / "datacenter.toml").read_text(encoding="utf-8"), encoding="utf-8")
    DataCenter(str(storage_of(path)))  # the storage and its folders, as a service makes them
    return path


def storage_of(conf_path: Path) -> Path:
    return conf_path.parent / "storage"


def outside_file(tmp_path: Path, text: str = SECRET, mode: int = 0o600) -> Path:
    """A file outside the storage, with an old modification time."""
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    return path


def run(capsys: pytest.CaptureFixture[str], conf_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(conf_path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def drop(storage: Path, name: str, text: str) -> Path:
    path = storage / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def storage_texts(storage: Path) -> dict[str, str]:
    """Every regular file of the storage (state included), links not followed."""
    found = {}
    for top, dirs, files in os.walk(storage):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
        for name in files:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                with open(path, encoding="utf-8", errors="replace") as handle:
                    found[os.path.relpath(path, storage)] = handle.read()
    return found


def assert_nothing_read_in(storage: Path) -> None:
    for name, text in storage_texts(storage).items():
        for line in SECRET.splitlines():
            assert line not in text, f"{name} holds a line of the outside file"


def warnings(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text(encoding="utf-8").splitlines()
            if " - WARNING - " in line]


def log_of(storage: Path) -> Path:
    return storage / "logs" / "datacenter.log"


def records(conf_path: Path, processor: str) -> int:
    db = sqlite3.connect(conf_path.parent / "records.sqlite")
    try:
        return int(db.execute(f'SELECT count(*) FROM "rec_{processor}"').fetchone()[0])
    finally:
        db.close()


def csv_rows(path: Path) -> int:
    with open(path, encoding="utf-8", newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def pending_rows(storage: Path) -> int:
    """Rows waiting in pending files: at the root, and kept aside in unfinished/."""
    pending = [p for p in storage.glob("*.pending.csv") if not p.is_symlink()]
    pending += [p for p in (storage / "unfinished").glob("*.pending.csv")]
    return sum(csv_rows(p) for p in pending)


# -- the log ---------------------------------------------------------------------------


def test_a_symlinked_log_is_left_alone_and_lines_go_beside_it(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path)
    before = Snapshot.of(outside)
    log_of(storage).unlink(missing_ok=True)
    log_of(storage).symlink_to(outside)
    drop(storage, "faculties.csv", FACULTIES)
    code, _, _ = run(capsys, conf_path, "import", str(storage / "faculties.csv"))
    assert code == 0
    assert Snapshot.of(outside) == before
    assert log_of(storage).is_symlink()
    aside = storage / "logs" / "datacenter.aside.log"
    [warning] = warnings(aside)
    assert str(log_of(storage)) in warning and "a symbolic link" in warning
    assert "processed: faculties.csv" in aside.read_text(encoding="utf-8")
    assert_nothing_read_in(storage)
    assert records(conf_path, "faculties") == 3


def test_a_hard_link_as_the_log_is_never_appended_to(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path)
    before = Snapshot.of(outside)
    log_of(storage).unlink(missing_ok=True)
    os.link(outside, log_of(storage))
    drop(storage, "faculties.csv", FACULTIES)
    assert run(capsys, conf_path, "import", str(storage / "faculties.csv"))[0] == 0
    assert Snapshot.of(outside) == before
    [warning] = warnings(storage / "logs" / "datacenter.aside.log")
    assert "a hard link with 2 names" in warning


def test_logs_skips_a_symlinked_rotation_and_prints_the_rest(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path)
    drop(storage, "faculties.csv", FACULTIES)
    assert run(capsys, conf_path, "import", str(storage / "faculties.csv"))[0] == 0
    (storage / "logs" / "datacenter.log.1").symlink_to(outside)
    code, out, err = run(capsys, conf_path, "logs")
    assert code == 0
    assert "processed: faculties.csv" in out
    assert "root:x" not in out
    [note] = err.splitlines()
    assert "datacenter.log.1" in note and "a symbolic link" in note


def test_logs_refuses_a_hard_link_placed_in_logs(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path)
    os.link(outside, storage / "logs" / "secret.log")
    code, out, err = run(capsys, conf_path, "logs", "secret.log")
    assert code == 1
    assert "root:x" not in out + err
    assert "a hard link with 2 names" in err


def test_logs_skips_a_hard_linked_rotation(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path)
    drop(storage, "faculties.csv", FACULTIES)
    assert run(capsys, conf_path, "import", str(storage / "faculties.csv"))[0] == 0
    os.link(outside, storage / "logs" / "datacenter.log.2")
    code, out, err = run(capsys, conf_path, "logs")
    assert code == 0 and "processed: faculties.csv" in out and "root:x" not in out
    assert "a hard link with 2 names" in err


# -- finished files and pending files ---------------------------------------------------


def test_a_symlinked_finished_file_is_left_alone_and_rows_go_beside_it(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path, "code,title\r\nOLD,Outside\r\n", mode=0o644)
    before = Snapshot.of(outside)
    finished = storage / "finished" / "faculties.create.finished.csv"
    finished.symlink_to(outside)
    drop(storage, "faculties.csv", FACULTIES)
    assert run(capsys, conf_path, "import", str(storage / "faculties.csv"))[0] == 0
    assert Snapshot.of(outside) == before
    assert finished.is_symlink()
    aside = storage / "finished" / "faculties.create.aside.finished.csv"
    assert csv_rows(aside) == 3 and "OLD" not in aside.read_text(encoding="utf-8")
    [warning] = warnings(log_of(storage))
    assert str(finished) in warning and "a symbolic link" in warning
    assert (storage / "finished" / "faculties.csv").is_file()
    assert records(conf_path, "faculties") == 3


def test_an_outside_secret_behind_a_finished_link_is_never_merged_in(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path)  # 0600, and its first line is no CSV header
    before = Snapshot.of(outside)
    (storage / "finished" / "faculties.create.finished.csv").symlink_to(outside)
    drop(storage, "faculties.csv", FACULTIES)
    assert run(capsys, conf_path, "import", str(storage / "faculties.csv"))[0] == 0
    assert Snapshot.of(outside) == before
    assert_nothing_read_in(storage)
    assert len(warnings(log_of(storage))) == 1


def test_a_hard_linked_finished_file_is_foreign(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path, "code,title\r\nOLD,Outside\r\n")
    before = Snapshot.of(outside)
    os.link(outside, storage / "finished" / "faculties.create.finished.csv")
    drop(storage, "faculties.csv", FACULTIES)
    assert run(capsys, conf_path, "import", str(storage / "faculties.csv"))[0] == 0
    assert Snapshot.of(outside) == before
    [warning] = warnings(log_of(storage))
    assert "a hard link with 2 names" in warning
    assert csv_rows(storage / "finished" / "faculties.create.aside.finished.csv") == 3


def test_a_symlinked_pending_file_at_the_root_is_left_alone(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path, "code,faculty_code,title,--ERRORS--\r\n", mode=0o644)
    before = Snapshot.of(outside)
    pending = storage / "departments.create.pending.csv"
    pending.symlink_to(outside)
    drop(storage, "departments.csv", DEPARTMENTS)
    assert run(capsys, conf_path, "import", str(storage / "departments.csv"))[0] == 3
    assert Snapshot.of(outside) == before
    assert pending.is_symlink()
    [warning] = warnings(log_of(storage))
    assert str(pending) in warning and "a symbolic link" in warning
    assert records(conf_path, "departments") + pending_rows(storage) == 2
    assert (storage / "unfinished" / "departments.csv").is_file()


def test_a_symlinked_unfinished_folder_is_refused(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (storage / "unfinished").rmdir()
    (storage / "unfinished").symlink_to(elsewhere)
    drop(storage, "departments.csv", DEPARTMENTS)
    code, _, err = run(capsys, conf_path, "import", str(storage / "departments.csv"))
    assert code == 1
    assert "unfinished" in err and "a symbolic link" in err
    assert os.listdir(elsewhere) == []
    assert (storage / "departments.csv").read_bytes() == DEPARTMENTS.encode()
    [warning] = warnings(log_of(storage))
    assert "unfinished" in warning and "a symbolic link" in warning


def test_a_folder_linked_while_the_importer_runs_is_refused(
        tmp_path: Path, conf_path: Path) -> None:
    storage = storage_of(conf_path)
    importer = Importer(configuration.load(str(conf_path)))
    try:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (storage / "finished").rmdir()
        (storage / "finished").symlink_to(elsewhere)
        source = drop(storage, "faculties.csv", FACULTIES)
        with pytest.raises(OSError, match="a symbolic link"):
            importer.import_file(str(source))
    finally:
        importer.close()
    assert os.listdir(elsewhere) == []
    assert source.read_bytes() == FACULTIES.encode()
    assert records(conf_path, "faculties") == 0
    assert len(warnings(log_of(storage))) == 1


@pytest.mark.parametrize("folder", [".datacenter", ".datacenter/jobs", "logs"])
def test_a_symlinked_state_or_log_folder_is_refused(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str],
        folder: str) -> None:
    storage = storage_of(conf_path)
    elsewhere = tmp_path / "elsewhere"
    (storage / folder).mkdir(exist_ok=True)
    (storage / folder).rename(elsewhere)
    (storage / folder).symlink_to(elsewhere)
    contents = sorted(os.listdir(elsewhere))
    drop(storage, "faculties.csv", FACULTIES)
    code, _, err = run(capsys, conf_path, "import", str(storage / "faculties.csv"))
    assert code == 1 and "a symbolic link" in err
    assert sorted(os.listdir(elsewhere)) == contents
    assert (storage / "faculties.csv").exists()


def test_a_symlink_at_the_root_is_not_imported(tmp_path: Path, conf_path: Path) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path, FACULTIES, mode=0o644)
    before = Snapshot.of(outside)
    link = storage / "faculties.csv"
    link.symlink_to(outside)
    importer = Importer(configuration.load(str(conf_path)))
    try:
        with pytest.raises(OSError, match="a symbolic link"):
            importer.import_file(str(link))
    finally:
        importer.close()
    assert Snapshot.of(outside) == before
    assert link.is_symlink()
    assert records(conf_path, "faculties") == 0
    assert not re.search("FAC1", "".join(storage_texts(storage).values()))


def test_a_symlinked_backup_is_left_alone_and_records_go_beside_it(
        tmp_path: Path, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = storage_of(conf_path)
    outside = outside_file(tmp_path, "student_id,name\r\nOLD,Outside\r\n", mode=0o644)
    before = Snapshot.of(outside)
    drop(storage, "students.csv", "student_id,name\r\nS1,Ada\r\nS2,Bob\r\n")
    assert run(capsys, conf_path, "import", str(storage / "students.csv"))[0] == 0
    backup = storage / "deleted" / "students.csv"
    backup.symlink_to(outside)
    drop(storage, "students.remove.csv", "student_id\r\nS1\r\n")
    assert run(capsys, conf_path, "import", str(storage / "students.remove.csv"))[0] == 0
    assert Snapshot.of(outside) == before
    aside = storage / "deleted" / "students.aside.csv"
    assert "S1,Ada" in aside.read_text(encoding="utf-8")
    [warning] = warnings(log_of(storage))
    assert str(backup) in warning and "a symbolic link" in warning
    assert records(conf_path, "students") == 1


def test_the_filesystem_module_opens_no_link(tmp_path: Path) -> None:
    outside = outside_file(tmp_path)
    before = Snapshot.of(outside)
    (tmp_path / "link").symlink_to(outside)
    os.link(outside, tmp_path / "second-name")
    for name in ("link", "second-name"):
        with pytest.raises(fs.PlantedLinkError):
            fs.append(str(tmp_path / name), b"appended\n")
        with pytest.raises(fs.PlantedLinkError):
            fs.open_read(str(tmp_path / name))
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(fs.PlantedLinkError, match="not a regular file"):
        fs.open_read(str(tmp_path / "fifo"))  # refused at once, not blocked on
    assert Snapshot.of(outside) == before
