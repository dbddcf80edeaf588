"""Uploads: the page with its drop zone, and what the page and the API share.

The body is read up to the limit (``[web] max_upload_bytes``) and no
further: a ``Content-Length`` above it is refused before anything is read,
and a body that grows past it without saying is cut off by the app's
:class:`~datacenter.web.app.BodyLimit`. The library looks at the bytes
(:func:`datacenter.importing.uploads.preview`) and drops them in
(:func:`~datacenter.importing.uploads.drop`); refused, nothing is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from datacenter.config import MODES
from datacenter.importing.uploads import (
    NotCSVError,
    Preview,
    UploadError,
    UploadExistsError,
    UploadTooLargeError,
    drop,
    preview,
)
from datacenter.service.accounts import MANAGER
from datacenter.web.auth import CSRF_FIELD, Caller, check_csrf
from datacenter.web.console import (
    Console,
    back_to,
    caller,
    console_of,
    page,
    who_imports,
)

#: Bytes a multipart body may have beyond the file itself (boundaries, the other fields).
ENVELOPE = 64 << 10


@dataclass
class Upload:
    data: bytes
    filename: str
    processor: str | None
    mode: str | None
    csrf: str | None


async def read_upload(request: Request, console: Console) -> Upload:
    """The uploaded file and its fields; UploadError (too large, none sent)."""
    limit = console.conf.web.max_upload_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + ENVELOPE:
        raise UploadTooLargeError(f"the file is larger than the upload limit of {limit:,} "
                                  "bytes ([web] max_upload_bytes)")
    form = await request.form(max_files=1, max_fields=10)
    try:
        sent = form.get("file")
        if not isinstance(sent, UploadFile) or not sent.filename:
            raise UploadError("no file: send it as the multipart field 'file'")
        data = await sent.read(limit + 1)
        if len(data) > limit:
            raise UploadTooLargeError(f"{sent.filename}: the file is larger than the upload "
                                      f"limit of {limit:,} bytes ([web] max_upload_bytes)")
        return Upload(data, sent.filename, _choice(form.get("processor")),
                      _choice(form.get("mode")), _text(form.get(CSRF_FIELD)))
    finally:
        await form.close()


def _choice(value: object) -> str | None:
    """A select's value: empty (or "guess") means "from the file name"."""
    return value if isinstance(value, str) and value and value != "guess" else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def look(console: Console, upload: Upload) -> Preview:
    return preview(upload.data, upload.filename, console.schemas, console.router,
                   upload.processor, upload.mode, console.conf.web.max_upload_bytes)


def put_in(console: Console, upload: Upload, who: Caller) -> Preview:
    """Drop an accepted upload into the storage, logged and recorded under *who*."""
    looked = look(console, upload)
    # Under the storage's lock, as `datacenter import`'s copy: opening the storage
    # elsewhere sweeps temporary names at the root, which must not take ours.
    with console.importer() as importer, importer.dc.lock:
        name = drop(importer.storage, upload.data, looked, importer.store, who.name)
        importer.dc.log(f"uploaded: {name} ({looked.processor}/{looked.mode}, "
                        f"{looked.total_rows} rows) through the console", user=who.name)
    return looked


def upload_form(request: Request) -> Response:
    who = caller(request, MANAGER)
    console = console_of(request)
    return page(request, "upload.html", {"processors": sorted(console.schemas),
                                         "modes": MODES, "looked": None,
                                         "limit": console.conf.web.max_upload_bytes}, who=who)


async def upload_post(request: Request) -> Response:
    who = caller(request, MANAGER)
    console = console_of(request)
    context = {"processors": sorted(console.schemas), "modes": MODES,
               "limit": console.conf.web.max_upload_bytes, "looked": None}
    upload: Upload | None = None
    try:
        upload = await read_upload(request, console)
        check_csrf(who, upload.csrf)
        looked = await run_in_threadpool(put_in, console, upload, who)
    except UploadError as refused:
        context["problem"] = str(refused)
        if upload is not None:  # the choices stay made for the next try
            context["chosen_processor"], context["chosen_mode"] = upload.processor, upload.mode
        return page(request, "upload.html", context, status=status_of(refused), who=who)
    message = f"Uploaded {looked.filename} as {looked.name} ({looked.processor}, " \
              f"{looked.mode}, {looked.total_rows} rows); {who_imports(console)}"
    return back_to(request, "dashboard", message)


def status_of(refused: UploadError) -> int:
    """The HTTP status of a refused upload: too large, not CSV, name taken, else 400."""
    if isinstance(refused, UploadTooLargeError):
        return 413
    if isinstance(refused, NotCSVError):
        return 415
    return 409 if isinstance(refused, UploadExistsError) else 400


ROUTES = [
    Route("/upload", upload_form, methods=["GET"], name="upload"),
    Route("/upload", upload_post, methods=["POST"], name="upload_post"),
]
