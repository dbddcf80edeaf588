"""The storage's folders: a page of each, and downloads that never leave the storage.

A file is served only from the four folders (``finished``, ``unfinished``,
``deleted``, ``graduated``) and the root's CSV files (``pending``), by a
plain name: no separator, no ``..``, not hidden (``%2F`` and ``%2E`` are
decoded before the name is looked at, so they are the same refusals). It
is opened with :func:`datacenter.storage.fs.open_read`: never through a
symbolic link (``O_NOFOLLOW``, the last part; a folder that is a link is
refused before), never a second name of a file (a hard link could be an
outside file put there), only a regular file, checked on the open file.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from datacenter.service.accounts import VIEWER
from datacenter.service.report import timestamp
from datacenter.storage import fs, layout
from datacenter.storage.files import DataCenterFile
from datacenter.web.console import PAGE, caller, console_of, page

#: The folders whose files may be listed and downloaded.
FOLDERS = ("pending", layout.FINISHED, layout.UNFINISHED, layout.DELETED, layout.GRADUATED)
_CHUNK = 1 << 16


class NotServedError(LookupError):
    """No such folder or file to serve (404); the message says which."""


def file_path(storage: str, folder: str, name: str) -> str:
    """The path of *name* in *folder* of *storage*, if it may be served; else NotServedError."""
    if folder not in FOLDERS:
        raise NotServedError(f"no folder {folder!r} (folders: {', '.join(FOLDERS)})")
    try:
        layout.plain_name(name, "file name")
    except ValueError as problem:
        raise NotServedError(str(problem)) from None
    if name.startswith("."):
        raise NotServedError(f"{name}: hidden files are not served")
    if folder == "pending" and not name.lower().endswith(".csv"):
        raise NotServedError(f"{name}: only the root's CSV files are served")
    where = storage if folder == "pending" else os.path.join(storage, folder)
    fs.check_folder(where)
    return os.path.join(where, name)


def download(storage: str, folder: str, name: str) -> Response:
    """*name* of *folder* as an attachment; NotServedError, or PlantedLinkError (a link)."""
    path = file_path(storage, folder, name)
    try:
        handle = fs.open_read(path)
    except FileNotFoundError:
        raise NotServedError(f"{folder}/{name}: no such file") from None
    size = os.fstat(handle.fileno()).st_size

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(_CHUNK):
                yield block

    media = "text/csv; charset=utf-8" if name.lower().endswith(".csv") else \
        "application/octet-stream"
    return StreamingResponse(chunks(), media_type=media, headers={
        "Content-Disposition": attachment(name), "Content-Length": str(size),
        "X-Content-Type-Options": "nosniff"})


def attachment(name: str) -> str:
    """A Content-Disposition header for *name*, safe for any characters in it."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_"
                    for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{urllib.parse.quote(name)}"


def listing(storage_view: Any, folder: str, offset: int, limit: int, sort: str = "name",
            ) -> list[dict[str, Any]]:
    """A page of *folder*'s files as dictionaries (what ``ls --json`` prints)."""
    if folder not in FOLDERS:
        raise NotServedError(f"no folder {folder!r} (folders: {', '.join(FOLDERS)})")
    return [file_dict(f) for f in storage_view.iter_files(folder, sort, offset, limit)]


def file_dict(found: DataCenterFile) -> dict[str, Any]:
    data = found.as_dict()
    data.pop("timestamp", None)
    data["date"] = timestamp(found.getTimeStamp())
    data["shown_date"] = found.getDate()
    return data


#: The largest number a query may give: a page number times a page, or an offset, stays
#: far below SQLite's 64-bit integers (a larger one answered a bare 500).
LARGEST = 1_000_000_000


def number(request: Request, key: str, default: int, most: int | None = None) -> int:
    """A whole number from the query (*default* when absent or not one), at most *most*
    and at most :data:`LARGEST`."""
    try:
        value = max(0, int(request.query_params.get(key, default)))
    except ValueError:
        value = default
    return min(value, LARGEST if most is None else most, LARGEST)


def folder_page(request: Request) -> Response:
    who = caller(request, VIEWER)
    console = console_of(request)
    folder = request.path_params["folder"]
    sort = "date" if request.query_params.get("sort") == "date" else "name"
    page_no = number(request, "page", 1) or 1
    view = console.view()
    files = listing(view, folder, (page_no - 1) * PAGE, PAGE + 1, sort)
    return page(request, "folder.html", {
        "folder": folder, "folders": FOLDERS, "files": files[:PAGE], "page_no": page_no,
        "more": len(files) > PAGE, "sort": sort,
        "total": view.count_files(folder)[0]}, who=who)


def folder_download(request: Request) -> Response:
    caller(request, VIEWER)
    return download(console_of(request).storage, request.path_params["folder"],
                    request.path_params["name"])


ROUTES = [
    Route("/files/{folder}", folder_page, name="folder"),
    Route("/files/{folder}/{name}", folder_download, name="folder_download"),
]
