"""Names of the storage folder's parts, and the rules that keep paths inside it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

FINISHED = "finished"
UNFINISHED = "unfinished"
DELETED = "deleted"
GRADUATED = "graduated"
LOGS = "logs"
#: The visible sub-folders every storage has, in Kofa's order.
SUBFOLDERS = (FINISHED, UNFINISHED, DELETED, GRADUATED, LOGS)

#: Hidden internal state, like ``.git``: journal, staging, locks.
STATE = ".datacenter"
JOURNAL = "journal"
STAGING = "staging"
#: Work folders of imports: their outputs wait here until distributed.
JOBS = "jobs"
#: Held for the length of one operation (an import, a move, a recovery).
OPS_LOCK = "lock"
#: Held for the whole life of ``datacenter serve``.
SERVICE_LOCK = "serve.lock"
#: Left in a root whose storage moved away: where it went. Written in the
#: same all-or-nothing step as the move, so opening the old root finds it.
MOVED_TO = "moved-to"
#: Entries of the state folder that belong to one root and never move (the
#: journal and staging are empty once recovery ran; job folders do move).
STATE_LOCAL = frozenset({OPS_LOCK, SERVICE_LOCK, JOURNAL, STAGING, MOVED_TO})

LOG_NAME = "datacenter.log"
#: Suffixes of files still being written by some program (a download, an
#: editor's save): never imported, never reported as a file that cannot be.
TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload", "~")
#: In a job folder: the job's filing waits for a person (it says why).
HELD = "needs-a-person.txt"
#: The longest file name, in bytes, where the filesystem does not say.
NAME_MAX = 255

# Who may read what the service creates. The state folder and the record
# store are the owner's alone (the journal and staging hold every row on
# its way); the CSV files and logs are for the group as well, so that a
# group of import managers can read them. The umask can only take bits
# away: 027 keeps these modes, 077 makes everything the owner's alone.
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
SHARED_FOLDER = 0o750
SHARED_FILE = 0o640


def is_state(path: str) -> bool:
    """Does *path* lie in a storage's state folder (or is it that folder)?"""
    return STATE in os.path.abspath(path).split(os.sep)


def folder_mode(path: str) -> int:
    """The mode a new folder *path* is created with."""
    return PRIVATE_FOLDER if is_state(path) else SHARED_FOLDER


def file_mode(path: str) -> int:
    """The mode of a file that keeps the name *path* it is written under.

    Files written in a job or staging folder are data on their way out to
    the storage's folders: they are created with :data:`SHARED_FILE`, and
    the state folder hides them meanwhile.
    """
    return PRIVATE_FILE if is_state(path) else SHARED_FILE


def state_path(storage: str, *parts: str) -> str:
    return os.path.join(storage, STATE, *parts)


def is_within(path: str, root: str) -> bool:
    """True when *path* is *root* or lies below it (no symlinks resolved)."""
    path, root = os.path.abspath(path), os.path.abspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def is_scratch(folder: str, storage: str) -> bool:
    """Is *folder* a work folder inside an area of the state folder?

    ``.datacenter/staging/<id>`` or ``.datacenter/jobs/<id>`` are; the
    state folder and its areas themselves are not.
    """
    rel = os.path.relpath(os.path.abspath(folder), state_path(storage))
    parts = rel.split(os.sep)
    return parts[0] not in ("..", ".") and len(parts) >= 2


def plain_name(name: str, what: str = "name") -> str:
    """Return *name* if it names an entry of one folder, else ValueError.

    Refuses what could climb out of the folder: separators, ``..``,
    absolute paths, empty names and NUL bytes.
    """
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
    ):
        raise ValueError(f"invalid {what} {name!r}: must be a plain file name")
    return name


#: Limits looked up inside :func:`name_limits_kept`, by folder (None: not kept).
_limits: dict[str, int] | None = None


@contextlib.contextmanager
def name_limits_kept() -> Iterator[None]:
    """Inside, each folder's name limit is looked up once (a batch checks many names)."""
    global _limits
    outer = _limits is not None
    if not outer:
        _limits = {}
    try:
        yield
    finally:
        if not outer:
            _limits = None


def name_max(folder: str) -> int:
    """The longest file name (in bytes) the filesystem of *folder* allows.

    A folder not made yet is on the filesystem of its nearest existing parent.
    """
    if _limits is None:
        return _name_max(folder)
    limit = _limits.get(folder)
    if limit is None:
        limit = _limits[folder] = _name_max(folder)
    return limit


def _name_max(folder: str) -> int:
    path = os.path.abspath(folder)
    while True:
        try:
            return int(os.pathconf(path, "PC_NAME_MAX"))
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                return NAME_MAX
            path = parent
        except (OSError, ValueError):
            return NAME_MAX


def name_size(name: str) -> int:
    """The length of *name* in bytes, as the filesystem stores it."""
    return len(os.fsencode(name))


def overlong(path: str) -> str | None:
    """Why the last part of *path* cannot be a file name there, or None when it can."""
    folder, name = os.path.split(os.path.abspath(path))
    size, limit = name_size(name), name_max(folder)
    if size <= limit:
        return None
    return f"{name} is {size} bytes, {limit} are allowed there"


def fitted(folder: str, stem: str, suffix: str) -> str:
    """``stem + suffix``, the stem cut short (whole characters) if that is too long in *folder*."""
    limit = name_max(folder)
    while stem and name_size(stem + suffix) > limit:
        stem = stem[:-1]
    return stem + suffix
