"""Plain helpers the test modules share (fixtures live in ``conftest.py``).

Test modules import from here, never from one another or from conftest
(``tests/test_layout.py`` checks it). The groups: files on disk; an
importer built on the documented processors of ``datacenter.toml`` and
what a user sees of its storage; processors offered by (fake) installed
packages; the crash scenarios that the crash and fault tests both run;
the seeded storages that the engines and the record stores must import
alike; the web console's accounts; and the console in a browser (a real
``serve --web`` process, Debian's Chromium through Playwright).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import importlib.metadata
import io
import os
import random
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect, sync_playwright
from starlette.testclient import TestClient

from datacenter import DataCenter, config
from datacenter.config import Config, Route
from datacenter.importing import columnar
from datacenter.importing.importer import Importer
from datacenter.importing.outputs import ImportResult
from datacenter.importing.processors import BatchProcessor
from datacenter.records.backend import read_jobs
from datacenter.service import Service, read_state
from datacenter.service.accounts import Accounts
from datacenter.service.state import INSTANCE_STATE, STATE_FILE
from datacenter.storage import fs
from datacenter.storage.layout import SUBFOLDERS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"


# -- PostgreSQL ------------------------------------------------------------------------------

#: The server the PostgreSQL tests use; each test makes a database of its own there.
PG_SERVER = (os.environ.get("DATACENTER_TEST_DATABASE_URL")
             or "postgresql://postgres@127.0.0.1:5432/test")
_pg_answer: list[str | None] = []


def pg_missing() -> str | None:
    """Why the PostgreSQL tests cannot run here (no server answers), or None: they run."""
    if not _pg_answer:
        try:
            with psycopg.connect(PG_SERVER, connect_timeout=3):
                _pg_answer.append(None)
        except psycopg.Error as error:
            _pg_answer.append(f"no PostgreSQL answers at {PG_SERVER} "
                              f"({str(error).strip().splitlines()[0]})")
    return _pg_answer[0]


def require_pg() -> None:
    """Skip the calling test without a server; in CI (``CI=true``) fail instead."""
    missing = pg_missing()
    if missing is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{missing}; CI must run the PostgreSQL tests")
    pytest.skip("PostgreSQL tests: no server (set $DATACENTER_TEST_DATABASE_URL)")


def _with_dbname(url: str, name: str) -> str:
    if "://" not in url:  # key=value form
        return psycopg.conninfo.make_conninfo(url, dbname=name)
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A new, empty database on the test server (its URL), dropped afterwards."""
    require_pg()
    name = f"dc_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(PG_SERVER, name)
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TcpProxy:
    """A TCP proxy to a server, in threads, that a test cuts and restores.

    Cutting closes every connection through it and refuses new ones (they
    are accepted and closed at once, as a server that went away), until it
    is restored: how a test takes the database away without stopping it.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self.open = True
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._mutex = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)
        self._thread.start()

    @classmethod
    @contextlib.contextmanager
    def to(cls, url: str) -> Iterator[TcpProxy]:
        """A proxy to the server of *url*, closed when the block ends."""
        parts = urllib.parse.urlsplit(url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 5432)
        try:
            yield proxy
        finally:
            proxy.close()

    def via(self, url: str) -> str:
        """*url*, going through this proxy."""
        parts = urllib.parse.urlsplit(url)
        user = f"{parts.username}@" if parts.username else ""
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._mutex:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 << 16):
                dst.sendall(data)
        for end in (src, dst):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every connection through the proxy; refuse new ones until restored."""
        self.open = False
        with self._mutex:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()
        self._thread.join(timeout=5)


def reset_database(database: str) -> None:
    """Empty the record store *database* (a PostgreSQL URL or an SQLite file): a fresh start."""
    if "://" not in database:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(database + suffix)
        return
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")


# -- files -----------------------------------------------------------------------------------


