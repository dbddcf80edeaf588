"""The web console: :func:`create_app` builds it for one config.

It is a Starlette app: the routes of :mod:`datacenter.web.views`, the
static files (its own CSS and JavaScript: no CDN, no remote asset), and
the handlers that turn a refusal into its status: ``{"error": "..."}`` on
``/api`` and ``/metrics``, a page elsewhere (the login form itself for a
page that needs a session). Every response says what a browser may load
(``Content-Security-Policy: default-src 'self'``: no inline script, so
markup that slipped into a cell could not run even if it were not
escaped, which it always is), and none may be framed.

Uploads are bounded: :class:`BodyLimit` stops reading a request body that
grows past the upload limit (plus room for the form around the file),
whether or not it said its length.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datacenter.config import Config
from datacenter.errors import DataCenterError
from datacenter.importing import Processors, resolve_processors
from datacenter.importing.fixes import StaleError
from datacenter.importing.uploads import UploadTooLargeError
from datacenter.records.backend import STORE_ERRORS, UNAVAILABLE_ERRORS
from datacenter.service.accounts import AccountError, Accounts
from datacenter.storage import fs
from datacenter.web.auth import COOKIE, Caller, Denied
from datacenter.web.console import HERE, Console, error, maybe_caller, page
from datacenter.web.views import api, files, operations, pages, pending, uploads
from datacenter.web.views.files import NotServedError

_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def create_app(conf: Config, processors: Processors | None = None, *,
               secure_cookies: bool = False,
               instance: Callable[[], str] | None = None) -> Starlette:
    """The console of *conf*'s storage (which must exist); *instance*: see :class:`Console`."""
    secure = secure_cookies or conf.web.public_url.startswith("https://")
    console = Console(conf, processors or resolve_processors(conf), Accounts(conf.storage),
                      secure_cookies=secure, instance=instance)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            console.close()

    routes = [*operations.ROUTES, *api.ROUTES, *pages.ROUTES, *uploads.ROUTES,
              *pending.ROUTES, *files.ROUTES,
              Mount("/static", StaticFiles(directory=os.path.join(HERE, "static")),
                    name="static")]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        Denied: _denied, 404: _not_found, 405: _not_found, **dict.fromkeys(
            (ValueError, LookupError, OSError, DataCenterError), _refused),
        **dict.fromkeys(STORE_ERRORS, _store_failed)})
    app.state.console = console
    # A trailing slash is a plain 404: Starlette's redirect would be an absolute URL built
    # from Host (wrong behind a proxy, and Host is whatever the client says).
    app.router.redirect_slashes = False
    # Links are paths, never absolute URLs: right behind any proxy, whatever Host said.
    console.templates.env.globals["path_for"] = _path_for(app)
    app.add_middleware(BodyLimit, limit=conf.web.max_upload_bytes + uploads.ENVELOPE)
    app.add_middleware(SecurityHeaders)
    return app


def _path_for(app: Starlette) -> Callable[..., str]:
    """The templates' ``path_for``: a route's path with its parameters quoted.

    A file name may hold ``#``, ``?`` or ``%`` (``batch #2?.csv``): put in a
    link as it is, the browser would cut it at the ``#`` or the ``?``, or
    decode a ``%41``; quoted, the link names the file.
    """

    def path_for(name: str, /, **params: Any) -> str:
        return str(app.url_path_for(name, **{
            key: urllib.parse.quote(str(value), safe="/" if key == "path" else "")
            for key, value in params.items()}))

    return path_for


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/metrics"))


async def _denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Denied)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if _is_api(request):
        return error(exc.status, exc.message, headers)
    if exc.status == 401:
        return page(request, "login.html", {"next": _return_to(request),
                                            "problem": _why_log_in(request, exc)}, status=401)
    return page(request, "error.html", {"status": exc.status, "reason": exc.message,
                                        "back": _back(request)},
                status=exc.status, who=maybe_caller(request))


