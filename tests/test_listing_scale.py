"""``ls`` and ``status`` on a big folder: paged, streamed, counted without objects.

A folder of 20,000 files is quick to make and big enough to see the shape:
a page costs an object per file of the page only, ``status`` none at all,
and a whole listing is sorted in packed runs (made small here, so that the
merge of many runs is what is tested). The figure for a million files is
``benchmarks/bench_listing.py``'s, not a timed test's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacenter import DataCenter
from datacenter.cli.main import main
from datacenter.storage import files, paging, view

COUNT = 20_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A storage whose finished/ holds COUNT files, their mtimes in reverse name order."""
    storage = DataCenter(str(tmp_path_factory.mktemp("big") / "storage")).storage
    folder = os.path.join(storage, "finished")
    for n in range(COUNT):
        path = os.path.join(folder, f"f{(n * 7919) % COUNT:05d}.create.finished.csv")
        with open(path, "w") as handle:
            handle.write("id\n1\n")
    for n, name in enumerate(sorted(os.listdir(folder))):
        os.utime(os.path.join(folder, name), (1_000_000 + COUNT - n, 1_000_000 + COUNT - n))
    os.symlink("/etc/passwd", os.path.join(folder, "planted.create.finished.csv"))
    os.mkdir(os.path.join(folder, "a-folder"))
    with open(os.path.join(folder, ".hidden"), "w") as handle:
        handle.write("x")
    return storage


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the DataCenterFile objects a listing makes (their names)."""
    names: list[str] = []

    class Counted(files.DataCenterFile):
        def __init__(self, path: str, folder_name: str = "",
                     stat: os.stat_result | None = None) -> None:
            names.append(os.path.basename(path))
            super().__init__(path, folder_name, stat)

    monkeypatch.setattr(view, "DataCenterFile", Counted)
    return names


def names_sorted(storage: str) -> list[str]:
    folder = os.path.join(storage, "finished")
    return sorted(n for n in os.listdir(folder)
                  if not n.startswith(".") and os.path.isfile(os.path.join(folder, n))
                  and not os.path.islink(os.path.join(folder, n)))


def run(capsys: pytest.CaptureFixture[str], storage: str, *args: str) -> str:
    assert main(["--storage", storage, *args]) == 0
    return capsys.readouterr().out


def listed(out: str) -> list[str]:
    return [line.split()[-1] for line in out.splitlines()]


def test_ls_pages_by_name(big: str, capsys: pytest.CaptureFixture[str],
                          made: list[str]) -> None:
    every = names_sorted(big)
    assert len(every) == COUNT
    out = run(capsys, big, "ls", "finished", "--limit", "25", "--offset", "19990")
    assert listed(out) == every[19990:]  # the last page is short
    out = run(capsys, big, "ls", "finished", "--limit", "3")
    assert listed(out) == every[:3]
    assert len(made) == 10 + 3  # one object per file shown, none per file of the folder


def test_ls_pages_by_date_newest_first(big: str, capsys: pytest.CaptureFixture[str]) -> None:
    every = names_sorted(big)  # the first name is the newest
    out = run(capsys, big, "ls", "finished", "--sort", "date", "--limit", "4", "--offset", "2")
    assert listed(out) == every[2:6]
    page = json.loads(run(capsys, big, "ls", "finished", "--sort", "date", "--json",
                          "--offset", str(COUNT - 2)))
    assert [f["name"] for f in page] == every[-2:]


def test_pages_beyond_a_run_are_merged_from_runs(big: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(paging, "RUN", 997)  # 21 runs of packed names, merged
    monkeypatch.setattr(paging, "HEAP", 1000)  # pages longer than that come from the runs
    every = names_sorted(big)
    assert [f.name for f in view.iter_files(big, "finished")] == every
    assert [f.name for f in view.iter_files(big, "finished", offset=5000, limit=1500)] == \
        every[5000:6500]
    assert [f.name for f in view.iter_files(big, "finished", "date", 4000, 3000)] == \
        every[4000:7000]
    out = json.loads(run(capsys, big, "ls", "finished", "--json", "--offset", "19000"))
    assert [f["name"] for f in out] == every[19000:]


def test_status_counts_without_listing(big: str, capsys: pytest.CaptureFixture[str],
                                       made: list[str]) -> None:
    report = json.loads(run(capsys, big, "status", "--json"))
    assert report["files"]["finished"] == COUNT
    assert report["finished_files"] == 100  # what getFinishedFiles lists: at most max_files
    assert made == []


def test_ls_streams_its_json(big: str, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """The first item is printed before the last file object exists."""
    printed_before_last: list[bool] = []
    real = view.iter_files

    def watched(*args: object, **kwargs: object) -> Iterator[files.DataCenterFile]:
        for n, item in enumerate(real(*args, **kwargs)):  # type: ignore[arg-type]
            if n == 2:
                printed_before_last.append('"name"' in capsys.readouterr().out)
            yield item

    monkeypatch.setattr(view, "iter_files", watched)
    assert main(["--storage", big, "ls", "finished", "--json", "--limit", "3"]) == 0
    assert printed_before_last == [True]


def test_paging_arguments_are_checked(big: str) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        list(view.iter_files(big, "finished", offset=-1))
    with pytest.raises(SystemExit):
        main(["--storage", big, "ls", "--limit", "-3"])


def test_a_small_folder_lists_as_before(tmp_path: Path) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    for name, when in (("b.csv", 3), ("a.csv", 1), ("c.csv", 2), ("note.txt", 4)):
        Path(dc.storage, name).write_text("x\n")
        os.utime(os.path.join(dc.storage, name), (when, when))
    assert [f.name for f in dc.getPendingFiles()] == ["a.csv", "b.csv", "c.csv"]
    assert [f.name for f in dc.getPendingFiles(sort="date")] == ["b.csv", "c.csv", "a.csv"]
    assert list(view.iter_files(dc.storage, limit=0)) == []
    assert view.count_files(dc.storage) == [3]
    assert view.count_files(dc.storage, "pending", "b.csv", ".txt") == [3, 1, 0]


def test_status_pages_the_last_imports(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "datacenter.toml"
    conf.write_text('storage = "storage"\ndatabase = "db.sqlite"\n'
                    '[processors.faculties]\nkey = ["code"]\nfields = { code = "str" }\n')
    (tmp_path / "storage").mkdir()  # made, as `init` would
    for n in range(4):
        Path(tmp_path, f"faculties_{n}.csv").write_text(f"code\nF{n}\n")
        assert main(["--config", str(conf), "import", str(tmp_path / f"faculties_{n}.csv")]) == 0
    capsys.readouterr()

    def sources(*args: str) -> list[str]:
        assert main(["--config", str(conf), "status", "--json", *args]) == 0
        return [job["source"] for job in json.loads(capsys.readouterr().out)["last_imports"]]

    assert sources() == [f"faculties_{n}.csv" for n in (3, 2, 1, 0)]
    assert sources("--limit", "2", "--offset", "1") == ["faculties_2.csv", "faculties_1.csv"]
    assert sources("--offset", "3") == ["faculties_0.csv"]
