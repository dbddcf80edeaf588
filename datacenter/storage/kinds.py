"""What is at a path, in words: for refusals that say what was found instead of a file.

Only ``stat`` is used, never ``open``: the open of a FIFO blocks until a
writer comes, a device's reads may never end, and a rename over either
replaces the node itself (``/dev/full`` would become a regular file). So a
command names and refuses such a path before anything touches it.
"""

from __future__ import annotations

import os
import stat

REGULAR = "a regular file"
FOLDER = "a folder"
SYMLINK = "a symbolic link"
_KINDS = (
    (stat.S_ISREG, REGULAR),
    (stat.S_ISDIR, FOLDER),
    (stat.S_ISLNK, SYMLINK),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind(mode: int) -> str:
    """The kind of file an ``st_mode`` says, with its article: ``'a folder'``.

    >>> kind(stat.S_IFIFO | 0o644), kind(stat.S_IFREG)
    ('a FIFO (named pipe)', 'a regular file')
    """
    for test, words in _KINDS:
        if test(mode):
            return words
    return "an unknown kind of file"


def kind_at(path: str, *, follow_symlinks: bool = True) -> str | None:
    """What *path* is (see :func:`kind`); None when nothing is there.

    Following symlinks, a link to nothing is nothing. Other errors (no
    permission, a loop of links) are raised: they are the answer then.
    """
    try:
        mode = os.stat(path, follow_symlinks=follow_symlinks).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    return kind(mode)


def not_a_file(path: str, what: str) -> str:
    """The one-line refusal of *path*, found to be *what* where a file was wanted.

    >>> not_a_file("x.csv", FOLDER), not_a_file("p", "a socket")
    ('x.csv: a folder, not a file', 'p: a socket, not a regular file')
    """
    return f"{path}: {what}, not a {'file' if what == FOLDER else 'regular file'}"
