"""What ``datacenter status --json`` says, as one dictionary: the console's ``/api/status`` too.

It only reads: a :class:`~datacenter.storage.view.StorageView` (counts,
never listings), the ledger opened read-only, and the state the service
publishes. Every moment in it is ISO 8601 in UTC with its offset and
milliseconds (:func:`timestamp`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from datacenter.config import Config
from datacenter.importing.diagnosis import NOT_CSV, root_file_advice
from datacenter.records.backend import read_ledger
from datacenter.records.migrations import safe_url
from datacenter.records.store import Job
from datacenter.service import cluster
from datacenter.service.census import census
from datacenter.service.state import service_status
from datacenter.service.verdicts import REJECTED, UNROUTED
from datacenter.storage import layout
from datacenter.storage.view import StorageView

#: Keys of the service's state that hold a moment (seconds since the epoch).
_MOMENTS = frozenset({"started", "updated", "at", "finished", "since"})


def timestamp(seconds: float) -> str:
    """A moment for ``--json`` output: ISO 8601 in UTC, with its zone and milliseconds.

    ``2026-12-03T15:40:00.123+00:00``: one zone for every machine, sorted
    as text; the human output keeps local time.
    """
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds")


def service_json(value: Any, key: str = "") -> Any:
    """The service's state for ``--json``: every moment in it as ISO 8601 with its zone.

    A moment is a float under one of :data:`_MOMENTS` (counts are whole
    numbers, and stay as they are).
    """
    if isinstance(value, dict):
        return {k: service_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [service_json(item) for item in value]
    return timestamp(value) if key in _MOMENTS and isinstance(value, float) else value


def status_report(conf: Config, view: StorageView, limit: int = 10, offset: int = 0,
                  served: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything ``status --json`` prints for the storage *view* shows.

    *served*: the service's state as already read (:func:`service_status`).
    """
    ledger = read_ledger(conf.database, limit, offset, view.storage)
    intents = view.interrupted_operations()
    served = service_status(view.storage, conf.database, conf.cluster.lease) \
        if served is None else served
    counts, finished = file_counts(view, served)
    # Files at the root that no import takes (a workbook dropped as it is): said
    # here, since the service leaves them alone without a word in its queue.
    not_importable = [{"name": name, "reason": root_file_advice(name) or NOT_CSV}
                      for name in view.other_root_files()]
    return {
        "storage": view.storage,
        "database": safe_url(conf.database),
        "instances": cluster.instances(conf, view.storage),
        "files": counts,
        # What getFinishedFiles would list: the *.finished.csv files, at most max_files.
        "finished_files": min(finished, view.max_files),
        "interrupted": intents + ledger.unfiled,
        "interrupted_operations": intents,
        "unfiled_imports": ledger.unfiled,
        "last_imports": [job_dict(job) for job in ledger.last],
        "needs_a_person": view.needs_a_person(),
        "not_importable": not_importable,
        "service": service_json(served),
    }


def file_counts(view: StorageView, served: dict[str, Any],
                ) -> tuple[dict[str, int | None], int]:
    """Files per folder, the root's split into waiting, rejected and unrouted files;
    and how many ``*.finished.csv`` files ``finished/`` holds.

    Only the service knows which root files it left alone: without its
    state, rejected and unrouted are unknown (None), not zero. The folders
    are counted, never listed: a folder of a million files costs no object
    per file.
    """
    root = census(view.storage, [f.name for f in view.iter_files("pending")], served)
    counts: dict[str, int | None] = {"pending": root.pending, REJECTED: root.rejected,
                                     UNROUTED: root.unrouted}
    finished = 0
    for folder in layout.SUBFOLDERS:
        if folder == layout.FINISHED:
            counts[folder], finished = view.count_files(folder, ".finished.csv")
        else:
            counts[folder] = view.count_files(folder)[0]
    return counts, finished


def job_dict(job: Job) -> dict[str, Any]:
    """A ledger row for ``--json``."""
    return {"id": job.id, "source": job.source, "processor": job.processor, "mode": job.mode,
            "user": job.user, "rows": job.rows, "ok": job.ok, "failed": job.failed,
            "outcome": job.outcome, "started": timestamp(job.started),
            "finished": timestamp(job.finished), "sha256": job.sha256}
