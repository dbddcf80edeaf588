"""Shared fixtures: a fresh storage, an importer; plain helpers live in helpers.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PG_SERVER, make_importer, pg_database, pg_missing

from datacenter import DataCenter
from datacenter.importing.importer import Importer


@pytest.fixture
def dc(tmp_path: Path) -> DataCenter:
    return DataCenter(str(tmp_path / "storage"))


@pytest.fixture
def other_fs() -> Iterator[Path]:
    """A folder on another filesystem than the tests' temporary folder, if any."""
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tempfile.gettempdir()).st_dev:
        pytest.skip("no second filesystem on this machine")
    folder = Path(tempfile.mkdtemp(dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def imp(tmp_path: Path) -> Iterator[Importer]:
    """An importer on the documented processors and routes of ``datacenter.toml``."""
    importer = make_importer(tmp_path)
    yield importer
    importer.close()


def pytest_report_header() -> str:
    """One line: whether the PostgreSQL tests run here, and against which server."""
    missing = pg_missing()
    if missing is None:
        return f"postgresql: {PG_SERVER} (each test makes and drops a database of its own)"
    return f"postgresql: {missing}: its tests are skipped (CI=true fails them)"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped after the test."""
    with pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A record store of each kind: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "records.sqlite")
        return
    with pg_database() as url:
        yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line each when the browser tests (no Chromium) or the PostgreSQL tests (no
    server) were skipped, shown with -q too."""
    notes = {str(report.longrepr[2]).removeprefix("Skipped: ")
             for report in terminalreporter.stats.get("skipped", [])
             if isinstance(report.longrepr, tuple)
             and "browser tests skipped" in str(report.longrepr[2])}
    for note in sorted(notes):
        terminalreporter.write_line(note)
    missing = pg_missing() if terminalreporter.stats.get("skipped") else None
    if missing is not None:
        terminalreporter.write_line(
            f"note: PostgreSQL tests skipped: {missing} (set $DATACENTER_TEST_DATABASE_URL)")
