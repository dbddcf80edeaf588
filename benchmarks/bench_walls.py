"""What a hostile file costs the importer: a wide header, an endless line.

Targets: the header check of 100,000 columns costs at most twice building
a set of their names (it was quadratic: about 3.5 minutes), and importing
a 100,000-column file is shown beside reading it with the csv module. A
file of one endless line (no newline) is refused with a peak memory of a
few times ``[import] max_line_bytes`` (16 MiB), within the 150 MB target
(a 1 GiB line took 6.2 GB before the limit).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile

from benchmarks._common import median_seconds, row, timed
from datacenter.config import Config
from datacenter.importing.importer import Importer

COLUMNS = int(os.environ.get("BENCH_WIDE_COLUMNS", "100000"))
ENDLESS_MB = int(os.environ.get("BENCH_ENDLESS_MB", "256"))
FACULTIES = {"faculties": {"key": ["code"], "fields": {"code": "str", "title": "str"}}}


def header(columns: int) -> list[str]:
    return ["code", "title", *(f"c{n}" for n in range(2, columns))]


def write_wide(path: str, columns: int) -> None:
    cells = ["F1", "Faculty one", *("x" for _ in range(2, columns))]
    with open(path, "w", newline="") as handle:
        handle.write(",".join(header(columns)) + "\n" + ",".join(cells) + "\n")


_CHILD = """
import resource, sys
from datacenter.config import Config
from datacenter.importing.csvinput import FatalCSVError
from datacenter.importing.importer import Importer
conf = Config(path=None, storage=sys.argv[1], database=sys.argv[2],
              processors={"faculties": {"key": ["code"], "fields": {"code": "str"}}})
try:
    Importer(conf).import_file(sys.argv[3])
except FatalCSVError as error:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, error)
"""


def endless_line(work: str, storage: str) -> None:
    """Refuse a file of one endless line, in a fresh process: its peak is the import's."""
    source = os.path.join(storage, "faculties_endless.csv")
    with open(source, "wb") as handle:
        handle.write(b"code\n")
        for _ in range(ENDLESS_MB):
            handle.write(b"x" * (1 << 20))
    done = subprocess.run([sys.executable, "-c", _CHILD, storage,
                           os.path.join(work, "endless.sqlite"), source],
                          capture_output=True, text=True, check=True)
    rss, _, message = done.stdout.partition(" ")
    row(f"refusing a {ENDLESS_MB} MiB line: peak RSS (target <= 150 MB)", f"{float(rss):.0f} MB")
    row("  said", message.strip()[:60])


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
        endless_line(work, conf.storage)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
