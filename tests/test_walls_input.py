"""What a dropped file can do to the importer: wide headers, endless lines ("Walls that hold").

No test here measures time. Work that must be linear is counted
(comparisons of header names), or done at a size where quadratic work
would take minutes: the suite would be visibly stuck, not flaky.
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from datacenter import config
from datacenter.config import Config, ConfigError
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


# -- an endless line ----------------------------------------------------------------------------

LIMITED = """
storage = "storage"
database = "db.sqlite"

[import]
max_line_bytes = 1048576

[processors.faculties]
key = ["code"]
fields = { code = "str", title = "str" }
"""


def limited_importer(tmp_path: Path) -> Importer:
    path = tmp_path / "datacenter.toml"
    path.write_text(LIMITED)
    conf = config.load(str(path))
    assert conf.imports.max_line_bytes == 1 << 20
    return Importer(conf)


def test_a_line_longer_than_the_limit_is_refused_naming_file_line_and_limit(
        tmp_path: Path) -> None:
    imp = limited_importer(tmp_path)
    endless = at_root(imp, "faculties_endless.csv",
                      b"code,title\nF1,fine\nF2," + b"x" * (20 << 20))  # no newline at all
    tracemalloc.start()
    try:
        with pytest.raises(FatalCSVError) as caught:
            imp.import_file(endless)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        "faculties_endless.csv: line 3: a row longer than 1,048,576 bytes "
        "(the limit is max_line_bytes in the config's [import] table)")
    assert peak < 4 << 20  # a few times the limit, not the 20 MiB line (let alone 6 GB)
    assert imp.store.count("faculties") == 0 and imp.recent_jobs(10) == []
    assert os.path.getsize(endless) > 20 << 20  # left where it is, untouched


def test_a_quoted_cell_over_many_lines_counts_as_one_row(tmp_path: Path) -> None:
    imp = limited_importer(tmp_path)
    cell = b"".join(b"%07d short line\n" % n for n in range(100_000))  # 2 MB in one cell
    spread = at_root(imp, "faculties_spread.csv", b'code,title\nF1,"' + cell + b'"\n')
    with pytest.raises(FatalCSVError, match=r"^faculties_spread\.csv: line 2: a row longer "
                                            r"than 1,048,576 bytes"):
        imp.import_file(spread)
    fits = at_root(imp, "faculties_fits.csv",
                   b'code,title\nF1,"' + cell[:(1 << 20) - 100] + b'"\nF2,x\n')
    assert imp.import_file(fits).ok == 2  # just under the limit: imported


@pytest.mark.parametrize(("table", "message"), [
    ("[import]\nmax_line_bytes = true\n", "[import]: max_line_bytes must be a whole number "
                                          "of bytes (1 or more), not True"),
    ("[import]\nmax_line_bytes = 0\n", "[import]: max_line_bytes must be a whole number"),
    ("[import]\nmax_line_bytes = '16M'\n", "not '16M'"),
    ("[import]\nmax_lines_bytes = 10\n", "[import]: unknown key 'max_lines_bytes'"),
    ("import = 5\n", "import must be a table ([import]), not 5"),
])
def test_the_import_table_is_checked_at_load(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "datacenter.toml"
    path.write_text(table)
    with pytest.raises(ConfigError) as caught:
        config.load(str(path))
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_without_an_import_table_the_limit_is_generous() -> None:
    assert config.parse({}, "/x/datacenter.toml").imports.max_line_bytes == 16 << 20
