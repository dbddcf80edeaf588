"""The storage's log: ``logs/datacenter.log`` with size-based rotation, and queries.

The handler looks up the storage at every record, so the log follows the
storage when it is relocated, and it holds no file open between records.

A log that is a planted link (a symbolic link, or a file with a second
name) is never appended to nor read: lines go to ``datacenter.aside.log``
beside it meanwhile, with one warning, and readers skip it with a note.

One record is always one line: control characters (a newline in a file
name, a terminal escape) are written escaped (:func:`printable`), so no
name can forge a line of its own.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from datacenter.storage import fs, layout, links

_BACKUP = re.compile(r"^(?P<base>.+)\.(?P<n>\d+)$")
_FORMAT = "%(asctime)s - %(levelname)s - %(user)s - %(message)s"
#: Told of a log file (or rotation) skipped because it is a planted link.
SkipNote = Callable[[str, str], None]


def _ignore(path: str, reason: str) -> None:
    pass


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
        #: Planted logs warned about already: (path, inode of the link).
        self._warned: set[tuple[str, int]] = set()
        #: Lines waiting for the end of :meth:`held`, with their records.
        self._held: list[tuple[bytes, logging.LogRecord]] | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Lines logged inside are appended together when it ends: one write for a batch.

        A burst of small imports logs a few lines per file; opening the log
        for each line cost more than some imports. Nothing depends on a
        line being on the disk (the journal and the ledger are the record),
        so holding them a moment changes what a crash loses by as little.
        """
        with self._lock_held():
            outer = self._held is not None
            if not outer:
                self._held = []
        try:
            yield
        finally:
            if not outer:
                with self._lock_held():
                    lines, self._held = self._held or [], None
                    if lines:
                        self._write(b"".join(line for line, _ in lines), lines[-1][1])

    @contextlib.contextmanager
    def _lock_held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    @property
    def path(self) -> str:
        return os.path.join(self._storage(), layout.LOGS, layout.LOG_NAME)

    def emit(self, record: logging.LogRecord) -> None:
        if not hasattr(record, "user"):
            record.user = "system"
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
            if self._held is not None:
                self._held.append((line, record))
                return
            self._write(line, record)
        except Exception:
            self.handleError(record)

    def _write(self, data: bytes, record: logging.LogRecord) -> None:
        try:
            path = self._target(record)
            if path is not None:
                self._rotate_if_full(path, len(data))
                fs.append(path, data)
        except OSError:
            # A full disk must not break the operation being logged, nor fill
            # stderr with tracebacks: the line is lost, the work goes on.
            pass

    def _target(self, record: logging.LogRecord) -> str | None:
        """The log, or the file beside it while the log is a planted link; None: no folder.

        A symlinked ``logs/`` is no place for a line at all (the storage
        refuses it, and says so to whoever opened it).
        """
        path = self.path
        folder = os.path.dirname(path)
        if not os.path.isdir(folder) or fs.planted(folder) is not None:
            return None
        aside, warning = links.steer(path, ".log", "its lines")
        if warning is not None:
            self._warn_once(aside, path, warning, record)
        return aside

    def _warn_once(self, aside: str, path: str, warning: str, like: logging.LogRecord) -> None:
        key = (path, os.lstat(path).st_ino)
        if key in self._warned:
            return
        self._warned.add(key)
        note = logging.makeLogRecord({**like.__dict__, "levelno": logging.WARNING,
                                      "levelname": "WARNING", "msg": warning, "args": None})
        fs.append(aside, (self.format(note) + "\n").encode("utf-8", "replace"))

    def _rotate_if_full(self, path: str, incoming: int) -> None:
        try:
            size = os.lstat(path).st_size
        except FileNotFoundError:
            return
        if not self.max_bytes or size + incoming <= self.max_bytes:
            return
        for n in range(self.backups - 1, 0, -1):
            if os.path.exists(f"{path}.{n}"):
                fs.replace(f"{path}.{n}", f"{path}.{n + 1}")
        fs.replace(path, f"{path}.1")


