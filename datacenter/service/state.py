"""What others see of a running service, without asking it.

* The state file ``.datacenter/service.json`` (queue, file in hand with
  its progress, unrouted, rejected and pending files with reasons, last
  imports), written by the service at most a few times a second, during
  a long import too, and read by ``datacenter status`` without any lock.
* Whether a service runs, which is never read from that file (a killed
  service cannot say it stopped) but from ``.datacenter/serve.lock``, which
  only a live process can hold (:func:`hold_service_lock` takes it).

With a PostgreSQL record store several ``serve`` instances share the
storage and none holds ``serve.lock``: each writes a state file of its own,
``.datacenter/service.<instance>.json``, and whether a service runs is
whether a ``serve`` instance is alive in the record store (heartbeats
within the lease; :mod:`datacenter.records.claims`). The files of
instances no longer alive are swept by the live ones (the newest is kept:
it says how the last one ended).

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

from datacenter.config import DEFAULT_LEASE, is_postgres
from datacenter.records.claims import Instance, list_instances, living
from datacenter.storage import fs, layout
from datacenter.storage.lock import LockHeldError, StorageLock, service_holder

STATE_FILE = "service.json"
#: With PostgreSQL: the state file of one ``serve`` instance (its id between the dots).
INSTANCE_STATE = "service.{}.json"
WRITE_INTERVAL = 0.25  # seconds: at most 4 writes a second, each one durable
KINDS = ("unrouted", "rejected", "pending")
_log = logging.getLogger(__name__)


class StateFile:
    """The state file of one storage, written at most every *interval* seconds."""

    def __init__(self, storage: str, interval: float = WRITE_INTERVAL,
                 name: str = STATE_FILE) -> None:
        self.storage, self.path = storage, layout.state_path(storage, name)
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

    def replaced_by(self, other: StateFile) -> StateFile:
        """*other*, this one removed (an instance silent past its lease got a new id)."""
        with contextlib.suppress(OSError):
            fs.unlink(self.path, missing_ok=True)
        return other

    def sweep_others(self, alive: set[str]) -> None:
        """With PostgreSQL: remove the state files of instances not *alive* (the newest
        of them is kept: it says how the last one ended)."""
        with contextlib.suppress(OSError):
            sweep_instance_states(self.storage, alive)

    def sweep(self) -> None:
        """Remove what a kill in the middle of a write left behind.

        Only the holder of the service lock writes in the state folder's
        top level, so a temporary file there is garbage of an earlier run.
        With PostgreSQL (an instance's own file) nothing is swept: another
        instance may be writing its own file right now.
        """
        if os.path.basename(self.path) != STATE_FILE:
            return
        with contextlib.suppress(OSError), os.scandir(os.path.dirname(self.path)) as found:
            for entry in found:
                if entry.name.startswith(fs.TEMP_PREFIX) and entry.name.endswith(".part"):
                    fs.unlink(entry.path, missing_ok=True)


def state_file(storage: str, instance: str | None) -> StateFile:
    """``service.json``; with PostgreSQL, *instance*'s own (the others write theirs)."""
    return StateFile(storage) if instance is None else \
        StateFile(storage, name=INSTANCE_STATE.format(instance))


def read_state(storage: str, name: str = STATE_FILE) -> dict[str, Any]:
    """The state the service last wrote for *storage* (in the file *name*), or {}."""
    try:
        with open(layout.state_path(storage, name), "rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def service_running(storage: str) -> str | None:
    """``"process N"`` while a service holds *storage*, else None."""
    return service_holder(storage)


def instance_states(storage: str) -> dict[str, str]:
    """With PostgreSQL: the instances' state files of *storage* (instance id: file name)."""
    prefix, suffix = INSTANCE_STATE.split("{}")
    try:
        names = os.listdir(layout.state_path(storage))
    except OSError:
        return {}
    return {name[len(prefix):-len(suffix)]: name for name in names
            if name.startswith(prefix) and name.endswith(suffix) and name != STATE_FILE}


def last_state(storage: str, shared: bool) -> dict[str, Any]:
    """What the last service wrote: ``service.json``, or with PostgreSQL (*shared*) the
    instance file written last."""
    return latest_state(storage) if shared else read_state(storage)


def latest_state(storage: str) -> dict[str, Any]:
    """With PostgreSQL: the state file written last by any instance, or {}."""
    found = [read_state(storage, name) for name in instance_states(storage).values()]
    return max(found, key=_updated, default={})


def _updated(state: dict[str, Any]) -> float:
    updated = state.get("updated")
    return float(updated) if isinstance(updated, int | float) else 0.0


def sweep_instance_states(storage: str, alive: set[str]) -> None:
    """Remove the state files of instances not in *alive*, but the newest (how it ended)."""
    gone = {i: n for i, n in instance_states(storage).items() if i not in alive}
    newest = max(gone.values(), key=lambda n: _updated(read_state(storage, n)), default=None)
    for name in gone.values():
        if name != newest:
            fs.unlink(layout.state_path(storage, name), missing_ok=True)


def serving_instances(database: str, storage: str, lease: float) -> list[Instance]:
    """The live ``serve`` instances of *storage* in the PostgreSQL store *database*."""
    return [i for i in list_instances(database, storage, lease)
            if i.kind == "serve" and living(i)]


def service_status(storage: str, database: str = "", lease: float = DEFAULT_LEASE,
                   own: str | None = None) -> dict[str, Any]:
    """The service's last state, with ``running`` and ``holder`` as of now.

    With a PostgreSQL *database* the service is the ``serve`` instances
    alive in it; the state shown is *own*'s (``serve --web``'s console
    reports on its own instance) or else the freshest live one's.
    """
    if not is_postgres(database):
        data = read_state(storage)
        holder = service_running(storage)
    else:
        live = serving_instances(database, storage, lease)
        if own is not None:
            live = [i for i in live if i.id == own]
        states = [read_state(storage, INSTANCE_STATE.format(i.id)) for i in live]
        data = max(states, key=_updated, default={}) if live else latest_state(storage)
        holder = ", ".join(f"instance {i.id} ({i.host}, process {i.pid})"
                           for i in live) or None
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