def write(path: str | Path, text: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return str(path)


def read(path: str | Path) -> str:
    return Path(path).read_text(encoding="utf-8")


def tree(root: str | Path) -> dict[str, str]:
    """Every file below *root* (hidden state excluded) with its content."""
    result = {}
    root = str(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".datacenter"]
        for name in files:
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8", errors="replace") as handle:
                result[os.path.relpath(path, root)] = handle.read()
    return result


def fake_devices(monkeypatch: pytest.MonkeyPatch, *roots: str | Path) -> list[str]:
    """Make renames and hard links between *roots* fail with EXDEV, as between disks.

    Tests run on one filesystem as root, so the cross-device path of the
    filesystem module is forced by patching the calls it makes. Returns a
    list that records each refused call.
    """
    folders = [os.path.abspath(r) for r in roots]
    refused: list[str] = []

    def device(path: str) -> int:
        path = os.path.abspath(path)
        for n, folder in enumerate(folders):
            if path == folder or path.startswith(folder + os.sep):
                return n
        return -1

    def guard(real):  # type: ignore[no-untyped-def]
        def call(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
            if device(src) != device(dst):
                refused.append(f"{src} -> {dst}")
                raise OSError(errno.EXDEV, "Invalid cross-device link", src, dst)
            return real(src, dst, *args, **kwargs)
        return call

    fake_os = type("FakeOs", (), {})()
    for name in dir(os):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(fake_os, name, getattr(os, name))
    for name in ("rename", "replace", "link"):
        setattr(fake_os, name, guard(getattr(os, name)))
    monkeypatch.setattr(fs, "os", fake_os)
    return refused


# -- an importer, and what a user sees of its storage ------------------------------------------

#: The repository's own config, as text.
REPO_CONFIG = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
TOML = tomllib.loads(REPO_CONFIG)
PROCESSORS: dict[str, Any] = TOML["processors"]
ROUTES = [Route(**route) for route in TOML["routes"]]
STUDENT_HEADER = "student_id,name,email,birthday,level,state"
EXISTS = "This object already exists. Skipping."
NO_PARENT = "Not all parents do exist yet. Skipping"
NO_UPDATE = "Cannot update: no such entry"
NO_REMOVE = "Cannot remove: no such entry"


def make_importer(tmp_path: Path, processors: Mapping[str, Any] | None = None,
                  database: str | None = None) -> Importer:
    conf = Config(path=None, storage=str(tmp_path / "storage"),
                  database=database or str(tmp_path / "db.sqlite"),
                  processors=dict(processors if processors is not None else PROCESSORS),
                  routes=list(ROUTES))
    return Importer(conf)


def drop(imp: Importer, name: str, data: str | bytes) -> str:
    """Put a file at the storage's root, byte for byte."""
    path = os.path.join(imp.dc.storage, name)
    with open(path, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def drop_corpus(imp: Importer, corpus_name: str, name: str) -> str:
    return drop(imp, name, (CORPUS / corpus_name).read_bytes())


def write_tmp(tmp_path: Path, name: str, text: str) -> str:
    """A file outside the storage (for doImport, which never moves its source)."""
    return write(tmp_path / "in" / name, text)


def at(imp: Importer, *parts: str) -> str:
    return os.path.join(imp.dc.storage, *parts)


def raw(path: str) -> str:
    """A file's text exactly as stored: no newline translation."""
    return Path(path).read_bytes().decode("utf-8")


def table(path: str) -> list[list[str]]:
    """A CSV file's rows (header first), as a user's spreadsheet reads them."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def visible(imp: Importer) -> set[str]:
    """Every file a user sees in the storage (logs and hidden state left out)."""
    found = set()
    for folder, dirs, files in os.walk(imp.dc.storage):
        dirs[:] = [d for d in dirs if d not in (".datacenter", "logs")]
        for name in files:
            found.add(os.path.relpath(os.path.join(folder, name), imp.dc.storage))
    return found


def job_folders(imp: Importer) -> list[str]:
    jobs = at(imp, ".datacenter", "jobs")
    return os.listdir(jobs) if os.path.isdir(jobs) else []


def student(imp: Importer, key: str) -> dict[str, object] | None:
    return imp.store.get(imp.schemas["students"], (key,))


def students_csv(*rows: str) -> str:
    return "\r\n".join([STUDENT_HEADER, *rows]) + "\r\n"


def load_students(imp: Importer) -> None:
    """Two students, S1 admitted and S2 graduated, imported through a file."""
    outcome = imp.import_file(drop(imp, "students_seed.csv", students_csv(
        "S1,Ada Obi,ada@example.org,2004-03-15,100,admitted",
        "S2,Bola Eze,bola@example.org,2003-11-02,400,graduated",
    )))
    assert (outcome.ok, outcome.failed) == (2, 0)


# -- processors of installed packages -------------------------------------------------------


class FakeEntryPoint:
    """An installed package's ``datacenter.processors`` entry point, without the package."""

    def __init__(self, name: str, target: object) -> None:
        self.name, self.value, self.group = name, f"fake:{name}", "datacenter.processors"
        self._target = target

    def load(self) -> object:
        return self._target


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, *found: FakeEntryPoint) -> list[str]:
    """Installed packages offer *found* as processors; returns a list of each look-up."""
    asked: list[str] = []
    real = importlib.metadata.entry_points

    def entry_points(**params: Any) -> Any:
        if params.get("group") == "datacenter.processors":
            asked.append(params["group"])
            return list(found)
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return asked


# -- crash scenarios: a storage before and after one call ---------------------------------------

Snapshot = dict[str, bytes]


def snapshot(*roots: str) -> Snapshot:
    """Every visible file under *roots* with its bytes (state and logs aside).

    Opening a storage creates its empty standard sub-folders; those are not
    the user's data and are left out.
    """
    result: Snapshot = {}
    for n, root in enumerate(roots):
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in (".datacenter", "logs")]
            rel = os.path.relpath(folder, root)
            if not files and not dirs and os.path.basename(folder) not in SUBFOLDERS:
                result[f"{n}:{rel}/"] = b""  # an empty folder of the user's counts too
            for name in files:
                with open(os.path.join(folder, name), "rb") as handle:
                    result[f"{n}:{os.path.join(rel, name)}"] = handle.read()
    return result


def check_clean(storage: str) -> None:
    """No journal intent, no staged file, no temporary file left in *storage*."""
    state = os.path.join(storage, ".datacenter")
    assert os.listdir(os.path.join(state, "journal")) == []
    assert os.listdir(os.path.join(state, "staging")) == []
    for folder, _, files in os.walk(storage):
        assert not [f for f in files if f.startswith(".dc-tmp-")], folder


@dataclass
class Scenario:
    name: str
    setup: Callable[[str, str], None]  # (storage, outside) -> starting state
    act: Callable[[str, str], object]  # the call that is crashed
    roots: Callable[[str, str], tuple[str, ...]] = lambda s, o: (s, o)


def _results(outside: str, finished: str, pending: str | None) -> tuple[str, str | None]:
    folder = os.path.join(outside, "results")
    finished_path = write(os.path.join(folder, "finished.csv"), finished)
    pending_path = write(os.path.join(folder, "pending.csv"), pending) if pending else None
    return finished_path, pending_path


@dataclass
class Dist:
    """One distProcessedFiles call: its inputs are made first, then the call."""

    successful: bool
    source: str
    finished: str
    pending: str | None
    source_text: str = "id,name\n1,Ada\n2,Bola\n3,Chidi\n"

    def inputs(self, storage: str, outside: str) -> None:
        src = os.path.join(storage, self.source)
        if not os.path.exists(src):
            write(src, self.source_text)
        _results(outside, self.finished, self.pending)

    def __call__(self, storage: str, outside: str) -> None:
        folder = os.path.join(outside, "results")
        pending = os.path.join(folder, "pending.csv") if self.pending else None
        DataCenter(storage).distProcessedFiles(
            self.successful, os.path.join(storage, self.source),
            os.path.join(folder, "finished.csv"), pending, "create")


def _chain(*steps: Callable[[str, str], object]) -> Callable[[str, str], None]:
    def run(storage: str, outside: str) -> None:
        DataCenter(storage)
        for step in steps:
            if isinstance(step, Dist):
                step.inputs(storage, outside)
            step(storage, outside)
    return run


FIN1 = "id,name\r\n1,Ada\r\n"
PEND1 = "id,name,--ERRORS--\r\n2,Bola,bad\r\n3,Chidi,bad\r\n"
FIN2 = "id,name\r\n2,Bola\r\n"
PEND2 = "id,name,--ERRORS--\r\n3,Chidi,still bad\r\n"
FIN3 = "id,name\r\n3,Chidi\r\n"
_fail_first = Dist(False, "mysource.csv", FIN1, PEND1)
_fail_again = Dist(False, "mysource.create.pending.csv", FIN2, PEND2)


def _relocate(storage: str, outside: str) -> None:
    DataCenter(storage).setStoragePath(os.path.join(outside, "new"), move=True)


def _relocation_setup(storage: str, outside: str) -> None:
    DataCenter(storage)
    write(os.path.join(storage, "a.csv"), "id\n1\n")
    write(os.path.join(storage, "finished", "x.create.finished.csv"), "id\n1\n2\n")
    write(os.path.join(storage, "deep", "er", "f.txt"), "deep\n")
    write(os.path.join(outside, "new", "finished", "theirs.csv"), "id\n9\n")
    write(os.path.join(outside, "new", "a.csv"), "clash\n")


def _backup(storage: str, outside: str) -> None:
    DataCenter(storage).backupRecords("students", [{"id": "S3", "name": "Chidi"}])


SCENARIOS = [
    Scenario("seed-1-success", _chain(), Dist(True, "mysource.csv", FIN1, None)),
    Scenario("seed-2-failure", _chain(), _fail_first),
    Scenario("seed-3-pending-success", _chain(_fail_first),
             Dist(True, "mysource.create.pending.csv", FIN2 + "3,Chidi\r\n", None)),
    Scenario("seed-4-pending-fails", _chain(_fail_first), _fail_again),
    Scenario("seed-5-fails-again", _chain(_fail_first, _fail_again),
             Dist(False, "mysource.create.pending.csv", "id,name\r\n", PEND2)),
    Scenario("seed-6-finally-success", _chain(_fail_first, _fail_again),
             Dist(True, "mysource.create.pending.csv", FIN3, None)),
    Scenario("append-rows", _chain(Dist(True, "a.csv", FIN1, None)),
             Dist(True, "b.csv", FIN2, None, source_text="other\n")),
    Scenario("header-union-merge", _chain(Dist(True, "a.csv", FIN1, None)),
             Dist(True, "a.csv", "name,id,email\n4,Dayo,d@example.org\n", None)),
    Scenario("relocation", _relocation_setup, _relocate),
    Scenario("backup-records", _chain(lambda s, o: DataCenter(s).backupRecords(
        "students", [{"id": "S1", "name": "Ada"}])), _backup),
]


# -- seeded storages: the differential tests -------------------------------------------------

#: Three processors with parents, a graduated backup and every field type, for the
#: seeded storages that the engines (``test_engines_agree.py``) and the record stores
#: (``test_stores_agree.py``) must import alike.
SEEDED_PROCESSORS: dict[str, Any] = {
    "faculties": {"key": ["code"], "fields": {"code": "str", "title": "str", "size": "int"},
                  "required": ["title"]},
    "departments": {"key": ["code"], "fields": {"code": "str", "faculty": "str",
                                                "title": "str", "opened": "date"},
                    "required": ["title"], "parents": {"faculty": "faculties"},
                    "on_remove": "keep"},
    "students": {"key": ["student_id"],
                 "fields": {"student_id": "str", "name": "str", "email": "email",
                            "birthday": "date", "level": "int",
                            "state": "choice:admitted,returning,graduated",
                            "department": "str", "born": "date:%d/%m/%Y", "ok": "bool"},
                 "required": ["name"], "graduated": {"state": "graduated"},
                 "parents": {"department": "departments"}},
}

#: Cells of each field type: mostly valid (some not canonical: " 12 ", "007"), then not.
_SEEDED_CELLS = {
    "str": (["Ada", "Bo la", " padded ", "a,comma", 'say "hi"', "two\nlines", "é ü", "x\ty"],
            ["", "  ", "\u00a0"]),
    "int": (["1", "42", "-7", "0", "007", "+5", " 12 ", "-0", "9223372036854775807"],
            ["abc", "1.5", "99999999999999999999", "", " ", "٣"]),
    "email": (["a@b.org", "x.y@dept.example.edu", " a@b.org ", "ü@b.org"],
              ["bad", "a@b", "a b@c.org", "a@-b.org", ""]),
    "date": (["2024-01-31", "2024-02-29", " 2024-03-01", "1999-12-31"],
             ["2023-02-30", "0999-01-01", "1999-1-1", "20240101", "", "x"]),
    "date:%d/%m/%Y": (["05/03/2004", "2004-03-05", "5/3/2004"], ["31/02/2004", "", "junk"]),
    "bool": (["true", "no", "Y", " 1 "], ["maybe", ""]),
    "choice": (["admitted", "returning", "graduated", " admitted", "graduated"],
               ["Admitted", "gone", ""]),
}

#: A CRLF inside quotes: Arrow reads it as a lone CR, so such files go to the row engine.
_CRLF = "crlf\r\ninside"


def _seeded_cell(rng: random.Random, kind: str, crlf: bool) -> str:
    if crlf and kind == "str" and rng.random() < .1:
        return _CRLF
    valid, invalid = _SEEDED_CELLS["choice" if kind.startswith("choice:") else kind]
    return rng.choice(valid if rng.random() < .85 else invalid)


def _seeded_file(rng: random.Random, processor: str, mode: str, keys: list[str],
                 parents: list[str], crlf: bool = False) -> str:
    schema = SEEDED_PROCESSORS[processor]
    fields: dict[str, str] = schema["fields"]
    key = schema["key"][0]
    columns = [key] + [f for f in fields if f != key and (mode != "remove" or rng.random() < .3)]
    columns = [c for c in columns if c == key or c in schema.get("required", []) or mode != "create"
               or rng.random() < .85]
    rng.shuffle(columns)
    if rng.random() < .2:
        columns.insert(rng.randrange(len(columns) + 1), "--IGNORE--")
    if rng.random() < .2:
        columns.append("--ERRORS--")
    quoting = csv.QUOTE_ALL if rng.random() < .15 else csv.QUOTE_MINIMAL
    ending = rng.choice(["\n", "\r\n"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=ending, quoting=quoting)
    writer.writerow(columns)
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        if roll < .04:
            out.write(rng.choice(["", " ", ",,"]) + ending)  # a blank line
            continue
        row = []
        for column in columns:
            if column == key:
                row.append(rng.choice(keys) if rng.random() < .95 else rng.choice(["", " "]))
            elif column in schema.get("parents", {}):
                row.append(rng.choice([*parents, "", "NOPE"]))
            elif column == "--IGNORE--":
                row.append(rng.choice(["skip me", "", "1,2"]))
            elif column == "--ERRORS--":
                row.append(rng.choice(["old reason", ""]))
            else:
                row.append(_seeded_cell(rng, fields[column], crlf))
        if roll < .08:
            row = row[:rng.randrange(len(row))] or ["short"]
        elif roll < .11:
            row = [*row, "extra"]
        writer.writerow(row)
    return out.getvalue()


def seeded_storage(seed: int) -> list[tuple[str, str]]:
    """The files of seeded storage *seed*, (name, text) in import order.

    Valid and invalid cells of every field type, empty and white-space
    cells, keys repeated in a file or stored already, parents missing, rows
    too short or too long, blank lines, quoted cells (commas, quotes, line
    breaks), an ``--IGNORE--`` and an old ``--ERRORS--`` column, columns in
    any order, a byte order mark, no line end after the last row, a
    ``;``-separated file; every mode (create, update, remove).
    """
    rng = random.Random(seed)
    faculties = [f"F{n}" for n in range(6)]
    departments = [f"D{n}" for n in range(8)]
    students = [f"S{n:03d}" for n in range(30)]
    steps = [
        ("faculties.csv", _seeded_file(rng, "faculties", "create", faculties, [])),
        ("departments.csv", _seeded_file(rng, "departments", "create", departments, faculties)),
        ("students.csv", _seeded_file(rng, "students", "create", students, departments,
                                      crlf=rng.random() < .2)),
        ("students_more.csv", _seeded_file(rng, "students", "create", students, departments)),
        ("students_fix.update.csv",
         _seeded_file(rng, "students", "update", students, departments)),
        ("departments_fix.update.csv",
         _seeded_file(rng, "departments", "update", departments, faculties)),
        ("faculties_gone.remove.csv", _seeded_file(rng, "faculties", "remove", faculties, [])),
        ("students_gone.remove.csv", _seeded_file(rng, "students", "remove", students, [])),
        ("departments_gone.remove.csv",
         _seeded_file(rng, "departments", "remove", departments, [])),
    ]
    for n, (name, text) in enumerate(steps):
        if rng.random() < .15:
            text = "\ufeff" + text  # a byte order mark, as Excel writes
        if rng.random() < .15:
            text = text.rstrip("\r\n")  # no line end after the last row
        steps[n] = (name, text)
    if rng.random() < .3:  # the ;-separated variant of one file
        name, text = steps[2]
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if all(";" not in c for r in rows for c in r):
            buf = io.StringIO()
            csv.writer(buf, delimiter=";", lineterminator="\n").writerows(rows)
            steps[2] = (name, buf.getvalue())
    return steps


@dataclass
class Imported:
    """What importing a seeded storage left: what a user can see of it, and how."""

    #: Per file, in import order: (rows, ok, failed, pending name) or the error's text.
    outcomes: list[object]
    #: Per processor: its table's columns (``--job--`` too), then its rows in key order.
    tables: dict[str, list[tuple[object, ...]]]
    #: Every file of the storage (finished, pending, backups, ...) by its relative path.
    files: dict[str, bytes]
    #: How many of the files the columnar engine imported (the others: the row engine).
    columnar: int
    #: The ledger's rows, per processor, without what differs between runs (times,
    #: folders, file identities): which job wrote what, from which file, with which result.
    ledger: dict[str, list[tuple[object, ...]]]


def stored_tables(database: str, names: Iterable[str]) -> dict[str, list[tuple[object, ...]]]:
    """The record tables of *database* (SQLite file or PostgreSQL URL), as Python values:
    each table's column names first, then every row in key order."""
    queries = {name: f'SELECT * FROM "rec_{name}" ORDER BY 1' for name in names}
    tables: dict[str, list[tuple[object, ...]]] = {}
    if "://" in database:
        with psycopg.connect(database) as pg:
            for name, query in queries.items():
                cursor = pg.execute(query)
                columns = tuple(column.name for column in cursor.description or [])
                tables[name] = [columns, *cursor.fetchall()]
        return tables
    with contextlib.closing(sqlite3.connect(database)) as db:
        for name, query in queries.items():
            cursor = db.execute(query)
            columns = tuple(column[0] for column in cursor.description)
            tables[name] = [columns, *cursor.fetchall()]
    return tables


def import_seeded(storage: Path, database: str, steps: list[tuple[str, str]],
                  columnar_engine: bool) -> Imported:
    """Drop and import *steps* one by one into a new *storage* on *database*.

    *columnar_engine*: whether the columnar engine may take the files
    (SQLite only; small files too, here); else every row goes one by one.
    """
    conf = Config(path=None, storage=str(storage), database=database,
                  processors=SEEDED_PROCESSORS)
    outcomes: list[object] = []
    columnar_runs: list[bool] = []
    engine = columnar.import_file

    def counted(*args: Any, **kwargs: Any) -> ImportResult | None:
        done = engine(*args, **kwargs)
        columnar_runs.append(done is not None)
        return done

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BatchProcessor, "columnar", columnar_engine)
        patch.setattr(columnar, "MIN_BYTES", 0)
        patch.setattr(columnar, "import_file", counted)
        importer = Importer(conf)
        try:
            for name, text in steps:
                path = write(storage / name, text)
                try:
                    done = importer.import_file(path)
                    outcomes.append((done.rows, done.ok, done.failed, done.pending))
                except Exception as error:  # the error is part of the outcome
                    outcomes.append(str(error))
        finally:
            importer.close()
    files = {}
    for folder, dirs, names in os.walk(storage):
        dirs[:] = [d for d in dirs if d not in (".datacenter", "logs")]
        for name in names:
            files[os.path.relpath(os.path.join(folder, name), storage)] = \
                Path(folder, name).read_bytes()
    ledger = {name: [(job.id, job.source, job.sha256, job.processor, job.mode, job.user,
                      job.rows, job.ok, job.failed, job.outcome, job.distributed, job.pending)
                     for job in read_jobs(database, name)] for name in SEEDED_PROCESSORS}
    return Imported(outcomes, stored_tables(database, list(SEEDED_PROCESSORS)), files,
                    sum(columnar_runs), ledger)


# -- waiting for the service ---------------------------------------------------------


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    """Return once *predicate* holds; AssertionError after *timeout* seconds.

    Tests wait for a condition (a state, a row), never for a fixed time.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.01)


class ManualClock:
    """A readiness clock that moves only when the test says so.

    It starts far ahead of the real monotonic clock, so the service's own
    waits (computed against the real clock) stay short instead of spinning.
    """

    def __init__(self) -> None:
        self.now = time.monotonic() + 1e6

    def __call__(self) -> float:
        return self.now

    def advance(self, service: Service, seconds: float) -> None:
        self.now += seconds
        service.queue.wake.set()


@contextlib.contextmanager
def serving(conf: Config, polling: bool = False,
            clock: ManualClock | None = None) -> Iterator[Service]:
    """A service of *conf* in a thread, running until the block ends."""
    importer = Importer(conf)
    service = Service(importer, conf.watch, polling=polling, out=io.StringIO(),
                      err=io.StringIO())
    if clock is not None:
        service.readiness.clock = clock
    thread = threading.Thread(target=service.serve, name="service")
    thread.start()
    try:
        # "running" is written once the watch is up and the first scan is done (in its
        # own state file with PostgreSQL: several instances may serve the storage)
        own = STATE_FILE if importer.claims is None else \
            INSTANCE_STATE.format(importer.claims.instance)
        wait_for(lambda: read_state(conf.storage, own).get("state") == "running")
        yield service
    finally:
        service.stop()
        thread.join(timeout=60)
        importer.close()
    assert not thread.is_alive()


class Clock:
    """A fake monotonic clock for readiness and verdict rules."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def jobs(conf: Config) -> list[str]:
    """The sources of every committed import, oldest first."""
    if not os.path.exists(conf.database):
        return []
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        return [r[0] for r in db.execute("SELECT source FROM datacenter_jobs ORDER BY id")]


def count(conf: Config, processor: str) -> int:
    """How many records *processor* holds in the store of *conf*."""
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM rec_{processor}").fetchone()[0])


def faculties(prefix: str, n: int) -> str:
    """A faculties CSV of *n* rows, codes ``<prefix>0``... ."""
    return "code,title\n" + "".join(f"{prefix}{i},Faculty {prefix}{i}\n" for i in range(n))


# -- the web console -----------------------------------------------------------------------

#: The password every test account gets (long enough for the console's rule).
PASSWORD = "correct horse battery"
ROLES = ("viewer", "manager", "admin")


def web_conf(tmp_path: Path, **web: Any) -> Config:
    """A config on the documented processors, its storage made, settle short; *web* overrides."""
    conf = Config(path=None, storage=str(tmp_path / "storage"),
                  database=str(tmp_path / "db.sqlite"), processors=dict(PROCESSORS),
                  routes=list(ROUTES))
    conf.watch.settle, conf.watch.rescan = 0.2, 1.0
    for key, value in web.items():
        setattr(conf.web, key, value)
    Importer(conf).close()  # the storage, as `init` or `serve` makes it
    return conf


def web_accounts(conf: Config) -> None:
    """One account of each role, named after it (``viewer``, ``manager``, ``admin``)."""
    accounts = Accounts(conf.storage)
    for role in ROLES:
        accounts.add(role, role, PASSWORD)


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Log *client* in through the API; the session's CSRF token."""
    answer = client.post("/api/login", json={"username": name, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["csrf"])


# -- the console in a browser -------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update"]


@dataclass
class LiveConsole:
    """A running ``datacenter serve --web``: its address, its config, its stderr lines."""

    url: str
    conf: Config
    proc: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)

    def at(self, path: str) -> str:
        """The console's address of *path*."""
        return self.url.rstrip("/") + path


def datacenter_cli(conf_path: Path, *args: str, stdin: str | None = None,
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "datacenter", "--config", str(conf_path),
                           *args], input=stdin, capture_output=True, text=True, timeout=60,
                          check=False)


