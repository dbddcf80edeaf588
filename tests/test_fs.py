"""The filesystem module: durable, atomic, and the only place that mutates."""

from __future__ import annotations

import ast
import contextlib
import errno
import os
from pathlib import Path

import pytest
from helpers import fake_devices, read, write

from datacenter.storage import fs
from datacenter.testing.faults import FaultConfig, FaultInjector

PACKAGE = Path(__file__).resolve().parent.parent / "datacenter"
MUTATIONS = {"rename", "replace", "unlink", "remove", "rmdir", "mkdir", "makedirs",
             "fsync", "rmtree", "move", "link", "symlink", "truncate", "ftruncate"}


def test_only_the_fs_module_mutates_the_filesystem() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "fs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("os", "shutil")
                    and node.func.attr in MUTATIONS):
                offenders.append(f"{path.name}:{node.lineno} {node.func.value.id}.{node.func.attr}")
    assert offenders == []


def test_nothing_calls_shutil_move() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert "shutil.move" not in path.read_text().replace('``shutil.move``', ""), path


def test_atomic_write_replaces_whole(tmp_path: Path) -> None:
    target = write(tmp_path / "f.txt", "old")
    fs.atomic_write(target, b"new content")
    assert read(target) == "new content"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_atomic_writer_error_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = write(tmp_path / "f.txt", "old")
    with pytest.raises(RuntimeError), fs.atomic_writer(target) as handle:
        handle.write(b"half")
        raise RuntimeError("boom")
    assert read(target) == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_atomic_writer_text_mode(tmp_path: Path) -> None:
    target = str(tmp_path / "t.csv")
    with fs.atomic_writer(target, text=True) as handle:
        handle.write("é,\r\n")
    assert Path(target).read_bytes() == "é,\r\n".encode()


def test_atomic_writer_keeps_the_old_file_as_backup(tmp_path: Path) -> None:
    target = str(tmp_path / "f.csv")
    for version in ("one", "two", "three"):
        with fs.atomic_writer(target, backup=True) as handle:
            handle.write(version.encode())
        if version == "one":  # nothing to keep yet
            assert os.listdir(tmp_path) == ["f.csv"]
    assert (read(target), read(target + ".bak")) == ("three", "two")
    assert not os.path.samefile(target, target + ".bak")
    assert sorted(os.listdir(tmp_path)) == ["f.csv", "f.csv.bak"]


def test_atomic_writer_with_backup_failing_at_any_step(tmp_path: Path) -> None:
    """No temporary file is left; target and backup stay as they were until the backup
    is made, then the backup is the old target; only the folder's fsync after the final
    rename fails with the new file in place."""
    target, backup = str(tmp_path / "f.csv"), str(tmp_path / "f.csv.bak")

    def reset() -> None:  # a failure may leave target and backup as one file's two names
        for name, text in ((target, "old"), (backup, "older")):
            Path(name).unlink(missing_ok=True)
            write(name, text)

    reset()
    with pytest.raises(RuntimeError), fs.atomic_writer(target, backup=True) as handle:
        handle.write(b"half")
        raise RuntimeError("boom")
    assert (read(target), read(backup)) == ("old", "older")
    as_they_were, backed_up = ("old", "older"), ("old", "old")
    expected = {"fs.write": as_they_were, "fs.fsync": as_they_were, "fs.link": as_they_were,
                "fs.replace": as_they_were, "fs.fsync_dir": backed_up,
                "fs.replace 2": backed_up, "fs.fsync_dir 2": ("new", "old")}
    for nth, step in enumerate(expected, 1):
        reset()
        injector = FaultInjector()
        injector.add(FaultConfig(target="fs.*", exception=OSError(errno.EIO, "I/O"), nth=nth))
        with (injector.installed(), contextlib.suppress(OSError),
              fs.atomic_writer(target, backup=True) as handle):
            handle.write(b"new")
        assert [event.target for event in injector.events] == [step.split()[0]]
        assert (read(target), read(backup)) == expected[step], step
        assert sorted(os.listdir(tmp_path)) == ["f.csv", "f.csv.bak"]
    reset()
    injector = FaultInjector()  # one step more than there are: none fails
    injector.add(FaultConfig(target="fs.*", exception=OSError(errno.EIO, "I/O"),
                             nth=len(expected) + 1))
    with injector.installed(), fs.atomic_writer(target, backup=True) as handle:
        handle.write(b"new")
    assert injector.events == [] and (read(target), read(backup)) == ("new", "old")


