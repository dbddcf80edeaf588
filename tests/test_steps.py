"""Journal steps: their JSON shape, old intents, malformed ones, and a crash at every step.

The JSON shape of a step is an on-disk format: an intent the previous
version wrote must still be recovered, and one that does not read as an
intent must be refused, naming the file, before anything of it is applied.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import snapshot, write

from datacenter import DataCenter
from datacenter.storage import fs
from datacenter.storage.identity import FileIdentity, inode_at
from datacenter.storage.journal import Group, Journal, JournalError, run_group
from datacenter.storage.steps import (
    STEP_TYPES,
    Append,
    Cleanup,
    Move,
    Replace,
    RmdirEmpty,
    Step,
    Unlink,
    step_from_json,
)
from datacenter.testing.crashpoints import enumerate_crashes, run_child

INTENT = "/s/.datacenter/journal/1.json"

EXAMPLES: list[Step] = [
    Replace(src="/s/.datacenter/staging/1/a", dst="/s/finished/a.csv"),
    Append(src="/s/.datacenter/staging/1/b", dst="/s/finished/b.csv", size=120),
    Unlink(path="/s/x.create.pending.csv", ident=(2049, 77)),
    Unlink(path="/s/.datacenter/moved-to", ident=None),
    Move(src="/s/x.csv", dst="/s/finished/x.csv", tmp="/s/.datacenter/staging/1/tmp-0",
         trash="/s/.datacenter/staging/1/trash-0", ident=(2049, 78), overwrite=True,
         old="/s/.datacenter/staging/1/old-0"),
    Move(src="/s/d", dst="/t/d", tmp="/t/tmp-1", trash="/s/trash-1"),
    Cleanup(files=("/tmp/r/finished.csv", "/tmp/r/pending.csv"), folder="/tmp/r"),
    Cleanup(),
    RmdirEmpty(folders=("/s/deep/er", "/s/deep")),
]


@pytest.mark.parametrize("step", EXAMPLES, ids=lambda s: f"{s.op}")
def test_each_step_round_trips_through_json(step: Step) -> None:
    data = json.loads(json.dumps(step.to_json()))
    assert data["op"] == step.op
    assert step_from_json(data, INTENT) == step


def test_every_step_type_has_an_example() -> None:
    assert {type(step) for step in EXAMPLES} == set(STEP_TYPES.values())


def test_optional_keys_may_be_absent_or_null_as_earlier_versions_read_them() -> None:
    assert step_from_json({"op": "unlink", "path": "/s/x"}, INTENT) == Unlink("/s/x")
    assert step_from_json({"op": "cleanup"}, INTENT) == Cleanup()
    assert step_from_json({"op": "cleanup", "files": None, "folder": None}, INTENT) == Cleanup()
    bare = {"op": "move", "src": "/a", "dst": "/b", "tmp": "/t", "trash": "/r"}
    assert step_from_json(bare, INTENT) == Move("/a", "/b", "/t", "/r")
    assert step_from_json({**bare, "ident": None, "overwrite": None, "old": None},
                          INTENT) == Move("/a", "/b", "/t", "/r")


@pytest.mark.parametrize(("data", "complaint"), [
    ({"op": "rename", "src": "/a"}, "unknown step op \"rename\""),
    ({"src": "/a", "dst": "/b"}, "unknown step op null"),
    ({"op": ["replace"], "src": "/a", "dst": "/b"}, "unknown step op [\"replace\"]"),
    ({"op": "replace", "src": "/a"}, "replace step: 'dst' is missing"),
    ({"op": "append", "src": "/a", "dst": "/b", "size": "12"}, "'size' should be a size"),
    ({"op": "append", "src": "/a", "dst": "/b", "size": True}, "'size' should be a size"),
    ({"op": "unlink", "path": "/a", "ident": [1, 2, 3]}, "'ident' should be [device, inode]"),
    ({"op": "move", "src": "/a", "dst": "/b", "tmp": "/t", "trash": "/r", "overwrite": "yes"},
     "'overwrite' should be true or false"),
    ({"op": "cleanup", "files": "/a"}, "'files' should be a list of strings"),
    ({"op": "rmdir_empty"}, "'folders' is missing"),
    ({"op": "replace", "src": "/a", "dst": "/b", "mode": 1}, "unknown key 'mode'"),
    (["replace", "/a", "/b"], "a step is [\"replace\""),
])
def test_a_malformed_step_is_refused_naming_the_intent(data: object, complaint: str) -> None:
    with pytest.raises(JournalError) as caught:
        step_from_json(data, INTENT)
    message = str(caught.value)
    assert message.startswith(f"{INTENT}: malformed intent: ")
    assert complaint in message and "\n" not in message


# -- intents on disk -----------------------------------------------------------------------


def _old_intent(storage: str) -> tuple[str, dict[str, object]]:
    """A committed group as the previous version wrote it: a replace and a move."""
    group_id = "00000001700000000000-0a1b2c3d"
    staging = os.path.join(storage, ".datacenter", "staging", group_id)
    staged = write(os.path.join(staging, "0-finished.csv"), "id,name\r\n1,Ada\r\n")
    source = os.path.join(storage, "students.csv")
    ident = FileIdentity.at(source)
    assert ident is not None
    steps = [
        {"op": "replace", "src": staged,
         "dst": os.path.join(storage, "finished", "students.create.finished.csv")},
        {"op": "move", "src": source, "dst": os.path.join(storage, "finished", "students.csv"),
         "ident": [ident.dev, ident.ino], "overwrite": True,
         "tmp": os.path.join(staging, "tmp-1"), "trash": os.path.join(staging, "trash-1"),
         "old": os.path.join(staging, "old-1")},
    ]
    intent = {"id": group_id, "steps": steps, "roots": [storage]}
    return os.path.join(storage, ".datacenter", "journal", f"{group_id}.json"), intent


def test_an_intent_of_the_previous_version_is_recovered(tmp_path: Path) -> None:
    storage = str(tmp_path / "storage")
    DataCenter(storage)
    write(os.path.join(storage, "students.csv"), "id,name\n1,Ada\n")
    path, intent = _old_intent(storage)
    write(path, json.dumps(intent, indent=1))
    dc = DataCenter(storage)
    assert dc.recovered == 1
    finished = os.path.join(storage, "finished")
    assert sorted(os.listdir(finished)) == ["students.create.finished.csv", "students.csv"]
    assert not os.path.exists(os.path.join(storage, "students.csv"))
    assert not os.path.exists(path)
    assert os.listdir(os.path.join(storage, ".datacenter", "staging")) == []


def test_an_intent_without_roots_is_this_storages_own(tmp_path: Path) -> None:
    storage = str(tmp_path / "storage")
    DataCenter(storage)
    write(os.path.join(storage, "students.csv"), "id,name\n1,Ada\n")
    path, intent = _old_intent(storage)
    del intent["roots"]
    write(path, json.dumps(intent))
    assert DataCenter(storage).recovered == 1


def _broken_intents(intent: dict[str, object]) -> Iterator[tuple[str, str]]:
    steps = list(intent["steps"])  # type: ignore[call-overload]
    yield "unknown op", json.dumps({**intent, "steps": [steps[0], {"op": "chmod"}]})
    missing = {k: v for k, v in steps[1].items() if k != "trash"}
    yield "missing key", json.dumps({**intent, "steps": [steps[0], missing]})
    yield "not JSON", json.dumps(intent)[:-10]
    yield "a list, not an object", json.dumps([intent])
    yield "steps not a list", json.dumps({**intent, "steps": steps[0]})


@pytest.mark.parametrize("case", ["unknown op", "missing key", "not JSON",
                                  "a list, not an object", "steps not a list"])
def test_a_malformed_intent_is_refused_and_nothing_of_it_applied(tmp_path: Path,
                                                                 case: str) -> None:
    storage = str(tmp_path / "storage")
    DataCenter(storage)
    source = write(os.path.join(storage, "students.csv"), "id,name\n1,Ada\n")
    path, intent = _old_intent(storage)
    write(path, dict(_broken_intents(intent))[case])
    with pytest.raises(JournalError) as caught:
        DataCenter(storage)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    assert os.path.exists(path)  # kept for a person to see
    assert os.path.exists(source)
    assert os.listdir(os.path.join(storage, "finished")) == []  # not even the first step


# -- run_group ---------------------------------------------------------------------------


def test_run_group_drops_an_uncommitted_group_and_raises(tmp_path: Path) -> None:
    dc = DataCenter(str(tmp_path / "storage"))

    def plan(group: Group) -> None:
        group.staged_path("x")
        raise OSError("planning failed")

    with pytest.raises(OSError, match="planning failed"):
        run_group(dc.journal, plan)
    assert os.listdir(dc.journal.staging_dir) == []


def test_run_group_finishes_a_committed_group_after_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dc = DataCenter(str(tmp_path / "storage"))
    source = write(os.path.join(dc.storage, "x.csv"), "id\n1\n")
    told: list[str] = []
    failing = {"once": True}
    real_apply = Journal.apply

    def apply_failing_once(self: Journal, *args: object, **kwargs: object) -> None:
        if failing.pop("once", False):
            raise OSError("the disk hiccuped")
        real_apply(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "apply", apply_failing_once)
    run_group(dc.journal, lambda g: g.add(Unlink.if_unchanged(source)), log=told.append)
    assert not os.path.exists(source)
    assert told == ["finished after an error: the disk hiccuped"]


# -- a crash at every step of every step type --------------------------------------------------


def _stage(group: Group, name: str, text: str) -> str:
    staged = group.staged_path(name)
    with fs.new_file(staged, sync=False) as handle:
        handle.write(text.encode())
    return staged


def _plan_replace(group: Group, s: str, o: str) -> None:
    dst = os.path.join(s, "finished", "x.create.finished.csv")
    group.add(Replace(_stage(group, "x", "id\n1\n2\n"), dst))


def _plan_append(group: Group, s: str, o: str) -> None:
    dst = os.path.join(s, "finished", "x.create.finished.csv")
    group.add(Append(_stage(group, "x", "2\n3\n"), dst, os.path.getsize(dst)))


def _plan_unlink(group: Group, s: str, o: str) -> None:
    group.add(Unlink.if_unchanged(os.path.join(s, "x.create.pending.csv")))


def _plan_move_file(group: Group, s: str, o: str) -> None:
    group.add_move(os.path.join(s, "x.csv"), os.path.join(s, "unfinished", "x.csv"),
                   overwrite=False)


def _plan_move_folder_over_folder(group: Group, s: str, o: str) -> None:
    group.add_move(os.path.join(s, "d"), os.path.join(o, "d"), overwrite=True)


def _plan_cleanup(group: Group, s: str, o: str) -> None:
    scratch = os.path.join(o, "results")
    files = tuple(os.path.join(scratch, n) for n in ("finished.csv", "pending.csv"))
    group.add(Cleanup(files=files, folder=scratch))


def _plan_rmdir_empty(group: Group, s: str, o: str) -> None:
    sub = os.path.join(s, "sub")
    group.add_move(os.path.join(sub, "deep", "y.csv"), os.path.join(s, "finished", "y.csv"),
                   overwrite=True)
    group.add(RmdirEmpty((os.path.join(sub, "deep"), sub)))


def _plan_all(group: Group, s: str, o: str) -> None:
    for plan in (_plan_replace, _plan_unlink, _plan_move_file, _plan_cleanup,
                 _plan_rmdir_empty):
        plan(group, s, o)
    group.add(Append(_stage(group, "z", "9\n"), os.path.join(s, "finished", "z.csv"), 2))


def _setup(s: str, o: str) -> None:
    write(os.path.join(s, "finished", "x.create.finished.csv"), "id\n1\n")
    write(os.path.join(s, "finished", "z.csv"), "z\n")
    write(os.path.join(s, "x.csv"), "id\n1\n2\n")
    write(os.path.join(s, "x.create.pending.csv"), "id,--ERRORS--\n2,bad\n")
    write(os.path.join(s, "sub", "deep", "y.csv"), "id\n7\n")
    write(os.path.join(s, "d", "mine.txt"), "mine\n")
    write(os.path.join(o, "d", "theirs.txt"), "theirs\n")
    write(os.path.join(o, "results", "finished.csv"), "id\n1\n")
    write(os.path.join(o, "results", "pending.csv"), "id\n2\n")


@dataclass
class StepScenario:
    name: str
    plan: Callable[[Group, str, str], None]
    covers: frozenset[str]  # the step types the scenario commits


SCENARIOS = [
    StepScenario("replace", _plan_replace, frozenset({"replace"})),
    StepScenario("append", _plan_append, frozenset({"append"})),
    StepScenario("unlink", _plan_unlink, frozenset({"unlink"})),
    StepScenario("move-file", _plan_move_file, frozenset({"move"})),
    StepScenario("move-folder-over-folder", _plan_move_folder_over_folder,
                 frozenset({"move"})),
    StepScenario("cleanup", _plan_cleanup, frozenset({"cleanup"})),
    StepScenario("rmdir-empty", _plan_rmdir_empty, frozenset({"move", "rmdir_empty"})),
    StepScenario("all-in-one-group", _plan_all, frozenset(STEP_TYPES)),
]


def _act(scenario: StepScenario, s: str, o: str) -> None:
    dc = DataCenter(s)
    with dc.lock:
        run_group(dc.journal, lambda group: scenario.plan(group, s, o))


def _committed_ops(scenario: StepScenario, s: str, o: str) -> set[str]:
    """The step types of the group the scenario commits."""
    dc = DataCenter(s)
    group = dc.journal.new_group()
    scenario.plan(group, s, o)
    return {step.op for step in group.steps}


def test_the_scenarios_cover_every_step_type(tmp_path: Path) -> None:
    covered: set[str] = set()
    for scenario in SCENARIOS:
        work = tmp_path / scenario.name
        s, o = str(work / "storage"), str(work / "outside")
        _setup(s, o)
        ops = _committed_ops(scenario, s, o)
        assert ops == scenario.covers, scenario.name
        covered |= ops
    assert covered == set(STEP_TYPES)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_crash_at_every_step_of_each_step_type(scenario: StepScenario, tmp_path: Path) -> None:
    work = tmp_path / "work"
    s, o = str(work / "storage"), str(work / "outside")

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        DataCenter(s)
        _setup(s, o)

    prepare()
    before = snapshot(s, o)
    assert run_child(lambda: _act(scenario, s, o), None) == "completed"
    after = snapshot(s, o)
    assert before != after, "the scenario changes nothing"

    def check() -> None:
        assert snapshot(s, o) in (before, after)
        journal = Journal(s)
        assert journal.pending_intents() == [] and os.listdir(journal.staging_dir) == []

    report = enumerate_crashes(prepare, lambda: _act(scenario, s, o),
                               lambda: DataCenter(s).recover(), check)
    assert report.points >= 5, "suspiciously few crash points"
    print(f"{scenario.name}: {report.points} crash points, {report.runs} runs, "
          f"{report.recovery_crashes} crashes inside recovery")


def test_an_unlink_spares_a_file_replaced_since_the_plan(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "id\n1\n")
    step = Unlink.if_unchanged(path)
    os.replace(write(tmp_path / "saved.csv", "id\n1\n"), path)  # a person saved it again
    assert step.ident != inode_at(path)
    assert step.apply() == {str(tmp_path)}
    assert os.path.exists(path)


# -- file identities ---------------------------------------------------------------------------


def test_a_file_identity_in_each_of_its_shapes(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "id\n1\n")
    st = os.lstat(path)
    ident = FileIdentity.at(path)
    assert ident is not None and ident == FileIdentity.of(st)
    assert ident.to_ledger() == f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    assert FileIdentity.from_ledger(ident.to_ledger()) == ident
    assert ident.to_list() == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
    assert FileIdentity.from_list(ident.to_list()) == ident
    assert ident.inode == (st.st_dev, st.st_ino) == inode_at(path)


def test_writing_changes_the_identity_but_not_the_inode(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "id\n1\n")
    first = FileIdentity.at(path)
    with open(path, "a") as handle:
        handle.write("2\n")
    now = FileIdentity.at(path)
    assert now != first and first is not None and first.same_inode(now)
    assert not first.same_inode(None)


def test_absent_and_unknown_identities(tmp_path: Path) -> None:
    assert FileIdentity.at(str(tmp_path / "gone.csv")) is None
    assert inode_at(str(tmp_path / "gone.csv")) is None
    assert FileIdentity.from_ledger("") is None  # a ledger row from before identities
    with pytest.raises(ValueError):
        FileIdentity.from_list([1, 2, 3])


def test_a_symlink_has_its_own_identity(tmp_path: Path) -> None:
    target = write(tmp_path / "x.csv", "id\n1\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    ident = FileIdentity.at(target)
    assert ident is not None and not ident.same_inode(FileIdentity.at(str(link)))
