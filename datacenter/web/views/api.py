"""The HTTP API under ``/api``: JSON in and out, the same operations as the pages.

Errors are ``{"error": "..."}`` with their status (the app's handlers turn
refusals into them): 400 a request that cannot be done as asked, 401 no
session or token, 403 a role that may not (or a missing CSRF token), 404
nothing of that name, 409 a name taken or a file changed since it was
read, 413 too large, 415 not CSV text, 429 too many failed logins.
A session's state-changing request carries ``X-CSRF-Token`` (login
answers it); a bearer token's needs none.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from datacenter.importing.pendingfiles import summarize
from datacenter.importing.uploads import UploadError
from datacenter.service.accounts import ADMIN, MANAGER, ROLES, VIEWER
from datacenter.service.report import status_report
from datacenter.web.auth import (
    COOKIE,
    CSRF_HEADER,
    Caller,
    Denied,
    check_csrf,
    check_origin,
    client_address,
    log_in,
)
from datacenter.web.console import GRID_PAGE, caller, console_of
from datacenter.web.views import pages, pending, uploads
from datacenter.web.views.files import download, listing, number

#: The most files or rows one API call lists.
MOST = 10_000


async def _json(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _whole(data: dict[str, Any], key: str) -> int | None:
    """A whole number >= 0 the body gives under *key*, or None when it gives none."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**53:
        raise ValueError(f'"{key}" must be a whole number from 0, not {value!r}')
    return value


def _changing(request: Request, role: str) -> Caller:
    """The caller of a state-changing call: its role, and its CSRF header with a session."""
    who = caller(request, role)
    check_csrf(who, request.headers.get(CSRF_HEADER))
    return who


async def login(request: Request) -> Response:
    console = console_of(request)
    check_origin(request, console.conf.web.public_url)
    data = await _json(request)
    name, password = data.get("username"), data.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise ValueError('send {"username": "...", "password": "..."}')
    session = await run_in_threadpool(log_in, console.accounts, console.sessions,
                                      console.limiter, name, password, client_address(request))
    account = console.accounts.get(session.name)
    response = JSONResponse({"username": session.name,
                             "role": account.role if account else None, "csrf": session.csrf})
    pages.set_session(response, console, session.token)
    return response


def logout(request: Request) -> Response:
    who = caller(request, VIEWER)
    if who.session is not None:
        console_of(request).sessions.close(who.session.token)
    response = JSONResponse({"logged_out": who.name})
    response.delete_cookie(COOKIE, path="/")
    return response


def status(request: Request) -> Response:
    caller(request, VIEWER)
    console = console_of(request)
    return JSONResponse(status_report(console.conf, console.view(),
                                      number(request, "limit", 10, MOST),
                                      number(request, "offset", 0)))


def files(request: Request) -> Response:
    caller(request, VIEWER)
    sort = "date" if request.query_params.get("sort") == "date" else "name"
    return JSONResponse(listing(console_of(request).view(), request.path_params["folder"],
                                number(request, "offset", 0),
                                number(request, "limit", 100, MOST), sort))


def file_download(request: Request) -> Response:
    caller(request, VIEWER)
    return download(console_of(request).storage, request.path_params["folder"],
                    request.path_params["name"])


async def upload(request: Request) -> Response:
    who = _changing(request, MANAGER)
    console = console_of(request)
    try:
        sent = await uploads.read_upload(request, console)
        looked = await run_in_threadpool(uploads.put_in, console, sent, who)
    except UploadError as refused:
        return JSONResponse({"error": str(refused)}, status_code=uploads.status_of(refused))
    return JSONResponse({"name": looked.name, "processor": looked.processor,
                         "mode": looked.mode, "rows": looked.total_rows,
                         "warnings": looked.warnings}, status_code=201)


async def upload_preview(request: Request) -> Response:
    who = _changing(request, MANAGER)
    del who
    console = console_of(request)
    try:
        sent = await uploads.read_upload(request, console)
    except UploadError as refused:
        return JSONResponse({"error": str(refused)}, status_code=uploads.status_of(refused))
    looked = await run_in_threadpool(uploads.look, console, sent)
    return JSONResponse(looked.as_dict())


def pending_files(request: Request) -> Response:
    caller(request, VIEWER)
    console = console_of(request)
    return JSONResponse([found.as_dict() for found in summarize(
        console.storage, console.schemas, console.router,
        max_line_bytes=console.conf.imports.max_line_bytes)])


