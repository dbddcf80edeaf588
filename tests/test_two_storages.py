"""Two storages sharing one record store (SQLite and PostgreSQL).

Each storage files its own committed imports only: the ledger's rows say
which storage committed them, and one storage's recovery or import never
marks the other's unfiled jobs filed (their files would be imported again).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from helpers import drop, make_importer

from datacenter.storage import layout


def test_a_storage_never_files_away_the_unfiled_imports_of_another(
        tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    second = make_importer(tmp_path / "s2", database=database)
    finished = os.path.join(second.dc.storage, layout.FINISHED)
    real_replace = os.replace

    def replace(src: str, dst: str, *args: object, **kwargs: object) -> None:
        if os.path.dirname(dst) == finished:
            raise OSError(errno.EIO, "Input/output error", dst)
        real_replace(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    try:
        drop(second, "faculties.csv", "code,title\nF1,Science\n")
        second.import_file(os.path.join(second.dc.storage, "faculties.csv"))
    except OSError:
        pass  # committed, not filed: its filing failed
    finally:
        monkeypatch.setattr(os, "replace", real_replace)
    assert [j.source for j in second.store.jobs(undistributed=True)] == ["faculties.csv"]
    first = make_importer(tmp_path / "s1", database=database)  # opening it recovers
    try:
        drop(first, "faculties.csv", "code,title\nF2,Arts\n")
        assert first.import_file(os.path.join(first.dc.storage, "faculties.csv")).ok == 1
        first.file_unfiled()
        assert [j.source for j in second.store.jobs(undistributed=True)] == ["faculties.csv"]
    finally:
        first.close()
    second.file_unfiled()
    assert second.store.jobs(undistributed=True) == []
    assert "faculties.create.finished.csv" in os.listdir(finished)
    assert not os.path.exists(os.path.join(second.dc.storage, "faculties.csv"))
    second.close()
