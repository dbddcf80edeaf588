"""The steps of a journal group: changes that may be applied any number of times.

Each step type is a frozen dataclass that applies itself (:meth:`Step.apply`
returns the folders whose entries it changed, for the journal to fsync once)
and writes itself as the JSON object the intent holds. That object is an
on-disk format: an intent written by an earlier version is still recovered
by this one, so the ``op`` names and the argument keys never change, and
:func:`step_from_json` reads exactly them. A step that does not read as one
is refused with :class:`JournalError` before anything of its group is applied.
"""

from __future__ import annotations

import abc
import errno
import json
import logging
import os
import stat
from dataclasses import dataclass
from typing import Any, ClassVar

from datacenter.errors import DataCenterError
from datacenter.storage import fs
from datacenter.storage.identity import FileIdentity, Inode, inode_at

_log = logging.getLogger(__name__)


class JournalError(DataCenterError, RuntimeError):
    """An intent could not be read or applied; it is kept for a person to see."""


class Step(abc.ABC):
    """One idempotent change of a group."""

    #: The step's name in an intent (``"op"``).
    op: ClassVar[str]

    @abc.abstractmethod
    def apply(self) -> set[str]:
        """Make the change (again); returns the folders whose entries changed."""

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The step as its intent holds it."""

    @classmethod
    @abc.abstractmethod
    def from_json(cls, args: _Args) -> Step:
        """The step from its intent's object (checked by *args*)."""


@dataclass(frozen=True)
class Replace(Step):
    """Staged bytes take the destination's name."""

    op: ClassVar[str] = "replace"
    src: str
    dst: str

    def apply(self) -> set[str]:
        if os.path.lexists(self.src):
            try:
                fs.replace(self.src, self.dst, sync=False)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # The destination's folder is on another filesystem (a
                # finished/ mounted from an archive disk): copied beside it,
                # fsynced, renamed into place, and only then is the staged
                # file removed, so applying again copies the same bytes again.
                fs.move(self.src, self.dst, overwrite=True)
        return {_parent(self.dst)}  # the staging side is removed afterwards anyway

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "src": self.src, "dst": self.dst}

    @classmethod
    def from_json(cls, args: _Args) -> Replace:
        return cls(src=args.text("src"), dst=args.text("dst"))


@dataclass(frozen=True)
class Append(Step):
    """The destination's first ``size`` bytes, then the staged bytes."""

    op: ClassVar[str] = "append"
    src: str
    dst: str
    size: int

    def apply(self) -> set[str]:
        fs.append_file(self.dst, self.src, self.size)
        return set()  # append_file fsyncs the file; its name did not change

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "src": self.src, "dst": self.dst, "size": self.size}

    @classmethod
    def from_json(cls, args: _Args) -> Append:
        return cls(src=args.text("src"), dst=args.text("dst"), size=args.count("size"))


@dataclass(frozen=True)
class Unlink(Step):
    """Remove a file, if it is still the one the plan saw (``ident`` None: any)."""

    op: ClassVar[str] = "unlink"
    path: str
    ident: Inode | None = None

    @classmethod
    def if_unchanged(cls, path: str) -> Unlink:
        """Remove *path* only if it still names the file it names now."""
        return cls(path, inode_at(path))

    def apply(self) -> set[str]:
        if _still(self.path, self.ident):
            fs.unlink(self.path, sync=False)
        return {_parent(self.path)}

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "path": self.path, "ident": _inode_json(self.ident)}

    @classmethod
    def from_json(cls, args: _Args) -> Unlink:
        return cls(path=args.text("path"), ident=args.inode("ident"))


