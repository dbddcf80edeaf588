"""``serve --once`` ends when every complete file present at its start is in ("Walls that hold").

Storages live in tmp_path, with ``settle = 0.2`` unless a test says
otherwise. No test here measures time: slow work is simulated, and what
is waited for is a state.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from pathlib import Path

import pytest

from datacenter import config
from datacenter.cli import main as datacenter_main
from datacenter.cli.main import build_parser
from datacenter.config import Config
from datacenter.importing.importer import Importer
from datacenter.importing.processors import BatchProcessor
from datacenter.testing import FaultConfig, FaultInjector

REPO = Path(__file__).resolve().parent.parent


def quick_config(tmp_path: Path, settle: float = 0.2) -> tuple[Path, Config]:
    """The repository's datacenter.toml, with a storage and store in tmp_path."""
    text = (REPO / "datacenter.toml").read_text()
    text = text.replace("settle  = 2.0", f"settle  = {settle}").replace("rescan  = 60",
                                                                        "rescan  = 1")
    path = tmp_path / "datacenter.toml"
    path.write_text(text)
    conf = config.load(str(path))
    Importer(conf).close()  # make the storage
    return path, conf


def faculties(prefix: str, n: int) -> str:
    return "code,title\n" + "".join(f"{prefix}{i},Faculty {prefix}{i}\n" for i in range(n))


def at_root(conf: Config) -> list[str]:
    return sorted(n for n in os.listdir(conf.storage) if n.endswith(".csv"))


def test_once_imports_complete_files_however_long_other_imports_take(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, conf = quick_config(tmp_path)
    old = Path(conf.storage, "faculties_old.csv")
    old.write_text(faculties("O", 2))
    os.utime(old, (time.time() - 3600, time.time() - 3600))  # settled long ago
    fresh = Path(conf.storage, "faculties_fresh.csv")
    fresh.write_text(faculties("F", 2))
    ahead = time.time() + 3600  # "just written", however slowly this test runs
    os.utime(fresh, (ahead, ahead))
    real = BatchProcessor.import_rows

    def slow(self: BatchProcessor, source: str, *args: object, **kwargs: object) -> object:
        if source.endswith("faculties_old.csv"):
            time.sleep(1.5)  # longer than the drain allowed itself before
        return real(self, source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BatchProcessor, "import_rows", slow)
    assert datacenter_main(["--config", str(path), "serve", "--once"]) == 0
    out, err = capsys.readouterr()
    assert "faculties_fresh.csv: 2 ok" in out and "left for later" not in out + err
    assert at_root(conf) == []


def test_once_names_a_file_still_being_written_and_exits_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A long settle: the writer below would have to stall for 2 s to look done.
    path, conf = quick_config(tmp_path, settle=2.0)
    old = Path(conf.storage, "faculties_old.csv")
    old.write_text(faculties("O", 2))
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    growing = Path(conf.storage, "faculties_growing.csv")
    growing.write_text("code,title\n")
    done = threading.Event()

    def writer() -> None:
        with open(growing, "a") as handle:
            for n in range(1_000_000):
                if done.is_set():
                    return
                handle.write(f"G{n},Faculty G{n}\n")
                handle.flush()
                time.sleep(0.005)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        status = datacenter_main(["--config", str(path), "serve", "--once"])
    finally:
        done.set()
        thread.join()
    out, err = capsys.readouterr()
    assert status == 3, err
    assert "Imported 2 rows from faculties_old.csv" in out
    assert err.splitlines() == [
        "datacenter: still being written: faculties_growing.csv (it changed within 2 s); "
        "left for the next run"]
    assert at_root(conf) == ["faculties_growing.csv"]


def test_once_gives_up_on_a_failure_that_lasts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No deadline any more: a file failing for a passing reason must not keep it running."""
    path, conf = quick_config(tmp_path)
    Path(conf.storage, "faculties.csv").write_text(faculties("D", 1))
    injector = FaultInjector(seed=1)
    injector.add(FaultConfig(target="store.commit",
                             exception=OSError(errno.ENOSPC, "No space left on device")))
    with injector.installed():
        status = datacenter_main(["--config", str(path), "serve", "--once"])
    err = capsys.readouterr().err
    assert status == 1
    assert "No space left on device; left for the next run" in err
    assert injector.stats["faults_triggered"] == 3
    assert at_root(conf) == ["faculties.csv"]


def test_serve_help_documents_its_exit_codes() -> None:
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    text = " ".join(serve.format_help().split())
    assert "Exit status: 0 done; 1 another service holds the storage" in text
    assert "3 (--once) a file was still being written" in text


# -- names that would forge lines ------------------------------------------------------------

EVIL = "faculties_evil\n* * * * * root touch pwned\n.csv"
#: Every line of the storage's log begins with its own timestamp.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - (INFO|WARNING|ERROR) - ")


def test_a_newline_in_a_file_name_forges_no_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, conf = quick_config(tmp_path)
    Path(conf.storage, EVIL).write_text(faculties("E", 1))
    unrouted = "mystery\x1b[2J\u2028\x85.csv"
    Path(conf.storage, unrouted).write_text("a\n1\n")
    os.utime(Path(conf.storage, EVIL), (time.time() - 3600, time.time() - 3600))
    assert datacenter_main(["--config", str(path), "serve", "--once"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "Imported 1 rows from faculties_evil\\n* * * * * root touch pwned\\n.csv: 1 ok, 0 failed"]
    assert err.splitlines() == [
        "datacenter: not imported: mystery\\x1b[2J\\u2028\\x85.csv: no processor claims this "
        "file (name it <processor>[_anything][.<mode>].csv, or add a route)"]
    log = Path(conf.storage, "logs", "datacenter.log").read_text(encoding="utf-8")
    lines = log.split("\n")
    assert lines.pop() == ""
    assert [line for line in lines if not LOG_LINE.match(line)] == []
    assert any("processed: faculties_evil\\n* * * * * root touch pwned\\n.csv" in line
               for line in lines)
    assert "\u2028" not in log and "\x1b" not in log and "\x85" not in log

    # The import command, ls and logs say it on one line too.
    Path(conf.storage, EVIL).write_text(faculties("F", 1))
    assert datacenter_main(["--config", str(path), "import", os.path.join(conf.storage, EVIL)]
                           ) == 0
    assert capsys.readouterr().out.count("\n") == 1
    shown = {"ls": "mystery\\x1b[2J\\u2028\\x85.csv", "finished": "pwned\\n.csv",
             "evil": "root touch pwned\\n.csv"}
    for args in (["ls"], ["ls", "finished"], ["logs", "--query", "evil"]):
        assert datacenter_main(["--config", str(path), *args]) == 0
        out = capsys.readouterr().out
        assert "\n* * *" not in out and "\x1b" not in out and "\u2028" not in out, args
        assert [line for line in out.splitlines() if shown[args[-1]] in line], args
