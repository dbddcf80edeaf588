"""The DataCenter storage API: folders, listings, file wrappers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from helpers import write

from datacenter import DataCenter, DataCenterFile, IDataCenter
from datacenter.storage.files import human_size


def test_new_storage_has_every_folder(dc: DataCenter) -> None:
    names = sorted(os.listdir(dc.storage))
    assert names == [".datacenter", "deleted", "finished", "graduated", "logs", "unfinished"]
    assert dc.deleted_path == os.path.join(dc.storage, "deleted")
    assert dc.graduated_path == os.path.join(dc.storage, "graduated")
    assert os.path.isabs(dc.storage)


def test_default_storage_comes_from_the_environment(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATACENTER_STORAGE", str(tmp_path / "env-storage"))
    assert DataCenter().storage == str(tmp_path / "env-storage")
    monkeypatch.delenv("DATACENTER_STORAGE")
    other = DataCenter()
    assert other.storage != str(tmp_path / "env-storage")
    assert os.path.isdir(os.path.join(other.storage, "finished"))


def test_storage_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "afile", "x")
    with pytest.raises(ValueError, match="afile"):
        DataCenter(path)


def test_relative_storage_becomes_absolute(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert DataCenter("storage").storage == str(tmp_path / "storage")


def test_protocol_is_runtime_checkable(dc: DataCenter) -> None:
    assert isinstance(dc, IDataCenter)
    assert not isinstance(object(), IDataCenter)


def test_pending_files_are_regular_csv_files_only(dc: DataCenter, tmp_path: Path) -> None:
    root = dc.storage
    write(os.path.join(root, "b.csv"), "x\n")
    write(os.path.join(root, "A.CSV"), "x\n")
    write(os.path.join(root, "notes.txt"), "x\n")
    write(os.path.join(root, ".hidden.csv"), "x\n")
    os.mkdir(os.path.join(root, "folder.csv"))
    outside = write(tmp_path / "secret.csv", "secret\n")
    os.symlink(outside, os.path.join(root, "link.csv"))
    assert [f.name for f in dc.getPendingFiles()] == ["A.CSV", "b.csv"]


def test_names_with_spaces_and_non_ascii_letters(dc: DataCenter) -> None:
    for name in ("résumé des notes.csv", "学生.csv"):
        write(os.path.join(dc.storage, name), "a,b\n1,2\n")
    files = dc.getPendingFiles()
    assert sorted(f.name for f in files) == ["résumé des notes.csv", "学生.csv"]
    assert all(f.getLinesNumber() == 2 for f in files)


def test_pending_files_sorted_by_date_newest_first(dc: DataCenter) -> None:
    for n, name in enumerate(["old.csv", "new.csv", "mid.csv"]):
        path = write(os.path.join(dc.storage, name), "x\n")
        stamp = time.time() - 1000 + {0: 0, 1: 500, 2: 250}[n]
        os.utime(path, (stamp, stamp))
    assert [f.name for f in dc.getPendingFiles(sort="date")] == ["new.csv", "mid.csv", "old.csv"]
    assert [f.name for f in dc.getPendingFiles()] == ["mid.csv", "new.csv", "old.csv"]


def test_unknown_sort_order_is_refused(dc: DataCenter) -> None:
    with pytest.raises(ValueError, match="sort"):
        dc.getPendingFiles(sort="size")  # type: ignore[arg-type]


def test_finished_files_newest_first_and_capped(dc: DataCenter) -> None:
    for n in range(5):
        path = write(os.path.join(dc.finished_path, f"f{n}.create.finished.csv"), "h\n")
        os.utime(path, (1000 + n, 1000 + n))
    write(os.path.join(dc.finished_path, "f0.csv"), "source\n")
    dc.max_files = 3
    assert [f.name for f in dc.getFinishedFiles()] == [
        "f4.create.finished.csv", "f3.create.finished.csv", "f2.create.finished.csv"]
    assert all(f.rel_path.startswith("finished/") for f in dc.getFinishedFiles())


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 bytes"), (13, "13 bytes"), (1023, "1023 bytes"), (1024, "1.00 kb"),
    (1536, "1.50 kb"), (2 * 1024**2, "2.00 MB"), (1024**3, "1.00 GB"),
])
def test_sizes_read_like_kofa(size: int, text: str) -> None:
    assert human_size(size) == text


def test_file_wrapper_reads_nothing_until_asked(dc: DataCenter,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(os.path.join(dc.storage, "data.csv"), "Some Content\nmore")
    os.utime(path, (86400 * 365 * 50, 86400 * 365 * 50))
    opened: list[str] = []
    real_open = open

    def spy(file: object, *args: object, **kwargs: object) -> object:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", spy)
    datafile = dc.getPendingFiles()[0]
    assert datafile.getSize() == "17 bytes" and datafile.size == "17 bytes"
    assert datafile.getTimeStamp() == 86400 * 365 * 50
    assert len(datafile.getDate()) == 19 and datafile.uploaddate == datafile.getDate()
    assert opened == []
    assert datafile.lines == 2  # the last line has no newline, and still counts
    assert opened == [path]


def test_data_center_file_repr_is_kofa_like(dc: DataCenter) -> None:
    write(os.path.join(dc.storage, "x.csv"), "")
    kofa_like = "<datacenter.storage.files.DataCenterFile object at 0x"
    assert repr(dc.getPendingFiles()[0]).startswith(kofa_like)
    assert isinstance(dc.getPendingFiles()[0], DataCenterFile)


def test_list_files_of_each_folder(dc: DataCenter) -> None:
    write(os.path.join(dc.deleted_path, "students.csv"), "a\n")
    write(os.path.join(dc.unfinished_path, "x.csv"), "a\n")
    assert [f.rel_path for f in dc.list_files("deleted")] == ["deleted/students.csv"]
    assert [f.name for f in dc.list_files("unfinished")] == ["x.csv"]
    with pytest.raises(ValueError, match="unknown folder"):
        dc.list_files("../etc")


def test_missing_subfolder_is_recreated_on_open(dc: DataCenter) -> None:
    os.rmdir(dc.graduated_path)
    assert dc.getPendingFiles() == []
    DataCenter(dc.storage)
    assert os.path.isdir(dc.graduated_path)


def test_opening_sweeps_temporaries_of_interrupted_writes(dc: DataCenter) -> None:
    write(os.path.join(dc.storage, ".dc-tmp-0123456789ab.part"), "half a fi")
    write(os.path.join(dc.finished_path, ".dc-tmp-ba9876543210"), "torn")
    write(os.path.join(dc.storage, ".keep-me"), "a user's hidden file")
    DataCenter(dc.storage)
    assert sorted(os.listdir(dc.storage))[:2] == [".datacenter", ".keep-me"]
    assert os.listdir(dc.finished_path) == []
