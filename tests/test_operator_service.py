"""The operator's day: a service that says what it does while it does it.

``status`` and ``ls`` answer while an import holds the storage's lock and
the record store's write lock; the state file shows the file in hand with
its rows, rate and ETA during a long import; ``import`` on a terminal
shows a progress bar; the first Ctrl-C of ``serve`` says what it finishes,
the second stops at once and loses nothing; a header written before its
rows is not imported alone; a pending file an import wrote is not imported
again until someone changes it; a deleted pending file leaves the status
at once.

As in ``tests/test_service.py``: storages in tmp_path, ``settle = 0.2``;
tests wait for states (a state file value, a ledger row, a line on
stderr), never for time; timeouts are generous upper bounds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ManualClock, count, faculties, jobs, serving, wait_for

from datacenter import config
from datacenter.cli import main as datacenter_main
from datacenter.config import Config
from datacenter.importing.importer import Importer
from datacenter.importing.processors import BatchProcessor
from datacenter.service import Service, service_status
from datacenter.storage import layout
from datacenter.storage.lock import StorageLock

REPO = Path(__file__).resolve().parent.parent
PYTHON_M = [sys.executable, "-m", "datacenter"]  # the `datacenter` command
BIG_ROWS = 25_000  # more than the 10,000 rows between two progress reports


@pytest.fixture
def conf_path(tmp_path: Path) -> Path:
    """The repository's datacenter.toml, with a storage and store in tmp_path, quick."""
    text = (REPO / "datacenter.toml").read_text()
    text = text.replace("settle  = 2.0", "settle  = 0.2").replace("rescan  = 60", "rescan  = 1")
    path = tmp_path / "datacenter.toml"
    path.write_text(text)
    (tmp_path / "storage").mkdir()  # made, as `init` or `serve` would
    return path


@pytest.fixture
def conf(conf_path: Path) -> Config:
    conf = config.load(str(conf_path))
    Importer(conf).close()  # make the storage
    return conf


def departments(*faculty_codes: str) -> str:
    return "code,faculty_code,title\n" + "".join(
        f"D{n},{code},Department {n}\n" for n, code in enumerate(faculty_codes))


def drop(conf: Config, name: str, text: str) -> Path:
    """Write beside the storage, rename in: how careful programs deliver files."""
    outside = Path(conf.storage).parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / name).write_text(text)
    os.rename(outside / name, os.path.join(conf.storage, name))
    return Path(conf.storage, name)


def log_lines(conf: Config, needle: str) -> list[str]:
    path = Path(conf.storage, "logs", "datacenter.log")
    return [line for line in path.read_text().splitlines() if needle in line]


