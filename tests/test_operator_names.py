"""The operator's day: the names of outputs never repeat a mode the name already says.

* ``students_fix.update.csv`` (its mode in its name) yields
  ``students_fix.update.pending.csv`` and ``finished/students_fix.update.finished.csv``,
  and that pending file, fixed and dropped again, closes the chain of
  ``unfinished/students_fix.update.csv``;
* a pending file a person drops (``students.update.pending.csv``) with no
  chain in ``unfinished/`` keeps its name for its own failed rows, and
  continues as the chain of ``students.csv``: ``find`` and ``discard`` see it so.

Both through ``datacenter import`` and through the service (``serve --once``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import ROOT, write

from datacenter.cli import main

STUDENTS = "student_id,name\nS1,Ann\n"
#: S1 exists; S9 does not, so updating it fails.
FIX = "student_id,name\nS1,Ann Smith\nS9,Nobody\n"


@pytest.fixture
def conf_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    text = text.replace("settle  = 2.0", "settle  = 0.2").replace("rescan  = 60", "rescan  = 1")
    (tmp_path / "storage").mkdir()
    return Path(write(tmp_path / "datacenter.toml", text))


def run(capsys: pytest.CaptureFixture[str], conf_path: Path, *argv: str) -> tuple[int, str]:
    code = main(["--config", str(conf_path), *argv])
    out, err = capsys.readouterr()
    return code, out + err


def files(storage: Path) -> set[str]:
    return {str(p.relative_to(storage)) for p in storage.rglob("*")
            if p.is_file() and ".datacenter" not in p.parts and p.parts[-2:-1] != ("logs",)}


def bring_in(how: str, capsys: pytest.CaptureFixture[str], conf_path: Path, tmp_path: Path,
             name: str, text: str) -> tuple[int, str]:
    """Import *text* named *name*: by ``datacenter import`` or dropped for ``serve --once``."""
    storage = tmp_path / "storage"
    if how == "import":
        return run(capsys, conf_path, "import", write(tmp_path / "in" / name, text))
    write(storage / name, text)
    return run(capsys, conf_path, "serve", "--once")


@pytest.mark.parametrize("how", ["import", "serve"])
def test_a_mode_in_the_name_is_not_repeated_and_its_chain_closes(
        how: str, capsys: pytest.CaptureFixture[str], conf_path: Path, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    assert bring_in(how, capsys, conf_path, tmp_path, "students.csv", STUDENTS)[0] == 0
    code, out = bring_in(how, capsys, conf_path, tmp_path, "students_fix.update.csv", FIX)
    if how == "import":
        assert code == 3
        assert "-> students_fix.update.pending.csv" in out
    assert files(storage) == {
        "finished/students.csv", "finished/students.create.finished.csv",
        "unfinished/students_fix.update.csv", "finished/students_fix.update.finished.csv",
        "students_fix.update.pending.csv"}
    assert "S9" in (storage / "students_fix.update.pending.csv").read_text()
    # S9 arrives; the pending file, dropped again as it is, closes the chain.
    assert bring_in(how, capsys, conf_path, tmp_path, "students_new.csv",
                    "student_id,name\nS9,Nina\n")[0] == 0
    pending = (storage / "students_fix.update.pending.csv").read_text()
    os.unlink(storage / "students_fix.update.pending.csv")
    code, out = bring_in(how, capsys, conf_path, tmp_path, "students_fix.update.pending.csv",
                         pending)
    assert code == 0, out
    assert files(storage) == {
        "finished/students.csv", "finished/students.create.finished.csv",
        "finished/students_new.csv", "finished/students_new.create.finished.csv",
        "finished/students_fix.update.csv",
        "finished/students_fix.update.finished.csv"}
    assert "S9,Nobody" in (storage / "finished/students_fix.update.finished.csv").read_text()


@pytest.mark.parametrize("how", ["import", "serve"])
def test_a_dropped_pending_file_keeps_its_name_and_find_and_discard_agree(
        how: str, capsys: pytest.CaptureFixture[str], conf_path: Path, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    assert bring_in(how, capsys, conf_path, tmp_path, "students.csv", STUDENTS)[0] == 0
    code, out = bring_in(how, capsys, conf_path, tmp_path, "students.update.pending.csv", FIX)
    if how == "import":
        assert code == 3
        assert out.rstrip().endswith("-> students.update.pending.csv")
    names = files(storage)
    assert not [n for n in names if "pending.update" in n], names
    assert "students.update.pending.csv" in names
    assert "finished/students.update.finished.csv" in names
    pending = (storage / "students.update.pending.csv").read_text()
    assert "S9" in pending and "S1" not in pending
    code, out = run(capsys, conf_path, "find", "S9", "--json")
    assert code == 0, out
    assert "students.update.pending.csv" in out
    code, out = run(capsys, conf_path, "discard", "students.update.pending.csv", "--json")
    assert code == 0, out
    done = json.loads(out)
    assert done["discarded"] == "finished/students.update.discarded.csv"
    assert "students.update.pending.csv" not in files(storage)
    assert not [n for n in files(storage) if n.startswith("unfinished/")]
