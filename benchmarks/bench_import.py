"""Importing a million rows vs the sqlite3 shell's ``.import`` of the same file.

Targets (DESIGN.md): create mode <= 2x the time of
``sqlite3 db ".import --csv file t"`` (which validates nothing), peak
memory <= 150 MB. Also update mode, and a file with 10 % failing rows.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile

from benchmarks._common import judged, row, timed

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "1000000"))
HEADER = "student_id,name,email,birthday,level,state\n"
STATES = ("admitted", "returning", "graduated")


def generate(path: str, rows: int, bad_every: int = 0, update: bool = False) -> None:
    rng = random.Random(7)
    with open(path, "w", newline="") as handle:
        handle.write(HEADER)
        for n in range(rows):
            level = "abc" if bad_every and n % bad_every == 0 else str(100 * rng.randint(1, 5))
            name = f"Student {n} Updated" if update else f"Student {n}"
            handle.write(f"S{n:07d},{name},s{n}@example.org,"
                         f"{2000 + n % 7}-{1 + n % 12:02d}-{1 + n % 28:02d},{level},"
                         f"{STATES[n % 3]}\n")


_CHILD = """
import resource, sys, time
from datacenter import config
from datacenter.importing.importer import Importer
conf = config.load(sys.argv[1])
importer = Importer(conf)
started = time.perf_counter()
outcome = importer.import_file(sys.argv[2], mode=sys.argv[3])
print(time.perf_counter() - started, outcome.ok, outcome.failed,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def run_import(conf_path: str, source: str, mode: str) -> tuple[float, int, int, float]:
    """Import in a fresh process, so its peak memory is the import's own."""
    done = subprocess.run([sys.executable, "-c", _CHILD, conf_path, source, mode],
                          capture_output=True, text=True, check=True)
    seconds, ok, failed, rss = done.stdout.split()
    return float(seconds), int(ok), int(failed), float(rss)


def main() -> None:
    work = tempfile.mkdtemp(prefix="dc-bench-")
    try:
        # The example config: storage/ and records.sqlite beside it, in work.
        conf_path = os.path.join(work, "datacenter.toml")
        shutil.copy(os.path.join(os.path.dirname(__file__), "..", "datacenter.toml"), conf_path)
        data = os.path.join(work, "data.csv")
        generate(data, ROWS)
        size = os.path.getsize(data) / 2**20
        reference_db = os.path.join(work, "reference.sqlite")
        reference = timed(lambda: subprocess.run(
            ["sqlite3", reference_db, ".import --csv " + data + " t"], check=True))
        storage = os.path.join(work, "storage")
        os.makedirs(storage)
        shutil.copy(data, os.path.join(storage, "students.csv"))
        seconds, ok, failed, rss = run_import(conf_path, os.path.join(storage, "students.csv"),
                                              "create")
        assert ok == ROWS and failed == 0
        row(f"{ROWS:,} rows ({size:.0f} MB), 6 typed columns: sqlite3 .import",
            f"{reference:.2f} s")
        row("datacenter import, create mode", f"{seconds:.2f} s")
        row("ratio (target <= 2x)", judged(seconds / reference, 2, f"{seconds / reference:.2f}x"))
        row("peak RSS of the import (target <= 150 MB)", f"{rss:.0f} MB")
        generate(os.path.join(storage, "students.update.csv"), ROWS, update=True)
        seconds, ok, failed, rss = run_import(conf_path,
                                              os.path.join(storage, "students.update.csv"),
                                              "update")
        assert ok == ROWS
        row("the same rows again, update mode", f"{seconds:.2f} s ({seconds / reference:.2f}x)")
        bad = os.path.join(storage, "students_bad.csv")
        generate(bad, ROWS, bad_every=10)
        subprocess.run(["sqlite3", os.path.join(work, "records.sqlite"),
                        "DELETE FROM rec_students"], check=True)
        seconds, ok, failed, rss = run_import(conf_path, bad, "create")
        assert failed == ROWS // 10
        row("create mode with 10 % failing rows", f"{seconds:.2f} s ({seconds / reference:.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
