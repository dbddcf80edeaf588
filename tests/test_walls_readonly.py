"""``status``, ``ls`` and ``logs`` only look ("Walls that hold").

Tests run as root, which ignores file permissions, so "writes nothing" is
proved two ways: a snapshot of every entry below the test's folder (name,
kind, size, mtime, mode) is the same before and after, and every write
the filesystem module could make is armed to fail (and none is tried).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from datacenter import DataCenter
from datacenter.cli import main
from datacenter.testing import FaultConfig, FaultInjector

REPO = Path(__file__).resolve().parent.parent
LOOKING = (["status"], ["status", "--json"], ["ls"], ["ls", "finished", "--sort", "date"],
           ["ls", "unfinished", "--json"], ["logs"], ["logs", "--query", "processed"])


def snapshot(root: Path) -> dict[str, tuple[bool, int, int, int]]:
    """Every entry below *root*, with what any write would change."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (os.path.isdir(path), st.st_size,
                                                   st.st_mtime_ns, st.st_mode)
    return found


def config(tmp_path: Path, storage: str = "storage") -> Path:
    text = (REPO / "datacenter.toml").read_text().replace('storage  = "storage"',
                                                          f'storage  = "{storage}"')
    path = tmp_path / "datacenter.toml"
    path.write_text(text)
    return path


def used_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A storage with imports, a pending file, a log, and interrupted work of both kinds."""
    conf = config(tmp_path)
    (tmp_path / "storage").mkdir()  # made by `init` or `serve`: import never makes one
    outside = tmp_path / "incoming"
    outside.mkdir()
    (outside / "faculties.csv").write_text("code,title\nF1,Science\n")
    (outside / "departments.csv").write_text("code,faculty_code,title\nD1,F9,Physics\n")
    assert main(["--config", str(conf), "import", str(outside / "faculties.csv")]) == 0
    assert main(["--config", str(conf), "import", str(outside / "departments.csv")]) == 3
    storage = tmp_path / "storage"
    # A committed change a crash left unapplied, and an import committed but not filed away.
    intent = storage / ".datacenter" / "journal" / "00000000000000000001-cafe.json"
    intent.write_text(json.dumps({"id": intent.stem, "steps": [], "roots": [str(storage)]}))
    with contextlib.closing(sqlite3.connect(tmp_path / "records.sqlite")) as db, db:
        db.execute("UPDATE datacenter_jobs SET distributed = 0 WHERE id = 1")
    for lock in ("lock", "serve.lock"):  # as in a storage copied from elsewhere
        (storage / ".datacenter" / lock).unlink(missing_ok=True)
    capsys.readouterr()
    return conf, storage


def no_writes() -> FaultInjector:
    injector = FaultInjector(seed=1)
    injector.add(FaultConfig(target="fs.*", exception=PermissionError(
        errno.EACCES, "Permission denied (a read-only storage)")))
    return injector


def test_looking_writes_nothing_recovers_nothing_and_reports_interrupted_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf, storage = used_storage(tmp_path, capsys)
    before = snapshot(tmp_path)
    injector = no_writes()
    outputs = {}
    with injector.installed():
        for args in LOOKING:
            assert main(["--config", str(conf), *args]) == 0, capsys.readouterr().err
            outputs[" ".join(args)] = capsys.readouterr()
    assert injector.stats["faults_triggered"] == 0  # no write was even tried
    assert snapshot(tmp_path) == before
    assert len(os.listdir(storage / ".datacenter" / "journal")) == 1  # counted, not recovered
    status = outputs["status"].out
    assert ("interrupted operations: 2 (1 unfinished change(s), 1 import(s) not filed away; "
            "`datacenter recover` finishes them)") in status
    report = json.loads(outputs["status --json"].out)
    assert (report["interrupted_operations"], report["unfiled_imports"]) == (1, 1)
    assert report["files"]["pending"] == 1 and report["files"]["unfinished"] == 1
    assert [job["source"] for job in report["last_imports"]] == ["departments.csv",
                                                                 "faculties.csv"]
    assert outputs["ls"].out.rstrip().endswith("departments.create.pending.csv")
    assert "processed: faculties.csv" in outputs["logs --query processed"].out
    assert all(output.err == "" for output in outputs.values())


def test_looking_follows_a_moved_storage_without_rewriting_the_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = config(tmp_path)
    old, new = tmp_path / "storage", tmp_path / "elsewhere"
    new.mkdir()
    dc = DataCenter(str(old))
    (old / "faculties_a.csv").write_text("code,title\nA,a\n")
    dc.setStoragePath(str(new), move=True)  # the config was not told (a crash, say)
    before = snapshot(tmp_path)
    with no_writes().installed():
        assert main(["--config", str(conf), "ls"]) == 0
    out, err = capsys.readouterr()
    assert out.rstrip().endswith("faculties_a.csv")
    assert err == (f"datacenter: the storage {old} has moved to {new}; {conf} still names "
                   "the old place (any command that changes the storage updates it)\n")
    assert snapshot(tmp_path) == before  # the config too
    assert main(["--config", str(conf), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["storage"] == str(new)


def test_looking_at_a_storage_that_does_not_exist_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = config(tmp_path, storage="nowhere")
    for args in (["status"], ["ls"], ["logs"]):
        assert main(["--config", str(conf), *args]) == 1
        assert capsys.readouterr().err == (
            f"datacenter: error: no storage at {tmp_path / 'nowhere'} (create it with "
            "`datacenter init` or start `datacenter serve`)\n")
    assert sorted(os.listdir(tmp_path)) == ["datacenter.toml"]


@pytest.mark.parametrize("args", [["ls"], ["status"], ["logs"]])
def test_a_closed_pipe_ends_them_quietly(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         args: list[str]) -> None:
    """``datacenter ls | head -1``, with the reader gone before the first line."""
    conf, storage = used_storage(tmp_path, capsys)
    for n in range(2_000):  # far more than a pipe holds
        (storage / f"faculties_{n:05}_with_a_name_long_enough.csv").write_text("x\n")
    # Buffered as in a shell (Python flushes what is left at exit, into the closed pipe).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-m", "datacenter", "--config", str(conf), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader stopped reading
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141)
    assert err == ""
