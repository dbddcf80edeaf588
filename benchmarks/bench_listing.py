"""``ls`` and ``status`` with a million files in ``finished/``.

Target (DESIGN.md): ``status`` / ``ls`` with 1M files answer in < 1 s,
streamed, in < 100 MB. Each command runs in a fresh process (its peak
memory is its own, the interpreter's included), its output thrown away;
the time to its first line of output is the answer's, the whole time is
what printing every line costs on top for a listing of them all.
The reference is the bare cost of reading the folder: ``os.scandir`` of
the same names, nothing kept. Set ``BENCH_LISTING_FILES`` for another size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from benchmarks._common import judged, row
from datacenter import DataCenter

FILES = int(os.environ.get("BENCH_LISTING_FILES", "1000000"))

_CHILD = """
import contextlib, io, resource, sys, time
from datacenter.cli.main import main


class Sink(io.TextIOBase):
    first = None

    def write(self, text):
        if self.first is None and text:
            self.first = time.perf_counter()
        return len(text)


sink = Sink()
started = time.perf_counter()
with contextlib.redirect_stdout(sink):
    code = main(sys.argv[1:])
seconds = time.perf_counter() - started
first = (sink.first or time.perf_counter()) - started
print(code, first, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      file=sys.stderr)
"""

_BARE = """
import os, resource, sys, time
started = time.perf_counter()
with os.scandir(sys.argv[1]) as entries:
    count = sum(1 for e in entries if e.is_file(follow_symlinks=False))
seconds = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(0, seconds, seconds, rss, file=sys.stderr)
"""


def _fill(folder: str, count: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for n in range(count):
        os.close(os.open(os.path.join(folder, f"file{n:07d}.create.finished.csv"), flags))


def _run(code: str, *args: str) -> tuple[float, float, float]:
    """The command's time to its first output, its whole time, and its peak memory."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=True)
    status, first, seconds, rss = done.stderr.split()[-4:]
    assert status == "0", done.stderr
    return float(first), float(seconds), float(rss)


def main() -> None:
    work = tempfile.mkdtemp(prefix="dc-bench-")
    try:
        dc = DataCenter(os.path.join(work, "storage"))
        _fill(dc.finished_path, FILES)
        storage = ["--storage", dc.storage]
        _, bare, bare_rss = _run(_BARE, dc.finished_path)
        row(f"bare os.scandir of {FILES:,} files", f"{bare:.2f} s, {bare_rss:.0f} MB")
        for label, args in (
            ("status", ["status"]),
            ("status --json", ["status", "--json"]),
            ("ls finished --limit 50", ["ls", "finished", "--limit", "50"]),
            (f"ls finished --limit 50 --offset {FILES // 2}",
             ["ls", "finished", "--limit", "50", "--offset", str(FILES // 2)]),
            ("ls finished --sort date --limit 50", ["ls", "finished", "--sort", "date",
                                                    "--limit", "50"]),
            ("ls finished (all, streamed)", ["ls", "finished"]),
            # (`ls finished --json` streams through the same listing: timing it
            # too cost 16 s of the 5 minutes `make bench` may take)
        ):
            first, seconds, rss = _run(_CHILD, *storage, *args)
            # Targets: the first line within 1 s (a streamed listing answers at once)
            # and under 100 MB; each figure as a fraction of its target.
            text = (f"first line {first:.2f} s (target < 1 s), all {seconds:.2f} s "
                    f"({seconds / bare:.1f}x bare), {rss:.0f} MB (target < 100 MB)")
            row(label, judged(max(first, rss / 100), 1, text))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