def pending_read(request: Request) -> Response:
    caller(request, VIEWER)
    limit = number(request, "limit", MOST, MOST)
    shown = pending.grid(console_of(request), request.path_params["name"],
                         number(request, "offset", 0), limit or GRID_PAGE)
    return JSONResponse(shown.as_dict())


async def pending_replace(request: Request) -> Response:
    who = _changing(request, MANAGER)
    data = await _json(request)
    rows = data.get("rows")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError('send {"rows": [{"cells": {"column": "value", ...}}, ...], '
                         '"offset": N, "count": N}')
    version = data.get("version")
    name = request.path_params["name"]
    offset, count = _whole(data, "offset"), _whole(data, "count")
    if offset is not None or count is not None:  # a range: the page the rows were read from
        offset, count = offset or 0, len(rows) if count is None else count
    total = await run_in_threadpool(pending.save, console_of(request), name, rows, who,
                                    version if isinstance(version, str) else None,
                                    offset or 0, count)
    return JSONResponse({"name": name, "rows": total})


async def pending_discard(request: Request) -> Response:
    who = _changing(request, MANAGER)
    done = await run_in_threadpool(pending.give_up, console_of(request),
                                   request.path_params["name"], who)
    return JSONResponse({"name": done.name, "rows": done.rows, "discarded": done.dest,
                         "source": done.source, "user": done.user, "at": done.at})


def logs(request: Request) -> Response:
    caller(request, VIEWER)
    lines = pages.log_lines(console_of(request), request.query_params.get("query"),
                            number(request, "limit", 100, MOST), number(request, "start", 0))
    return JSONResponse({"lines": lines})


def processors(request: Request) -> Response:
    caller(request, VIEWER)
    console = console_of(request)
    return JSONResponse([pages.describe_schema(console.schemas[n])
                         for n in sorted(console.schemas)])


def template(request: Request) -> Response:
    caller(request, VIEWER)
    return pages.template(console_of(request), request.path_params["name"])


def export(request: Request) -> Response:
    caller(request, MANAGER)
    return pages.export_stream(console_of(request), request.path_params["processor"],
                               request.query_params.get("format", "csv"))


def users(request: Request) -> Response:
    caller(request, ADMIN)
    return JSONResponse([{"username": a.name, "role": a.role, "token": a.has_token}
                         for a in console_of(request).accounts.list()])


async def user_add(request: Request) -> Response:
    _changing(request, ADMIN)
    data = await _json(request)
    name, role, password = data.get("username"), data.get("role"), data.get("password")
    if not (isinstance(name, str) and isinstance(role, str) and isinstance(password, str)):
        raise ValueError(f'send {{"username", "role" ({", ".join(ROLES)}), "password"}}')
    account = await run_in_threadpool(console_of(request).accounts.add, name, role, password)
    return JSONResponse({"username": account.name, "role": account.role}, status_code=201)


def user_remove(request: Request) -> Response:
    who = _changing(request, ADMIN)
    name = request.path_params["name"]
    if name == who.name:
        raise Denied(403, "an admin cannot remove its own account through the console")
    console_of(request).accounts.remove(name)
    return JSONResponse({"removed": name})


ROUTES = [
    Route("/api/login", login, methods=["POST"], name="api_login"),
    Route("/api/logout", logout, methods=["POST"], name="api_logout"),
    Route("/api/status", status, name="api_status"),
    Route("/api/files/{folder}", files, name="api_files"),
    Route("/api/files/{folder}/{name}", file_download, name="api_file_download"),
    Route("/api/uploads", upload, methods=["POST"], name="api_upload"),
    Route("/api/uploads/preview", upload_preview, methods=["POST"], name="api_upload_preview"),
    Route("/api/pending", pending_files, name="api_pending_files"),
    Route("/api/pending/{name}", pending_read, methods=["GET"], name="api_pending_read"),
    Route("/api/pending/{name}", pending_replace, methods=["PUT"], name="api_pending_replace"),
    Route("/api/pending/{name}", pending_discard, methods=["DELETE"], name="api_pending_discard"),
    Route("/api/logs", logs, name="api_logs"),
    Route("/api/processors", processors, name="api_processors"),
    Route("/api/processors/{name}/template", template, name="api_template"),
    Route("/api/export/{processor}", export, name="api_export"),
    Route("/api/users", users, methods=["GET"], name="api_users"),
    Route("/api/users", user_add, methods=["POST"], name="api_user_add"),
    Route("/api/users/{name}", user_remove, methods=["DELETE"], name="api_user_remove"),
]
