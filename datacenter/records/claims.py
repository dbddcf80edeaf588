"""Several instances on one storage: who is alive, and which file each has in hand.

With a PostgreSQL record store any number of processes (``datacenter
serve`` on one machine or several, ``datacenter import``) may work on one
storage. Each is an *instance*: a row of ``datacenter_instances`` (id,
host, pid, last heartbeat, the file in hand), kept alive by a heartbeat
thread every third of the *lease*. Before an instance parses a file it
*claims* it (``datacenter_claims``): a claim lasts until its instance's
heartbeats stop for a lease, and then another instance may take the file
over. The import's commit turns the claim into the job's (:meth:`confirm`,
in the import's own transaction: a claim taken over meanwhile, or expired,
refuses the commit), and the job's filing ends it
(``PostgresStore.mark_distributed``). So two instances never both import a
file, even when one of them stalled past its lease: the one that lost its
claim cannot commit.

An instance whose heartbeats stopped for a lease is dead for good: its
heartbeat finds so, and it carries on as a new instance (its claims are
lost; what it had in hand rolls back and is taken again). Only the files
of dead instances are swept (their job folders): a stalled instance cannot
come back to a job folder swept under it and commit.

The journal of the storage is applied under the storage's file lock and,
across machines, under a session advisory lock of PostgreSQL keyed by the
storage (:meth:`locked`). Instances wake each other through
``LISTEN``/``NOTIFY`` on one channel (:data:`CHANNEL`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from datacenter.errors import DataCenterError
from datacenter.records.postgres import Connection, PostgresStore, StoreUnavailableError, connect

#: The channel instances wake each other on; the payload is JSON naming the storage.
CHANNEL = "datacenter"


def _machine() -> str:
    """This boot of this machine: processes it runs can be checked for directly."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return f"{socket.gethostname()}/{handle.read().strip()}"
    except OSError:
        return socket.gethostname()


MACHINE = _machine()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
_log = logging.getLogger(__name__)


class ClaimedError(DataCenterError):
    """Another instance has the file in hand (or committed it and is filing it)."""


class ClaimLostError(ClaimedError):
    """This instance's claim on the file ran out or was taken over: nothing was committed."""


@dataclass
class Instance:
    """One row of ``datacenter status``'s instances."""

    id: str
    host: str
    machine: str
    pid: int
    kind: str
    storage: str
    started: float
    heartbeat: float
    in_hand: str
    alive: bool


