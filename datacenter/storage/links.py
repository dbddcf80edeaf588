"""Links planted in the storage: found, told once, left alone, and stepped around.

Whoever may write in the storage can put a symbolic link, or a second name
of a file from elsewhere, where the service appends to or reads a file of
its own (:func:`datacenter.storage.fs.planted`). Such a link is never
followed and never changed. What would have gone into it goes to a fresh
name beside it instead (:func:`aside`), so an import loses nothing and the
outside file gains nothing; the caller logs the one warning :func:`steer`
returns. A folder of the storage that is a symbolic link is refused
outright (:func:`check_folders`): everything put in it would land outside.
"""

from __future__ import annotations

import itertools
import os

from datacenter.storage import fs, layout


def aside(path: str, suffix: str, folder: str | None = None) -> str:
    """The first name beside *path* that is not planted itself.

    ``x.create.finished.csv`` with *suffix* ``.finished.csv`` gives
    ``x.create.aside.finished.csv``, then ``x.create.aside2.finished.csv``:
    the suffix stays last, so the name still says what the file is. With
    *folder*, the name is taken in that folder instead of beside *path*.
    """
    name = os.path.basename(path)
    stem = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
    where = folder if folder is not None else os.path.dirname(path)
    for n in itertools.count(1):
        candidate = os.path.join(where, f"{stem}.aside{n if n > 1 else ''}{suffix}")
        if fs.planted(candidate) is None:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover - count() never ends


def steer(path: str, suffix: str, what: str, folder: str | None = None,
          ) -> tuple[str, str | None]:
    """``(path, None)``, or while *path* is planted: ``(a name beside it, the warning)``.

    *what* names what goes there instead, for the warning ("the rows").
    """
    reason = fs.planted(path)
    if reason is None:
        return path, None
    other = aside(path, suffix, folder)
    return other, (f"{path} is {reason}; it is left alone, and {what} go to "
                   f"{os.path.basename(other)} instead")


def folders(storage: str) -> list[str]:
    """Every folder of *storage* that the service creates and works in."""
    visible = [os.path.join(storage, name) for name in layout.SUBFOLDERS]
    state = [layout.state_path(storage, area)
             for area in (layout.JOURNAL, layout.STAGING, layout.JOBS)]
    return [layout.state_path(storage), *state, *visible]


def check_folders(storage: str) -> None:
    """Refuse (PlantedLinkError) a storage with a folder that is a symbolic link."""
    for folder in folders(storage):
        fs.check_folder(folder)
