"""An import's memory stays flat in the size of the file."""

from __future__ import annotations

import gc
import os
import tracemalloc

from helpers import STUDENT_HEADER, at

from datacenter.importing.importer import Importer


def test_memory_stays_flat_for_a_long_file(imp: Importer) -> None:
    rows = 100_000
    path = at(imp, "students_big.csv")
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(STUDENT_HEADER + "\r\n")
        handle.writelines(f"S{i:07d},Student {i},s{i}@example.org,2001-01-09,{i % 5 * 100},"
                          "admitted\r\n" for i in range(rows))
    size = os.path.getsize(path)
    gc.collect()
    tracemalloc.start()
    try:
        outcome = imp.import_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (outcome.rows, outcome.ok, outcome.failed) == (rows, rows, 0)
    assert imp.store.count("students") == rows
    # A loaded file would need at least its own size, and Python objects for it many times more.
    assert peak < min(20 << 20, size), (peak, size)