@dataclass(frozen=True)
class Move(Step):
    """Move an entry, with a crash-proof path across filesystems.

    Across filesystems the bytes are copied to ``tmp`` beside the
    destination; only when that copy is complete is the source renamed to
    ``trash`` beside itself. So when ``trash`` exists, ``tmp`` (if still
    there) is complete and can be renamed into place; a ``tmp`` without
    ``trash`` is a partial copy from an attempt that failed, and a later
    attempt that moved the source by a plain rename leaves it behind.
    ``old`` is where a destination folder that is overwritten is set aside.
    """

    op: ClassVar[str] = "move"
    src: str
    dst: str
    tmp: str
    trash: str
    ident: Inode | None = None
    overwrite: bool = False
    old: str | None = None

    def apply(self) -> set[str]:
        touched = {_parent(self.src), _parent(self.dst)}
        if _still(self.src, self.ident):
            try:
                self._put_in_place(self.src)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._copy_across()
            else:
                if os.path.lexists(self.tmp):  # a partial copy of an earlier attempt
                    fs.rmtree(self.tmp)
                return touched
        if os.path.lexists(self.tmp) and os.path.lexists(self.trash):
            self._put_in_place(self.tmp)
        elif os.path.lexists(self.tmp):
            # A partial copy of an attempt that failed, the source moved by a
            # rename since: garbage (beside the destination, it would stay).
            fs.rmtree(self.tmp)
        fs.rmtree(self.trash)
        if self.old:
            fs.rmtree(self.old)
        return touched | {_parent(self.tmp)}

    def _copy_across(self) -> None:
        fs.makedirs(_parent(self.tmp))
        fs.makedirs(_parent(self.trash))
        fs.rmtree(self.tmp)
        fs.copy_tree(self.src, self.tmp)  # durable before the source is set aside
        fs.replace(self.src, self.trash)

    def _put_in_place(self, src: str) -> None:
        here = FileIdentity.at(src)
        if here is not None and here.same_inode(FileIdentity.at(self.dst)):
            fs.unlink(src)  # a no-clobber rename was cut between link and unlink
            return
        if not self.overwrite and _is_empty_dir(self.dst) and _is_dir(src):
            fs.rmdir(self.dst, sync=False)  # an empty folder made meanwhile holds nothing
        if not self.overwrite:
            fs.rename_noreplace(src, self.dst, sync=False)
            return
        if os.path.lexists(self.dst) and (_is_dir(self.dst) or _is_dir(src)) and self.old:
            # A folder cannot be renamed over; set the old one aside first,
            # on the destination's filesystem, so a crash loses neither.
            fs.makedirs(_parent(self.old))
            fs.replace(self.dst, self.old)
        fs.replace(src, self.dst, sync=False)

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "src": self.src, "dst": self.dst,
                "ident": _inode_json(self.ident), "overwrite": self.overwrite,
                "tmp": self.tmp, "trash": self.trash, "old": self.old}

    @classmethod
    def from_json(cls, args: _Args) -> Move:
        return cls(src=args.text("src"), dst=args.text("dst"), tmp=args.text("tmp"),
                   trash=args.text("trash"), ident=args.inode("ident"),
                   overwrite=args.flag("overwrite"), old=args.optional_text("old"))


@dataclass(frozen=True)
class Cleanup(Step):
    """Remove consumed files, then their folder (if given) when nothing else is in it.

    Not fsynced: these are leftovers of the caller's scratch space, and one
    that reappears after a power cut does no harm.
    """

    op: ClassVar[str] = "cleanup"
    files: tuple[str, ...] = ()
    folder: str | None = None

    def apply(self) -> set[str]:
        for path in self.files:
            if os.path.lexists(path):
                fs.unlink(path, sync=False)
        if self.folder and os.path.isdir(self.folder):
            if os.listdir(self.folder):
                _log.warning("not removing %s: it holds files this call did not move",
                             self.folder)
            else:
                fs.rmdir(self.folder, sync=False)
        return set()

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "files": list(self.files), "folder": self.folder}

    @classmethod
    def from_json(cls, args: _Args) -> Cleanup:
        return cls(files=args.texts("files", required=False),
                   folder=args.optional_text("folder"))


