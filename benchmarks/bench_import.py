"""Importing a million rows vs the sqlite3 shell's ``.import`` into a keyed table.

Targets (issue 16, the columnar engine): create mode <= 1.5x the time of
``sqlite3 db ".import --csv --skip 1 file t"`` into a table keyed like the
processor's (which validates nothing), update mode and a file with 10 %
failing rows <= 2x, peak memory <= 150 MB and flat in the file's size.
Each import runs in a fresh process (its peak RSS is its own) and times
itself. Flatness is shown with 1M and 3M rows here (a 10M-row import
takes longer than ``make bench`` may; ``BENCH_IMPORT_ROWS=10000000
python -m benchmarks import`` measures it by hand).

Also the staging routes for the engine, on the same rows: ``executemany``
into a TEMP table on the store's own connection (the engine's: inside the
import's transaction) and an ADBC bulk ingest (which needs a connection of
its own, so it cannot join that transaction).
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
#: The larger file that shows the memory is flat (0: skip).
FLAT_ROWS = int(os.environ.get("BENCH_IMPORT_FLAT_ROWS", str(3 * ROWS)))
HEADER = "student_id,name,email,birthday,level,state\n"
STATES = ("admitted", "returning", "graduated")
KEYED = ("CREATE TABLE t (student_id TEXT, name TEXT, email TEXT, birthday TEXT, "
         "level INTEGER, state TEXT, PRIMARY KEY (student_id))")


def generate(path: str, rows: int, bad_every: int = 0, update: bool = False) -> None:
    rng = random.Random(7)
    with open(path, "w", newline="") as handle:
        handle.write(HEADER)
        for n in range(rows):
            level = "abc" if bad_every and n % bad_every == 0 else str(100 * rng.randint(1, 5))
            name = f"Student {n} Updated" if update else f"Student {n}"
            handle.write(f"S{n:08d},{name},s{n}@example.org,"
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


def reference(work: str, data: str) -> float:
    """``sqlite3 .import`` of *data* into a fresh keyed table (WAL, as the store)."""
    db = os.path.join(work, "reference.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    return timed(lambda: subprocess.run(
        ["sqlite3", db, "PRAGMA journal_mode=WAL", KEYED, f".import --csv --skip 1 {data} t"],
        check=True, capture_output=True))


# Run in a child of its own: the benchmark's process stays small, and the peak RSS
# of every later child (which starts from its parent's, vfork and exec) its own.
_STAGING = """
import os, sqlite3, sys, time
import adbc_driver_sqlite.dbapi as adbc
import pyarrow as pa
import pyarrow.csv as pcsv
work, data, keyed, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
read = pcsv.ReadOptions(block_size=256 << 10)
convert = pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
db = sqlite3.connect(os.path.join(work, "staging.sqlite"), isolation_level=None)
started = time.perf_counter()
db.execute("BEGIN")
db.execute(keyed.replace("CREATE TABLE t", "CREATE TEMP TABLE s"))
for batch in pcsv.open_csv(data, read_options=read, convert_options=convert):
    for start in range(0, batch.num_rows, 4096):
        part = batch.slice(start, 4096)
        db.executemany("INSERT INTO s VALUES (?, ?, ?, ?, ?, ?)",
                       zip(*(column.to_pylist() for column in part.columns)))
db.execute("COMMIT")
executemany = time.perf_counter() - started
started = time.perf_counter()
with adbc.connect(os.path.join(work, "adbc.sqlite")) as connection:
    with connection.cursor() as cursor:
        cursor.execute(keyed)
        reader = pcsv.open_csv(data, read_options=read, convert_options=convert)
        cursor.adbc_ingest("t", reader, mode="append")
    connection.commit()
print(executemany, time.perf_counter() - started)
"""


def _staging_routes(work: str, data: str) -> tuple[float, float]:
    """Seconds to stage the file's rows: executemany into TEMP, and ADBC ingest."""
    done = subprocess.run([sys.executable, "-c", _STAGING, work, data, KEYED,
                           HEADER.strip()], capture_output=True, text=True, check=True)
    executemany, adbc = done.stdout.split()
    return float(executemany), float(adbc)


def main() -> None:
    work = tempfile.mkdtemp(prefix="dc-bench-")
    try:
        # The example config: storage/ and records.sqlite beside it, in work.
        conf_path = os.path.join(work, "datacenter.toml")
        shutil.copy(os.path.join(os.path.dirname(__file__), "..", "datacenter.toml"), conf_path)
        storage = os.path.join(work, "storage")
        os.makedirs(storage)
        data = os.path.join(work, "students.csv")  # the import files its copy away
        generate(data, ROWS)
        size = os.path.getsize(data) / 2**20
        ref = reference(work, data)
        shutil.copy(data, os.path.join(storage, "students.csv"))
        seconds, ok, failed, rss = run_import(conf_path, os.path.join(storage, "students.csv"),
                                              "create")
        assert ok == ROWS and failed == 0
        row(f"{ROWS:,} rows ({size:.0f} MB), 6 typed columns: sqlite3 .import, keyed",
            f"{ref:.2f} s")
        row("datacenter import, create mode", f"{seconds:.2f} s")
        row("ratio (target <= 1.5x)", judged(seconds / ref, 1.5, f"{seconds / ref:.2f}x"))
        row("peak RSS of the import (target <= 150 MB)", judged(rss, 150, f"{rss:.0f} MB"))
        rss_create = rss
        update = os.path.join(storage, "students.update.csv")
        generate(update, ROWS, update=True)
        seconds, ok, failed, rss = run_import(conf_path, update, "update")
        assert ok == ROWS
        row("the same rows again, update mode (target <= 2x)",
            judged(seconds / ref, 2, f"{seconds:.2f} s ({seconds / ref:.2f}x)"))
        bad = os.path.join(storage, "students_bad.csv")
        generate(bad, ROWS, bad_every=10)
        subprocess.run(["sqlite3", os.path.join(work, "records.sqlite"),
                        "DELETE FROM rec_students"], check=True)
        seconds, ok, failed, rss = run_import(conf_path, bad, "create")
        assert failed == ROWS // 10
        row("create mode with 10 % failing rows (target <= 2x)",
            judged(seconds / ref, 2, f"{seconds:.2f} s ({seconds / ref:.2f}x)"))
        executemany, adbc = _staging_routes(work, data)
        row("staging the rows: executemany into TEMP (the engine's)", f"{executemany:.2f} s")
        row("staging the rows: ADBC ingest (own connection, no shared tx)", f"{adbc:.2f} s")
        if FLAT_ROWS:
            _flat(work, conf_path, storage, rss_small=rss_create)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _flat(work: str, conf_path: str, storage: str, rss_small: float) -> None:
    """The peak memory of an import FLAT_ROWS long against that of ROWS rows."""
    for name in os.listdir(storage):
        if name.endswith(".csv"):
            os.unlink(os.path.join(storage, name))
    subprocess.run(["sqlite3", os.path.join(work, "records.sqlite"),
                    "DELETE FROM rec_students"], check=True)
    big = os.path.join(storage, "students_big.csv")
    generate(big, FLAT_ROWS)
    seconds, ok, _, rss = run_import(conf_path, big, "create")
    assert ok == FLAT_ROWS
    flat = rss <= max(rss_small * 1.1, rss_small + 10)
    row(f"peak RSS of a {FLAT_ROWS:,}-row import (target <= 150 MB, flat)",
        judged(0 if flat else 1, 0, f"{rss:.0f} MB ({seconds:.1f} s)") if rss <= 150
        else f"{rss:.0f} MB  MISS")


if __name__ == "__main__":
    main()
