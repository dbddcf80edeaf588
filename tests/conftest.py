"""Shared fixtures: a fresh storage, an importer; plain helpers live in helpers.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import make_importer

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line when the browser tests were skipped (no Chromium), even under ``-q``."""
    notes = {str(report.longrepr[2]).removeprefix("Skipped: ")
             for report in terminalreporter.stats.get("skipped", [])
             if isinstance(report.longrepr, tuple)
             and "browser tests skipped" in str(report.longrepr[2])}
    for note in sorted(notes):
        terminalreporter.write_line(note)
