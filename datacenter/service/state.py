"""What others see of a running service, without asking it.

* The state file ``.datacenter/service.json`` (queue, file in hand with
  its progress, unrouted, rejected and pending files with reasons, last
  imports), written by the service at most a few times a second, during
  a long import too, and read by ``datacenter status`` without any lock.
* Whether a service runs, which is never read from that file (a killed
  service cannot say it stopped) but from ``.datacenter/serve.lock``, which
  only a live process can hold (:func:`hold_service_lock` takes it).

The loop itself is :mod:`datacenter.service.service`; the ``serve``
command is :mod:`datacenter.cli.serve`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from datacenter.storage import fs, layout
from datacenter.storage.lock import LockHeldError, StorageLock, service_holder

STATE_FILE = "service.json"
WRITE_INTERVAL = 0.25  # seconds: at most 4 writes a second, each one durable
KINDS = ("unrouted", "rejected", "pending")
_log = logging.getLogger(__name__)


class StateFile:
    """The state file of one storage, written at most every *interval* seconds."""

    def __init__(self, storage: str, interval: float = WRITE_INTERVAL) -> None:
        self.path = layout.state_path(storage, STATE_FILE)
        self.interval = interval
        #: A write was skipped: one is owed at :attr:`next_write`.
        self.dirty = False
        self.next_write = 0.0
        self._failing = False

    def write(self, state: Callable[[], dict[str, Any]], force: bool = False) -> None:
        """Write ``state()`` now, or at the end of the interval unless *force*."""
        if not force and time.monotonic() < self.next_write:
            self.dirty = True
            return
        self.dirty, self.next_write = False, time.monotonic() + self.interval
        data = json.dumps(state(), indent=1, ensure_ascii=False).encode("utf-8")
        try:
            fs.atomic_write(self.path, data)
            self._failing = False
        except OSError as error:
            if not self._failing:  # once per spell of trouble, not 4 times a second
                _log.warning("datacenter: cannot write %s: %s", self.path, error)
            self._failing = True

    def sweep(self) -> None:
        """Remove what a kill in the middle of a write left behind.

        Only the holder of the service lock writes in the state folder's
        top level, so a temporary file there is garbage of an earlier run.
        """
        with contextlib.suppress(OSError), os.scandir(os.path.dirname(self.path)) as found:
            for entry in found:
                if entry.name.startswith(fs.TEMP_PREFIX) and entry.name.endswith(".part"):
                    fs.unlink(entry.path, missing_ok=True)


def read_state(storage: str) -> dict[str, Any]:
    """The state the service last wrote for *storage*, or {}."""
    try:
        with open(layout.state_path(storage, STATE_FILE), "rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def service_running(storage: str) -> str | None:
    """``"process N"`` while a service holds *storage*, else None."""
    return service_holder(storage)


def service_status(storage: str) -> dict[str, Any]:
    """The service's last state, with ``running`` and ``holder`` as of now."""
    data = read_state(storage)
    holder = service_running(storage)
    data.update(running=holder is not None, holder=holder)
    if holder is None and data.get("state") == "running":
        data["state"] = "gone without stopping (killed?)"
    return data


def hold_service_lock(storage: str, patience: float = 1.0) -> StorageLock:
    """The service lock of *storage*, or LockHeldError when another service holds it.

    Not at the first refusal: ``service_running`` (``datacenter status``)
    takes a shared lock for an instant to see whether anybody holds it.
    """
    lock = StorageLock(layout.state_path(storage, layout.SERVICE_LOCK))
    deadline = time.monotonic() + patience
    while True:
        try:
            lock.acquire(blocking=False)
            return lock
        except LockHeldError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
