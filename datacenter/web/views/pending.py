"""Pending files: the list, the grid of failed rows, saving fixed rows, discarding.

The grid shows a page of :data:`~datacenter.web.console.GRID_PAGE` rows;
*save* writes that page's rows back (the others kept as they are) through
:func:`datacenter.importing.fixes.replace_rows`, refused when the file
changed since the page was read. *Discard* is ``datacenter discard``'s
:func:`~datacenter.importing.pendingfiles.discard`. Both are logged and
recorded in the ledger under the account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from datacenter.importing.fixes import Grid, read_grid, replace_rows
from datacenter.importing.pendingfiles import Discarded, discard
from datacenter.service.accounts import MANAGER, VIEWER
from datacenter.web.auth import CSRF_FIELD, Caller, check_csrf
from datacenter.web.console import (
    GRID_PAGE,
    PAGE,
    Console,
    back_to,
    caller,
    console_of,
    page,
    who_imports,
)
from datacenter.web.views.files import file_dict, number

#: The fields a grid's form may send: a page of rows of up to 1,000 columns, and a few more.
_MOST_FIELDS = GRID_PAGE * 1000 + 1100


def grid(console: Console, name: str, offset: int = 0, limit: int | None = None) -> Grid:
    return read_grid(console.storage, name, console.schemas, console.router, offset, limit,
                     console.conf.imports.max_line_bytes)


def save(console: Console, name: str, rows: Sequence[Mapping[str, object]], who: Caller,
         version: str | None = None, offset: int = 0, count: int | None = None) -> int:
    """Write fixed *rows* back into pending file *name*; how many rows it holds now."""
    with console.importer() as importer, importer.dc.lock:
        total = replace_rows(importer.storage, name, rows, importer.store, who.name,
                             version=version, offset=offset, count=count,
                             max_line_bytes=console.conf.imports.max_line_bytes)
        importer.dc.log(f"fixed: {name}, {len(rows)} row(s) saved through the console "
                        f"({total} in the file); the service imports it again", user=who.name)
    return total


def give_up(console: Console, name: str, who: Caller) -> Discarded:
    """``datacenter discard NAME --user <account>``, recorded in the ledger."""
    with console.importer() as importer:
        return discard(importer, name, who.name)


def pending_list(request: Request) -> Response:
    who = caller(request, VIEWER)
    console = console_of(request)
    page_no = number(request, "page", 1) or 1
    view = console.view()
    found = [file_dict(f) for f in view.iter_files("pending", "name", (page_no - 1) * PAGE,
                                                  PAGE + 1)]
    return page(request, "pending_list.html", {"files": found[:PAGE], "page_no": page_no,
                                               "more": len(found) > PAGE}, who=who)


def pending_grid(request: Request) -> Response:
    who = caller(request, VIEWER)
    console = console_of(request)
    name = request.path_params["name"]
    page_no = number(request, "page", 1) or 1
    shown = grid(console, name, (page_no - 1) * GRID_PAGE, GRID_PAGE)
    pages = max(1, -(-shown.total // GRID_PAGE))
    return page(request, "pending.html", {"grid": shown, "page_no": page_no, "pages": pages,
                                          "may_fix": who.account.may(MANAGER)}, who=who)


async def pending_save(request: Request) -> Response:
    who = caller(request, MANAGER)
    console = console_of(request)
    name = request.path_params["name"]
    # A page of rows has a field per cell: a wide file has thousands.
    form = await request.form(max_fields=_MOST_FIELDS)
    check_csrf(who, _field(form, CSRF_FIELD))
    offset = _whole(_field(form, "offset"))
    count = _whole(_field(form, "count"))
    if count > GRID_PAGE:
        raise ValueError(f"{name}: a save holds at most a page of {GRID_PAGE} rows, "
                         f"not {count}; nothing was saved")
    width = len(form.getlist("column"))
    # By position: two columns may share a name (two --IGNORE--).
    rows = [[_field(form, f"c{i}_{j}") or "" for j in range(width)] for i in range(count)]
    version = _field(form, "version")
    await run_in_threadpool(_keep_untouched, console, name, rows, version, offset)
    total = await run_in_threadpool(save, console, name, [{"cells": row} for row in rows],
                                    who, version, offset, count)
    message = f"Saved {count} row(s) of {name} ({total} in the file); " \
              f"{who_imports(console, again=True)}"
    return back_to(request, "dashboard", message)


async def pending_discard(request: Request) -> Response:
    who = caller(request, MANAGER)
    console = console_of(request)
    form = await request.form()
    check_csrf(who, _field(form, CSRF_FIELD))
    done = await run_in_threadpool(give_up, console, request.path_params["name"], who)
    message = f"Discarded {done.rows} row(s) of {done.name} -> {done.dest} (by {done.user})"
    return back_to(request, "dashboard", message)


def _keep_untouched(console: Console, name: str, rows: list[list[str]],
                    version: str | None, offset: int) -> None:
    """Give each cell the form sent back unchanged its exact text again.

    A browser does not send every cell as it showed it: a line break in a
    one-line field is dropped, one in a text area comes back as CR LF. A
    cell the person did not touch must not change for that, so it is
    compared with the file's (as the page read it: same version) as the
    browser would send it, and written back as the file had it.
    """
    before = grid(console, name, offset, len(rows))
    if version is None or before.version != version:
        return  # changed since: the save is refused as stale anyway
    for sent, was in zip(rows, before.rows, strict=False):
        for n, (value, old) in enumerate(zip(sent, was.cells, strict=False)):
            if value != old and value == _as_sent(old):
                sent[n] = old


def _as_sent(text: str) -> str:
    """*text* as a browser sends a form field showing it: line breaks as CR LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _field(form: Mapping[str, object], key: str) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) else None


def _whole(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() else 0


ROUTES = [
    Route("/pending", pending_list, name="pending_list"),
    Route("/pending/{name}", pending_grid, name="pending"),
    Route("/pending/{name}/save", pending_save, methods=["POST"], name="pending_save"),
    Route("/pending/{name}/discard", pending_discard, methods=["POST"], name="pending_discard"),
]
