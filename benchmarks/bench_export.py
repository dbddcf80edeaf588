"""Exporting a million records to CSV, against sqlite3's own CSV output.

Target (issue 16): at most 2x the time of
``sqlite3 -csv -header DB "SELECT * FROM rec_students"`` on the same table
(six typed columns), CSV with the formula guard, with flat memory. The
export reads the records through the ADBC SQLite driver as Arrow batches and
formats them with vectorised steps (``datacenter/columnar_export.py``); its
bytes are those of the row writer, which the tests compare. The store is
filled with ``executemany`` in one transaction: set-up, not measured. Each
export runs in a fresh child process (``datacenter export students``
through the command's registered run), so that ``RUSAGE_CHILDREN`` gives
its own peak memory; it times itself, which leaves the interpreter's
start-up out.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks._common import judged, row, timed
from datacenter import config
from datacenter.records.schema import load_processors
from datacenter.records.store import RecordStore, table

RECORDS = 1_000_000
ROUNDS = 3
STATES = ("admitted", "returning", "graduated")
CONFIG = """
database = "records.sqlite"

[processors.students]
key      = ["student_id"]
required = ["name"]

[processors.students.fields]
student_id = "str"
name       = "str"
email      = "email"
birthday   = "date"
level      = "int"
state      = "choice:admitted,returning,graduated"
"""
# The child: the export command as the command line runs it, timed from inside.
CHILD = """
import sys, time
from datacenter.cli import build_parser
from datacenter.cli.registry import COMMANDS
args = build_parser().parse_args(sys.argv[1:])
started = time.perf_counter()
status = COMMANDS[args.command].run(args)
print(f"seconds={time.perf_counter() - started}")
sys.exit(status)
"""


def _fill(work: str) -> str:
    path = os.path.join(work, "datacenter.toml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(CONFIG)
    conf = config.load(path)
    store = RecordStore(conf.database, load_processors(conf.processors, path))
    records = ((f"S{i:07d}", f"Student {i}", f"s{i}@example.org",
                f"{1990 + i % 20}-{1 + i % 12:02d}-{1 + i % 28:02d}", i % 7, STATES[i % 3])
               for i in range(RECORDS))
    with store.transaction() as db:
        db.executemany(f"INSERT INTO {table('students')} (student_id, name, email, birthday, "
                       "level, state) VALUES (?, ?, ?, ?, ?, ?)", records)
    store.close()
    return path


def _export(work: str, conf: str, fmt: str = "csv") -> float:
    output = os.path.join(work, f"students.{fmt}")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "--config", conf, "export", "students", "--output", output],
        capture_output=True, text=True, check=True, cwd=work)
    assert f"Exported {RECORDS} records" in done.stdout, done.stdout + done.stderr
    return float(done.stdout.rsplit("seconds=", 1)[1])


def _fetch_only(database: str) -> float:
    """Only reading the rows into Python objects: the floor of any exporter in Python."""
    db = sqlite3.connect(database)
    try:
        cursor = db.execute(f"SELECT * FROM {table('students')} ORDER BY student_id")
        return timed(lambda: all(iter(lambda: cursor.fetchmany(2000), [])))
    finally:
        db.close()


def _sqlite_csv(work: str, database: str) -> float:
    with open(os.path.join(work, "sqlite3.csv"), "wb") as out:
        return timed(lambda: subprocess.run(
            ["sqlite3", "-csv", "-header", database, f"SELECT * FROM {table('students')}"],
            stdout=out, check=True))


def main() -> None:
    work = tempfile.mkdtemp(prefix="bench-export-")
    try:
        started = time.perf_counter()
        conf = _fill(work)
        database = os.path.join(work, "records.sqlite")
        row(f"fill the store, {RECORDS:,} records (set-up)",
            f"{time.perf_counter() - started:.1f} s")
        ours = [_export(work, conf)]
        # Read now: later children (sqlite3) would count in the maximum too.
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        shell = shutil.which("sqlite3")
        reference = []
        for _ in range(ROUNDS):
            if shell:
                reference.append(_sqlite_csv(work, database))
            if len(ours) < ROUNDS:
                ours.append(_export(work, conf))
        mine = statistics.median(ours)
        row(f"datacenter export students -> CSV (median of {ROUNDS})", f"{mine:.2f} s")
        if reference:
            ref = statistics.median(reference)
            row("sqlite3 -csv -header DB 'SELECT * FROM rec_students'", f"{ref:.2f} s")
            row("ratio (target <= 2x)", judged(mine / ref, 2, f"{mine / ref:.2f}x"))
            row("reading the same rows into Python, nothing else",
                f"{_fetch_only(database):.2f} s")
        else:
            row("sqlite3 shell", "not installed: no reference")
        row("peak RSS of the export process", f"{peak:.0f} MB")
        row("datacenter export students -> JSON (one run)", f"{_export(work, conf, 'json'):.2f} s")
        size = os.path.getsize(os.path.join(work, "students.csv")) / 2**20
        row("CSV size", f"{size:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
