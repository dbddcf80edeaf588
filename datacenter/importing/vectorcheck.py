"""Checking a column of cells at once: what :mod:`.rowplan` does per cell, per batch.

For each field the result is three arrays over the batch's rows: the value
as SQLite stores it (null: no value), the finished text (the canonical
text the finished file shows), and the error (``<field>: <reason>``, null
when the cell is fine). They are exactly what the row engine computes,
because the field type itself still decides every cell that is not plainly
valid:

1. a vectorised pattern accepts the cells that are certainly valid and
   already canonical (``42``, ``a@b.org``, ``2024-01-31``, a choice as it
   is written), which the type would parse to the same value and text;
2. every other cell is parsed by the field type in Python, once per
   distinct text of the batch (dictionary-encoded), which gives the very
   value, text or error message (``email: invalid email address 'x'``).

So a pattern may be stricter than the type, never looser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from datacenter.records.fieldtypes import ChoiceType, FieldType
from datacenter.records.schema import MISSING
from datacenter.records.store import to_db

#: Every character ``str.isspace`` (and so ``str.strip``) counts as white space.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
              "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_WS_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE)
#: A cell that is empty or white space only: the row engine's "no value".
BLANK = f"^[{_WS_CLASS}]*$"
_LABEL = "[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*"
#: Stricter than the types' own patterns (ASCII, no spaces to strip, canonical).
_PLAIN = {
    "int": "^(?:0|-?[1-9][0-9]{0,17})$",
    "email": f"^[\\x21-\\x3f\\x41-\\x7e]+@{_LABEL}(?:\\.{_LABEL})+$",
    # A day every month has, the 29th and 30th of all but February, the 31st of the
    # long months: every date this takes is one (February 29th goes to the type).
    "date": ("^[1-9][0-9]{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
             "|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)$"),
}
_ARROW_TYPES = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}
# Typed scalars: pyarrow makes one of a bare Python value slowly (it looks for numpy).
_FALSE = pa.scalar(False, pa.bool_())
_ZERO = pa.scalar("0", pa.string())
_NUL = "\x00"


@dataclass
class Checked:
    """One field's column, checked."""

    stored: pa.Array
    finished: pa.Array
    error: pa.Array  # string, null where the cell is fine

    def filtered(self, mask: pa.Array) -> Checked:
        """The same, for the rows of *mask* only."""
        return Checked(pc.filter(self.stored, mask), pc.filter(self.finished, mask),
                       pc.filter(self.error, mask))


def arrow_type(ftype: FieldType) -> pa.DataType:
    """The Arrow type of a field's stored values."""
    return _ARROW_TYPES[ftype.sql_type]


def check_column(name: str, ftype: FieldType, cells: pa.Array, needed: bool) -> Checked:
    """Check the *cells* of field *name*; *needed*: an empty cell is an error (else no value)."""
    blank = pc.match_substring_regex(cells, BLANK)
    plain = pc.and_not(_plainly_valid(ftype, cells), blank)
    stored_type = arrow_type(ftype)
    stored = pc.if_else(plain, _plain_stored(ftype, cells, stored_type),
                        pa.nulls(len(cells), stored_type))
    finished = cells
    missing = pa.scalar(f"{name}: {MISSING}" if needed else None, pa.string())
    error = pc.if_else(blank, missing, pa.nulls(len(cells), pa.string()))
    rest = pc.invert(pc.or_(plain, blank))
    if pc.any(rest).as_py():
        stored, finished, error = _by_the_type(name, ftype, cells, rest, stored, finished, error)
    return Checked(stored, finished, error)


def _plainly_valid(ftype: FieldType, cells: pa.Array) -> pa.Array:
    if ftype.name == "str":
        return pc.invert(pc.match_substring(cells, _NUL))
    if isinstance(ftype, ChoiceType):
        return pc.is_in(cells, value_set=pa.array(ftype.choices, pa.string()))
    pattern = _PLAIN.get(ftype.name)
    if pattern is None:
        return pa.repeat(_FALSE, len(cells))
    valid = pc.match_substring_regex(cells, pattern)
    return valid


def _plain_stored(ftype: FieldType, cells: pa.Array, stored_type: pa.DataType) -> pa.Array:
    if ftype.name == "int":
        return pc.cast(pc.if_else(pc.match_substring_regex(cells, _PLAIN["int"]), cells, _ZERO),
                       pa.int64())
    return cells if stored_type == pa.string() else pa.nulls(len(cells), stored_type)


def _by_the_type(name: str, ftype: FieldType, cells: pa.Array, rest: pa.Array,
                 stored: pa.Array, finished: pa.Array, error: pa.Array,
                 ) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Let the field type decide the cells in *rest*, once per distinct text."""
    chosen = pc.filter(cells, rest)
    encoded = pc.dictionary_encode(chosen)
    texts: list[str] = encoded.dictionary.to_pylist()
    values: list[object] = []
    shown: list[str | None] = []
    reasons: list[str | None] = []
    render: Callable[[object], str] = ftype.render
    for text in texts:
        try:
            value = ftype.parse(text)
        except ValueError as exc:
            values.append(None)
            shown.append(None)
            reasons.append(f"{name}: {exc}")
            continue
        values.append(to_db(ftype, value))
        shown.append(text if ftype.name == "str" else render(value))
        reasons.append(None)
    indices = encoded.indices
    stored_type = stored.type
    stored = pc.replace_with_mask(stored, rest, pa.array(values, stored_type).take(indices))
    finished = pc.replace_with_mask(finished, rest, pa.array(shown, pa.string()).take(indices))
    error = pc.replace_with_mask(error, rest, pa.array(reasons, pa.string()).take(indices))
    return stored, finished, error