@dataclass(frozen=True)
class RmdirEmpty(Step):
    """Remove folders emptied by a move (listed deepest first), if they are empty."""

    op: ClassVar[str] = "rmdir_empty"
    folders: tuple[str, ...]

    def apply(self) -> set[str]:
        for folder in self.folders:
            if os.path.isdir(folder) and not os.listdir(folder):
                fs.rmdir(folder)
        return set()

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "folders": list(self.folders)}

    @classmethod
    def from_json(cls, args: _Args) -> RmdirEmpty:
        return cls(folders=args.texts("folders"))


STEP_TYPES: dict[str, type[Step]] = {
    kind.op: kind for kind in (Replace, Append, Unlink, Move, Cleanup, RmdirEmpty)
}


def step_from_json(data: object, path: str) -> Step:
    """The step an intent at *path* holds as *data*; JournalError if it is not one."""
    if not isinstance(data, dict):
        raise JournalError(f"{path}: malformed intent: a step is {_show(data)}, not an object")
    op = data.get("op")
    kind = STEP_TYPES.get(op) if isinstance(op, str) else None
    if kind is None:
        raise JournalError(f"{path}: malformed intent: unknown step op {_show(op)}")
    args = _Args(data, path)
    step = kind.from_json(args)
    args.check_all_read()
    return step


class _Args:
    """A step's arguments, read key by key: a key of the wrong type or missing is refused.

    An optional key may be absent or null, as earlier versions read it.
    """

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.data, self.path = data, path
        self.read = {"op"}

    def refuse(self, what: str) -> JournalError:
        return JournalError(f"{self.path}: malformed intent: {self.data['op']} step: {what}")

    def _value(self, key: str, required: bool) -> Any:
        self.read.add(key)
        if required and key not in self.data:
            raise self.refuse(f"{key!r} is missing")
        return self.data.get(key)

    def _typed(self, key: str, value: Any, ok: bool, expected: str) -> Any:
        if not ok:
            raise self.refuse(f"{key!r} should be {expected}, not {_show(value)}")
        return value

    def text(self, key: str) -> str:
        value = self._value(key, required=True)
        return str(self._typed(key, value, isinstance(value, str), "a string"))

    def optional_text(self, key: str) -> str | None:
        value = self._value(key, required=False)
        return None if value is None else self.text(key)

    def count(self, key: str) -> int:
        value = self._value(key, required=True)
        return int(self._typed(key, value, _is_int(value) and value >= 0, "a size"))

    def flag(self, key: str) -> bool:
        value = self._value(key, required=False)
        return bool(self._typed(key, value, value is None or isinstance(value, bool),
                                "true or false"))

    def texts(self, key: str, required: bool = True) -> tuple[str, ...]:
        value = self._value(key, required)
        if value is None and not required:
            return ()
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return tuple(self._typed(key, value, ok, "a list of strings"))

    def inode(self, key: str) -> Inode | None:
        value = self._value(key, required=False)
        if value is None:
            return None
        ok = isinstance(value, list) and len(value) == 2 and all(map(_is_int, value))
        dev, ino = self._typed(key, value, ok, "[device, inode] or null")
        return (dev, ino)

    def check_all_read(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise self.refuse(f"unknown key {unknown[0]!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: object) -> str:
    """*value* as JSON, cut short: error messages stay one line."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= 40 else text[:37] + "..."


def _inode_json(ident: Inode | None) -> list[int] | None:
    return None if ident is None else list(ident)


def _parent(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _still(path: str, ident: Inode | None) -> bool:
    """Does *path* still name the inode the plan saw? (None: anything there.)"""
    current = FileIdentity.at(path)
    return current is not None and (ident is None or current.inode == ident)


def _is_dir(path: str) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)


def _is_empty_dir(path: str) -> bool:
    try:
        return _is_dir(path) and not os.listdir(path)
    except FileNotFoundError:
        return False
