"""setStoragePath: switching and moving a storage, on one filesystem or across two."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import fake_devices, read, tree, write

from datacenter import DataCenter


def _populate(root: str) -> dict[str, tuple[str, float]]:
    """A storage with files in sub-folders, odd names and old mtimes."""
    files = {
        "a.csv": "a,b\n1,2\n",
        "finished/x.create.finished.csv": "id\n1\n",
        "unfinished/y.csv": "id\n",
        "deleted/students.csv": "id\nS1\n",
        "extra/deep/er/file é.txt": "deep\n",
        "学生 2024.csv": "x\n",
    }
    stamps = {}
    for n, (rel, text) in enumerate(files.items()):
        path = write(os.path.join(root, rel), text)
        stamp = 1_600_000_000 + n * 1000
        os.utime(path, (stamp, stamp))
        stamps[rel] = (text, float(stamp))
    return stamps


def _check_moved(old: str, new: str, expected: dict[str, tuple[str, float]]) -> None:
    for rel, (text, stamp) in expected.items():
        path = os.path.join(new, rel)
        assert read(path) == text, rel
        assert os.stat(path).st_mtime == stamp, rel
    assert tree(old) == {}, "files were left behind"
    assert sorted(os.listdir(old)) == [".datacenter"]


def test_same_path_only_recreates_folders(dc: DataCenter) -> None:
    os.rmdir(dc.finished_path)
    assert dc.setStoragePath(dc.storage) == []
    assert os.path.isdir(dc.finished_path)


def test_switch_without_move_moves_nothing(dc: DataCenter, tmp_path: Path) -> None:
    write(os.path.join(dc.storage, "a.csv"), "x\n")
    new = tmp_path / "new"
    new.mkdir()
    old = dc.storage
    assert dc.setStoragePath(str(new)) == []
    assert dc.storage == str(new)
    assert os.path.isfile(os.path.join(old, "a.csv"))
    assert dc.getPendingFiles() == []


@pytest.mark.parametrize("target", ["missing", "afile"])
def test_bad_target_is_refused(dc: DataCenter, tmp_path: Path, target: str) -> None:
    write(tmp_path / "afile", "x")
    old = dc.storage
    with pytest.raises(ValueError, match=str(tmp_path / target)):
        dc.setStoragePath(str(tmp_path / target), move=True)
    assert dc.storage == old


def test_target_inside_the_storage_is_refused(dc: DataCenter) -> None:
    with pytest.raises(ValueError, match="own sub-folder"):
        dc.setStoragePath(dc.finished_path, move=True)


def test_move_tree_keeps_content_and_mtimes(dc: DataCenter, tmp_path: Path) -> None:
    expected = _populate(dc.storage)
    old, new = dc.storage, tmp_path / "new"
    new.mkdir()
    assert dc.setStoragePath(str(new), move=True) == []
    _check_moved(old, str(new), expected)
    assert [f.name for f in dc.getPendingFiles()] == ["a.csv", "学生 2024.csv"]


def test_move_into_an_existing_storage_merges_folders(dc: DataCenter, tmp_path: Path) -> None:
    expected = _populate(dc.storage)
    target = DataCenter(str(tmp_path / "target"))
    write(os.path.join(target.finished_path, "other.create.finished.csv"), "id\n9\n")
    old = dc.storage
    assert dc.setStoragePath(target.storage, move=True) == []
    _check_moved(old, target.storage, expected)
    assert os.path.isfile(os.path.join(target.finished_path, "other.create.finished.csv"))


def test_existing_names_are_reported_and_kept(dc: DataCenter, tmp_path: Path) -> None:
    _populate(dc.storage)
    new = tmp_path / "new"
    write(new / "a.csv", "theirs\n")
    write(new / "finished" / "x.create.finished.csv", "theirs\n")
    old = dc.storage
    assert sorted(dc.setStoragePath(str(new), move=True)) == [
        "a.csv", "finished/x.create.finished.csv"]
    assert (new / "a.csv").read_text() == "theirs\n"
    assert read(os.path.join(old, "a.csv")) == "a,b\n1,2\n"
    assert (new / "unfinished" / "y.csv").read_text() == "id\n"


def test_overwrite_replaces_existing_names(dc: DataCenter, tmp_path: Path) -> None:
    expected = _populate(dc.storage)
    new = tmp_path / "new"
    write(new / "a.csv", "theirs\n")
    write(new / "extra", "a file where a folder comes\n")
    old = dc.storage
    assert dc.setStoragePath(str(new), move=True, overwrite=True) == []
    _check_moved(old, str(new), expected)


def test_symlinks_move_as_links_never_followed(dc: DataCenter, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "secret\n")
    os.symlink(outside, os.path.join(dc.storage, "link"))
    new = tmp_path / "new"
    new.mkdir()
    dc.setStoragePath(str(new), move=True)
    assert os.path.islink(new / "link")
    assert (outside / "secret.txt").read_text() == "secret\n"


def test_hidden_state_moves_but_not_the_journal_or_locks(dc: DataCenter, tmp_path: Path) -> None:
    write(os.path.join(dc.storage, ".datacenter", "service.json"), "{}")
    new = tmp_path / "new"
    new.mkdir()
    dc.setStoragePath(str(new), move=True)
    assert (new / ".datacenter" / "service.json").read_text() == "{}"
    assert sorted(os.listdir(new / ".datacenter")) == ["journal", "lock", "service.json", "staging"]


def test_subscribers_hear_of_the_move(dc: DataCenter, tmp_path: Path) -> None:
    heard: list[tuple[str, str]] = []
    dc.subscribe(lambda old, new: heard.append((old, new)))
    old = dc.storage
    new = tmp_path / "new"
    new.mkdir()
    dc.setStoragePath(str(new))
    dc.setStoragePath(str(new))  # the same path again is no move
    assert heard == [(old, str(new))]


def test_move_across_filesystems(dc: DataCenter, other_fs: Path) -> None:
    expected = _populate(dc.storage)
    old = dc.storage
    assert dc.setStoragePath(str(other_fs), move=True) == []
    _check_moved(old, str(other_fs), expected)
    assert os.listdir(other_fs / ".datacenter" / "staging") == []


def test_forced_exdev_takes_the_copy_path(dc: DataCenter, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Renames between the two roots fail with EXDEV, as between two disks."""
    expected = _populate(dc.storage)
    old, new = dc.storage, tmp_path / "new"
    new.mkdir()
    entries = [n for n in os.listdir(old) if n != ".datacenter"]
    refused = fake_devices(monkeypatch, old, new)
    assert dc.setStoragePath(str(new), move=True) == []
    assert len(refused) == len(entries)  # each entry's rename failed, then was copied
    _check_moved(old, str(new), expected)
    assert os.listdir(new / ".datacenter" / "staging") == []
    assert os.listdir(os.path.join(old, ".datacenter", "staging")) == []


