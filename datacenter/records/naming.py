"""How header text becomes a field name: what is matched, what is refused.

Any header text can be a field name: the store quotes every identifier.
Refused are only names that cannot work: an empty one, one with a control
character or with blanks at either end (headers are matched without them),
the special columns, and two names that would be one column (SQLite
compares identifiers without ASCII case) or one header (the same text in
two Unicode forms). :func:`header_key` is how a header cell is matched;
:meth:`datacenter.records.schema.ProcessorSchema.field_of` uses it.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

#: A column to skip when importing.
IGNORE_COLUMN = "--IGNORE--"
#: The column of a pending file saying why its row failed.
ERRORS_COLUMN = "--ERRORS--"
#: The column of every record table holding the job that last created or updated
#: the record (:mod:`datacenter.records.store`); no field may be called so.
JOB_COLUMN = "--job--"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def header_key(text: str) -> str:
    """What a header cell is matched by: without blanks at either end, in Unicode's NFC.

    A spreadsheet pads a header (``" name "``) or writes an accent as two
    code points now and then; neither is a different column to a person.
    Case is kept: ``Name`` is not ``name`` (the hint says so when it misses).
    """
    return unicodedata.normalize("NFC", text.strip())


def _column_key(name: str) -> str:
    """Names with the same column key are one column to SQLite (ASCII case) or one header."""
    return header_key(name).translate(_ASCII_LOWER)


def header_problem(name: object, what: str = "field name") -> str | None:
    """Why *name* cannot be a field's name (or a header of ``columns``), or None."""
    if not isinstance(name, str) or not name:
        return f"invalid {what} {name!r} (empty)"
    if name in (IGNORE_COLUMN, ERRORS_COLUMN):
        use = "columns to skip" if name == IGNORE_COLUMN else "the error column of pending files"
        return f"invalid {what} {name!r} (reserved for {use})"
    if name.translate(_ASCII_LOWER) == JOB_COLUMN:
        return f"invalid {what} {name!r} (reserved for the job that wrote each record)"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return f"invalid {what} {name!r} (holds a control character)"
    if name != name.strip():
        return f"invalid {what} {name!r} (blanks at either end; headers are matched without)"
    return None


def collision(names: list[str], what: str, columns: bool = True) -> str | None:
    """Two of *names* that would be one column (*columns*) or one header, in one line."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(_column_key(name) if columns else header_key(name), name)
        if other != name:
            if header_key(other) == header_key(name):
                return (f"{what} {other!r} and {name!r} would be one header "
                        "(the same text in two Unicode forms)")
            return (f"{what} {other!r} and {name!r} would be one column "
                    "(SQLite does not tell upper and lower case apart)")
    return None


def doubles(headers: list[str], fields: list[str | None]) -> list[str]:
    """Headers written twice, and fields that two headers feed, as an error says them.

    *fields* is the field each header feeds (None: none). ``--IGNORE--``,
    ``--ERRORS--`` and other ``--`` columns that feed no field may repeat.
    """
    used = Counter(header_key(h) for h, f in zip(headers, fields, strict=True)
                   if f is not None or not h.startswith("--"))
    said = sorted(h for h, times in used.items() if times > 1)
    feeding: dict[str, dict[str, None]] = {}
    for header, name in zip(headers, fields, strict=True):
        if name is not None:
            feeding.setdefault(name, {})[header_key(header)] = None
    said += [f"{' and '.join(map(repr, names))} (both field {name})"
             for name, names in feeding.items() if len(names) > 1]
    return said


def quote(identifier: str) -> str:
    """*identifier* as SQL: in double quotes, each of its own doubled. Any text a field
    may be called is one column so (``a"; DROP TABLE x; --`` included)."""
    return '"' + identifier.replace('"', '""') + '"'
