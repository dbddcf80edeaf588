"""Field types: how the text of a CSV cell becomes a typed value, and back.

Canonical text (what :meth:`FieldType.format` gives) round-trips through
:meth:`FieldType.parse`: bool is ``true``/``false``, date ``YYYY-MM-DD``,
datetime ISO 8601 with a space separator, float Python's shortest repr.
``date:<format>`` and ``datetime:<format>`` read cells written in a
:func:`~datetime.datetime.strptime` format (``date:%d/%m/%Y``) and keep the
same canonical ISO text, which they parse too.
Error texts name the reason only; callers prefix the field name, which
gives ``level: invalid integer 'abc'``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from abc import ABC, abstractmethod
from typing import Any

KNOWN_TYPES = "(known: str, int, float, bool, date, datetime, email, choice:a,b,...)"

# [0-9] rather than \d: \d also matches non-ASCII digits such as '٣'.
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
# One @, a local part without spaces, a dotted domain of labels that neither start nor
# end with a hyphen. Written without ambiguous repeats, so no input makes it backtrack.
_LABEL = r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*"
_EMAIL = re.compile(rf"[^\s@\x00]+@{_LABEL}(?:\.{_LABEL})+")
# SQLite INTEGER is a signed 64-bit value; larger ints would fail at insert time.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_TRUE = frozenset({"true", "yes", "1", "t", "y"})
_FALSE = frozenset({"false", "no", "0", "f", "n"})
#: What a date format must write and read back: day, month and year all differ.
_SAMPLE = dt.datetime(2004, 3, 15, 13, 45)
_DIRECTIVE = re.compile(r"%[A-Za-z]")


class FieldType(ABC):
    """A column type: parses cell text, formats canonical text, checks Python values."""

    name: str
    sql_type: str
    # Whether a str is a valid value of the type (JSON has no dates, so date texts are).
    takes_text: bool = True

    @abstractmethod
    def parse(self, text: str) -> object:
        """Cell text -> typed value; ValueError says why not."""

    def _check(self, value: object) -> str | None:
        """Why a non-str *value* is not of this type, or None when it is."""
        return self._expected(value)

    def _render(self, value: Any) -> str:
        return str(value)

    def render(self, value: Any) -> str:
        """Canonical text of a value ``parse`` made: no checks, for the hot path."""
        return self._render(value)

    def problem(self, value: object) -> str | None:
        """Why *value* is not of this type (None when it is); None is never of a type."""
        if isinstance(value, str):
            try:
                self.parse(value)
            except ValueError as exc:
                return str(exc)
            return None if self.takes_text else self._expected(value)
        return self._check(value)

    def accepts(self, value: object) -> bool:
        return self.problem(value) is None

    def format(self, value: object) -> str:
        """Canonical text of a typed value (or of a text the type parses)."""
        if isinstance(value, str):
            return self._render(self.parse(value))
        reason = self._check(value)
        if reason is not None:
            raise ValueError(reason)
        return self._render(value)

    def _expected(self, value: object) -> str:
        return f"expected {self.name}, got {type(value).__name__}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"field_type({self.name!r})"


class StrType(FieldType):
    name, sql_type = "str", "TEXT"

    def parse(self, text: str) -> str:
        # SQLite and most CSV consumers cut text at NUL, silently losing data.
        if "\x00" in text:
            raise ValueError("contains a NUL character")
        return text


class IntType(FieldType):
    name, sql_type, takes_text = "int", "INTEGER", False

    def parse(self, text: str) -> int:
        text = text.strip()
        if not _INT.fullmatch(text):
            raise ValueError(f"invalid integer {text!r}")
        # Counting significant digits first keeps int() away from huge digit strings.
        digits = text.lstrip("+-").lstrip("0") or "0"
        value = int(digits) if len(digits) <= 19 else 10**19
        value = -value if text[0] == "-" else value
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"invalid integer {text!r} (out of 64-bit range)")
        return value

    def _check(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return self._expected(value)
        if not _INT_MIN <= value <= _INT_MAX:
            return f"invalid integer '{value}' (out of 64-bit range)"
        return None


class FloatType(FieldType):
    name, sql_type, takes_text = "float", "REAL", False

    def parse(self, text: str) -> float:
        text = text.strip()
        # float() alone would take 'nan', 'inf', '1_0' and non-ASCII digits.
        number = float(text) if _FLOAT.fullmatch(text) else math.nan
        if not math.isfinite(number):
            raise ValueError(f"invalid number {text!r}")
        return number

    def _check(self, value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self._expected(value)
        try:
            finite = math.isfinite(float(value))
        except OverflowError:
            finite = False
        return None if finite else f"invalid number '{value}'"

    def _render(self, value: Any) -> str:
        return repr(float(value))


class BoolType(FieldType):
    """Booleans; canonical text is ``true``/``false``, the most readable in exports."""

    name, sql_type, takes_text = "bool", "INTEGER", False

    def parse(self, text: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"invalid boolean {text.strip()!r} (use true/false, yes/no, 1/0)")

    def _check(self, value: object) -> str | None:
        return None if isinstance(value, bool) else self._expected(value)

    def _render(self, value: Any) -> str:
        return "true" if value else "false"


class IsoType(FieldType):
    """date and datetime; canonical text is ``str(value)``, ISO with a space separator."""

    sql_type = "TEXT"

    def __init__(self, kind: type[dt.date], pattern: re.Pattern[str], hint: str) -> None:
        self.name, self.kind, self.pattern, self.hint = kind.__name__, kind, pattern, hint

    def parse(self, text: str) -> dt.date:
        text = text.strip()
        try:
            # The pattern keeps out what fromisoformat also takes ('20240101', a bare
            # date for a datetime), so that only the documented forms get in.
            if self.pattern.fullmatch(text):
                return self.kind.fromisoformat(text)
        except ValueError:
            pass
        raise ValueError(f"invalid {self.name} {text!r} (use {self.hint})")

    def _check(self, value: object) -> str | None:
        # A datetime is a date subclass, but a date field must not take one silently.
        if isinstance(value, self.kind) and (
            self.kind is dt.datetime or not isinstance(value, dt.datetime)
        ):
            return None
        return self._expected(value)


class FormattedIsoType(IsoType):
    """A date or datetime read in a strptime *fmt* (``date:%d/%m/%Y``); stored as ISO.

    Canonical ISO text is taken too, so that canonical text round-trips
    (stored values, finished files dropped again, graduated values).
    """

    def __init__(self, base: IsoType, fmt: str) -> None:
        super().__init__(base.kind, base.pattern, base.hint)
        problem = _format_problem(fmt)
        if problem is not None:
            raise ValueError(f"bad format in '{base.name}:{fmt}': {problem}")
        self.fmt = fmt
        self.name = f"{base.name}:{fmt}"

    def parse(self, text: str) -> dt.date:
        text = text.strip()
        try:
            found = dt.datetime.strptime(text, self.fmt)
        except ValueError:
            if self.pattern.fullmatch(text):
                return super().parse(text)
            kind = self.kind.__name__
            raise ValueError(f"invalid {kind} {text!r} (expected format {self.fmt}, "
                             f"e.g. {_SAMPLE.strftime(self.fmt)})") from None
        return found if self.kind is dt.datetime else found.date()


#: A date whose day could be a month: ISO text of it must not read as another date.
_AMBIGUOUS = dt.datetime(2004, 3, 5)


def _format_problem(fmt: str) -> str | None:
    """Why strptime cannot read dates in *fmt* back, or None: a sample must round-trip."""
    if not _DIRECTIVE.search(fmt):
        return "no directive such as %d, %m, %Y"
    try:
        again = dt.datetime.strptime(_SAMPLE.strftime(fmt), fmt)
    except ValueError as exc:
        return f"strptime cannot read it back ({exc})"
    if again.date() != _SAMPLE.date():
        return f"{_SAMPLE.date()} written as {_SAMPLE.strftime(fmt)!r} reads back as {again.date()}"
    # Stored values and finished files are ISO text, read with the format first:
    # a format that reads an ISO date as another date would swap them.
    for iso in (_AMBIGUOUS, _SAMPLE):
        try:
            misread = dt.datetime.strptime(iso.strftime("%Y-%m-%d"), fmt)
        except ValueError:
            continue
        if misread.date() != iso.date():
            return f"it reads the ISO date {iso.date()} as {misread.date()}"
    return None


class EmailType(FieldType):
    """A pragmatic address check; the text is kept as written (no lowercasing)."""

    name, sql_type = "email", "TEXT"

    def parse(self, text: str) -> str:
        text = text.strip()
        if not _EMAIL.fullmatch(text):
            raise ValueError(f"invalid email address {text!r}")
        return text


class ChoiceType(FieldType):
    sql_type = "TEXT"

    def __init__(self, choices: tuple[str, ...]) -> None:
        if not choices:
            raise ValueError("choice type needs at least one value, e.g. 'choice:a,b'")
        for choice in choices:
            if not choice:
                raise ValueError(f"empty value in 'choice:{','.join(choices)}'")
            if choices.count(choice) > 1:
                raise ValueError(f"duplicate value {choice!r} in 'choice:{','.join(choices)}'")
        self.choices = choices
        self.name = "choice:" + ",".join(choices)

    def parse(self, text: str) -> str:
        text = text.strip()
        if text not in self.choices:
            raise ValueError(f"invalid choice {text!r} (choose one of: {', '.join(self.choices)})")
        return text


_ISO: dict[str, IsoType] = {
    ft.name: ft
    for ft in (
        IsoType(dt.date, _DATE, "YYYY-MM-DD"),
        IsoType(dt.datetime, _DATETIME, "YYYY-MM-DD HH:MM:SS or ISO 8601"),
    )
}
_SIMPLE: dict[str, FieldType] = {
    ft.name: ft for ft in (StrType(), IntType(), FloatType(), BoolType(), EmailType(),
                           *_ISO.values())
}


def lookup(spec: str) -> FieldType | None:
    """The type for *spec*, None when unknown; ValueError for a bad choice list or format."""
    base, colon, fmt = spec.partition(":")
    if colon and base in ("date", "datetime"):
        return FormattedIsoType(_ISO[base], fmt)
    if spec.startswith("choice:"):
        body = spec[len("choice:"):]
        return ChoiceType(tuple(c.strip() for c in body.split(",")) if body.strip() else ())
    return _SIMPLE.get(spec)


def field_type(spec: str) -> FieldType:
    """The field type named by *spec*: ``str int float bool date datetime email choice:a,b``,
    ``date:<format>`` or ``datetime:<format>``."""
    found = lookup(spec)
    if found is None:
        raise ValueError(f"unknown field type {spec!r} {KNOWN_TYPES}")
    return found
