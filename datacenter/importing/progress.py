"""How far a long import got, how fast it goes, and how long the rest should take.

The importer reports rows and bytes read (:meth:`BatchProcessor.import_rows`
calls its *progress* callback when reading begins and every 10,000 rows);
a :class:`Meter` turns those reports into what a person wants to see: the
percent of the file, rows per second and an ETA. ``datacenter import``
draws it as a progress bar on a terminal, the service publishes it in its
state file for ``datacenter status``. Both show it with
:func:`describe_progress`, from the same plain dict (the state file holds
it as JSON).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any


class Meter:
    """The progress of importing one file of *size* bytes."""

    def __init__(self, name: str, size: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.size, self.clock = name, size, clock
        self.rows = self.position = 0
        self._created = clock()
        #: When reading began, and where: the rate leaves out the wait for the
        #: storage's lock (another import may hold it for minutes).
        self._began: tuple[float, int] | None = None

    def update(self, rows: int, position: int) -> None:
        """The importer's report: *rows* read so far, *position* bytes into the file."""
        if self._began is None:  # the first report; a reader that says nothing at its start
            self._began = (self.clock(), position) if rows == 0 else (self._created, 0)
        self.rows, self.position = rows, position

    def report(self) -> dict[str, Any]:
        """The progress as plain data (for the state file and ``status --json``)."""
        rate = eta = None
        if self._began is not None and self.rows:
            began, at = self._began
            elapsed = self.clock() - began
            if elapsed > 0:
                rate = round(self.rows / elapsed)
                byte_rate = (self.position - at) / elapsed
                if byte_rate > 0:  # rounded up: "0 s" only when nothing is left
                    eta = math.ceil(max(self.size - self.position, 0) / byte_rate * 10) / 10
        percent = min(100, 100 * self.position // self.size) if self.size > 0 else 0
        return {"file": self.name, "rows": self.rows, "bytes": self.position,
                "size": self.size, "percent": percent, "rows_per_second": rate,
                "eta_seconds": eta}


def describe_progress(report: Mapping[str, Any] | None) -> str:
    """``"37% (120,000 rows, 45,000 rows/s, ETA 12 s)"``; "" for no progress."""
    if not report:
        return ""
    text = f"{report.get('percent', 0)}% ({report.get('rows', 0):,} rows"
    rate, eta = report.get("rows_per_second"), report.get("eta_seconds")
    if rate is not None:
        text += f", {rate:,} rows/s"
        if eta is not None:
            text += f", ETA {_duration(eta)}"
    return text + ")"


def _duration(seconds: float) -> str:
    """``"12 s"``, ``"3:05"`` or ``"1:02:05"``: rounded up, never "0 s" while work is left."""
    whole = math.ceil(seconds)
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"
