"""The importer as one instance of several on a storage (PostgreSQL).

:class:`Sharing` holds what an :class:`~datacenter.importing.importer.Importer`
needs besides its record store when others import into the same storage
(:mod:`datacenter.records.claims` has the claims, leases and heartbeats):

* the claims it holds on the files it imports now (taken before parsing,
  confirmed inside the commit, ended when nothing committed);
* the jobs whose commit a lost connection left in doubt (their folders are
  kept until the ledger says whether they happened);
* which job folders belong to live instances (recovery leaves them);
* the storage's lock across machines (an advisory lock of PostgreSQL, held
  together with the storage's file lock).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from datacenter.importing.outcomes import Plan
from datacenter.records.backend import STORE_ERRORS
from datacenter.records.claims import ClaimBook, ClaimedError, ClaimLostError
from datacenter.records.postgres import PostgresStore
from datacenter.records.store import Job
from datacenter.storage import fs
from datacenter.storage.center import DataCenter
from datacenter.storage.identity import FileIdentity

#: Why a file is not imported now, but may be later: another instance has it, or
#: the record store does not answer.
NOT_NOW: tuple[type[Exception], ...] = (ClaimedError, *STORE_ERRORS)


class Sharing:
    """One importer's claims and doubts, as an instance among others on its storage."""

    def __init__(self, claims: ClaimBook, dc: DataCenter, store: PostgresStore) -> None:
        self.claims, self.dc, self.store = claims, dc, store
        self._tokens: dict[str, str] = {}  # path: this instance's claim on it, while importing
        self._unknown: list[Job] = []  # jobs whose commit may or may not have happened

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The advisory lock of the storage (the caller holds its file lock)."""
        with self.claims.locked():
            yield

    @property
    def folder_prefix(self) -> str:
        """What this instance's job folders are named with: recovery knows whose they are."""
        return f"{self.claims.instance}."

    def live_folders(self, names: list[str]) -> set[str]:
        """The job folders among *names* of live instances (imports in progress there)."""
        alive = self.claims.alive()
        return {name for name in names if name.split(".", 1)[0] in alive}

    # -- claims ----------------------------------------------------------------------

    def claim(self, planned: list[Plan | Exception]) -> list[Plan | Exception]:
        """Claim each planned file for this instance; ClaimedError where another has it."""
        claimed: list[Plan | Exception] = []
        for plan in planned:
            ident = None if isinstance(plan, Exception) else FileIdentity.at(plan[0])
            if isinstance(plan, Exception) or ident is None:
                claimed.append(plan)
                continue
            try:
                self._tokens[plan[0]] = self.claims.claim(os.path.basename(plan[0]),
                                                          ident.to_ledger())
            except NOT_NOW as error:
                claimed.append(error)
                continue
            claimed.append(plan)
        return claimed

    def confirm(self, path: str, job: int, workdir: str) -> None:
        """Inside the commit: the claim on *path* becomes *job*'s (or ClaimLostError).

        Refused too when *workdir* is not named after this instance as it is
        now: one made before a silence past the lease bears a dead instance's
        id, and the others' recovery may sweep it at any moment.
        """
        if not os.path.basename(workdir).startswith(self.folder_prefix):
            raise ClaimLostError(f"{os.path.basename(path)}: this instance was silent past its "
                                 "lease during the import (its job folder may be swept by "
                                 "others); nothing was committed")
        token = self._tokens.get(path)
        if token is not None:
            self.claims.confirm(self.store, os.path.basename(path), token, job)

    def release(self) -> None:
        """End the claims of this import; those whose job committed end with its filing."""
        tokens, self._tokens = self._tokens, {}
        with contextlib.suppress(*STORE_ERRORS):  # else they run out with the lease
            self.claims.release({os.path.basename(p): t for p, t in tokens.items()})

    # -- commits in doubt ------------------------------------------------------------

    def doubt(self, job: Job) -> None:
        """The connection was lost at *job*'s commit: keep its folder until it is known."""
        self._unknown.append(job)

    @property
    def in_doubt(self) -> bool:
        return bool(self._unknown)

    def settle(self) -> None:
        """Commits a lost connection left in doubt: the ledger says which happened.

        A job in the ledger and not filed is filed as any other (its folder
        was kept for it); one not there never committed, and its folder goes.
        (One filed already was filed by another instance, from that folder.)
        Called under the storage's lock, so no filing is under way meanwhile.
        """
        if not self._unknown:
            return
        unfiled = {job.id for job in self.store.jobs(undistributed=True,
                                                     storage=os.path.realpath(self.dc.storage))}
        for job in self._unknown:
            if job.id not in unfiled:
                fs.rmtree(os.path.join(self.dc.storage, job.workdir))
        self._unknown = []
