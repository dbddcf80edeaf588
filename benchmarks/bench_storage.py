"""Listing 10,000 pending files, and moving a storage of 10,000 files.

Targets (DESIGN.md): getPendingFiles with 10,000 files <= 100 ms; a move on
one filesystem costs about what ``mv`` costs, constant per entry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from benchmarks._common import median_seconds, row, timed
from datacenter import DataCenter

FILES = 10_000


def _fill(folder: str, count: int = FILES) -> None:
    os.makedirs(folder, exist_ok=True)
    for n in range(count):
        with open(os.path.join(folder, f"file{n:05d}.csv"), "w") as handle:
            handle.write("id,name\n1,x\n")


def _bare_scan(folder: str) -> list[tuple[str, os.stat_result]]:
    with os.scandir(folder) as entries:
        return sorted((e.name, e.stat()) for e in entries if e.name.endswith(".csv"))


def bench_listing(work: str) -> None:
    dc = DataCenter(os.path.join(work, "listing"))
    _fill(dc.storage)
    listing = median_seconds(dc.getPendingFiles)
    by_date = median_seconds(lambda: dc.getPendingFiles(sort="date"))
    bare = median_seconds(lambda: _bare_scan(dc.storage))
    assert len(dc.getPendingFiles()) == FILES
    row(f"getPendingFiles, {FILES} files (target <= 100 ms)", f"{listing * 1000:.1f} ms")
    row("getPendingFiles(sort='date')", f"{by_date * 1000:.1f} ms")
    row("bare os.scandir + stat of the same folder", f"{bare * 1000:.1f} ms")
    row("ratio to the bare scan", f"{listing / bare:.2f}x")


def bench_relocation(work: str, layout: str) -> None:
    source = os.path.join(work, f"move-{layout}")
    dc = DataCenter(source)
    _fill(dc.storage if layout == "flat" else dc.finished_path)
    target = os.path.join(work, f"target-{layout}")
    os.mkdir(target)
    ours = timed(lambda: dc.setStoragePath(target, move=True))
    moved = target if layout == "flat" else os.path.join(target, "finished")
    assert len(os.listdir(moved)) >= FILES
    # The reference: mv of the same tree, same filesystem.
    ref_src, ref_dst = os.path.join(work, f"mv-{layout}"), os.path.join(work, f"mv-dst-{layout}")
    _fill(ref_src if layout == "flat" else os.path.join(ref_src, "finished"))
    os.mkdir(ref_dst)
    names = os.listdir(ref_src)
    mv = timed(lambda: subprocess.run(["mv", *[os.path.join(ref_src, n) for n in names], ref_dst],
                                      check=True))
    where = "at the root" if layout == "flat" else "in finished/"
    row(f"setStoragePath(move=True), {FILES} files {where}", f"{ours:.3f} s")
    row("mv of the same tree", f"{mv:.3f} s")
    row("ratio to mv", f"{ours / mv:.2f}x")


def main() -> None:
    work = tempfile.mkdtemp(prefix="dc-bench-")
    try:
        bench_listing(work)
        bench_relocation(work, "nested")
        bench_relocation(work, "flat")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
