"""The console's accounts: names, roles, password hashes and script tokens.

They live in the storage's state folder, ``.datacenter/accounts.json``
(the owner's alone, ``0600``, replaced atomically through
:mod:`datacenter.storage.fs`): never in the log, never in git. A password
is kept only as a memory-hard hash (``hashlib.scrypt``, n=2**14, r=8,
p=1, a random 16-byte salt of its own); a script token only as its
SHA-256 (it is 32 random bytes: no dictionary to guess from). Checking a
password costs the same whether the name exists or not, and compares in
constant time.

Roles grow: a *viewer* reads; a *manager* also uploads, fixes and
discards rows, and exports; an *admin* also manages accounts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass

from datacenter.errors import DataCenterError
from datacenter.storage import fs, layout

ACCOUNTS_FILE = "accounts.json"
VIEWER, MANAGER, ADMIN = "viewer", "manager", "admin"
ROLES = (VIEWER, MANAGER, ADMIN)
#: scrypt's cost: 16 MiB of memory and ~50 ms per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
TOKEN_PREFIX = "dct_"  # noqa: S105 (a prefix that says what a token is, no secret)


class AccountError(DataCenterError, ValueError):
    """An account cannot be made, changed or found; the message says why."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    created: float
    has_token: bool
    #: A digest of the password's hash: a session holds the one it logged in with, and
    #: ends when it changes (a new password, or the account removed and made again).
    fingerprint: str = ""

    def may(self, role: str) -> bool:
        """Does this account's role include *role*'s rights?"""
        return ROLES.index(self.role) >= ROLES.index(role)


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                          p=SCRYPT_P, maxmem=64 << 20, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


#: Checked against when the name is unknown: the same work, the same time.
_DUMMY_SALT = secrets.token_bytes(16)
_DUMMY_HASH = _hash("not a password", _DUMMY_SALT)


class Accounts:
    """The accounts of one storage; every change is written at once, atomically."""

    def __init__(self, storage: str) -> None:
        self.path = layout.state_path(storage, ACCOUNTS_FILE)
        self._mutex = threading.Lock()

    # -- reading --------------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            with fs.open_read(self.path) as handle:  # never through a planted link
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise AccountError(f"{self.path}: cannot be read: {error}") from None
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, dict):
            raise AccountError(f"{self.path}: not an accounts file (no \"users\" table)")
        return users

    def _save(self, users: dict[str, dict[str, object]]) -> None:
        fs.makedirs(os.path.dirname(self.path))
        data = json.dumps({"version": 1, "users": users}, indent=1, sort_keys=True)
        fs.atomic_write(self.path, data.encode("utf-8"))
        fs.restrict(self.path, layout.PRIVATE_FILE)

    def list(self) -> list[Account]:
        """Every account, by name."""
        return [_account(name, entry) for name, entry in sorted(self._load().items())]

    def get(self, name: str) -> Account | None:
        entry = self._load().get(name)
        return None if entry is None else _account(name, entry)

    def __bool__(self) -> bool:
        return bool(self._load())

    # -- checking -------------------------------------------------------------------------

    def check_password(self, name: str, password: str) -> Account | None:
        """The account if *password* is its password, else None (same cost either way)."""
        entry = self._load().get(name)
        salt, expected = _DUMMY_SALT, _DUMMY_HASH
        if entry is not None:
            try:
                salt = base64.b64decode(str(entry["salt"]))
                expected = base64.b64decode(str(entry["hash"]))
            except (KeyError, ValueError):
                entry = None
        matches = hmac.compare_digest(_hash(password, salt), expected)
        return _account(name, entry) if matches and entry is not None else None

    def check_token(self, token: str) -> Account | None:
        """The account whose script token *token* is, or None."""
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        found = None
        for name, entry in self._load().items():
            if hmac.compare_digest(str(entry.get("token", "")), digest):
                found = _account(name, entry)
        return found

    # -- changing -------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str) -> Account:
        _check_name(name)
        _check_role(role)
        _check_password(password)
        with self._mutex:
            users = self._load()
            if name in users:
                raise AccountError(f"account {name!r} exists already (user passwd changes its "
                                   "password)")
            users[name] = {"role": role, "created": time.time(), **_secret(password)}
            self._save(users)
            return _account(name, users[name])

    def remove(self, name: str) -> None:
        with self._mutex:
            users = self._load()
            if name not in users:
                raise AccountError(f"no account {name!r}")
            del users[name]
            self._save(users)

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        with self._mutex:
            users = self._load()
            if name not in users:
                raise AccountError(f"no account {name!r}")
            users[name].update(_secret(password))
            self._save(users)

    def new_token(self, name: str) -> str:
        """A new script token for *name* (the old one stops working); shown once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._mutex:
            users = self._load()
            if name not in users:
                raise AccountError(f"no account {name!r}")
            users[name]["token"] = hashlib.sha256(token.encode("utf-8")).hexdigest()
            self._save(users)
        return token


def _secret(password: str) -> dict[str, object]:
    salt = secrets.token_bytes(16)
    return {"salt": _b64(salt), "hash": _b64(_hash(password, salt)),
            "scrypt": [SCRYPT_N, SCRYPT_R, SCRYPT_P]}


def _account(name: str, entry: dict[str, object]) -> Account:
    role = str(entry.get("role", VIEWER))
    created = entry.get("created", 0.0)
    return Account(name, role if role in ROLES else VIEWER,
                   float(created) if isinstance(created, int | float) else 0.0,
                   bool(entry.get("token")),
                   hashlib.sha256(f"{entry.get('salt')}:{entry.get('hash')}".encode()
                                  ).hexdigest())


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise AccountError(f"invalid account name {name!r}: letters, digits and . _ @ -, "
                           "starting with a letter or digit, at most 64")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r} (known: {', '.join(ROLES)})")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is too short: at least {MIN_PASSWORD} characters")
