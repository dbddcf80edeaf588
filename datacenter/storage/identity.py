"""A file's identity: which file a name holds, and whether it was written since.

One type for what three places record, each in its own shape on disk:

* a journal step guards a path with the *inode* it saw when the group was
  planned, ``[dev, ino]`` in the intent: a rename keeps it, a replacement
  does not;
* the ledger keeps ``"dev:ino:size:mtime_ns"`` per import, to tell the very
  file that was imported from a new one under the same name, and of the
  pending file its filing left, to tell it from a person's edit;
* the service's verdicts keep ``[dev, ino, size, mtime_ns]`` in its state
  file, and readiness compares all four: writing to a file changes them.

Nothing here changes the disk; :func:`FileIdentity.at` only looks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

#: ``(dev, ino)``: the part of an identity that a rename keeps.
Inode = tuple[int, int]


@dataclass(frozen=True)
class FileIdentity:
    """What changes when a file is replaced (dev, ino) or written (size, mtime_ns)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @classmethod
    def at(cls, path: str) -> FileIdentity | None:
        """The identity of *path* itself (a symlink is not followed), or None if absent."""
        try:
            return cls.of(os.lstat(path))
        except FileNotFoundError:
            return None

    @property
    def inode(self) -> Inode:
        return (self.dev, self.ino)

    def same_inode(self, other: FileIdentity | None) -> bool:
        """Is *other* the same file, whether or not it was written to since?"""
        return other is not None and other.inode == self.inode

    # -- the ledger's shape: "dev:ino:size:mtime_ns" ---------------------------------------

    def to_ledger(self) -> str:
        return f"{self.dev}:{self.ino}:{self.size}:{self.mtime_ns}"

    @classmethod
    def from_ledger(cls, text: str) -> FileIdentity | None:
        """The identity a ledger row holds; None when it holds none (older rows: ``''``)."""
        try:
            return cls.from_list(text.split(":"))
        except ValueError:
            return None

    # -- the service state's shape: [dev, ino, size, mtime_ns] ------------------------------

    def to_list(self) -> list[int]:
        return [self.dev, self.ino, self.size, self.mtime_ns]

    @classmethod
    def from_list(cls, values: Iterable[str | int]) -> FileIdentity:
        """ValueError (or TypeError) unless *values* are four integers."""
        numbers = [int(v) for v in values]
        if len(numbers) != 4:
            raise ValueError(f"a file identity has 4 numbers, not {len(numbers)}")
        return cls(*numbers)


def inode_at(path: str) -> Inode | None:
    """The inode *path* names now (links not followed), or None if absent."""
    ident = FileIdentity.at(path)
    return None if ident is None else ident.inode
