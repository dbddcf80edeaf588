"""What a service adds when it is one instance of several on a storage (PostgreSQL).

The claims, leases and heartbeats are the importer's
(:mod:`datacenter.records.claims`); a service also

* shows the file in hand to the others (``datacenter status`` lists every
  instance: id, host, pid, last heartbeat, file in hand);
* hears the others' wake-ups (``LISTEN``/``NOTIFY``): an import that
  committed rows wakes the pending files waiting for its processor here
  too, and an instance that left (or released a file) makes this one look
  at the root again, so that what it held is taken at once;
* takes no ``serve.lock``: any number of instances serve the storage.

With SQLite none of this exists: one service holds the storage
(``serve.lock``), and a second says why it cannot join.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from datacenter.config import Config, is_postgres
from datacenter.importing.importer import Importer
from datacenter.records.claims import ClaimBook, Instance, list_instances, living

#: What a second service on an SQLite record store is told.
SQLITE_ALONE = ("with an SQLite record store one service serves a storage; several instances "
                "need a PostgreSQL one (database = \"postgresql://user@host/dbname\" in the "
                "config, or $DATACENTER_DATABASE)")


class Membership:
    """One service's part in the cluster: wake-ups heard, the file in hand shown."""

    def __init__(self, claims: ClaimBook, wake: Callable[[], None]) -> None:
        self.claims = claims
        self._wake = wake
        self._heard: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self._mutex = threading.Lock()
        claims.listeners.append(self._hear)

    def _hear(self, message: dict[str, Any]) -> None:
        """Called by the heartbeat thread: kept for the loop, which is woken."""
        with self._mutex:
            self._heard.append(message)
        self._wake()

    def heard(self) -> list[dict[str, Any]]:
        """The wake-ups heard since the last call, oldest first."""
        with self._mutex:
            taken = list(self._heard)
            self._heard.clear()
        return taken

    def show(self, in_hand: str | None) -> None:
        """The file in hand, as the next heartbeat tells the others."""
        self.claims.in_hand = in_hand or ""

    def leave(self) -> None:
        if self._hear in self.claims.listeners:
            self.claims.listeners.remove(self._hear)


def membership(importer: Importer, wake: Callable[[], None]) -> Membership | None:
    """The service's membership when its storage is shared (PostgreSQL), else None."""
    return Membership(importer.claims, wake) if importer.claims is not None else None


def instances(conf: Config, storage: str) -> list[dict[str, Any]]:
    """The instances registered on *storage* (PostgreSQL), for ``status``; [] with SQLite."""
    if not is_postgres(conf.database):
        return []
    return [dataclasses.asdict(i) for i in list_instances(conf.database, storage,
                                                          conf.cluster.lease)]


def running(conf: Config, storage: str) -> list[Instance]:
    """The live instances on *storage* (PostgreSQL; with SQLite, see ``serve.lock``)."""
    if not is_postgres(conf.database):
        return []
    return [i for i in list_instances(conf.database, storage, conf.cluster.lease) if living(i)]