class ClaimBook:
    """This process's instance on one storage: its row, heartbeats, claims and wake-ups."""

    def __init__(self, url: str, storage: str, lease: float, kind: str = "import") -> None:
        self.url, self.lease, self.kind = url, lease, kind
        self.storage = os.path.realpath(storage)
        self.host, self.pid = socket.gethostname(), os.getpid()
        #: The file (or "N files") in hand, shown by ``status`` through the heartbeats.
        self.in_hand = ""
        #: Called with each wake-up another instance sent about this storage.
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.instance = ""
        self._db = connect(url)
        self._mutex = threading.Lock()  # the main connection is used by one thread at a time
        self._register()
        self._stop = threading.Event()
        self._down = False
        self._thread = threading.Thread(target=self._beat, name="datacenter-heartbeat",
                                        daemon=True)
        self._thread.start()

    # -- the instance ----------------------------------------------------------------

    def _register(self) -> None:
        self.instance = uuid.uuid4().hex[:12]
        with self._mutex:
            self._main().execute(
                "INSERT INTO datacenter_instances (id, host, machine, pid, kind, storage) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (self.instance, self.host, MACHINE, self.pid, self.kind, self.storage))

    def _main(self) -> Connection:
        if self._db.closed or self._db.broken:
            self._db.close()
            self._db = connect(self.url)
        return self._db

    def close(self) -> None:
        """Leave: the claims not committed end now, and so does the instance's row."""
        # The heartbeat thread ends by itself within a second (not waited for:
        # a process opens and closes importers often); it beats no more.
        self._stop.set()
        with contextlib.suppress(psycopg.Error), self._mutex:
            db = self._main()
            db.execute("DELETE FROM datacenter_claims WHERE instance = %s AND job IS NULL",
                       (self.instance,))
            db.execute("DELETE FROM datacenter_instances WHERE id = %s", (self.instance,))
            self._notify(db, {"event": "released"})
        self._db.close()

    def _beat(self) -> None:
        """Every third of a lease: say this instance lives; meanwhile, pass on wake-ups."""
        db: Connection | None = None
        due = 0.0
        while not self._stop.is_set():
            try:
                if db is None or db.closed or db.broken:
                    db = connect(self.url)
                    db.execute(f"LISTEN {CHANNEL}")
                if time.monotonic() >= due:
                    self._heartbeat(db)
                    due = time.monotonic() + self.lease / 3
                if self._down:  # the service says so, once (this is for debugging)
                    _log.debug("datacenter: the record store answers again")
                    self._down = False
                wait = min(max(0.0, due - time.monotonic()), 1.0)  # and look at _stop
                for note in db.notifies(timeout=wait, stop_after=1):
                    self._heard(note.payload)
            except psycopg.Error as error:
                if not self._down:  # the service says so, once (this is for debugging)
                    _log.debug("datacenter: the record store does not answer (%s); "
                                 "trying again", str(error).strip().splitlines()[0])
                self._down = True
                if db is not None:
                    db.close()
                self._stop.wait(min(self.lease / 3, 2.0))
        if db is not None:
            db.close()

    def _heartbeat(self, db: Connection) -> None:
        if self._stop.is_set():
            return
        beat = db.execute(
            "UPDATE datacenter_instances SET heartbeat = now(), in_hand = %s WHERE id = %s "
            "AND heartbeat > now() - %s * interval '1 second'",
            (self.in_hand, self.instance, self.lease))
        if beat.rowcount != 1 and not self._stop.is_set():
            # Silent for a lease: others took its files over and swept its job
            # folders. It must not come back as itself: it starts anew.
            _log.warning("datacenter: instance %s was silent for more than its lease "
                         "(%g s); it carries on as a new instance", self.instance, self.lease)
            self._register()
            return
        db.execute(
            "UPDATE datacenter_claims SET expires = now() + %s * interval '1 second' "
            "WHERE (storage, name) IN (SELECT storage, name FROM datacenter_claims "
            "WHERE instance = %s AND job IS NULL FOR UPDATE SKIP LOCKED)",
            (self.lease, self.instance))

    def _heard(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("storage") != self.storage:
            return
        if message.get("instance") == self.instance:
            return
        for listener in list(self.listeners):
            listener(message)

    def instances(self) -> list[Instance]:
        """Every instance on this storage, alive or not yet swept, oldest first."""
        with self._mutex:
            return _instances(self._main(), self.storage, self.lease)

    def alive(self) -> set[str]:
        """The ids of the instances alive: heartbeats within their lease, and on this
        machine, their process still there (one killed ends at once, not after a lease)."""
        self.reap()
        return {i.id for i in self.instances() if i.alive}

    def reap(self) -> int:
        """End the instances of this machine whose process is gone, and their claims; how many.

        Their claims not committed end with them: another instance takes
        their files at once, without waiting for the lease. The rows of
        instances silent for a lease (of other machines, or of before a
        reboot) are removed too (:func:`forget_dead`): dead for good, they
        would stay in ``status`` for ever.
        """
        gone = [i.id for i in self.instances()
                if i.machine == MACHINE and i.id != self.instance and not _running(i.pid)]
        with self._mutex:
            db = self._main()
            if gone:
                db.execute("DELETE FROM datacenter_claims WHERE instance = ANY(%s) "
                           "AND job IS NULL", (gone,))
                db.execute("DELETE FROM datacenter_instances WHERE id = ANY(%s)", (gone,))
            _forget_dead(db, self.lease)
        return len(gone)

    # -- claims ----------------------------------------------------------------------

    def claim(self, name: str, ident: str) -> str:
        """A token for the file *name* of the storage; ClaimedError if another has it."""
        token = uuid.uuid4().hex
        self._alive_or_anew()
        with self._mutex:
            found = self._main().execute(
                "INSERT INTO datacenter_claims (storage, name, ident, instance, token, expires) "
                "VALUES (%s, %s, %s, %s, %s, now() + %s * interval '1 second') "
                "ON CONFLICT (storage, name) DO UPDATE SET ident = EXCLUDED.ident, "
                "instance = EXCLUDED.instance, token = EXCLUDED.token, "
                "expires = EXCLUDED.expires WHERE datacenter_claims.job IS NULL AND "
                "(datacenter_claims.expires < now() "
                "OR datacenter_claims.instance = EXCLUDED.instance) RETURNING token",
                (self.storage, name, ident, self.instance, token, self.lease)).fetchone()
            if found is not None:
                return token
            holder = self._main().execute(
                "SELECT c.instance, c.job, i.host, i.pid FROM datacenter_claims c "
                "LEFT JOIN datacenter_instances i ON i.id = c.instance "
                "WHERE c.storage = %s AND c.name = %s", (self.storage, name)).fetchone()
        if holder is None or (holder[1] is None and self.reap()):
            return self.claim(name, ident)  # ended meanwhile, or its process is gone
        instance, job, host, pid = holder
        what = f"committed as job {job}, being filed" if job is not None else "in hand"
        raise ClaimedError(f"{name}: {what} by instance {instance} ({host or '?'}, "
                           f"process {pid or '?'})")

    def _alive_or_anew(self) -> None:
        """Say this instance lives; if it was silent past its lease, it starts anew first.

        An instance others took for dead (its files taken over, its job
        folders swept) must never claim or commit as itself again.
        """
        sql = ("UPDATE datacenter_instances SET heartbeat = now() WHERE id = %s "
               "AND heartbeat > now() - %s * interval '1 second'")
        with self._mutex:
            db = self._main()
            try:
                beat = db.execute(sql, (self.instance, self.lease))
            except StoreUnavailableError:
                # Dropped by the server while idle (an outage, a restart): found dead
                # only now, at its first use since. A heartbeat is safe to send again,
                # and the claim's write goes on a live connection after it.
                if not db.broken:
                    raise
                beat = self._main().execute(sql, (self.instance, self.lease))
        if beat.rowcount != 1:
            _log.warning("datacenter: instance %s was silent for more than its lease "
                         "(%g s); it carries on as a new instance", self.instance, self.lease)
            self._register()

    def confirm(self, store: PostgresStore, name: str, token: str, job: int) -> None:
        """Inside the import's transaction: the claim becomes *job*'s, or ClaimLostError.

        Refused when the claim was taken over, ran out, or its instance was
        silent past its lease (others may have swept its job folders).
        """
        done = store.db.execute(
            "UPDATE datacenter_claims c SET job = %s WHERE c.storage = %s AND c.name = %s "
            "AND c.token = %s AND c.job IS NULL AND c.expires > now() AND EXISTS ("
            "SELECT 1 FROM datacenter_instances i WHERE i.id = c.instance "
            "AND i.heartbeat > now() - %s * interval '1 second')",
            (job, self.storage, name, token, self.lease)).rowcount
        if done != 1:
            raise ClaimLostError(f"{name}: this instance's claim ran out (lease {self.lease:g} s)"
                                 " or another instance took it over; nothing was committed")

    def release(self, claims: dict[str, str]) -> None:
        """End the claims (name: token) that committed nothing; others may take the files."""
        if not claims:
            return
        with self._mutex:
            db = self._main()
            with db.cursor() as cursor:
                cursor.executemany(
                    "DELETE FROM datacenter_claims WHERE storage = %s AND name = %s "
                    "AND token = %s AND job IS NULL",
                    [(self.storage, name, token) for name, token in claims.items()])

    # -- the storage's journal, one instance at a time ---------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the storage's advisory lock (re-entrant: PostgreSQL counts the holds)."""
        key = storage_key(self.storage)
        with self._mutex:
            self._main().execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error), self._mutex:
                self._main().execute("SELECT pg_advisory_unlock(%s)", (key,))

    # -- waking the others ---------------------------------------------------------------

    def notify(self, message: dict[str, Any]) -> None:
        """Tell the other instances of this storage (``committed``, ``released``...)."""
        with contextlib.suppress(psycopg.Error), self._mutex:
            self._notify(self._main(), message)

    def _notify(self, db: Connection, message: dict[str, Any]) -> None:
        payload = json.dumps({**message, "storage": self.storage, "instance": self.instance})
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def living(instance: Instance) -> bool:
    """Is *instance* alive: heartbeats within its lease and, on this machine, its process there?"""
    return instance.alive and (instance.machine != MACHINE or _running(instance.pid))


def storage_key(storage: str) -> int:
    """The advisory lock key of a storage: a signed 64-bit hash of its real path."""
    digest = hashlib.blake2b(os.path.realpath(storage).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def list_instances(url: str, storage: str | None, lease: float) -> list[Instance]:
    """The instances registered (on *storage*, or on any), oldest first; read only."""
    with contextlib.closing(connect(url)) as db:
        if db.execute("SELECT to_regclass('datacenter_instances')").fetchone() in (None, (None,)):
            return []
        return _instances(db, storage, lease)


def _instances(db: Connection, storage: str | None, lease: float) -> list[Instance]:
    where, params = "", tuple[object, ...]()
    if storage is not None:
        where, params = "WHERE storage = %s", (os.path.realpath(storage),)
    rows = db.execute(
        "SELECT id, host, machine, pid, kind, storage, extract(epoch FROM started)::float8, "
        "extract(epoch FROM heartbeat)::float8, in_hand, "
        f"heartbeat > now() - %s * interval '1 second' FROM datacenter_instances {where} "
        "ORDER BY started", (lease, *params)).fetchall()
    return [Instance(*row) for row in rows]


def forget_dead(url: str, lease: float) -> int:
    """Remove the rows of instances silent for a lease; how many."""
    with contextlib.closing(connect(url)) as db:
        return _forget_dead(db, lease)


def _forget_dead(db: Connection, lease: float) -> int:
    return int(db.execute(
        "DELETE FROM datacenter_instances WHERE heartbeat < now() - %s * interval '1 second'",
        (lease,)).rowcount)


def claims_left(url: str) -> list[tuple[str, str, str | None]]:
    """Every claim still recorded: (storage, name, job); for checks and ``status``."""
    with contextlib.closing(connect(url)) as db:
        return [(str(s), str(n), None if j is None else str(j)) for s, n, j in db.execute(
            "SELECT storage, name, job FROM datacenter_claims ORDER BY storage, name")]
