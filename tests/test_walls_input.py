"""What a dropped file can do to the importer: wide headers, endless lines ("Walls that hold").

No test here measures time. Work that must be linear is counted
(comparisons of header names), or done at a size where quadratic work
would take minutes: the suite would be visibly stuck, not flaky.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datacenter.config import Config
from datacenter.importing.csvinput import FatalCSVError
from datacenter.importing.importer import Importer
from datacenter.importing.processors import BatchProcessor

FACULTIES = {"faculties": {"key": ["code"], "fields": {"code": "str", "title": "str"},
                           "required": ["title"]}}


def importer(tmp_path: Path, **settings: object) -> Importer:
    conf = Config(path=None, storage=str(tmp_path / "storage"),
                  database=str(tmp_path / "db.sqlite"), processors=dict(FACULTIES),
                  **settings)  # type: ignore[arg-type]
    return Importer(conf)


def at_root(imp: Importer, name: str, data: bytes) -> str:
    path = os.path.join(imp.storage, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


# -- a wide header ------------------------------------------------------------------------------


class Column(str):
    """A header name that counts how often it is compared with another."""

    comparisons = 0
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        Column.comparisons += 1
        return str.__eq__(self, other)


def test_the_header_check_compares_each_name_a_bounded_number_of_times(
        tmp_path: Path) -> None:
    imp = importer(tmp_path)
    processor: BatchProcessor = imp.processor("faculties")
    width = 2_000
    header = [Column(name) for name in ["code", "title", *(f"c{n}" for n in range(width))]]
    Column.comparisons = 0
    assert processor.checkHeaders(header, "create")
    assert Column.comparisons <= 4 * width  # quadratic: about width ** 2 = 4,000,000
    with pytest.raises(FatalCSVError, match=r"Double headers.*\(c7\)"):
        processor.checkHeaders([*header, Column("c7")], "create")


def wide(columns: int, extra: str = "") -> bytes:
    names = ["code", "title", *(f"c{n}" for n in range(2, columns)), *([extra] if extra else [])]
    cells = ["F1", "Faculty one", *("x" for _ in range(2, columns)), *(["y"] if extra else [])]
    return (",".join(names) + "\n" + ",".join(cells) + "\n").encode()


def test_a_100000_column_file_is_imported_and_a_doubled_one_rejected(tmp_path: Path) -> None:
    imp = importer(tmp_path)
    outcome = imp.import_file(at_root(imp, "faculties_wide.csv", wide(100_000)))
    assert (outcome.rows, outcome.ok) == (1, 1)
    finished = Path(imp.dc.finished_path, "faculties_wide.create.finished.csv").read_text()
    assert [len(line.split(",")) for line in finished.splitlines()] == [100_000, 100_000]
    # The same name again with one more column: the finished file's header is merged.
    again = wide(100_000, extra="more").replace(b"F1,", b"F2,")
    assert imp.import_file(at_root(imp, "faculties_wide.csv", again)).ok == 1
    finished = Path(imp.dc.finished_path, "faculties_wide.create.finished.csv").read_text()
    assert [len(line.split(",")) for line in finished.splitlines()] == [100_001] * 3
    doubled = at_root(imp, "faculties_doubled.csv", wide(100_000, extra="c99"))
    with pytest.raises(FatalCSVError, match=r"Double headers: .* \(c99\)"):
        imp.import_file(doubled)
    assert os.path.exists(doubled) and imp.store.count("faculties") == 2
