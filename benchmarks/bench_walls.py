"""What a hostile file costs the importer: a wide header.

Targets: the header check of 100,000 columns costs at most twice building
a set of their names (it was quadratic: about 3.5 minutes), and importing
a 100,000-column file is shown beside reading it with the csv module.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile

from benchmarks._common import median_seconds, row, timed
from datacenter.config import Config
from datacenter.importing.importer import Importer

COLUMNS = int(os.environ.get("BENCH_WIDE_COLUMNS", "100000"))
FACULTIES = {"faculties": {"key": ["code"], "fields": {"code": "str", "title": "str"}}}


def header(columns: int) -> list[str]:
    return ["code", "title", *(f"c{n}" for n in range(2, columns))]


def write_wide(path: str, columns: int) -> None:
    cells = ["F1", "Faculty one", *("x" for _ in range(2, columns))]
    with open(path, "w", newline="") as handle:
        handle.write(",".join(header(columns)) + "\n" + ",".join(cells) + "\n")


def main() -> None:
    work = tempfile.mkdtemp(prefix="dc-bench-walls-")
    try:
        conf = Config(path=None, storage=os.path.join(work, "storage"),
                      database=os.path.join(work, "db.sqlite"), processors=dict(FACULTIES))
        importer = Importer(conf)
        processor = importer.processor("faculties")
        names = header(COLUMNS)
        least = median_seconds(lambda: set(names))  # what any doubles check must do
        check = median_seconds(lambda: processor.checkHeaders(names, "create"))
        row(f"a set of {COLUMNS:,} column names (the reference)", f"{least * 1000:.1f} ms")
        row(f"header check of {COLUMNS:,} columns (target <= 2x)",
            f"{check * 1000:.1f} ms ({check / least:.1f}x)")
        source = os.path.join(conf.storage, "faculties_wide.csv")
        write_wide(source, COLUMNS)
        with open(source, newline="") as handle:
            reference = timed(lambda: list(csv.reader(handle)))
        seconds = timed(lambda: importer.import_file(source))
        row(f"csv.reader of a {COLUMNS:,}-column file", f"{reference * 1000:.0f} ms")
        row("datacenter import of it", f"{seconds * 1000:.0f} ms "
            f"({seconds / reference:.0f}x)")
        importer.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
