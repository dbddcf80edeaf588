"""Who may read what the service creates ("walls that hold", hole 14).

Under the usual umask 022 everything used to come out world-readable: the
record store, the journal, every CSV. Now the state (``.datacenter/``, the
record store) is the owner's alone, and the CSV files and logs are for the
owner's group too (``layout``'s modes); the umask can only take bits away.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacenter import DataCenter
from datacenter.config import Config
from datacenter.importing import Importer
from datacenter.storage import fs

PROCESSORS = {
    "faculties": {"key": ["code"], "fields": {"code": "str", "title": "str"}},
    "departments": {"key": ["code"], "fields": {"code": "str", "faculty_code": "str"},
                    "parents": {"faculty_code": "faculties"}},
}


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def importer(tmp_path: Path) -> Importer:
    conf = Config(path=None, storage=str(tmp_path / "storage"),
                  database=str(tmp_path / "db" / "records.sqlite"),
                  processors=PROCESSORS, routes=[])
    return Importer(conf)


def drop(storage: Path, name: str, text: str) -> str:
    path = storage / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_state_is_the_owners_and_data_the_groups(tmp_path: Path, umask_022: None) -> None:
    imp = importer(tmp_path)
    storage = Path(imp.storage)
    try:
        imp.import_file(drop(storage, "faculties.csv", "code,title\nF1,Physics\n"))
        imp.import_file(drop(storage, "departments.csv", "code,faculty_code\nD1,F9\n"))
        imp.import_file(drop(storage, "faculties.remove.csv", "code\nF1\n"))
        db = tmp_path / "db" / "records.sqlite"
        store_files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
        assert {p.name for p in store_files} >= {"records.sqlite", "records.sqlite-wal"}
        assert {p.name: mode(p) for p in store_files} == dict.fromkeys(
            (p.name for p in store_files), 0o600)
    finally:
        imp.close()
    state = storage / ".datacenter"
    assert mode(state) == 0o700
    for area in ("journal", "staging", "jobs"):
        assert mode(state / area) == 0o700, area
    assert mode(state / "lock") == 0o600
    for folder in ("finished", "unfinished", "deleted", "graduated", "logs"):
        assert mode(storage / folder) == 0o750, folder
    assert mode(storage) == 0o750
    assert mode(storage / "finished" / "faculties.create.finished.csv") == 0o640
    assert mode(storage / "departments.create.pending.csv") == 0o640
    assert mode(storage / "deleted" / "faculties.csv") == 0o640
    assert mode(storage / "logs" / "datacenter.log") == 0o640


def test_a_staging_folder_and_an_intent_are_private(tmp_path: Path, umask_022: None) -> None:
    dc = DataCenter(str(tmp_path / "storage"))
    group = dc.journal.new_group()
    staged = group.staged_path("rows.csv")
    Path(staged).write_text("a\n1\n", encoding="utf-8")
    dc.journal.commit(group)
    assert mode(Path(group.staging)) == 0o700
    assert mode(Path(dc.journal.dir) / f"{group.id}.json") == 0o600
    dc.journal.recover()


def test_the_umask_can_only_take_bits_away(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        imp = importer(tmp_path)
        storage = Path(imp.storage)
        imp.import_file(drop(storage, "faculties.csv", "code,title\nF1,Physics\n"))
        imp.close()
    finally:
        os.umask(old)
    assert mode(storage / "finished" / "faculties.create.finished.csv") == 0o600
    assert mode(storage / "finished") == 0o700
    assert mode(storage / ".datacenter") == 0o700


def test_state_made_before_is_made_private(tmp_path: Path, umask_022: None) -> None:
    state = tmp_path / "storage" / ".datacenter"
    state.mkdir(parents=True, mode=0o755)
    db = tmp_path / "db" / "records.sqlite"
    db.parent.mkdir()
    Importer(Config(path=None, storage=str(tmp_path / "storage"), database=str(db),
                    processors=PROCESSORS, routes=[])).close()
    db.chmod(0o644)
    imp = importer(tmp_path)
    imp.close()
    assert mode(state) == 0o700
    assert mode(db) == 0o600


def test_a_file_written_anew_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    config = tmp_path / "datacenter.toml"
    config.write_text("storage = 'x'\n", encoding="utf-8")
    config.chmod(0o664)
    fs.atomic_write(str(config), b"storage = 'y'\n")
    assert mode(config) == 0o664
