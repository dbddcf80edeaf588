"""A file handed over whole (the console's upload): looked at first, then dropped in.

:func:`preview` reads the bytes of an upload the way an import will and
says what would happen, before anything touches the storage: the processor
and mode (chosen, or guessed from the name as the service routes it), the
name it will be stored under, the header with its warnings (columns no
field has, required columns missing, a column named twice) and the first
rows. It refuses in one line what can never be imported: a name that is no
plain ``*.csv`` file name, an empty file, one larger than the limit, a
workbook or UTF-16 file, bytes that are not UTF-8 (unless the processor
reads another encoding), a quote never closed, a header the import would
reject. Nothing is written.

:func:`drop` puts an accepted upload at the storage's root the way
``datacenter import`` copies a file there: the bytes go to a hidden
temporary name beside it, fsynced, then take the name in one step that
never replaces anything (a same-name file is refused, and what was
written is removed). Before that step the upload is recorded in the
ledger's actions under the account, with the file's identity, so the
service's import of that very file is recorded under the same name.

A name that does not route to the processor and mode asked for is given
one that does (``<processor>_<name>.<mode>.csv``), since the service reads
both from the name.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from datacenter.config import MODES
from datacenter.errors import DataCenterError
from datacenter.importing import diagnosis
from datacenter.importing.routing import Router, UnroutedError
from datacenter.records.backend import Store
from datacenter.records.naming import doubles
from datacenter.records.schema import ERRORS_COLUMN, ProcessorSchema
from datacenter.storage import fs, layout
from datacenter.storage.identity import FileIdentity

#: Rows a preview shows.
PREVIEW_ROWS = 10
UPLOAD = "upload"


class UploadError(DataCenterError, ValueError):
    """The upload is refused; the message says why in one line. Nothing was written."""


class UploadExistsError(UploadError):
    """A file of that name waits at the storage's root already."""


class UploadTooLargeError(UploadError):
    """The upload is larger than ``[web] max_upload_bytes``."""


class NotCSVError(UploadError):
    """Not CSV text: another kind of file name, a workbook, UTF-16, bytes not UTF-8."""


@dataclass
class Preview:
    """What importing an upload would do; ``problem`` is why it is refused, if it is."""

    filename: str  # as uploaded
    name: str  # as it would be stored
    processor: str | None
    mode: str
    guessed: bool  # processor and mode come from the name
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int = 0
    separator: str = ","
    unknown: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    refusal: UploadError | None = None

    @property
    def problem(self) -> str | None:
        """Why the upload is refused, in one line; None: it is accepted."""
        return None if self.refusal is None else str(self.refusal)

    @property
    def warnings(self) -> list[str]:
        """The header's warnings, one line each."""
        found = []
        if self.unknown:
            found.append(f"unknown column(s), not imported: {', '.join(self.unknown)}")
        if self.missing:
            hint = diagnosis.closest(self.header, self.missing)
            found.append(f"missing required column(s): {', '.join(self.missing)}"
                         + (f" (did you mean: {hint})" if hint else ""))
        if self.duplicates:
            found.append(f"duplicate column(s): {', '.join(self.duplicates)}")
        return found

    def as_dict(self) -> dict[str, object]:
        return {"filename": self.filename, "name": self.name, "processor": self.processor,
                "mode": self.mode, "guessed": self.guessed, "header": self.header,
                "rows": self.rows, "total_rows": self.total_rows, "separator": self.separator,
                "warnings": self.warnings, "problem": self.problem}


def preview(data: bytes, filename: str, schemas: Mapping[str, ProcessorSchema],
            router: Router, processor: str | None = None, mode: str | None = None,
            max_bytes: int | None = None, shown: int = PREVIEW_ROWS) -> Preview:
    """What importing *data*, uploaded as *filename*, would do; refusals in ``problem``."""
    found = Preview(filename, filename, processor, mode or "create", processor is None)
    try:
        _check_name(filename)
        found.processor, found.mode = _routing(filename, schemas, router, processor, mode)
        found.name = _stored_name(filename, found.processor, found.mode, router)
        _check_size(data, max_bytes)
        schema = schemas[found.processor]
        text = _text(data, schema)
        _read(found, text, schema, shown)
        refused = [w for w in found.warnings if not w.startswith("unknown")]
        if refused:
            raise UploadError(f"{filename}: the import would refuse its header: "
                              f"{'; '.join(refused)}")
    except UploadError as error:
        text = str(error)
        found.refusal = error if text.startswith(filename) else type(error)(f"{filename}: {text}")
    return found


def drop(storage: str, data: bytes, looked: Preview, store: Store, user: str) -> str:
    """Put accepted upload *data* at the root of *storage* as ``looked.name``; that name.

    UploadError when the preview refused it, UploadExistsError when the name
    is taken; nothing is left behind either way. Call it under the storage's
    lock: whoever opens the storage sweeps temporary names at its root.
    """
    if looked.refusal is not None:
        raise looked.refusal
    target = os.path.join(storage, layout.plain_name(looked.name, "upload name"))
    if os.path.lexists(target):
        raise _exists(looked.name)
    tmp = fs.temp_name(storage)
    try:
        with fs.new_file(tmp, sync=False) as handle:
            handle.write(data)
        ident = FileIdentity.at(tmp)
        # Recorded before the name appears: the service may take the file at once (it
        # asks who dropped it outside the lock); taken back if the rename fails.
        action = store.record_action(
            UPLOAD, looked.name, user, ident=ident.to_ledger() if ident else "",
            detail=f"{looked.processor}/{looked.mode}, {len(data)} bytes, "
                   f"uploaded as {looked.filename}", storage=os.path.realpath(storage))
        try:
            fs.rename_in(tmp, target)  # seen as moved in: complete at once
        except BaseException:
            store.withdraw_action(action)
            raise
    except FileExistsError:
        raise _exists(looked.name) from None
    finally:
        fs.unlink(tmp, missing_ok=True)
    return looked.name


