"""The web console's heaviest pages: a 10,000-row pending grid, the dashboard of 10,000 files.

Target (issue 15): each page renders in < 0.5 s of server time, a page at
a time (the grid shows 100 rows, the dashboard's lists 50 files). Server
time is the request through the whole app in this process (routing, the
session, the library, the template; no network, no browser), the median
of a few rounds after one that warms the templates. The reference is the
plain CLI listing of the same storage in the same run: ``datacenter ls``
of the same folder, all of it, timed inside its own process (without the
interpreter's start) as ``bench_listing`` times it.

Set ``BENCH_WEB_FILES`` and ``BENCH_WEB_ROWS`` for other sizes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from starlette.testclient import TestClient

from benchmarks._common import judged, median_seconds, row
from datacenter import config
from datacenter.config import Config
from datacenter.importing import Importer
from datacenter.service.accounts import Accounts
from datacenter.web import create_app

FILES = int(os.environ.get("BENCH_WEB_FILES", "10000"))
ROWS = int(os.environ.get("BENCH_WEB_ROWS", "10000"))
TARGET = 0.5
PASSWORD = "benchmark password"
REPO = Path(__file__).resolve().parent.parent

_CLI = """
import contextlib, io, sys, time
from datacenter.cli.main import main
started = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(code, time.perf_counter() - started, out.getvalue().count("\\n"), file=sys.stderr)
"""


def _storage(work: Path) -> tuple[Config, str]:
    """The documented config in *work*, its storage made; the config file's path."""
    path = work / "datacenter.toml"
    path.write_text((REPO / "datacenter.toml").read_text(encoding="utf-8"), encoding="utf-8")
    conf = config.load(str(path))
    Importer(conf).close()
    Accounts(conf.storage).add("viewer", "viewer", PASSWORD)
    return conf, str(path)


def _pending(conf: Config, rows: int) -> str:
    """A pending file of *rows* failed rows (each level not a number), as an import leaves it."""
    source = Path(conf.storage, "students.csv")
    source.write_text("student_id,name,email,birthday,level,state\n" + "".join(
        f"S{n},Student {n},s{n}@example.org,2004-03-15,level {n},admitted\n"
        for n in range(rows)), encoding="utf-8")
    importer = Importer(conf)
    try:
        outcome = importer.import_file(str(source), user="bench")
    finally:
        importer.close()
    assert outcome.failed == rows and outcome.pending, outcome
    return outcome.pending


def _fill(folder: str, count: int, pattern: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for n in range(count):
        os.close(os.open(os.path.join(folder, pattern.format(n)), flags))


def _cli_seconds(conf_path: str, *args: str) -> tuple[float, int]:
    """``datacenter ARGS``'s own time in a fresh process, and how many lines it printed."""
    done = subprocess.run([sys.executable, "-c", _CLI, "--config", conf_path, *args],
                          capture_output=True, text=True, check=True)
    code, seconds, lines = done.stderr.split()[-3:]
    assert code == "0", done.stderr
    return float(seconds), int(lines)


def _server_seconds(client: TestClient, path: str, expect: str) -> float:
    """The median time of GET *path* through the app (after one warming call)."""

    def get() -> None:
        answer = client.get(path)
        assert answer.status_code == 200 and expect in answer.text, (path, answer.text[:300])

    get()
    return median_seconds(get, rounds=5)


def _judge(label: str, seconds: float, reference: float, what: str) -> None:
    text = (f"{seconds * 1000:.0f} ms server (target < {TARGET * 1000:.0f} ms), "
            f"{seconds / reference:.2f}x {what}")
    row(label, judged(seconds, TARGET, text))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="dc-bench-web-"))
    try:
        conf, conf_path = _storage(work)
        pending = _pending(conf, ROWS)
        _fill(os.path.join(conf.storage, "finished"), FILES, "faculties_{:07d}.create.finished.csv")
        with TestClient(create_app(conf)) as client:
            assert client.post("/api/login", json={"username": "viewer", "password": PASSWORD}
                               ).status_code == 200
            finished, listed = _cli_seconds(conf_path, "ls", "finished")
            row(f"datacenter ls finished ({listed:,} files, all)", f"{finished * 1000:.0f} ms")
            root, _ = _cli_seconds(conf_path, "ls")
            row("datacenter ls (the root: the pending file)", f"{root * 1000:.0f} ms")
            _judge(f"dashboard, {FILES:,} files in finished/",
                   _server_seconds(client, "/", "Dashboard"), finished, "ls finished")
            _judge(f"folder page finished/, page {FILES // 100} of {FILES // 50}",
                   _server_seconds(client, f"/files/finished?page={FILES // 100}",
                                   "folder-files"), finished, "ls finished")
            for label, page in (("first", 1), ("middle", ROWS // 200), ("last", ROWS // 100)):
                _judge(f"pending grid, {ROWS:,} rows, {label} page",
                       _server_seconds(client, f"/pending/{pending}?page={page}",
                                       f'id="grid-total">{ROWS}<'), finished, "ls finished")
            # A backlog: as many files waiting at the root (no service running).
            _fill(conf.storage, FILES, "faculties_{:07d}.csv")
            waiting, listed = _cli_seconds(conf_path, "ls")
            row(f"datacenter ls ({listed:,} files waiting at the root)",
                f"{waiting * 1000:.0f} ms")
            _judge(f"dashboard, {FILES:,} more waiting at the root",
                   _server_seconds(client, "/", "Dashboard"), waiting, "ls")
            # And as many that are no CSV file at all (each named with its reason).
            _fill(conf.storage, FILES, "notes_{:07d}.txt")
            _judge(f"dashboard, {FILES:,} more not CSV at the root",
                   _server_seconds(client, "/", "Dashboard"), waiting, "ls")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