def cli(conf_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``datacenter ARGS`` in a process of its own: a lock it waited on would stall it."""
    return subprocess.run([*PYTHON_M, "--config", str(conf_path), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def pending_names(conf: Config) -> list[str]:
    return [note["name"] for note in service_status(conf.storage).get("pending", [])]


# -- 1. status and ls during any import ---------------------------------------------------------


def test_status_and_ls_answer_while_the_lock_and_a_write_transaction_are_held(
        conf: Config, conf_path: Path) -> None:
    drop(conf, "faculties_first.csv", faculties("A", 3))
    assert datacenter_main(["--config", str(conf_path), "serve", "--once"]) == 0
    lock = StorageLock(layout.state_path(conf.storage, layout.OPS_LOCK))
    writer = sqlite3.connect(conf.database, isolation_level=None)
    lock.acquire()  # what an import holds from start to end...
    writer.execute("BEGIN IMMEDIATE")  # ...and its transaction, with rows written
    writer.execute("INSERT INTO rec_faculties (code, title) VALUES ('Z', 'uncommitted')")
    try:
        status = cli(conf_path, "status", "--json")
        human = cli(conf_path, "status")
        listing = cli(conf_path, "ls", "finished")
        logs = cli(conf_path, "logs", "--query", "processed")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        lock.release()
    for done in (status, human, listing, logs):
        assert done.returncode == 0, done.stderr
    report = json.loads(status.stdout)
    assert [job["source"] for job in report["last_imports"]] == ["faculties_first.csv"]
    assert "faculties_first.csv" in human.stdout
    assert "faculties_first.create.finished.csv" in listing.stdout
    assert "faculties_first.csv" in logs.stdout


@contextlib.contextmanager
def held_at_first_report(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Imports stop at their first progress report of rows until the test lets them go.

    Yields the event set when one is held there. The progress callback the
    importer was given runs first, so whatever it publishes is out.
    """
    reached, go = threading.Event(), threading.Event()
    real = BatchProcessor.import_rows

    def import_rows(self: BatchProcessor, path: str, headerfields: list[str] | None,
                    mode: str, ignore_empty: bool, workdir: str,
                    progress: Callable[[int, int], None] | None = None) -> Any:
        def report(rows: int, position: int) -> None:
            if progress is not None:
                progress(rows, position)
            if rows and not reached.is_set():
                reached.set()
                go.wait(60)
        return real(self, path, headerfields, mode, ignore_empty, workdir, report)

    monkeypatch.setattr(BatchProcessor, "import_rows", import_rows)
    try:
        yield reached
    finally:
        go.set()


def test_status_shows_the_file_in_hand_with_rows_rate_and_eta_during_the_import(
        conf: Config, conf_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(conf), held_at_first_report(monkeypatch) as reached:
        drop(conf, "faculties_big.csv", faculties("B", BIG_ROWS))
        wait_for(reached.is_set)  # mid-import: the storage's lock and a transaction held
        status = cli(conf_path, "status", "--json")
        human = cli(conf_path, "status")
        listing = cli(conf_path, "ls")
    for done in (status, human, listing):
        assert done.returncode == 0, done.stderr
    service = json.loads(status.stdout)["service"]
    assert service["in_hand"] == "faculties_big.csv"
    progress = service["progress"]
    assert progress["file"] == "faculties_big.csv"
    assert progress["rows"] == 10_000
    assert 0 < progress["bytes"] < progress["size"] == os.path.getsize(
        Path(conf.storage, "finished", "faculties_big.csv"))
    assert progress["rows_per_second"] > 0 and progress["eta_seconds"] >= 0
    assert 0 < progress["percent"] < 100
    assert re.search(r"importing faculties_big\.csv: \d+% \(10,000 rows, [\d,]+ rows/s, "
                     r"ETA [\d:]+( s)?\)", human.stdout), human.stdout
    assert "faculties_big.csv" in listing.stdout
    assert count(conf, "faculties") == BIG_ROWS
    assert service_status(conf.storage)["progress"] is None  # nothing in hand now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_import_on_a_terminal_shows_percent_rows_rate_and_eta(
        conf_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "faculties_big.csv"
    big.write_text(faculties("B", BIG_ROWS))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert datacenter_main(["--config", str(conf_path), "import", str(big)]) == 0
    shown = terminal.getvalue().replace("\033[K", "").split("\r")
    bars = [line for line in shown if line.startswith("importing")]
    assert [re.sub(r"\d[\d,:]*", "N", line) for line in bars] == [
        "importing faculties_big.csv: N% (N rows)",  # reading began
        "importing faculties_big.csv: N% (N rows, N rows/s, ETA N s)",
        "importing faculties_big.csv: N% (N rows, N rows/s, ETA N s)"], shown
    assert "(10,000 rows, " in bars[1] and "(20,000 rows, " in bars[2]
    assert terminal.getvalue().endswith("\r\033[K")  # the bar is wiped before the summary


def test_import_in_a_pipe_shows_no_progress(conf_path: Path, tmp_path: Path) -> None:
    big = tmp_path / "faculties_big.csv"
    big.write_text(faculties("B", BIG_ROWS))
    done = cli(conf_path, "import", str(big))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == f"Imported {BIG_ROWS} rows from faculties_big.csv: {BIG_ROWS} ok, " \
                          "0 failed\n"


#: ``datacenter ARGS`` whose imports stop at their first progress report of rows
#: until a line arrives on stdin: a long import, as long as the test needs.
HELD_SERVE = """
import sys
from datacenter.cli import main
from datacenter.importing.processors import BatchProcessor

real = BatchProcessor.import_rows

def import_rows(self, path, headerfields, mode, ignore_empty, workdir, progress=None):
    def report(rows, position):
        if progress is not None:
            progress(rows, position)
        if rows == 10_000:
            sys.stdin.readline()
    return real(self, path, headerfields, mode, ignore_empty, workdir, report)

BatchProcessor.import_rows = import_rows
sys.exit(main(sys.argv[1:]))
"""


class Stderr:
    """The lines a process writes on stderr, collected as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        stream = proc.stderr
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline,
                                                                             "")))
        self._thread.start()

    def saying(self, text: str) -> Callable[[], bool]:
        return lambda: any(text in line for line in self.lines)

    def join(self) -> None:
        self._thread.join(timeout=60)


@contextlib.contextmanager
def held_service(conf: Config, conf_path: Path) -> Iterator[tuple[subprocess.Popen[str], Stderr]]:
    """``datacenter serve`` in a process, in the middle of importing a big file."""
    drop(conf, "faculties_big.csv", faculties("B", BIG_ROWS))
    proc = subprocess.Popen([sys.executable, "-c", HELD_SERVE, "--config", str(conf_path),
                             "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stderr = Stderr(proc)
    try:
        wait_for(lambda: (service_status(conf.storage).get("progress") or {}).get("rows"))
        yield proc, stderr
    finally:
        proc.kill()
        proc.wait()
        stderr.join()


FINISHING = ("datacenter: finishing faculties_big.csv (10,000 rows done); press Ctrl-C again "
             "to stop at once \N{EM DASH} nothing is lost")


def test_the_first_ctrl_c_says_what_it_finishes_and_finishes_it(
        conf: Config, conf_path: Path) -> None:
    with held_service(conf, conf_path) as (proc, stderr):
        proc.send_signal(signal.SIGINT)
        wait_for(stderr.saying(FINISHING))
        assert proc.stdin is not None
        proc.stdin.write("go on\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr.lines
    assert f"Imported {BIG_ROWS} rows from faculties_big.csv" in out
    assert jobs(conf) == ["faculties_big.csv"] and count(conf, "faculties") == BIG_ROWS


def test_a_second_ctrl_c_stops_at_once_and_loses_nothing(
        conf: Config, conf_path: Path) -> None:
    with held_service(conf, conf_path) as (proc, stderr):
        proc.send_signal(signal.SIGINT)
        wait_for(stderr.saying(FINISHING))
        proc.send_signal(signal.SIGINT)  # the import is still held: only this can end it
        proc.wait(timeout=60)
        stderr.join()
    assert proc.returncode == 130, stderr.lines
    assert stderr.saying("datacenter: interrupted")()
    assert jobs(conf) == [] and Path(conf.storage, "faculties_big.csv").exists()
    done = cli(conf_path, "serve", "--once")  # the next start: recovery, then the import
    assert done.returncode == 0, done.stderr
    assert jobs(conf) == ["faculties_big.csv"] and count(conf, "faculties") == BIG_ROWS
    assert os.listdir(Path(conf.storage, ".datacenter", "jobs")) == []


# -- 2. a header first, the rows a moment later --------------------------------------------------


def track(service: Service, name: str) -> Any:
    return service.readiness._tracks.get(name)


def test_a_header_written_first_and_rows_a_moment_later_are_imported_together(
        conf: Config) -> None:
    conf.watch.rescan = 3600  # events tell, not scans
    # (Each step of the clock is a little more than the 0.2 s settle: the
    # clock's large numbers round, and 0.2 later may differ by less.)
    clock = ManualClock()
    path = Path(conf.storage, "faculties_slow.csv")
    with serving(conf, clock=clock) as service:
        path.write_text("code,title\n")  # echo header > f
        wait_for(lambda: (t := track(service, path.name)) is not None
                 and t.state.value == "closed" and t.ident.size == path.stat().st_size)
        clock.advance(service, 0.25)  # settled: due, but only a header
        wait_for(lambda: (t := track(service, path.name)) is None or t.extra > 0)
        assert track(service, path.name) is not None, "taken with its header alone"
        with open(path, "a") as handle:  # ... >> f
            handle.write("F1,One\nF2,Two\n")
        wait_for(lambda: (t := track(service, path.name)) is not None
                 and t.state.value == "closed"  # its closing seen, not only its growth
                 and t.ident.size == path.stat().st_size and t.extra == 0)
        clock.advance(service, 0.25)
        wait_for(lambda: jobs(conf) == ["faculties_slow.csv"])
        wait_for(lambda: not path.exists() and service.in_hand is None)  # filed away
        path.write_text("code,title\n")  # a new file that stays a header...
        wait_for(lambda: (t := track(service, path.name)) is not None and t.extra == 0
                 and t.state.value == "closed" and t.ident.size == path.stat().st_size)
        clock.advance(service, 0.25)
        wait_for(lambda: (t := track(service, path.name)) is not None and t.extra > 0)
        clock.advance(service, 0.25)  # ...is imported, as empty, one settle later
        wait_for(lambda: len(jobs(conf)) == 2)
    assert count(conf, "faculties") == 2
    assert not log_lines(conf, "rejected")


# -- 3. pending files written by someone else -------------------------------------------------


def test_a_pending_file_an_import_wrote_is_left_alone_until_someone_changes_it(
        conf: Config, conf_path: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "departments_cli.csv"
    source.write_text(departments("F1", "F2"))
    assert datacenter_main(["--config", str(conf_path), "import", str(source)]) == 3
    pending = Path(conf.storage, "departments_cli.create.pending.csv")
    assert pending.exists() and jobs(conf) == ["departments_cli.csv"]
    capsys.readouterr()
    assert datacenter_main(["--config", str(conf_path), "serve", "--once"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")
    assert jobs(conf) == ["departments_cli.csv"]  # no "0 ok, 2 failed" again
    assert not log_lines(conf, "service: departments_cli.create.pending.csv")
    assert pending_names(conf) == [pending.name]  # shown as waiting, with its reason
    pending.write_text(pending.read_text().replace(",F2,", ",F3,"))  # a person edits it
    assert datacenter_main(["--config", str(conf_path), "serve", "--once"]) == 0
    out, _ = capsys.readouterr()
    assert out == "Imported 2 rows from departments_cli.create.pending.csv: 0 ok, 2 failed " \
                  "-> departments_cli.create.pending.csv\n"
    assert jobs(conf) == ["departments_cli.csv", "departments_cli.create.pending.csv"]


def test_a_pending_file_an_import_wrote_is_retried_when_its_parent_arrives(
        conf: Config, conf_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "departments_cli.csv"
    source.write_text(departments("F1"))
    assert datacenter_main(["--config", str(conf_path), "import", str(source)]) == 3
    drop(conf, "faculties_f.csv", "code,title\nF1,Faculty one\n")
    assert datacenter_main(["--config", str(conf_path), "serve", "--once"]) == 0
    assert jobs(conf) == ["departments_cli.csv", "faculties_f.csv",
                          "departments_cli.create.pending.csv"]
    assert count(conf, "departments") == 1
    assert not Path(conf.storage, "departments_cli.create.pending.csv").exists()


def test_the_service_leaves_alone_a_pending_file_the_cli_writes_while_it_runs(
        conf: Config, conf_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "departments_cli.csv"
    source.write_text(departments("F1"))
    pending = Path(conf.storage, "departments_cli.create.pending.csv")
    with serving(conf) as service:
        done = cli(conf_path, "import", str(source))
        assert done.returncode == 3, done.stderr
        wait_for(lambda: pending_names(conf) == [pending.name])
        scans = service.scans
        wait_for(lambda: service.scans >= scans + 2)  # two reconcile scans: still left alone
        assert jobs(conf) == ["departments_cli.csv"]
        drop(conf, "faculties_f.csv", "code,title\nF1,Faculty one\n")
        wait_for(lambda: not pending.exists())  # a parent arrived: retried, and in
    assert jobs(conf) == ["departments_cli.csv", "faculties_f.csv", pending.name]


#: The ledger as the versions before the pending file's identity made it.
OLD_LEDGER = """CREATE TABLE datacenter_jobs (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, sha256 TEXT NOT NULL,
    processor TEXT NOT NULL, mode TEXT NOT NULL, user TEXT NOT NULL, rows INTEGER NOT NULL,
    ok INTEGER NOT NULL, failed INTEGER NOT NULL, outcome TEXT NOT NULL,
    started REAL NOT NULL, finished REAL NOT NULL, workdir TEXT NOT NULL,
    ident TEXT NOT NULL DEFAULT '', distributed INTEGER NOT NULL DEFAULT 0)"""


def test_an_old_ledger_gets_the_new_column_and_status_reads_it_before(
        conf: Config, conf_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(conf.database + suffix).unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        db.execute(OLD_LEDGER)
        db.execute("INSERT INTO datacenter_jobs (source, sha256, processor, mode, user, rows, "
                   "ok, failed, outcome, started, finished, workdir, distributed) VALUES "
                   "('old.csv', '', 'faculties', 'create', 'x', 1, 1, 0, 'finished', 1, 2, "
                   "'', 1)")
        db.commit()
    status = cli(conf_path, "status", "--json")  # reads only: the old ledger as it is
    assert status.returncode == 0, status.stderr
    assert [job["source"] for job in json.loads(status.stdout)["last_imports"]] == ["old.csv"]
    Importer(conf).close()  # opening it for work adds the column
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        assert db.execute("SELECT source, pending_ident FROM datacenter_jobs").fetchall() == [
            ("old.csv", "")]


# -- 4. a deleted pending file ---------------------------------------------------------------------


def test_a_deleted_pending_file_leaves_the_status_without_waiting_for_a_rescan(
        conf: Config) -> None:
    conf.watch.rescan = 3600
    with serving(conf) as service:
        pending = Path(conf.storage, "departments_x.create.pending.csv")
        drop(conf, "departments_x.csv", departments("F9"))
        wait_for(lambda: pending_names(conf) == [pending.name])
        scans = service.scans
        pending.unlink()
        wait_for(lambda: pending_names(conf) == [], timeout=30)
        assert service.scans == scans  # the delete event did it, not a scan
        assert not len(service.verdicts)