def test_rename_noreplace_refuses_existing(tmp_path: Path) -> None:
    src, dst = write(tmp_path / "a", "a"), write(tmp_path / "b", "b")
    with pytest.raises(FileExistsError):
        fs.rename_noreplace(src, dst)
    assert read(src) == "a" and read(dst) == "b"
    os.unlink(dst)
    fs.rename_noreplace(src, dst)
    assert not os.path.exists(src) and read(dst) == "a"


def test_rename_noreplace_moves_folders(tmp_path: Path) -> None:
    write(tmp_path / "d" / "x", "x")
    fs.rename_noreplace(str(tmp_path / "d"), str(tmp_path / "e"))
    assert (tmp_path / "e" / "x").read_text() == "x"


def test_makedirs_and_mkdir(tmp_path: Path) -> None:
    fs.makedirs(str(tmp_path / "a" / "b" / "c"))
    assert (tmp_path / "a" / "b" / "c").is_dir()
    assert fs.mkdir(str(tmp_path / "a")) is False
    write(tmp_path / "file", "")
    with pytest.raises(NotADirectoryError):
        fs.mkdir(str(tmp_path / "file"))


def test_rmtree_removes_links_not_their_targets(tmp_path: Path) -> None:
    keep = write(tmp_path / "keep" / "precious", "keep me")
    write(tmp_path / "doomed" / "x", "x")
    os.symlink(tmp_path / "keep", tmp_path / "doomed" / "link")
    fs.rmtree(str(tmp_path / "doomed"))
    fs.rmtree(str(tmp_path / "absent"))
    assert not (tmp_path / "doomed").exists()
    assert read(keep) == "keep me"


def test_append_file_is_idempotent(tmp_path: Path) -> None:
    dest = write(tmp_path / "dest.csv", "h\n1\n")
    staged = write(tmp_path / "staged", "2\n3\n")
    size = os.path.getsize(dest)
    for _ in range(3):  # as if a crash made recovery run it again and again
        fs.append_file(dest, staged, size)
    assert read(dest) == "h\n1\n2\n3\n"


def test_append_file_completes_a_torn_append(tmp_path: Path) -> None:
    dest = write(tmp_path / "dest.csv", "h\n1\n")
    staged = write(tmp_path / "staged", "2\n3\n")
    size = os.path.getsize(dest)
    with open(dest, "a") as handle:
        handle.write("2\n")  # a crash cut the first attempt half-way
    fs.append_file(dest, staged, size)
    assert read(dest) == "h\n1\n2\n3\n"


def test_copy_tree_keeps_content_modes_and_mtimes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    path = write(src / "sub" / "f.txt", "data")
    os.chmod(path, 0o600)
    os.utime(path, (1_500_000_000, 1_500_000_000))
    os.symlink("f.txt", src / "sub" / "link")
    fs.copy_tree(str(src), str(tmp_path / "dst"))
    copied = tmp_path / "dst" / "sub" / "f.txt"
    assert copied.read_text() == "data"
    assert os.stat(copied).st_mtime == 1_500_000_000
    assert os.stat(copied).st_mode & 0o777 == 0o600
    assert os.readlink(tmp_path / "dst" / "sub" / "link") == "f.txt"


def test_move_on_one_filesystem(tmp_path: Path) -> None:
    src = write(tmp_path / "a" / "f", "x")
    (tmp_path / "b").mkdir()
    fs.move(src, str(tmp_path / "b" / "f"))
    assert (tmp_path / "b" / "f").read_text() == "x" and not os.path.exists(src)


def test_move_refuses_to_clobber_unless_told(tmp_path: Path) -> None:
    src, dst = write(tmp_path / "a", "new"), write(tmp_path / "b", "old")
    with pytest.raises(FileExistsError):
        fs.move(src, dst)
    fs.move(src, dst, overwrite=True)
    assert read(dst) == "new"