def test_after_a_crashed_move_the_storage_is_where_the_commit_says(tmp_path: Path) -> None:
    """Kill a relocation at every step; open the old root, keep working, open the new.

    Before the commit, the old root stays the storage and a later open of the
    new root must not pull anything away; after it, opening the old root
    finishes the move and the data center follows it to the new root.
    """
    from datacenter.testing.crashpoints import run_child

    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    moved_over = stayed = 0
    for point in range(1, 400):
        shutil.rmtree(tmp_path, ignore_errors=True)
        tmp_path.mkdir()
        DataCenter(old)
        write(os.path.join(old, "a.csv"), "id\n1\n")
        os.mkdir(new)
        outcome = run_child(lambda: DataCenter(old).setStoragePath(new, move=True), point)
        dc = DataCenter(old)
        write(os.path.join(dc.storage, "later.csv"), "id\n2\n")
        DataCenter(new)  # must not take anything that belongs to the storage in use
        here = [root for root in (old, new) if os.path.exists(os.path.join(root, "a.csv"))]
        assert here == [dc.storage], (point, here, dc.storage)
        assert os.path.exists(os.path.join(dc.storage, "later.csv")), point
        moved_over += dc.storage == new
        stayed += dc.storage == old
        if outcome == "completed":
            break
    assert moved_over and stayed, (moved_over, stayed)