@contextlib.contextmanager
def held(logger: logging.Logger) -> Iterator[None]:
    """The lines *logger*'s storage handlers get inside, written together at the end."""
    with contextlib.ExitStack() as stack:
        for handler in logger.handlers:
            if isinstance(handler, StorageLogHandler):
                stack.enter_context(handler.held())
        yield


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
        and fs.planted(e.path) is None
        and not (exclude_backups and _BACKUP.match(e.name))
    ]


def rotations(logdir: str, basename: str, on_skip: SkipNote = _ignore) -> list[str]:
    """The log *basename* and its rotations, oldest first.

    A symlink, a file with a second name or anything but a regular file is
    skipped, and *on_skip* told of it with the reason. Raises ValueError
    for a basename that is not a plain file name, or when nothing is left.
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
    paths: list[str] = []
    refused: list[tuple[str, str]] = []
    for _, name in sorted(numbered, reverse=True):
        path = os.path.join(logdir, name)
        reason = _refusal(path)
        if reason is None:
            paths.append(path)
        else:
            refused.append((path, reason))
    if not paths and refused:
        path, reason = refused[0]
        raise ValueError(f"{path}: {reason}, not a regular file of the log; "
                         "refusing to read it")
    if not paths:
        raise ValueError(f"no log named {basename!r} in {logdir}")
    for path, reason in refused:
        on_skip(path, reason)
    return paths


def _refusal(path: str) -> str | None:
    reason = fs.planted(path)
    if reason is None and not stat.S_ISREG(os.lstat(path).st_mode):
        reason = "not a regular file"
    return reason


def check_query(pattern: str) -> None:
    """ValueError (the reason alone) unless *pattern* is a regular expression RE2 runs.

    Searches run in RE2 (pyarrow's ``match_substring_regex``): linear time
    whatever the pattern, so no query can hold a process for minutes. A
    pattern Python's ``re`` refuses gets its reason; one only Python takes
    (a backreference, a lookaround) says so.

    >>> check_query(r"(a)\\1")
    Traceback (most recent call last):
    ...
    ValueError: invalid escape sequence: \\1 (searches use RE2 syntax: no backreferences ...)
    """
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(str(exc)) from None
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except pa.ArrowInvalid as exc:
        reason = str(exc).removeprefix("Invalid regular expression: ")
        raise ValueError(f"{reason} (searches use RE2 syntax: no backreferences or "
                         "lookaround)") from None


def query(
    paths: list[str], pattern: str | None, limit: int = 0, start: int = 0,
    on_skip: SkipNote = _ignore,
) -> Iterator[str]:
    """Lines of *paths* matching *pattern*, from match number *start*, at most *limit*.

    The pattern is checked now (:func:`check_query`), so a bad one fails at
    the call; the lines are read as they are asked for, a batch at a time.
    """
    if limit < 0 or start < 0:
        raise ValueError("limit and start must not be negative")
    if pattern:
        try:
            check_query(pattern)
        except ValueError as exc:
            raise ValueError(f"invalid query {pattern!r}: {exc}") from None
    return _matches(paths, pattern or None, limit, start, on_skip)


#: Lines matched in one call into RE2: the memory a search holds, and little overhead.
_BATCH = 4096


def _matches(
    paths: list[str], pattern: str | None, limit: int, start: int, on_skip: SkipNote,
) -> Iterator[str]:
    found = 0
    for batch in _batches(paths, on_skip):
        if pattern is not None:
            hits = pc.match_substring_regex(pa.array(batch, pa.string()), pattern)
            batch = [line for line, hit in zip(batch, hits.to_pylist(), strict=True) if hit]
        for line in batch:
            found += 1
            if found <= start:
                continue
            yield line
            if limit and found - start >= limit:
                return


def _batches(paths: list[str], on_skip: SkipNote) -> Iterator[list[str]]:
    """The lines of *paths* (without their line breaks), :data:`_BATCH` at a time."""
    for path in paths:
        try:  # checked again on the open file: a link may have been planted since
            binary = fs.open_read(path)
        except fs.PlantedLinkError as error:
            on_skip(path, error.strerror or "a planted link")
            continue
        with io.TextIOWrapper(binary, encoding="utf-8", errors="replace") as handle:
            batch: list[str] = []
            for raw in handle:
                batch.append(raw.rstrip("\n"))
                if len(batch) >= _BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch
