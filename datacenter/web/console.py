"""The console's state, handed to every view through ``request.app.state.console``.

Views import no globals: the config, the processors, the accounts, the
open sessions and the templates come from here (as datasette's views get
their app), so a test builds as many consoles as it likes, each on its own
storage. The library does the work; a view only parses, calls and shows.

The console opens the storage for changes (an upload, a fix, a discard)
through one :class:`~datacenter.importing.Importer` of its own, opened at
the first change and used by one request at a time; everything else reads
through a :class:`~datacenter.storage.view.StorageView`, which writes
nothing.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from datacenter.config import Config
from datacenter.importing import Importer, Processors, Router
from datacenter.service.accounts import Accounts
from datacenter.service.health import judge
from datacenter.service.state import service_status
from datacenter.storage import creation
from datacenter.storage.view import StorageView
from datacenter.web.auth import CSRF_FIELD, Caller, RateLimit, Sessions, identify, require

HERE = os.path.dirname(os.path.abspath(__file__))
#: Files per page of a folder or of the dashboard's lists; rows per page of a pending grid.
PAGE, GRID_PAGE = 50, 100


@dataclass
class Console:
    conf: Config
    processors: Processors
    accounts: Accounts
    sessions: Sessions = field(default_factory=Sessions)
    limiter: RateLimit = field(default_factory=RateLimit)
    #: Whether the session cookie says Secure (behind HTTPS).
    secure_cookies: bool = False
    #: Seals the messages redirects carry (:func:`back_to`); new at each start.
    message_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    #: In ``serve --web`` with PostgreSQL: the id of the process's own instance (it
    #: changes when the instance carries on anew); the console reports on it.
    instance: Callable[[], str] | None = None
    _importer: Importer | None = None
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.router = Router(self.conf.routes, self.processors.names())
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
                                 autoescape=True)
        env.filters["local_time"] = local_time
        self.templates = Jinja2Templates(env=env)

    @property
    def storage(self) -> str:
        return self.conf.storage

    @property
    def schemas(self) -> dict[str, Any]:
        return dict(self.processors.schemas)

    def own_instance(self) -> str | None:
        return self.instance() if self.instance is not None else None

    def service_status(self) -> dict[str, Any]:
        """:func:`~datacenter.service.state.service_status` of this console's storage."""
        return service_status(self.storage, self.conf.database, self.conf.cluster.lease,
                              self.own_instance())

    def view(self) -> StorageView:
        view = StorageView(self.conf.storage)
        if not view.exists:
            raise creation.NoStorageError(view.storage)
        return view

    @contextlib.contextmanager
    def importer(self) -> Iterator[Importer]:
        """The console's importer, for one change at a time (opened at the first)."""
        with self._mutex:
            if self._importer is None:
                self._importer = Importer(self.conf, processors=self.processors)
            yield self._importer

    def close(self) -> None:
        with self._mutex:
            if self._importer is not None:
                self._importer.close()
                self._importer = None


def local_time(moment: object) -> str:
    """A report's moment (ISO 8601, UTC) as pages show every time: local, to the second,
    as the command line's human output and the files' dates are."""
    if not isinstance(moment, str) or not moment:
        return ""
    try:
        return datetime.fromisoformat(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return moment


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def caller(request: Request, role: str) -> Caller:
    """The request's caller, if it may act as *role* (else :class:`~.auth.Denied`)."""
    console = console_of(request)
    return require(identify(request, console.accounts, console.sessions), role)


def maybe_caller(request: Request) -> Caller | None:
    console = console_of(request)
    return identify(request, console.accounts, console.sessions)


def page(request: Request, template: str, context: dict[str, Any] | None = None,
         status: int = 200, who: Caller | None = None) -> HTMLResponse:
    """A page of the console, with the caller and its CSRF token for its forms."""
    found = dict(context or {})
    found.setdefault("caller", who)
    found.setdefault("csrf", who.session.csrf if who and who.session else "")
    found.setdefault("csrf_field", CSRF_FIELD)
    found.setdefault("message", _said(request))
    found.setdefault("problem", "")
    response = console_of(request).templates.TemplateResponse(request, template, found,
                                                              status_code=status)
    return response


def who_imports(console: Console, again: bool = False) -> str:
    """Who imports a file put at the root now: the service, or nobody until one starts."""
    if judge(console.service_status()).alive:
        return "the service imports it" + (" again" if again else "")
    return ("no service is running: it is imported when `datacenter serve` starts (or by "
            "`datacenter import`)")


def back_to(request: Request, route: str, message: str = "") -> RedirectResponse:
    """303 to the page *route* (a path, never an absolute URL), saying *message* there.

    The message rides in the query with its seal: a page shows only what this
    console said, never text someone put in a link to it.
    """
    target = URL(request.app.url_path_for(route))
    if message:
        target = target.include_query_params(message=message,
                                              seal=_seal(console_of(request), message))
    return RedirectResponse(str(target), status_code=303)


def _seal(console: Console, message: str) -> str:
    return hmac.new(console.message_key, message.encode("utf-8"), "sha256").hexdigest()[:32]


def _said(request: Request) -> str:
    """The query's message, if this console sealed it; else none."""
    message = request.query_params.get("message", "")
    sent = request.query_params.get("seal", "")
    if message and hmac.compare_digest(sent, _seal(console_of(request), message)):
        return message
    return ""


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An API error: ``{"error": "..."}`` with its status."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)
