"""Shared fixtures: a fresh storage per test, and helpers to make files."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacenter import DataCenter


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


def write(path: str | Path, text: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return str(path)


def tree(root: str | Path) -> dict[str, str]:
    """Every file below *root* (hidden state excluded) with its content."""
    result = {}
    root = str(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".datacenter"]
        for name in files:
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8", errors="replace") as handle:
                result[os.path.relpath(path, root)] = handle.read()
    return result


def fake_devices(monkeypatch: pytest.MonkeyPatch, *roots: str | Path) -> list[str]:
    """Make renames and hard links between *roots* fail with EXDEV, as between disks.

    Tests run on one filesystem as root, so the cross-device path of the
    filesystem module is forced by patching the calls it makes. Returns a
    list that records each refused call.
    """
    import errno

    from datacenter.storage import fs

    folders = [os.path.abspath(r) for r in roots]
    refused: list[str] = []

    def device(path: str) -> int:
        path = os.path.abspath(path)
        for n, folder in enumerate(folders):
            if path == folder or path.startswith(folder + os.sep):
                return n
        return -1

    def guard(real):  # type: ignore[no-untyped-def]
        def call(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
            if device(src) != device(dst):
                refused.append(f"{src} -> {dst}")
                raise OSError(errno.EXDEV, "Invalid cross-device link", src, dst)
            return real(src, dst, *args, **kwargs)
        return call

    fake_os = type("FakeOs", (), {})()
    for name in dir(os):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(fake_os, name, getattr(os, name))
    for name in ("rename", "replace", "link"):
        setattr(fake_os, name, guard(getattr(os, name)))
    monkeypatch.setattr(fs, "os", fake_os)
    return refused


def read(path: str | Path) -> str:
    return Path(path).read_text(encoding="utf-8")