def _browser_config(folder: Path) -> Path:
    """The documented datacenter.toml in *folder*, with a short settle time."""
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^settle\s*=.*$", "settle = 0.2", text)
    text = re.sub(r"(?m)^rescan\s*=.*$", "rescan = 1", text)
    path = folder / "datacenter.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def live_console() -> Iterator[LiveConsole]:
    """``datacenter serve --web 127.0.0.1:0`` on a new storage (the documented processors),
    its accounts made by ``datacenter user add`` (one per role, named after it); stopped
    by SIGTERM at the end, which it must answer by exiting 0."""
    folder = Path(tempfile.mkdtemp(prefix="dc-browser-"))
    conf_path = _browser_config(folder)
    conf = config.load(str(conf_path))
    Importer(conf).close()  # the storage, as `serve` makes it
    for role in ROLES:
        made = datacenter_cli(conf_path, "user", "add", role, "--role", role, "--password-stdin",
                           stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
    proc = subprocess.Popen([sys.executable, "-m", "datacenter", "--config", str(conf_path),
                             "serve", "--web", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stderr is not None
    stream = proc.stderr
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("console on http://" in line for line in lines)
                 or proc.poll() is not None)
        found = [re.search(r"console on (http://\S+)", line) for line in lines]
        address = next((m.group(1) for m in found if m), None)
        assert address, "".join(lines)
        yield LiveConsole(address, conf, proc, lines)
    finally:
        proc.terminate()  # SIGTERM: a clean stop
        proc.wait(timeout=60)
        reader.join(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
    assert proc.returncode == 0, "".join(lines)


def skip_without_chromium() -> None:
    """Skip the calling module, with a one-line note, when Chromium is missing (not in CI)."""
    if not os.path.exists(CHROMIUM) and os.environ.get("CI") != "true":
        pytest.skip(f"browser tests skipped: {CHROMIUM} is missing (apt-get install chromium)",
                    allow_module_level=True)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, launched by Playwright (never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"CI=true and {CHROMIUM} is missing: .ci/run installs it (apt-get install "
                    "chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Dialogs:
    """Every dialog a page opened (alert, confirm), and whether confirms are accepted."""

    seen: list[str] = field(default_factory=list)
    accept: bool = False

    def __call__(self, dialog: Dialog) -> None:
        self.seen.append(f"{dialog.type}: {dialog.message}")
        if self.accept and dialog.type == "confirm":
            dialog.accept()
        else:
            dialog.dismiss()


@contextlib.contextmanager
def browser_session(browser: Browser, console: LiveConsole, name: str, *,
                    javascript: bool = True) -> Iterator[tuple[Page, Dialogs]]:
    """A fresh browser context logged in as *name* through the login form."""
    context: BrowserContext = browser.new_context(java_script_enabled=javascript)
    try:
        page = context.new_page()
        dialogs = Dialogs()
        page.on("dialog", dialogs)
        page.goto(console.at("/"))
        expect(page.locator("#login-form")).to_be_visible()
        page.fill("#login-username", name)
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#whoami")).to_have_text(f"{name} ({name})")
        yield page, dialogs
    finally:
        context.close()


def csv_file(folder: Path, name: str, *rows: str, header: str = STUDENT_HEADER) -> Path:
    path = folder / name
    path.write_text(header + "\r\n" + "".join(row + "\r\n" for row in rows), encoding="utf-8")
    return path


def filed_jobs(conf: Config, source: str) -> list[tuple[int, int, str]]:
    """The imports of *source* done to the end (its files filed: a pending file at the
    root, the source in its folder): rows ok, rows failed, by whom."""
    if not os.path.exists(conf.database):
        return []
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        return [(int(ok), int(failed), str(user)) for ok, failed, user in db.execute(
            "SELECT ok, failed, user FROM datacenter_jobs WHERE source = ? AND distributed = 1 "
            "ORDER BY id",
            (source,))]


def student_names(conf: Config) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        return dict(db.execute("SELECT student_id, name FROM rec_students"))


def filed(conf: Config, source: str, count: int) -> Callable[[], bool]:
    return lambda: len(filed_jobs(conf, source)) >= count


def choose_upload(page: Page, console: LiveConsole, path: Path, processor: str, mode: str,
           drag: bool = False) -> None:
    """Choose *path* on the upload page (picker, or dropped), with *processor* and *mode*."""
    page.goto(console.at("/upload"))
    page.select_option("#upload-processor", processor)
    page.select_option("#upload-mode", mode)
    if drag:
        transfer = page.evaluate_handle(
            """([name, text]) => {
                 const transfer = new DataTransfer();
                 transfer.items.add(new File([text], name, {type: "text/csv"}));
                 return transfer;
               }""", [path.name, path.read_text(encoding="utf-8")])
        page.dispatch_event("#drop-zone", "dragenter", {"dataTransfer": transfer})
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    else:
        page.set_input_files("#upload-file", str(path))
