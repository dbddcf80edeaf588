"""The formula guard: cells a spreadsheet could run as formulas, made inert.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return (OWASP's list), or with a formula sign behind blanks and invisible
characters, gets a leading ``'``. The row export applies it cell by cell;
the columnar export settles nearly every cell by its first byte and sends
only the rest through :func:`neutralise_cell`.
"""

from __future__ import annotations

import unicodedata

#: A cell starting with one of these is neutralised (OWASP's list).
FORMULA_STARTS = "=+-@\t\r"
#: Formula signs that count behind leading blanks too, with their full-width
#: forms (U+FF1D, U+FF0B, U+FF0D, U+FF20), which spreadsheets may fold into ASCII.
FORMULA_SIGNS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
#: Unicode categories skipped before a sign, besides white space: space
#: separators (NBSP, ideographic space) and invisible format characters
#: (zero-width space and joiners, word joiner, BOM, soft hyphen, bidi marks).
BLANK_CATEGORIES = frozenset({"Zs", "Cf"})
#: First characters that start no formula, whatever follows: printable ASCII
#: but the formula starts and the space. Nearly every cell starts with one,
#: so one set look-up settles it; only the others are scanned.
PLAIN_STARTS = frozenset(map(chr, range(0x21, 0x7F))) - frozenset(FORMULA_STARTS)

def neutralise_cell(text: str) -> str:
    """*text* made inert for spreadsheets: a leading ``'`` if it could start a formula.

    >>> neutralise_cell("=HYPERLINK(\\"http://x\\")"), neutralise_cell("plain")
    ('\\'=HYPERLINK("http://x")', 'plain')
    >>> [neutralise_cell(t)[0] == "'" for t in (" =1", "\\u200b+1", "\\uff1d1", " x-1")]
    [True, True, True, False]
    """
    if not text or text[0] in PLAIN_STARTS:  # the fast path, inlined in _values
        return text
    return "'" + text if _starts_formula(text) else text


def _starts_formula(text: str) -> bool:
    """Does *text* start with a formula start, or with a formula sign behind blanks?"""
    if text[0] in FORMULA_STARTS:
        return True
    for char in text:
        if char in FORMULA_SIGNS:
            return True
        if not (char.isspace() or unicodedata.category(char) in BLANK_CATEGORIES):
            return False
    return False  # blanks only