def _exists(name: str) -> UploadExistsError:
    return UploadExistsError(f"{name}: a file of that name waits at the storage's root "
                             "already; nothing was uploaded (rename yours, or wait until it "
                             "is imported)")


def _check_name(filename: str) -> None:
    try:
        layout.plain_name(filename, "file name")
    except ValueError as error:
        raise UploadError(str(error)) from None
    if filename.startswith("."):
        raise UploadError(f"{filename}: a hidden file name (starting with a dot) is never "
                          "imported")
    if not filename.lower().endswith(".csv"):
        advice = diagnosis.root_file_advice(filename)
        raise NotCSVError(f"{filename}: not a CSV file" + (f" ({advice})" if advice else
                                                           " (the name must end in .csv)"))


def _check_size(data: bytes, max_bytes: int | None) -> None:
    if not data:
        raise UploadError("the file is empty: no header line")
    if max_bytes is not None and len(data) > max_bytes:
        raise UploadTooLargeError(f"the file is larger than the upload limit of "
                                  f"{max_bytes:,} bytes ([web] max_upload_bytes)")


def _routing(filename: str, schemas: Mapping[str, ProcessorSchema], router: Router,
             processor: str | None, mode: str | None) -> tuple[str, str]:
    if mode is not None and mode not in MODES:
        raise UploadError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    if processor is None:
        try:
            routed, routed_mode = router.route(filename)
        except UnroutedError:
            raise UploadError(f"{filename}: no processor claims this name; choose one "
                              f"(known: {', '.join(sorted(schemas)) or 'none'})") from None
        return routed, mode or routed_mode
    if processor not in schemas:
        raise UploadError(f"unknown processor {processor!r} "
                          f"(known: {', '.join(sorted(schemas)) or 'none'})")
    return processor, mode or router.mode_for(filename, processor)


def _stored_name(filename: str, processor: str, mode: str, router: Router) -> str:
    """*filename* if it routes to *processor* in *mode*, else one that does."""
    if _routes_to(router, filename) == (processor, mode):
        return filename
    stem = filename[:-4]
    base, _, named_mode = stem.rpartition(".")
    stem = base if base and named_mode in MODES else stem
    name = f"{processor}_{stem}" + ("" if mode == "create" else f".{mode}") + ".csv"
    if _routes_to(router, name) != (processor, mode):
        raise UploadError(f"{filename}: a [[routes]] entry sends {name} elsewhere; rename the "
                          f"file so that it routes to {processor} ({mode})")
    return name


def _routes_to(router: Router, name: str) -> tuple[str, str] | None:
    try:
        return router.route(name)
    except UnroutedError:
        return None


def _text(data: bytes, schema: ProcessorSchema) -> str:
    problem = diagnosis.not_csv(data[:4096])
    if problem is not None:
        raise NotCSVError(problem)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if schema.encoding.replace("_", "-").lower() not in ("utf-8", "utf8"):
            return _mixed(data, schema.encoding)
        line = data.count(b"\n", 0, error.start) + 1
        hint = diagnosis.not_utf8_hint(data.splitlines()[line - 1], schema.name)
        raise NotCSVError(f"line {line}: not UTF-8 text"
                          + (f" ({hint})" if hint else "; save it as CSV UTF-8")) from None


def _mixed(data: bytes, encoding: str) -> str:
    """Each line as UTF-8 if it is, else in the processor's *encoding* (as imports read)."""
    decode = codecs.getdecoder(encoding)
    lines = []
    for raw in data.removeprefix(codecs.BOM_UTF8).splitlines(keepends=True):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(decode(raw)[0])
    return "".join(lines)


def _read(found: Preview, text: str, schema: ProcessorSchema, shown: int) -> None:
    """The header, its warnings and the first rows; UploadError for what cannot be read."""
    first = text.lstrip("\r\n").split("\n", 1)[0].encode("utf-8")
    found.separator = diagnosis.delimiter(first) or ","
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, delimiter=found.separator)
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if not found.header:
                found.header = [cell.strip() for cell in cells]
                continue
            found.total_rows += 1
            if len(found.rows) < shown:
                found.rows.append(cells)
    except csv.Error as error:
        reason = str(error)
        if "unexpected end of data" in reason:
            reason = 'a quoted cell is never closed (a missing ")'
        raise UploadError(f"{found.filename}: line {reader.line_num}: {reason}") from None
    if not found.header:
        raise UploadError(f"{found.filename}: the file is empty: no header line")
    # As the import reads a header (processors.checkHeaders): through field_of, so a
    # ``columns`` header, blanks at either end and Unicode forms count as the field.
    columns = [h for h in found.header if h and h != ERRORS_COLUMN]
    fields = [schema.field_of(h) for h in columns]
    found.unknown = [h for h, f in zip(columns, fields, strict=True)
                     if f is None and not h.startswith("--")]
    present = set(fields)
    found.missing = [f for f in schema.req[found.mode] if f not in present]
    found.duplicates = doubles(columns, fields)
