"""Who is asking: sessions, script tokens, CSRF tokens and the login rate limit.

A session is a random token (32 bytes) held by the server with its
account, its CSRF token and its expiry; the browser holds only the token,
in a cookie that scripts cannot read (HttpOnly) and that no other site's
request carries (SameSite=Strict). Sessions live in the console's memory:
a restart logs everybody out, which is the safe failure. A script sends
``Authorization: Bearer <token>`` (``datacenter user token NAME``) instead.

Every request re-reads the account (:class:`~datacenter.service.accounts.Accounts`),
so a removed account or a changed role counts at once.

State-changing requests made with a session carry its CSRF token: a form
field ``csrf`` on pages, the header ``X-CSRF-Token`` on the API (login
answers it). Requests with a bearer token need none: no browser sends one
by itself.

Login attempts are limited per account name and per client address
(:class:`RateLimit`): a password cannot be guessed at speed, and one
address cannot lock out everybody by trying every name.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass

from starlette.requests import Request

from datacenter.service.accounts import Account, Accounts

COOKIE = "dc_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
#: A session ends after this many seconds without a request.
IDLE = 8 * 3600.0
#: Failed logins allowed per name and per address within :data:`WINDOW` seconds.
PER_NAME, PER_ADDRESS, WINDOW = 5, 20, 300.0


class Denied(Exception):  # noqa: N818 - a refusal, answered with its status
    """The request may not go on: 401 (who are you?) or 403 (not with that role)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Session:
    token: str
    name: str
    csrf: str
    expires: float
    #: The account's password fingerprint at login: a new password ends the session.
    fingerprint: str = ""


@dataclass(frozen=True)
class Caller:
    """An authenticated request: its account, and the session if it came with one."""

    account: Account
    session: Session | None

    @property
    def name(self) -> str:
        return self.account.name


class Sessions:
    """The open sessions, by token; thread-safe."""

    def __init__(self, idle: float = IDLE) -> None:
        self.idle = idle
        self._open: dict[str, Session] = {}
        self._mutex = threading.Lock()

    def open(self, name: str, fingerprint: str = "") -> Session:
        session = Session(secrets.token_urlsafe(32), name, secrets.token_urlsafe(32),
                          time.monotonic() + self.idle, fingerprint)
        with self._mutex:
            self._sweep()
            self._open[session.token] = session
        return session

    def get(self, token: str) -> Session | None:
        with self._mutex:
            session = self._open.get(token)
            if session is None:
                return None
            if session.expires < time.monotonic():
                del self._open[token]
                return None
            session.expires = time.monotonic() + self.idle
            return session

    def close(self, token: str) -> None:
        with self._mutex:
            self._open.pop(token, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._open.items() if s.expires < now]:
            del self._open[token]


class RateLimit:
    """Failed logins per name and per address in a sliding window."""

    def __init__(self, per_name: int = PER_NAME, per_address: int = PER_ADDRESS,
                 window: float = WINDOW) -> None:
        self.per_name, self.per_address, self.window = per_name, per_address, window
        self._failures: dict[str, deque[float]] = {}
        self._mutex = threading.Lock()

    def wait(self, name: str, address: str) -> float:
        """Seconds until *name* from *address* may try again (0: now)."""
        now = time.monotonic()
        with self._mutex:
            waits = [self._wait(f"name:{name}", self.per_name, now),
                     self._wait(f"addr:{address}", self.per_address, now)]
        return max(waits)

    def failed(self, name: str, address: str) -> None:
        now = time.monotonic()
        with self._mutex:
            for key in (f"name:{name}", f"addr:{address}"):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str) -> None:
        with self._mutex:
            self._failures.pop(f"name:{name}", None)

    def _wait(self, key: str, allowed: int, now: float) -> float:
        found = self._failures.get(key)
        if not found:
            return 0.0
        while found and found[0] < now - self.window:
            found.popleft()
        if not found:
            del self._failures[key]
            return 0.0
        return found[0] + self.window - now if len(found) >= allowed else 0.0


def log_in(accounts: Accounts, sessions: Sessions, limiter: RateLimit, name: str,
           password: str, address: str) -> Session:
    """A new session for *name* if *password* is right; Denied 401, or 429 when limited."""
    wait = limiter.wait(name, address)
    if wait > 0:
        raise Denied(429, f"too many failed logins; try again in {wait:.0f} s")
    account = accounts.check_password(name, password)
    if account is None:
        limiter.failed(name, address)
        raise Denied(401, "wrong name or password")
    limiter.succeeded(name)
    return sessions.open(account.name, account.fingerprint)


def check_origin(request: Request, public_url: str = "") -> None:
    """A login from a browser must come from this console's own page (403 otherwise).

    Another site's page could post its own account's name and password and
    leave the browser logged in as that account (login CSRF); the session's
    CSRF token cannot guard the login itself, the Origin header a browser
    sends with every POST can. A request without one (a script) may log in.
    Behind a reverse proxy the Host the console gets is not the browser's:
    *public_url* (``[web] public_url``, ``scheme://host[:port]``) is then
    what the Origin must be.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return
    if public_url:
        parts = urllib.parse.urlsplit(origin)
        same = f"{parts.scheme}://{parts.netloc.lower()}" == public_url
    else:
        same = urllib.parse.urlsplit(origin).netloc == request.url.netloc
    if origin == "null" or not same:
        raise Denied(403, "a login sent from another site's page is refused; log in on "
                          "this console's own login page")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def identify(request: Request, accounts: Accounts, sessions: Sessions) -> Caller | None:
    """The caller of *request*: by bearer token, else by session cookie; None if neither."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Denied(401, "the Authorization header must be 'Bearer <token>'")
        account = accounts.check_token(token.strip())
        if account is None:
            raise Denied(401, "unknown or revoked token")
        return Caller(account, None)
    cookie = request.cookies.get(COOKIE)
    session = sessions.get(cookie) if cookie else None
    if session is None:
        return None
    known = accounts.get(session.name)
    # Removed since it logged in, or its password changed (maybe by someone who knew it
    # was stolen): the session ends. The role is read here each time, so a change counts.
    if known is None or not hmac.compare_digest(known.fingerprint, session.fingerprint):
        sessions.close(session.token)
        return None
    return Caller(known, session)


def require(caller: Caller | None, role: str) -> Caller:
    """*caller*, if it may act as *role*; else Denied (401 without a caller, 403 with)."""
    if caller is None:
        raise Denied(401, "log in first (a session, or Authorization: Bearer <token>)")
    if not caller.account.may(role):
        raise Denied(403, f"{caller.name} is a {caller.account.role}; this needs a {role}")
    return caller


def check_csrf(caller: Caller, sent: str | None) -> None:
    """A session's state-changing request must carry its CSRF token (403 otherwise)."""
    if caller.session is None:
        return  # a bearer token: no browser sends one by itself
    if not sent or not hmac.compare_digest(sent, caller.session.csrf):
        raise Denied(403, "missing or wrong CSRF token; reload the page and try again")
