"""The console's pages: login, the dashboard, processors, the log, export, accounts.

Pages read through the library as the commands do (``status``'s report,
``processors``, ``logs``) and show a page of every list, never a whole
folder. Forms that change anything carry the session's CSRF token.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from datacenter.export import FORMATS, ExportError, export_processor, export_records
from datacenter.importing.progress import describe_progress
from datacenter.records.backend import exists, open_store, read_actions
from datacenter.records.schema import ProcessorSchema
from datacenter.service.accounts import ADMIN, MANAGER, ROLES, VIEWER, AccountError
from datacenter.service.health import judge
from datacenter.service.report import status_report, timestamp
from datacenter.storage import layout
from datacenter.storage.logs import check_query
from datacenter.web.auth import (
    COOKIE,
    CSRF_FIELD,
    Caller,
    Denied,
    check_csrf,
    check_origin,
    client_address,
    log_in,
)
from datacenter.web.console import PAGE, Console, back_to, caller, console_of, maybe_caller, page
from datacenter.web.views.files import attachment, file_dict, number

#: Log lines per page.
LOG_PAGE = 200


def set_session(response: Response, console: Console, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                        secure=console.secure_cookies, path="/")


def login_form(request: Request) -> Response:
    return page(request, "login.html", {"next": _next(request.query_params.get("next"))},
                who=maybe_caller(request))


async def login_post(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    name, password = str(form.get("username") or ""), str(form.get("password") or "")
    target = _next(str(form.get("next") or ""))
    try:
        check_origin(request, console.conf.web.public_url)
        session = await run_in_threadpool(log_in, console.accounts, console.sessions,
                                          console.limiter, name, password,
                                          client_address(request))
    except Denied as refused:
        return page(request, "login.html", {"next": target, "problem": refused.message},
                    status=refused.status)
    response = RedirectResponse(target, status_code=303)
    set_session(response, console, session.token)
    return response


async def logout_post(request: Request) -> Response:
    console = console_of(request)
    who = caller(request, VIEWER)
    form = await request.form()
    check_csrf(who, str(form.get(CSRF_FIELD) or ""))
    if who.session is not None:
        console.sessions.close(who.session.token)
    response = back_to(request, "login")
    response.delete_cookie(COOKIE, path="/")
    return response


def _next(target: str | None) -> str:
    """Where to go after logging in: a path of this console only (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def dashboard(request: Request) -> Response:
    who = caller(request, VIEWER)
    console = console_of(request)
    view = console.view()
    served = console.service_status()
    imports_page = number(request, "imports", 1) or 1
    report = status_report(console.conf, view, PAGE, (imports_page - 1) * PAGE, served)
    waiting_page = number(request, "waiting", 1) or 1
    waiting = [file_dict(f) for f in view.iter_files("pending", "name",
                                                    (waiting_page - 1) * PAGE, PAGE + 1)]
    actions = read_actions(console.conf.database, view.storage, limit=20)
    return page(request, "dashboard.html", {
        "report": report, "health": judge(served), "served": report["service"],
        "progress": describe_progress(served.get("progress")),
        "waiting": waiting[:PAGE], "waiting_more": len(waiting) > PAGE,
        "waiting_page": waiting_page, "imports_page": imports_page,
        "imports_more": len(report["last_imports"]) >= PAGE,
        "actions": [{"at": timestamp(a.at), "user": a.user, "action": a.action,
                     "name": a.name, "detail": a.detail} for a in actions],
        "not_importable": report["not_importable"][:PAGE],
        "not_importable_more": max(0, len(report["not_importable"]) - PAGE),
        "left_alone": (report["service"].get("rejected") or [])[:PAGE]
        + (report["service"].get("unrouted") or [])[:PAGE]}, who=who)


def describe_schema(schema: ProcessorSchema) -> dict[str, Any]:
    """What ``processors --json`` says of a processor."""
    return {"name": schema.name, "key": list(schema.key),
            "fields": {n: t.name for n, t in schema.fields.items()},
            "required": list(schema.required_fields), "parents": dict(schema.parents),
            "graduated": dict(schema.graduated), "encoding": schema.encoding}


def processors_page(request: Request) -> Response:
    who = caller(request, VIEWER)
    console = console_of(request)
    described = [describe_schema(console.schemas[n]) for n in sorted(console.schemas)]
    return page(request, "processors.html", {"processors": described}, who=who)


def template(console: Console, name: str) -> Response:
    schema = console.schemas.get(name)
    if schema is None:
        raise LookupError(f"unknown processor {name!r} (known: "
                          f"{', '.join(sorted(console.schemas)) or 'none'})")
    return Response(schema.csv_template(), media_type="text/csv; "
                    "charset=utf-8", headers={"Content-Disposition":
                                              attachment(f"{name}.csv")})


def template_download(request: Request) -> Response:
    caller(request, VIEWER)
    return template(console_of(request), request.path_params["name"])


def log_lines(console: Console, query: str | None, limit: int, start: int) -> list[str]:
    """Lines of the storage's log and its rotations matching *query* (an RE2 expression)."""
    if query:
        try:
            check_query(query)
        except ValueError as problem:
            raise ValueError(f"the query is no regular expression: {problem}") from None
    return list(console.view().queryLogfiles(layout.LOG_NAME, query or None, limit, start))


def logs_page(request: Request) -> Response:
    who = caller(request, VIEWER)
    query = request.query_params.get("query", "")
    page_no = number(request, "page", 1) or 1
    try:
        lines = log_lines(console_of(request), query, LOG_PAGE + 1, (page_no - 1) * LOG_PAGE)
    except ValueError as refused:  # no regular expression: said above the search box
        return page(request, "logs.html", {"lines": [], "query": query, "page_no": 1,
                                           "more": False, "problem": str(refused)},
                    status=400, who=who)
    return page(request, "logs.html", {"lines": lines[:LOG_PAGE], "query": query,
                                       "page_no": page_no, "more": len(lines) > LOG_PAGE},
                who=who)


def export_stream(console: Console, name: str, fmt: str) -> StreamingResponse:
    """Processor *name*'s records as CSV (formula guard kept) or JSON, as a download.

    Exported (the columnar way, as ``datacenter export`` does) to a temporary
    file outside the storage first, then streamed: one read transaction, and no
    import waits for a slow client.
    """
    schema = console.schemas.get(name)
    if schema is None:
        raise LookupError(f"unknown processor {name!r} (known: "
                          f"{', '.join(sorted(console.schemas)) or 'none'})")
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (use one of: {', '.join(FORMATS)})")
    with tempfile.TemporaryDirectory() as spooling:
        path = os.path.join(spooling, f"export.{fmt}")
        if exists(console.conf.database):
            with contextlib.closing(open_store(console.conf.database, {name: schema})) as store:
                export_processor(store, name, path, fmt)
        else:  # nothing imported yet: the header alone (field names as the config has
            # them, as export_processor writes them), or an empty list
            export_records([], list(schema.fields), path, fmt, neutralise=False)
        spool = open(path, "rb")  # noqa: SIM115 - closed by the stream; gone with its folder

    def chunks() -> Iterator[bytes]:
        with spool:
            while block := spool.read(1 << 16):
                yield block

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(chunks(), media_type=media, headers={
        "Content-Disposition": attachment(f"{name}.{fmt}"), "X-Content-Type-Options": "nosniff"})


def export_page(request: Request) -> Response:
    who = caller(request, MANAGER)
    console = console_of(request)
    chosen = request.query_params.get("processor")
    if chosen:  # the form's choice: the download itself
        return export_stream(console, chosen, request.query_params.get("format", "csv"))
    return page(request, "export.html", {"processors": sorted(console.schemas),
                                         "formats": FORMATS}, who=who)


def export_download(request: Request) -> Response:
    caller(request, MANAGER)
    return export_stream(console_of(request), request.path_params["processor"],
                         request.query_params.get("format", "csv"))


def users_page(request: Request) -> Response:
    who = caller(request, ADMIN)
    return page(request, "users.html", {"accounts": console_of(request).accounts.list(),
                                        "roles": ROLES}, who=who)


def _users_refused(request: Request, who: Caller, refused: AccountError, name: str,
                   role: str) -> Response:
    """The accounts page again, saying why, the form as it was sent (but the password)."""
    status = 409 if "exists already" in str(refused) else 400
    return page(request, "users.html", {"accounts": console_of(request).accounts.list(),
                                        "roles": ROLES, "problem": str(refused),
                                        "sent_name": name, "sent_role": role},
                status=status, who=who)


async def users_post(request: Request) -> Response:
    who = caller(request, ADMIN)
    console = console_of(request)
    form = await request.form()
    check_csrf(who, str(form.get(CSRF_FIELD) or ""))
    action, name = str(form.get("action") or ""), str(form.get("username") or "")
    role = str(form.get("role") or VIEWER)
    if action == "remove":
        if name == who.name:
            raise ValueError("you cannot remove your own account here (use the command line)")
        await run_in_threadpool(console.accounts.remove, name)
        message = f"removed account {name}"
    else:
        try:
            await run_in_threadpool(console.accounts.add, name, role,
                                    str(form.get("password") or ""))
        except AccountError as refused:
            return _users_refused(request, who, refused, name, role)
        message = f"added account {name}"
    return back_to(request, "users", message)


ROUTES = [
    Route("/", dashboard, name="dashboard"),
    Route("/login", login_form, methods=["GET"], name="login"),
    Route("/login", login_post, methods=["POST"], name="login_post"),
    Route("/logout", logout_post, methods=["POST"], name="logout"),
    Route("/processors", processors_page, name="processors"),
    Route("/processors/{name}/template", template_download, name="template"),
    Route("/logs", logs_page, name="logs"),
    Route("/export", export_page, name="export"),
    Route("/export/{processor}", export_download, name="export_download"),
    Route("/users", users_page, methods=["GET"], name="users"),
    Route("/users", users_post, methods=["POST"], name="users_post"),
]
