"""Wrappers that describe stored files cheaply: Kofa's DataCenterFile and LogFile."""

from __future__ import annotations

import io
import os
import re
from datetime import datetime
from functools import cached_property

from datacenter.storage import fs

_UNITS = ("kb", "MB", "GB")


def human_size(size: int) -> str:
    """Kofa's size text: ``'13 bytes'``, ``'1.50 kb'``, ``'2.00 MB'``, ``'1.00 GB'``."""
    for power in range(len(_UNITS), 0, -1):
        if size >= 1024**power:
            return f"{size / 1024**power:.2f} {_UNITS[power - 1]}"
    return f"{size} bytes"


class DataCenterFile:
    """A file in the storage, described for listings.

    Only the ``stat`` taken when the listing was made is kept; contents are
    read when ``lines`` is first asked for, so listing ten thousand files
    reads none of them.
    """

    def __init__(
        self, path: str, folder_name: str = "", stat: os.stat_result | None = None
    ) -> None:
        self.context = path
        self.name = os.path.basename(path)
        self.rel_path = os.path.join(folder_name, self.name)
        self._stat = stat if stat is not None else os.stat(path)

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} object at {id(self):#x}>"

    @property
    def size(self) -> str:
        return self.getSize()

    @property
    def uploaddate(self) -> str:
        return self.getDate()

    @cached_property
    def lines(self) -> int:
        return self.getLinesNumber()

    def getSize(self) -> str:  # noqa: N802 - Kofa's name
        """The size as people read it: ``'13 bytes'``, ``'1.50 kb'``."""
        return human_size(self._stat.st_size)

    def getDate(self) -> str:  # noqa: N802 - Kofa's name
        """The modification time as ``YYYY-mm-dd HH:MM:SS`` (local time)."""
        return datetime.fromtimestamp(self._stat.st_mtime).strftime("%Y-%m-%d %H:%M:%S")

    def getTimeStamp(self) -> float:  # noqa: N802 - Kofa's name
        """The modification time in seconds since the epoch."""
        return self._stat.st_mtime

    def getLinesNumber(self) -> int:  # noqa: N802 - Kofa's name
        """The number of lines; a last line without a newline counts too."""
        count = 0
        last = b"\n"
        with fs.open_read(self.context, shared=True) as handle:
            while chunk := handle.read(1 << 20):
                count += chunk.count(b"\n")
                last = chunk[-1:]
        return count + (last != b"\n")

    def as_dict(self) -> dict[str, object]:
        """What ``ls --json`` shows of the file."""
        return {
            "name": self.name,
            "rel_path": self.rel_path,
            "bytes": self._stat.st_size,
            "size": self.getSize(),
            "date": self.getDate(),
            "timestamp": self.getTimeStamp(),
        }


# "2026-11-21 13:20:01,123 - INFO - admin - processed: x.csv, create mode, ..."
_LINE = re.compile(r"^\S+ \S+ - (?P<level>[A-Z]+) - (?P<user>.*?) - (?P<message>.*)$")
_MARKER = re.compile(r"^(?P<name>[A-Za-z_]+): (?P<text>.*)$")


class LogFile(DataCenterFile):
    """A log file, with Kofa's markers taken from its most recent entries.

    ``user``, ``mode``, ``processed`` and ``source`` describe the last import
    the log recorded (``'<UNKNOWN>'`` and friends when it recorded none).
    """

    @cached_property
    def _markers(self) -> dict[str, str]:
        markers: dict[str, str] = {}
        binary = fs.open_read(self.context)  # a log is read as the storage's own
        with io.TextIOWrapper(binary, encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                line = _LINE.match(raw.rstrip("\n"))
                if not line:
                    continue
                marker = _MARKER.match(line["message"])
                if not marker or marker["name"].lower() != "processed":
                    continue
                text = marker["text"]
                parts = text.split(", ")
                markers = {"user": line["user"], "processed": text, "source": parts[0]}
                if len(parts) > 1 and parts[1].endswith(" mode"):
                    markers["mode"] = parts[1].removesuffix(" mode")
        return markers

    @property
    def user(self) -> str:
        return self._markers.get("user", "<UNKNOWN>")

    @property
    def mode(self) -> str:
        return self._markers.get("mode", "<NOT SET>")

    @property
    def processed(self) -> str:
        return self._markers.get("processed", "<Info not avail.>")

    @property
    def source(self) -> str | None:
        return self._markers.get("source")

    # Kofa's accessor names.
    def getUserId(self) -> str:  # noqa: N802
        return self.user

    def getMode(self) -> str:  # noqa: N802
        return self.mode

    def getStats(self) -> str:  # noqa: N802
        return self.processed

    def getSourcePath(self) -> str | None:  # noqa: N802
        return self.source
