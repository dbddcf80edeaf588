"""``datacenter import`` beside a running service: the copy and its import are one operation."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from helpers import ROOT, write

from datacenter import config
from datacenter.cli import main
from datacenter.importing import Importer, Outcome, Request
from datacenter.storage import fs, layout


def _waiters(lock_path: str) -> int:
    """How many wait for the flock on *lock_path* (Linux: /proc/locks)."""
    ino = os.stat(lock_path).st_ino
    with open("/proc/locks", encoding="ascii") as handle:
        return sum(1 for line in handle if "->" in line and f":{ino} " in line)


def test_a_service_cannot_take_the_copy_before_the_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    conf_path = tmp_path / "datacenter.toml"
    conf_path.write_text((ROOT / "datacenter.toml").read_text(encoding="utf-8"))
    (tmp_path / "storage").mkdir()
    source = write(tmp_path / "home" / "faculties.csv", "code,title\nF1,Science\n")
    lock_path = os.path.join(tmp_path, "storage", layout.STATE, layout.OPS_LOCK)
    real_copy = fs.copy_new
    competitor: dict[str, object] = {}

    def service_takes_it(target: str) -> None:
        importer = Importer(config.load(str(conf_path)))  # waits for the lock
        try:
            competitor["result"] = importer.import_many([Request(target)])[0]
        finally:
            importer.close()

    def copy_seen_by_a_service(src: str, dst: str) -> None:
        real_copy(src, dst)
        thread = threading.Thread(target=service_takes_it, args=(dst,))
        thread.start()
        competitor["thread"] = thread
        deadline = time.monotonic() + 30
        while _waiters(lock_path) < 1:  # the service tries now, and must wait
            assert time.monotonic() < deadline, "the competitor never asked for the lock"
            time.sleep(0.01)

    monkeypatch.setattr(fs, "copy_new", copy_seen_by_a_service)
    real_import = Importer.import_file
    held_at_import: list[bool] = []

    def import_file(self: Importer, *args: object, **kwargs: object) -> Outcome:
        held_at_import.append(self.dc.lock.held)  # held since the copy, never let go
        return real_import(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Importer, "import_file", import_file)
    code = main(["--config", str(conf_path), "import", source])
    out, err = capsys.readouterr()
    thread = competitor["thread"]
    assert isinstance(thread, threading.Thread)
    thread.join(60)
    assert code == 0, err
    assert held_at_import == [True]
    assert out.startswith("Imported 1 rows from faculties.csv: 1 ok")
    assert not isinstance(competitor["result"], Outcome)  # the file was filed before it looked
    assert sorted(os.listdir(tmp_path / "storage" / "finished")) == [
        "faculties.create.finished.csv", "faculties.csv"]
