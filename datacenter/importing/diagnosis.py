"""Why a file could not be imported, said so that a person knows what to do.

A spreadsheet saved the wrong way is the usual cause: a workbook
(``.xlsx``, ``.xls``, ``.ods``) instead of CSV, or CSV written as UTF-16
or in a Western European code page, or separated by ``;`` (what a European
spreadsheet writes) or tabs. These functions look at the first bytes, a
line that is not UTF-8, or a header that lacks required columns, and say
what they see; they raise nothing and read nothing themselves.

>>> delimiter(b"student_id;name\\r\\n")
';'
>>> delimiter(b"a,b;c\\n") is None
True
>>> print(workbook_kind(b"PK\\x03\\x04rest"))
xlsx
>>> print(not_csv(b"\\xff\\xfei\\x00d\\x00"))
saved as UTF-16; save it as CSV UTF-8
>>> closest(["Student ID", "Name"], ["student_id", "name"])
"'Student ID' -> student_id (case, spaces), 'Name' -> name (case)"
"""

from __future__ import annotations

import csv
import difflib
import os
import re

#: The first bytes of workbooks: Office Open XML and OpenDocument are zip
#: files; Excel 97-2003 is an OLE compound file.
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: Names that say a spreadsheet workbook, by their extension.
WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods")
WORKBOOK_ADVICE = "a spreadsheet workbook: save it as CSV UTF-8"
NOT_CSV = "not a CSV file"
LATIN_1 = "it looks like Latin-1 or Windows-1252: save it as CSV UTF-8"
SEPARATORS = {";": ";", "\t": "tab"}


def delimiter(first_line: bytes) -> str | None:
    """``;`` or a tab when a header line separates with it and has no comma; else None.

    Separating means two named columns at least, quotes respected: a one-column
    header ``"a;b"`` stays one comma-separated column.
    """
    if b"," in first_line:
        return None
    counts = {d: first_line.count(d.encode()) for d in SEPARATORS}
    best = max(counts, key=lambda d: counts[d])
    if not counts[best]:
        return None
    text = first_line.decode("latin-1").rstrip("\r\n")  # bytes kept one to one
    try:
        cells = next(csv.reader([text], delimiter=best), [])
    except csv.Error:
        return None
    return best if sum(1 for cell in cells if cell.strip()) >= 2 else None


def separated(delimiter: str) -> str:
    """How a log line says the file was read: ``read as ;-separated``."""
    return f"read as {SEPARATORS.get(delimiter, delimiter)}-separated"


def workbook_kind(head: bytes) -> str | None:
    """``xlsx`` (or another zip-based workbook) or ``xls`` by the first bytes, else None."""
    if head.startswith(_ZIP):
        return "ods" if b"opendocument.spreadsheet" in head[:200] else "xlsx"
    if head.startswith(_OLE):
        return "xls"
    return None


def not_csv(head: bytes) -> str | None:
    """What the first bytes of a file say it is when it cannot be CSV text, or None."""
    kind = workbook_kind(head)
    if kind is not None:
        return f"a spreadsheet workbook ({kind}), not CSV: save it as CSV UTF-8"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _every_other_nul(head):
        return "saved as UTF-16; save it as CSV UTF-8"
    return None


def _every_other_nul(head: bytes) -> bool:
    sample = head[:200]
    if len(sample) < 4:
        return False
    odd, even = sample[1::2], sample[0::2]
    return odd.count(0) >= len(odd) * 0.8 or even.count(0) >= len(even) * 0.8


def not_utf8_hint(raw: bytes, processor: str | None = None) -> str | None:
    """What a line that is not UTF-8 looks like instead, if it says (Latin-1 / cp1252).

    With the *processor* the file is for, the hint names its ``encoding`` setting:

    >>> print(not_utf8_hint(b"caf\\xe9\\n", "menu").split(": ")[1])
    save it as CSV UTF-8, or set encoding = "cp1252" for processor menu
    """
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        return None
    high = [c for c in text if ord(c) > 0x7F]
    if not high or not all(c.isprintable() or c in "\r\n\t" for c in text):
        return None
    return LATIN_1 + (f', or set encoding = "cp1252" for processor {processor}'
                      if processor is not None else "")


def root_file_advice(name: str) -> str | None:
    """What ``status`` says of a file at the storage's root that is no CSV file (None: CSV)."""
    ext = os.path.splitext(name)[1].lower()
    if ext == ".csv":
        return None
    return WORKBOOK_ADVICE if ext in WORKBOOK_EXTENSIONS else NOT_CSV


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", "_", name.strip().lower())


def _differences(found: str, field: str) -> str:
    def bare(name: str) -> str:
        return re.sub(r"[\s_\-]+", "", name)

    what = []
    if bare(found) != bare(field) and bare(found).lower() == bare(field).lower():
        what.append("case")
    if re.search(r"\s", found) and not re.search(r"\s", field):
        what.append("spaces")
    if "-" in found and "-" not in field:
        what.append("hyphens")
    if not what and "_" in field and "_" not in found:
        what.append("underscores")
    return ", ".join(what) or "spelling"


def closest(header: list[str], missing: list[str]) -> str:
    """``'Student ID' -> student_id (case, spaces), ...`` for the missing fields it can match."""
    guesses = []
    by_normal = {_normal(h): h for h in header}
    for field in missing:
        found = by_normal.get(_normal(field))
        if found is not None:
            guesses.append(f"'{found}' -> {field} ({_differences(found, field)})")
            continue
        near = difflib.get_close_matches(_normal(field), list(by_normal), n=1, cutoff=0.75)
        if near:
            guesses.append(f"'{by_normal[near[0]]}' -> {field} (spelling)")
    return ", ".join(guesses)


def header_mismatch(header: list[str], missing: list[str]) -> str:
    """``missing: a, b; found header: A, B; did you mean: 'A' -> a (case)``."""
    shown = ", ".join(header[:20]) + (", …" if len(header) > 20 else "")
    text = f"missing: {', '.join(missing)}; found header: {shown}"
    guesses = closest(header, missing)
    return f"{text}; did you mean: {guesses}" if guesses else text