def test_move_across_devices_copies_then_removes(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    src = write(tmp_path / "disk1" / "tree" / "f.csv", "rows\n")
    os.utime(src, (1_400_000_000, 1_400_000_000))
    (tmp_path / "disk2").mkdir()
    refused = fake_devices(monkeypatch, tmp_path / "disk1", tmp_path / "disk2")
    fs.move(str(tmp_path / "disk1" / "tree"), str(tmp_path / "disk2" / "tree"))
    assert refused, "the EXDEV path was not taken"
    moved = tmp_path / "disk2" / "tree" / "f.csv"
    assert moved.read_text() == "rows\n" and os.stat(moved).st_mtime == 1_400_000_000
    assert os.listdir(tmp_path / "disk1") == []
    assert os.listdir(tmp_path / "disk2") == ["tree"]


def test_move_across_devices_failure_keeps_source(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    src = write(tmp_path / "disk1" / "f.csv", "rows\n")
    (tmp_path / "disk2").mkdir()
    fake_devices(monkeypatch, tmp_path / "disk1", tmp_path / "disk2")
    real_copy = fs.copy_file

    def full_disk(a: str, b: str) -> None:
        raise OSError(28, "No space left on device", b)

    monkeypatch.setattr(fs, "copy_file", full_disk)
    with pytest.raises(OSError, match="No space"):
        fs.move(src, str(tmp_path / "disk2" / "f.csv"))
    monkeypatch.setattr(fs, "copy_file", real_copy)
    assert read(src) == "rows\n"
    assert os.listdir(tmp_path / "disk2") == []


def test_real_second_filesystem(tmp_path: Path, other_fs: Path) -> None:
    src = write(tmp_path / "f.csv", "rows\n")
    fs.move(src, str(other_fs / "f.csv"))
    assert (other_fs / "f.csv").read_text() == "rows\n" and not os.path.exists(src)
    assert os.listdir(other_fs) == ["f.csv"]


def test_an_append_replayed_after_later_appends_is_refused(tmp_path: Path) -> None:
    """Putting back a set-aside intent must not cut off what was appended since."""
    dest = write(tmp_path / "finished.csv", "id\r\n1\r\n")
    staged = write(tmp_path / "staged.csv", "2\r\n")
    at = os.path.getsize(dest)
    fs.append_file(dest, staged, at)
    fs.append_file(dest, staged, at)  # replayed after a crash: the same result
    assert Path(dest).read_bytes() == b"id\r\n1\r\n2\r\n"
    with open(dest, "a", encoding="utf-8", newline="") as later:
        later.write("3\r\n")  # a later import's rows
    with pytest.raises(OSError, match="grown by later changes"):
        fs.append_file(dest, staged, at)
    assert Path(dest).read_bytes() == b"id\r\n1\r\n2\r\n3\r\n"


def test_an_append_replayed_after_a_shorter_later_append_is_refused(tmp_path: Path) -> None:
    dest = write(tmp_path / "finished.csv", "h\n1\n")
    at = os.path.getsize(dest)
    with open(dest, "a", encoding="utf-8", newline="") as later:
        later.write("9\n")  # a later import's row, shorter than the staged rows
    staged = write(tmp_path / "staged.csv", "2\n3\n4\n")
    with pytest.raises(OSError, match="grown by later changes"):
        fs.append_file(dest, staged, at)
    assert Path(dest).read_bytes() == b"h\n1\n9\n"


def test_an_append_cut_short_by_a_crash_is_finished(tmp_path: Path) -> None:
    dest = write(tmp_path / "finished.csv", "h\n1\n")
    at = os.path.getsize(dest)
    staged = write(tmp_path / "staged.csv", "2\n3\n")
    with open(dest, "a", encoding="utf-8", newline="") as torn:
        torn.write("2\n3")  # the crash came in the middle of the copy
    fs.append_file(dest, staged, at)
    assert Path(dest).read_bytes() == b"h\n1\n2\n3\n"