def _why_log_in(request: Request, exc: Denied) -> str:
    """The login page's line: in a person's words (the API's names a bearer token too)."""
    if request.headers.get("authorization"):
        return exc.message  # a script's token, refused: say why
    if request.cookies.get(COOKIE):
        return "your session has ended (idle too long, or the console restarted): log in again"
    return "log in to see this page"


def _return_to(request: Request) -> str:
    """Where logging in leads back to: this page with its query; for a form sent after the
    session ended (a POST), the page it was sent from, never its action (only a POST
    goes there) and never another site's page."""
    if request.method in ("GET", "HEAD"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _sent_from(request) or "/"


def _sent_from(request: Request) -> str | None:
    """The path (and query) of this console's page a form was sent from; None if not known
    or another site's (the Referer a browser sends; ``//`` would lead off the site)."""
    sent_from = urllib.parse.urlsplit(request.headers.get("referer", ""))
    if sent_from.netloc != request.url.netloc or not sent_from.path.startswith("/") \
            or sent_from.path.startswith("//"):
        return None
    return sent_from.path + (f"?{sent_from.query}" if sent_from.query else "")


def _back(request: Request) -> str | None:
    """Where a refused form's error page leads back to: the page it was sent from."""
    return None if request.method in ("GET", "HEAD") else _sent_from(request)


async def _not_found(request: Request, exc: Exception) -> Response:
    """No such route (or not with that method): JSON on the API, a page elsewhere."""
    status = getattr(exc, "status_code", 404)
    reason = f"no such address: {request.url.path}" if status == 404 else \
        f"{request.method} is not allowed on {request.url.path}"
    if _is_api(request):
        return error(status, reason)
    return page(request, "error.html", {"status": status, "reason": reason}, status=status,
                who=_quiet_caller(request))


def _status(exc: Exception) -> int:
    if isinstance(exc, UploadTooLargeError | BodyTooLargeError):
        return 413
    if isinstance(exc, StaleError):
        return 409
    if isinstance(exc, NotServedError | FileNotFoundError | LookupError):
        return 404
    if isinstance(exc, fs.PlantedLinkError):
        return 403
    if isinstance(exc, AccountError) and "exists already" in str(exc):
        return 409
    if isinstance(exc, OSError):
        return 503
    return 400


async def _refused(request: Request, exc: Exception) -> Response:
    status = _status(exc)
    reason = _reason(exc)
    if _is_api(request):
        return error(status, reason)
    return page(request, "error.html", {"status": status, "reason": reason,
                                        "back": _back(request)}, status=status,
                who=_quiet_caller(request))


async def _store_failed(request: Request, exc: Exception) -> Response:
    """The record store failed: 503 when it does not answer (try again later), else 500."""
    status = 503 if isinstance(exc, UNAVAILABLE_ERRORS) else 500
    said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = (f"the record store does not answer ({said}); try again later" if status == 503
              else f"the record store failed: {said}")
    if _is_api(request):
        return error(status, reason)
    return page(request, "error.html", {"status": status, "reason": reason,
                                        "back": _back(request)}, status=status,
                who=_quiet_caller(request))


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{os.path.basename(str(exc.filename))}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _quiet_caller(request: Request) -> Caller | None:
    with contextlib.suppress(Denied):
        return maybe_caller(request)
    return None


class BodyTooLargeError(DataCenterError, ValueError):
    """A request body grew past the limit."""


class BodyLimit:
    """Stop reading a request body past *limit* bytes (BodyTooLargeError: 413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLargeError(f"the request is larger than the upload limit "
                                            f"({self.limit:,} bytes with its form)")
            return message

        await self.app(scope, counted, send)


class SecurityHeaders:
    """What every response tells the browser it may load, frame and sniff."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(k, v) for k, v in _HEADERS if k not in present]]
            await send(message)

        await self.app(scope, receive, with_headers)
