"""Walls that hold, for names: outputs that cannot be named, intents that cannot apply.

A file whose outputs would need names longer than the filesystem allows is
rejected before anything commits; a committed intent that cannot be applied
all the same (one an earlier version wrote) is set aside for a person and
blocks nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import drop, make_importer, read, table, write

from datacenter import DataCenter
from datacenter.cli.main import main
from datacenter.config import Config
from datacenter.errors import DataCenterError
from datacenter.importing.csvinput import FatalCSVError
from datacenter.importing.importer import Importer, Outcome, Request
from datacenter.storage import distribution, layout
from datacenter.storage.journal import Journal
from datacenter.storage.steps import Replace
from datacenter.testing.crashpoints import enumerate_crashes

ITEMS = {"items": {"key": ["code"], "fields": {"code": "str", "title": "str"},
                   "required": ["title"]}}
#: A legal name of 244 bytes, whose finished file would need 260.
LONG = "items_" + "é" * 117 + ".csv"
TOO_LONG = "name too long for the outputs it needs"
#: What an earlier version derived from it, 260 bytes.
DERIVED = LONG[:-4] + ".create.finished.csv"


def _importer(tmp_path: Path) -> Importer:
    return Importer(Config(path=None, storage=str(tmp_path / "storage"),
                           database=str(tmp_path / "db.sqlite"), processors=dict(ITEMS)))


def _config(tmp_path: Path) -> str:
    path = tmp_path / "datacenter.toml"
    path.write_text(f'storage = "{tmp_path / "storage"}"\ndatabase = "{tmp_path / "db.sqlite"}"\n'
                    '[processors.items]\nkey = ["code"]\nfields = { code = "str", title = "str" }\n'
                    'required = ["title"]\n', encoding="utf-8")
    return str(path)


def _cli(capsys: pytest.CaptureFixture[str], conf: str, *args: str) -> tuple[int, str, str]:
    code = main(["--config", conf, *args])
    out, err = capsys.readouterr()
    return code, out, err


def _commands_work(capsys: pytest.CaptureFixture[str], conf: str) -> str:
    """status, ls and recover answer (exit 0); returns what status said."""
    for command in (["ls"], ["ls", "finished"], ["recover"]):
        code, _, err = _cli(capsys, conf, *command)
        assert code == 0, (command, err)
    code, out, err = _cli(capsys, conf, "status")
    assert code == 0, err
    return out


def test_the_long_name_is_legal_here_and_its_outputs_are_not(tmp_path: Path) -> None:
    assert len(LONG.encode()) == 244
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    write(tmp_path / LONG, "x\n")  # the name itself is fine...
    assert len(DERIVED.encode()) > limit  # ...its outputs not


# -- 3a. rejected before anything commits ----------------------------------------------------


def test_a_batch_with_a_long_name_files_the_others_and_rejects_it_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imp = _importer(tmp_path)
    storage = imp.dc.storage
    names = ["items_a.csv", LONG, "items_b.csv"]
    write(os.path.join(storage, names[0]), "code,title\nA,Alpha\n")
    write(os.path.join(storage, names[1]), "code,title\nL,Long\nM,\n")
    write(os.path.join(storage, names[2]), "code,title\nB,Beta\n")
    try:
        results = imp.import_many([Request(os.path.join(storage, n)) for n in names])
        assert isinstance(results[0], Outcome) and isinstance(results[2], Outcome)
        rejected = results[1]
        assert isinstance(rejected, FatalCSVError)
        assert str(rejected).startswith(LONG) and TOO_LONG in str(rejected)
        assert "\n" not in str(rejected)
        assert imp.store.jobs(undistributed=True) == []
        assert [job.source for job in imp.store.jobs()] == ["items_b.csv", "items_a.csv"]
        assert imp.store.get(imp.schemas["items"], ("L",)) is None  # nothing of it imported
    finally:
        imp.close()
    assert sorted(os.listdir(os.path.join(storage, "finished"))) == [
        "items_a.create.finished.csv", "items_a.csv", "items_b.create.finished.csv",
        "items_b.csv"]
    assert os.path.exists(os.path.join(storage, LONG))  # left where it is
    assert os.listdir(layout.state_path(storage, layout.JOURNAL)) == []
    log = read(os.path.join(storage, "logs", "datacenter.log"))
    assert len([line for line in log.splitlines() if TOO_LONG in line]) == 1
    out = _commands_work(capsys, _config(tmp_path))
    assert "interrupted operations: 0" in out


def test_the_import_command_rejects_it_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = _config(tmp_path)
    DataCenter(str(tmp_path / "storage"))
    path = write(tmp_path / "storage" / LONG, "code,title\nL,Long\n")
    code, _, err = _cli(capsys, conf, "import", path)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and TOO_LONG in err
    _commands_work(capsys, conf)


def test_a_pending_file_of_a_long_name_is_rejected_too(tmp_path: Path) -> None:
    """``x.create.pending.csv`` fits where ``x.create.finished.csv`` does not."""
    imp = _importer(tmp_path)
    try:
        name = "items_" + "é" * 115 + ".create.pending.csv"  # 255 bytes
        assert len(name.encode()) == 255
        path = write(os.path.join(imp.dc.storage, name), "code,title\nP,Pending\n")
        with pytest.raises(FatalCSVError, match=TOO_LONG):
            imp.import_file(path)
        assert imp.store.jobs() == []
    finally:
        imp.close()


def test_the_api_refuses_a_distribution_whose_outputs_cannot_be_named(
        dc: DataCenter, tmp_path: Path) -> None:
    src = write(os.path.join(dc.storage, LONG), "code,title\nL,Long\n")
    finished = write(tmp_path / "results" / "finished.csv", "code,title\nL,Long\n")
    with pytest.raises(DataCenterError, match=TOO_LONG):
        dc.distProcessedFiles(True, src, finished, None)
    assert os.path.exists(src) and os.path.exists(finished)
    assert os.listdir(dc.finished_path) == []
    assert os.listdir(os.path.join(dc.storage, ".datacenter", "journal")) == []
    DataCenter(dc.storage)  # opens as ever


def test_a_backup_file_that_cannot_be_named_is_refused(dc: DataCenter) -> None:
    with pytest.raises(DataCenterError, match="name too long"):
        dc.backupRecords("p" * 252, [{"id": "1"}])
    assert os.listdir(os.path.join(dc.storage, ".datacenter", "journal")) == []


# -- 3b. a committed intent that cannot apply is set aside -----------------------------------


def _commit_replace(storage: str, dst: str, text: str) -> str:
    """Commit, without applying, a group that puts *text* at *dst* (as a crash leaves it)."""
    journal = Journal(storage)
    group = journal.new_group()
    staged = group.staged_path("new.csv")
    write(staged, text)
    group.add(Replace(src=staged, dst=dst))
    journal.commit(group)
    return group.id


def _wedged(storage: str) -> tuple[str, str]:
    """A storage with a committed intent that cannot apply, and a good one after it."""
    DataCenter(storage)
    bad = _commit_replace(storage, os.path.join(storage, "finished", DERIVED), "bad\n")
    good = _commit_replace(storage, os.path.join(storage, "finished", "good.csv"), "good\n")
    return bad, good


def test_an_intent_that_cannot_apply_is_set_aside_and_blocks_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = str(tmp_path / "storage")
    bad, _ = _wedged(storage)
    dc = DataCenter(storage)  # does not raise
    assert read(os.path.join(storage, "finished", "good.csv")) == "good\n"
    failed = layout.state_path(storage, layout.JOURNAL, "failed")
    assert sorted(os.listdir(failed)) == [f"{bad}.json", f"{bad}.why"]
    why = json.loads(read(os.path.join(failed, f"{bad}.why")))
    assert why["step"] == 0 and "File name too long" in why["reason"]
    assert Journal(storage).pending_intents() == []
    assert os.listdir(layout.state_path(storage, layout.STAGING)) == [bad]  # kept for a person
    log = read(os.path.join(storage, "logs", "datacenter.log"))
    errors = [line for line in log.splitlines() if " - ERROR - " in line]
    assert len(errors) == 1 and "set aside" in errors[0] and bad in errors[0]
    assert dc.recover() == 0  # and again: nothing more to do, nothing raised
    out = _commands_work(capsys, _config(tmp_path))
    assert "needs a person" in out and f"{bad}.json" in out


def test_a_relocation_that_cannot_apply_is_not_set_aside(tmp_path: Path) -> None:
    """Setting a half-done move aside would split the storage between two roots."""
    storage = str(tmp_path / "storage")
    DataCenter(storage)
    new = tmp_path / "new"
    new.mkdir()
    old_journal, new_journal = Journal(storage), Journal(str(new))
    group = old_journal.new_group()
    group.mirrors.append(new_journal)
    staged = group.staged_path("x")
    write(staged, "x\n")
    group.add(Replace(src=staged, dst=os.path.join(str(new), DERIVED)))
    old_journal.commit(group)
    with pytest.raises(OSError, match="File name too long"):
        DataCenter(storage)
    assert old_journal.pending_intents() == [group.id]


def test_a_batch_wedged_by_an_earlier_version_files_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The storage of the issue: a batch committed with a long name in it (no check then)."""
    monkeypatch.setattr(distribution, "check_names", lambda *a, **k: None, raising=False)
    imp = _importer(tmp_path)
    storage = imp.dc.storage
    names = ["items_a.csv", LONG, "items_b.csv"]
    for n, name in enumerate(names):
        write(os.path.join(storage, name), f"code,title\nK{n},Title {n}\n")
    try:
        results = imp.import_many([Request(os.path.join(storage, n)) for n in names])
        assert all(isinstance(r, Outcome) for r in results)  # all three committed
        long_job = next(job for job in imp.store.jobs() if job.source == LONG)
        assert [job.id for job in imp.store.jobs(undistributed=True)] == [long_job.id]
        assert sorted(os.listdir(os.path.join(storage, "finished"))) == [
            "items_a.create.finished.csv", "items_a.csv", "items_b.create.finished.csv",
            "items_b.csv"]
        # Its source is never imported again while its filing waits for a person.
        with pytest.raises(FatalCSVError, match=f"job {long_job.id}.*needs a person"):
            imp.import_file(os.path.join(storage, LONG))
        assert imp.file_unfiled() == []  # nothing the service should keep retrying
    finally:
        imp.close()
    held = os.path.join(storage, long_job.workdir)
    assert sorted(os.listdir(held)) == ["finished.csv", "needs-a-person.txt"]
    out = _commands_work(capsys, _config(tmp_path))
    assert "needs a person" in out and f"job {long_job.id}" in out
    reopened = _importer(tmp_path)  # and opening it again changes nothing
    try:
        assert [job.id for job in reopened.store.jobs(undistributed=True)] == [long_job.id]
    finally:
        reopened.close()


