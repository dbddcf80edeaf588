"""Is the service alive, and what has it done: ``/healthz`` and ``/metrics``.

Both only read, like ``status``: whether a process holds the service lock
(a killed service cannot say it stopped; with PostgreSQL, whether a
``serve`` instance is alive in the record store), the ``updated`` moment of the
state file it publishes (rewritten at least every
:data:`~datacenter.service.service.HEARTBEAT` seconds while its loop
turns, and during a long import as rows come in), and the ledger opened
read-only.

:func:`health` says alive, stuck (the lock is held, but the state was not
written for :data:`STALE` seconds) or gone (no process holds the lock).
:func:`metrics` is the Prometheus text format, every name ``datacenter_``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from datacenter.config import DEFAULT_LEASE
from datacenter.records.backend import read_totals
from datacenter.service.state import service_status
from datacenter.service.verdicts import REJECTED, UNROUTED

#: A service whose state is older than this is stuck (its loop writes it every few seconds).
STALE = 60.0
#: The bounds of the import duration histogram, in seconds.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class Health:
    alive: bool
    #: ``alive``, ``stuck`` or ``gone``.
    state: str
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"alive": self.alive, "state": self.state, "detail": self.detail}


def health(storage: str, stale: float = STALE, now: float | None = None, *, database: str = "",
           lease: float = DEFAULT_LEASE, own: str | None = None) -> Health:
    """Whether the service loop of *storage* is alive, from its lock and its heartbeat.

    With a PostgreSQL *database*: from the live ``serve`` instances (*own*
    alone when given: ``serve --web`` reports on its own loop) and their
    state files (:func:`~datacenter.service.state.service_status`).
    """
    return judge(service_status(storage, database, lease, own), stale, now)


def judge(status: dict[str, Any], stale: float = STALE, now: float | None = None) -> Health:
    """:func:`health` of a state already read (:func:`service_status`)."""
    now = time.time() if now is None else now
    if not status.get("running"):
        last = status.get("state")
        said = f" (its state file says {last!r})" if last else " (no service ever ran here)"
        return Health(False, "gone", f"gone: no service process holds the storage{said}")
    updated = status.get("updated")
    age = now - updated if isinstance(updated, int | float) else math.inf
    holder = status.get("holder")
    if age > stale:
        return Health(False, "stuck", f"stuck: {holder} holds the storage but its loop last "
                                      f"wrote its state {age:.0f} s ago (more than {stale:g} s)")
    in_hand = status.get("in_hand")
    doing = f", importing {in_hand}" if in_hand else ""
    return Health(True, "alive", f"alive: {holder}, state written {age:.1f} s ago{doing}")


def metrics(storage: str, database: str, now: float | None = None, *,
            lease: float = DEFAULT_LEASE, own: str | None = None) -> str:
    """The Prometheus text exposition of *storage*'s service and imports."""
    now = time.time() if now is None else now
    status = service_status(storage, database, lease, own)
    totals = read_totals(database, storage, DURATION_BUCKETS)
    alive = judge(status, now=now).alive
    queue = status.get("queue", {})
    since = now - totals.last_finished if totals.last_finished is not None else math.nan
    lines: list[str] = []
    _metric(lines, "datacenter_up", "gauge",
            "1 while the service loop is alive (its heartbeat is fresh)", int(alive))
    _metric(lines, "datacenter_files_imported_total", "counter",
            "Files imported (committed imports in the ledger)", totals.jobs)
    _metric(lines, "datacenter_rows_imported_total", "counter",
            "Rows imported into the record store", totals.rows_ok)
    _metric(lines, "datacenter_rows_failed_total", "counter",
            "Rows that failed and went to a pending file", totals.rows_failed)
    _metric(lines, "datacenter_files_rejected", "gauge",
            "Files at the root the service rejected as a whole (left until they change)",
            _listed(status, REJECTED))
    _metric(lines, "datacenter_files_unrouted", "gauge",
            "Files at the root no processor claims", _listed(status, UNROUTED))
    _metric(lines, "datacenter_queue_length", "gauge",
            "Files waiting to settle before their import",
            queue.get("count", 0) if isinstance(queue, dict) else 0)
    _metric(lines, "datacenter_seconds_since_last_import", "gauge",
            "Seconds since the last import committed (NaN: none yet)", since)
    name = "datacenter_import_duration_seconds"
    lines += [f"# HELP {name} How long imports took, from start to commit",
              f"# TYPE {name} histogram"]
    for bound, count in totals.durations.items():
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {count}')
    lines += [f'{name}_bucket{{le="+Inf"}} {totals.jobs}', f"{name}_sum {totals.duration_sum:g}",
              f"{name}_count {totals.jobs}"]
    return "\n".join(lines) + "\n"


def _listed(status: dict[str, Any], kind: str) -> int:
    found = status.get(kind)
    return len(found) if isinstance(found, list) else 0


def _metric(lines: list[str], name: str, kind: str, text: str, value: float) -> None:
    shown = "NaN" if isinstance(value, float) and math.isnan(value) else f"{value:g}" \
        if isinstance(value, float) else str(value)
    lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {shown}"]
