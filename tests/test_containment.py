"""One thing going wrong stays one thing: it neither spreads nor loses rows.

Each test comes from a review that found the opposite happening.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import make_importer, read, write

from datacenter import DataCenter
from datacenter.importing.csvinput import FatalCSVError
from datacenter.importing.importer import Importer, Request, UnfiledError
from datacenter.importing.processors import BatchProcessor
from datacenter.records.schema import SchemaError, load_processors
from datacenter.storage.journal import JournalError


def test_a_bug_in_one_file_fails_that_file_only(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    imp = make_importer(tmp_path)
    real = BatchProcessor.import_rows

    def buggy(self: BatchProcessor, path: str, *args: object, **kwargs: object) -> object:
        if "bug" in os.path.basename(path):
            raise KeyError("a bug in a processor")
        return real(self, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(BatchProcessor, "import_rows", buggy)
    names = ["faculties_a.csv", "faculties_bug.csv", "faculties_c.csv"]
    for n, name in enumerate(names):
        write(os.path.join(imp.dc.storage, name), f"code,title\nF{n},Faculty {n}\n")
    results = imp.import_many([Request(os.path.join(imp.dc.storage, n)) for n in names])
    assert isinstance(results[1], KeyError)
    assert [r.ok for r in (results[0], results[2])] == [1, 1]  # type: ignore[union-attr]
    assert imp.store.count("faculties") == 2
    assert os.path.exists(os.path.join(imp.dc.storage, "faculties_bug.csv"))


def test_a_job_that_cannot_be_filed_holds_up_nothing_and_imports_once(tmp_path: Path) -> None:
    imp = make_importer(tmp_path)
    blocker = os.path.join(imp.dc.finished_path, "faculties_x.create.finished.csv")
    os.mkdir(blocker)  # filing x's finished rows there must fail
    write(os.path.join(blocker, "keep"), "")
    x = write(os.path.join(imp.dc.storage, "faculties_x.csv"), "code,title\nX1,Science\n")
    y = write(os.path.join(imp.dc.storage, "faculties_y.csv"), "code,title\nY1,Arts\n")
    assert imp.import_file(y).ok == 1  # not held up by anything
    results = imp.import_many([Request(x)])
    assert imp.store.count("faculties") == 2  # x's rows committed ...
    assert os.path.exists(x)  # ... but x could not be filed away
    with pytest.raises(UnfiledError, match="imported already"):
        imp.import_file(x)  # never imported twice meanwhile
    assert Importer(imp.conf).store.count("faculties") == 2  # opening still works
    shutil.rmtree(blocker)
    assert Importer(imp.conf).recovered >= 1  # filed away once the obstacle is gone
    assert not os.path.exists(x) and imp.store.count("faculties") == 2
    assert results


def test_both_pending_outputs_are_kept(tmp_path: Path) -> None:
    """x.csv and x.create.pending.csv imported together: no failed row is lost."""
    imp = make_importer(tmp_path)
    root = imp.dc.storage
    write(os.path.join(root, "faculties.csv"), "code,title\nF1,Science\nF2,\n")
    assert imp.import_file(os.path.join(root, "faculties.csv")).failed == 1
    write(os.path.join(root, "faculties_more.csv"), "code,title\nF3,\n")
    pending = os.path.join(root, "faculties.create.pending.csv")
    write(pending, "code,title,--ERRORS--\nF2,,title: required value missing\nF4,,x\n")
    write(os.path.join(root, "faculties.csv"), "code,title\nF5,\n")  # dropped again
    imp.import_many([Request(os.path.join(root, "faculties.csv")), Request(pending)])
    codes = [line.split(",")[0] for line in read(pending).splitlines()[1:]]
    assert sorted(codes) == ["F2", "F4", "F5"]


def test_a_storage_moved_by_hand_after_a_crash_is_not_half_recovered(tmp_path: Path) -> None:
    from datacenter.testing.crashpoints import run_child

    old = str(tmp_path / "s1")
    outside = tmp_path / "out"
    dc = DataCenter(old)
    src = write(os.path.join(old, "x.csv"), "id\n1\n")
    fin = write(outside / "fin.csv", "id\n1\n")
    # Find a crash point after the commit: the intent is there, not yet applied.
    for point in range(1, 200):
        shutil.rmtree(tmp_path)
        DataCenter(old)
        write(src, "id\n1\n")
        write(fin, "id\n1\n")
        run_child(lambda: DataCenter(old).distProcessedFiles(True, src, fin, None), point)
        journal = os.listdir(os.path.join(old, ".datacenter", "journal"))
        if any(name.endswith(".json") for name in journal):
            break
    os.rename(old, str(tmp_path / "s2"))
    with pytest.raises(JournalError, match="moved by hand"):
        DataCenter(str(tmp_path / "s2"))
    assert os.path.exists(fin)  # nothing was half-done meanwhile
    os.rename(str(tmp_path / "s2"), old)
    DataCenter(old)  # back in place: finished
    assert os.path.exists(os.path.join(old, "finished", "x.csv"))
    assert dc is not None


def test_a_composite_key_parent_is_refused_when_loading() -> None:
    with pytest.raises(SchemaError, match="whose key has 2 fields"):
        load_processors({
            "terms": {"key": ["year", "term"], "fields": {"year": "int", "term": "str"}},
            "courses": {"key": ["code"], "fields": {"code": "str", "term": "str"},
                        "parents": {"term": "terms"}},
        })


def test_fatal_files_in_a_batch_leave_the_others_alone(tmp_path: Path) -> None:
    imp = make_importer(tmp_path)
    good = write(os.path.join(imp.dc.storage, "faculties_a.csv"), "code,title\nA,Arts\n")
    bad = write(os.path.join(imp.dc.storage, "faculties_b.csv"), "code,title\nB,\"open\n")
    results = imp.import_many([Request(bad), Request(good)])
    assert isinstance(results[0], FatalCSVError) and results[1].ok == 1  # type: ignore[union-attr]
    assert os.path.exists(bad)