@pytest.mark.slow
def test_crash_at_every_step_of_setting_an_intent_aside(tmp_path: Path) -> None:
    storage = str(tmp_path / "work" / "storage")
    ids: list[str] = []

    def prepare() -> None:
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
        ids[:] = _wedged(storage)

    def check() -> None:
        bad = ids[0]
        failed = layout.state_path(storage, layout.JOURNAL, "failed")
        assert sorted(os.listdir(failed)) == [f"{bad}.json", f"{bad}.why"]
        assert Journal(storage).pending_intents() == []
        assert read(os.path.join(storage, "finished", "good.csv")) == "good\n"
        assert os.listdir(os.path.join(storage, "finished")) == ["good.csv"]
        assert os.listdir(layout.state_path(storage, layout.STAGING)) == [bad]

    report = enumerate_crashes(prepare, lambda: DataCenter(storage),
                               lambda: DataCenter(storage), check)
    assert report.points >= 5
    print(f"setting an intent aside: {report.points} crash points, {report.runs} runs")


# -- 5. a same-name re-drop never overwrites the earlier source ------------------------------

FACULTIES_1 = "code,title\nF1,Science\n"
FACULTIES_2 = "code,title\nF2,Arts\n"


def test_a_weekly_file_of_the_same_name_keeps_every_week_in_finished(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imp = make_importer(tmp_path)
    try:
        first = imp.import_file(drop(imp, "faculties.csv", FACULTIES_1))
        second = imp.import_file(drop(imp, "faculties.csv", FACULTIES_2))
        assert (first.ok, second.ok) == (1, 1)
    finally:
        imp.close()
    finished = os.path.join(imp.dc.storage, "finished")
    assert read(os.path.join(finished, "faculties.csv")) == FACULTIES_1  # the first, untouched
    assert read(os.path.join(finished, f"faculties.job{second.job}.csv")) == FACULTIES_2
    assert [f.name for f in imp.dc.list_files("finished")] == [
        "faculties.create.finished.csv", "faculties.csv", f"faculties.job{second.job}.csv"]
    assert main(["--storage", imp.dc.storage, "ls", "finished"]) == 0
    listed = capsys.readouterr().out
    assert "faculties.csv" in listed and f"faculties.job{second.job}.csv" in listed
    log = read(os.path.join(imp.dc.storage, "logs", "datacenter.log"))
    assert f"faculties.job{second.job}.csv" in log


def test_a_redrop_while_its_chain_is_open_waits_beside_it_and_finishes_with_it(
        tmp_path: Path) -> None:
    imp = make_importer(tmp_path)
    departments_1 = "code,faculty_code,title\nD1,F1,Physics\n"
    departments_2 = "code,faculty_code,title\nD2,F1,Chemistry\n"
    try:
        first = imp.import_file(drop(imp, "departments.csv", departments_1))
        second = imp.import_file(drop(imp, "departments.csv", departments_2))
        assert (first.failed, second.failed) == (1, 1)
        unfinished = os.path.join(imp.dc.storage, "unfinished")
        assert sorted(os.listdir(unfinished)) == [
            "departments.csv", f"departments.job{second.job}.csv"]
        assert read(os.path.join(unfinished, "departments.csv")) == departments_1
        pending = os.path.join(imp.dc.storage, "departments.create.pending.csv")
        assert [row[0] for row in table(pending)[1:]] == ["D1", "D2"]  # one chain
        imp.import_file(drop(imp, "faculties.csv", FACULTIES_1))
        last = imp.import_file(pending)
        assert (last.ok, last.failed) == (2, 0)
    finally:
        imp.close()
    assert os.listdir(unfinished) == []
    finished = os.path.join(imp.dc.storage, "finished")
    assert read(os.path.join(finished, "departments.csv")) == departments_1
    assert read(os.path.join(finished, f"departments.job{second.job}.csv")) == departments_2


def test_the_api_still_replaces_like_kofa(dc: DataCenter, tmp_path: Path) -> None:
    """``distProcessedFiles`` has no job number: Kofa's doctest story stands."""
    for text in ("one\n", "two\n"):
        src = write(os.path.join(dc.storage, "x.csv"), text)
        finished = write(tmp_path / "results" / "finished.csv", "id\n")
        dc.distProcessedFiles(True, src, finished, None)
    assert sorted(os.listdir(dc.finished_path)) == ["x.create.finished.csv", "x.csv"]
    assert read(os.path.join(dc.finished_path, "x.csv")) == "two\n"


@pytest.mark.slow
def test_kill_anywhere_in_filing_a_redrop(tmp_path: Path) -> None:
    """The second faculties.csv: a kill at any step (the commit too), then recovery
    (itself killed at each step): both sources kept, every row once."""
    work = tmp_path / "work"
    storage = work / "storage"

    def importer() -> Importer:
        return make_importer(work)

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        imp = importer()
        imp.import_file(drop(imp, "faculties.csv", FACULTIES_1))
        drop(imp, "faculties.csv", FACULTIES_2)
        imp.close()

    def act() -> None:
        importer().import_file(str(storage / "faculties.csv"))

    def check() -> None:
        if (storage / "faculties.csv").exists():
            act()  # rolled back: the next attempt imports it
        finished = storage / "finished"
        assert sorted(os.listdir(finished))[:2] == [
            "faculties.create.finished.csv", "faculties.csv"]
        redrops = [n for n in os.listdir(finished) if n.startswith("faculties.job")]
        assert len(redrops) == 1 and read(finished / redrops[0]) == FACULTIES_2
        assert read(finished / "faculties.csv") == FACULTIES_1
        rows = table(str(finished / "faculties.create.finished.csv"))
        assert rows == [["code", "title"], ["F1", "Science"], ["F2", "Arts"]]
        for area in ("journal", "staging", "jobs"):
            assert os.listdir(storage / ".datacenter" / area) == [], area

    report = enumerate_crashes(prepare, act, lambda: importer().close(), check, target="*")
    assert report.points >= 20
    print(f"filing a re-drop: {report.points} crash points, {report.runs} runs")
