"""Where a storage comes from: only ``datacenter init`` and ``datacenter serve`` make one.

A command that made a missing storage on the spot turned every typo, every
run from the wrong folder and every stale config into a new, empty storage
whose empty listings look like lost data. So the commands that use a
storage refuse one that is not there (:func:`require`, one line saying how
to make it), a storage is never made in a folder that does not exist
(:func:`check_parent`), and :func:`init_project` makes a new one together
with the config that names it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from datacenter import config
from datacenter.errors import DataCenterError
from datacenter.storage import fs, layout
from datacenter.storage.center import DataCenter


class NoStorageError(DataCenterError):
    """The storage a command should use does not exist; nothing was created."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no storage at {path} (create it with `datacenter init` "
                         "or start `datacenter serve`)")
        self.path = path


class InitError(DataCenterError):
    """``datacenter init`` refused; nothing was written."""


def require(path: str) -> None:
    """Refuse (NoStorageError) a storage *path* that does not exist, or is no folder."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"The storage path is not a directory: {path}")
    if not os.path.isdir(path):
        raise NoStorageError(path)


def check_parent(path: str, what: str = "storage") -> None:
    """Refuse to make *path* (a new *what*) unless the folder it goes in exists.

    A missing parent is a typo or a disk that is not mounted, not a wish for
    a tree of new folders.
    """
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(path) and not os.path.isdir(parent):
        raise InitError(f"cannot create the {what} {path}: its folder {parent} does not exist")


@dataclass(frozen=True)
class Project:
    """What :func:`init_project` made: the config and where it points."""

    config: str
    storage: str
    database: str
    #: Every folder and file made, in the order made (what existed is not listed).
    created: list[str] = field(default_factory=list)


def init_project(folder: str, storage: str | None = None) -> Project:
    """Write ``<folder>/datacenter.toml`` and make the storage it names.

    The storage is *storage* (written as an absolute path) or
    ``<folder>/storage`` (written relative to the config); the record store
    is ``records.sqlite`` beside the config, made by the first import. An
    existing config is never overwritten, and everything is checked before
    anything is made. The config is written last, so a failure on the way
    leaves no config naming a storage that is not there.
    """
    folder = os.path.abspath(folder)
    path = os.path.join(folder, config.DEFAULT_NAME)
    if os.path.lexists(path):
        raise InitError(f"{path} exists already; init never overwrites a config "
                        "(edit it, or init another folder)")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise InitError(f"{folder}: is not a folder")
    check_parent(folder, "folder")
    where = os.path.abspath(storage) if storage else os.path.join(folder, config.DEFAULT_STORAGE)
    if os.path.dirname(where) != folder:  # else the folder made first holds it
        check_parent(where)
    created = [folder] if fs.mkdir(folder) else []
    created += _make_storage(where)
    text = template(where if storage else config.DEFAULT_STORAGE)
    _write_new(path, text.encode("utf-8"))
    return Project(path, where, os.path.join(folder, config.DEFAULT_DATABASE),
                   [*created, path])


def _make_storage(path: str) -> list[str]:
    """Make the storage *path* with its sub-folders; the folders that were not there."""
    wanted = [path, *(os.path.join(path, name) for name in layout.SUBFOLDERS)]
    missing = [p for p in wanted if not os.path.isdir(p)]
    DataCenter(path)
    return missing


def _write_new(path: str, data: bytes) -> None:
    """Write a new file *path*, durably, whole or not at all; FileExistsError if it exists."""
    tmp = fs.temp_name(os.path.dirname(path), ".part")
    try:
        with fs.new_file(tmp) as handle:
            handle.write(data)
        fs.rename_noreplace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fs.unlink(tmp, missing_ok=True)
        raise


#: What ``datacenter init`` writes: every setting with its default and why,
#: one example processor, and a route left commented out.
_TEMPLATE = """\
# datacenter configuration, written by `datacenter init`.
# Relative paths are relative to this file; the README's "Configuration" has every key.
# The folder people drop CSV files into, and the record store (SQLite).
storage  = {storage}
database = {database}

[watch]
settle  = 2.0            # seconds a file written in place must stay unchanged to count
rescan  = 60             # seconds between reconcile scans (events are only hints)
polling = false          # true on NFS/SMB shares, where inotify misses other machines' writes

[import]
max_line_bytes = {max_line_bytes}   # the longest row (or quoted cell) a dropped file may have

[web]
listen = "{listen}"   # the console's address (datacenter serve --web, datacenter web)
max_upload_bytes = {max_upload_bytes}   # the largest file one upload may be

# A processor imports one kind of record. Files are routed by name:
# <processor>[_anything][.<mode>].csv, modes create (default), update, remove.
[processors.faculties]
key      = ["code"]                         # the fields that identify a record
fields   = {{ code = "str", title = "str" }}  # str int float bool date datetime email choice:a,b
                                            # (any header is a name: "Contact Phone Number")
required = ["title"]                        # a row without these stays pending
# parents = {{ faculty_code = "faculties" }}  # (in a child) wait until the parent exists
# columns = {{ "Faculty Code" = "code" }}     # other headers that feed a field

# Route other file names to a processor (the first matching pattern wins):
# [[routes]]
# pattern   = "fac_*.csv"
# processor = "faculties"
# mode      = "update"
"""


def template(storage: str, database: str = config.DEFAULT_DATABASE) -> str:
    """The text of a new config naming *storage* and *database* (relative: to the config)."""
    return _TEMPLATE.format(storage=toml_string(storage), database=toml_string(database),
                            max_line_bytes=config.DEFAULT_MAX_LINE_BYTES,
                            listen=config.DEFAULT_LISTEN,
                            max_upload_bytes=config.DEFAULT_MAX_UPLOAD_BYTES)


def toml_string(text: str) -> str:
    """*text* as a TOML basic string: quoted, with quotes, backslashes and controls escaped."""
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F
                      else "\\" + c if c in '"\\' else c for c in text)
    return f'"{escaped}"'
