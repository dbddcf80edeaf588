"""The storage's log: ``logs/datacenter.log`` with size-based rotation, and queries.

The handler looks up the storage at every record, so the log follows the
storage when it is relocated, and it holds no file open between records.
One record is always one line: control characters (a newline in a file
name, a terminal escape) are written escaped (:func:`printable`), so no
name can forge a line of its own.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator

from datacenter.storage import fs, layout

_BACKUP = re.compile(r"^(?P<base>.+)\.(?P<n>\d+)$")
_FORMAT = "%(asctime)s - %(levelname)s - %(user)s - %(message)s"
#: Characters that end a line or steer a terminal: Unicode's Cc, and the
#: line and paragraph separators, which some readers also break lines at;
#: and lone surrogates (bytes of a file name that are not UTF-8), which
#: cannot be printed at all.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(text: str) -> str:
    r"""*text* on one line, its control characters escaped, for logs and terminals.

    >>> print(printable("evil\n* * * * * root touch pwned\x1b[2J\u2028.csv"))
    evil\n* * * * * root touch pwned\x1b[2J\u2028.csv
    """
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "Unknown"


class OneLineFormatter(logging.Formatter):
    """Kofa's log format, one line per record, whatever the message holds."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class StorageLogHandler(logging.Handler):
    """Appends records to ``<storage>/logs/datacenter.log``, rotating by size."""

    def __init__(
        self, storage: Callable[[], str], max_bytes: int = 5 << 20, backups: int = 5
    ) -> None:
        super().__init__()
        self._storage = storage
        self.max_bytes = max_bytes
        self.backups = backups
        self.setFormatter(OneLineFormatter(_FORMAT))

    @property
    def path(self) -> str:
        return os.path.join(self._storage(), layout.LOGS, layout.LOG_NAME)

    def emit(self, record: logging.LogRecord) -> None:
        if not hasattr(record, "user"):
            record.user = "system"
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
            path = self.path
            if os.path.isdir(os.path.dirname(path)):
                self._rotate_if_full(path, len(line))
                fs.append(path, line)
        except OSError:
            # A full disk must not break the operation being logged, nor fill
            # stderr with tracebacks: the line is lost, the work goes on.
            pass
        except Exception:
            self.handleError(record)

    def _rotate_if_full(self, path: str, incoming: int) -> None:
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            return
        if not self.max_bytes or size + incoming <= self.max_bytes:
            return
        for n in range(self.backups - 1, 0, -1):
            if os.path.exists(f"{path}.{n}"):
                fs.replace(f"{path}.{n}", f"{path}.{n + 1}")
        fs.replace(path, f"{path}.1")


def storage_logger(storage: Callable[[], str]) -> logging.Logger:
    """A logger of its own for one DataCenter, propagating to ``datacenter``.

    Built directly rather than through ``logging.getLogger`` so that it is
    freed with its DataCenter instead of living in the registry for ever.
    """
    logger = logging.Logger("datacenter.storage", logging.INFO)
    logger.parent = logging.getLogger("datacenter")
    logger.addHandler(StorageLogHandler(storage))
    return logger


def log_files(logdir: str, exclude_backups: bool = True) -> list[str]:
    """Regular files in *logdir* by name; symlinks are never listed."""
    try:
        entries = sorted(os.scandir(logdir), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [
        e.path
        for e in entries
        if e.is_file(follow_symlinks=False)
        and not (exclude_backups and _BACKUP.match(e.name))
    ]


def rotations(logdir: str, basename: str) -> list[str]:
    """The log *basename* and its rotations, oldest first.

    Raises ValueError for a basename that is not a plain file name, or
    names a symlink or anything but a regular file in *logdir*.
    """
    layout.plain_name(basename, "log name")
    numbered: list[tuple[int, str]] = []
    try:
        names = os.listdir(logdir)
    except FileNotFoundError:
        names = []  # no log yet: said below
    for name in names:
        match = _BACKUP.match(name)
        if name == basename:
            numbered.append((0, name))
        elif match and match["base"] == basename:
            numbered.append((int(match["n"]), name))
    paths = []
    for _, name in sorted(numbered, reverse=True):
        path = os.path.join(logdir, name)
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise ValueError(f"{path}: not a regular file, refusing to read it")
        paths.append(path)
    if not paths:
        raise ValueError(f"no log named {basename!r} in {logdir}")
    return paths


def query(
    paths: list[str], pattern: str | None, limit: int = 0, start: int = 0
) -> Iterator[str]:
    """Lines of *paths* matching *pattern*, from match number *start*, at most *limit*.

    The pattern is compiled now, so a bad one fails at the call; the lines
    are read as they are asked for.
    """
    if limit < 0 or start < 0:
        raise ValueError("limit and start must not be negative")
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise ValueError(f"invalid query {pattern!r}: {exc}") from None
    return _matches(paths, regex, limit, start)


def _matches(
    paths: list[str], regex: re.Pattern[str] | None, limit: int, start: int
) -> Iterator[str]:
    found = 0
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                line = raw.rstrip("\n")
                if regex is not None and not regex.search(line):
                    continue
                found += 1
                if found <= start:
                    continue
                yield line
                if limit and found - start >= limit:
                    return
