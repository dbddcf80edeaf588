"""One pass over a file's bytes before the columnar engine reads it: may Arrow read it?

Arrow's CSV reader is fast, but it is not Python's ``csv`` module, whose
reading (:mod:`.csvinput`) is the definition of what a file says. Where the
two could differ, the file goes to the row engine, which then says exactly
what it always said. Those files are:

* bytes that are not UTF-8 (an error naming the line, or the processor's
  ``encoding`` read line by line), or a NUL byte (the csv module refuses it);
* a carriage return that does not end a line (Arrow ends a row there, the
  csv module refuses it);
* a line longer than ``max_line_bytes`` (the row engine's error names it);
* a quote the csv module (strict) refuses: a quoted cell never closed,
  text after a closing quote. A file with quotes is read once by the csv
  module here, as a check only (Arrow reads those cells as text all the same).

The pass also computes the file's SHA-256 (the ledger keeps it), in bounded
memory: the file is read in chunks.
"""

from __future__ import annotations

import codecs
import collections
import csv
import hashlib
import io
from dataclasses import dataclass

from datacenter.storage import fs

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Scan:
    """What the pass found: the digest, whether quotes occur, and why Arrow may not read."""

    sha256: str
    quoted: bool
    #: Why the row engine must read this file (for the comment in the log), or None.
    refused: str | None
    size: int


def scan(path: str, max_line_bytes: int, delimiter: str) -> Scan:
    """Read *path* once (never through a symlink) and judge it; see the module's list."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    quoted, refused, size = False, None, 0
    line_run = 0  # bytes since the last newline
    previous = b""
    with fs.open_read(path, shared=True) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if refused is not None:
                continue
            refused = _refusal(chunk, previous, decoder, max_line_bytes, line_run)
            quoted = quoted or b'"' in chunk
            last = chunk.rfind(b"\n")
            line_run = line_run + len(chunk) if last < 0 else len(chunk) - last - 1
            previous = chunk[-1:]
        if refused is None and previous == b"\r":
            refused = "a carriage return ends the file"
        if refused is None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                refused = "not UTF-8"
    if refused is None and quoted:
        refused = _quote_problem(path, delimiter)
    return Scan(digest.hexdigest(), quoted, refused, size)


def _refusal(chunk: bytes, previous: bytes, decoder: codecs.IncrementalDecoder,
             max_line_bytes: int, line_run: int) -> str | None:
    # ASCII needs no decoding, unless a character began in the chunk before.
    if not (chunk.isascii() and decoder.getstate()[0] == b""):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError:
            return "not UTF-8"
    if b"\x00" in chunk:
        return "a NUL byte"
    if b"\r" in chunk or previous == b"\r":
        # A CR at the chunk's end is judged with the next chunk's first byte.
        pairs = chunk.count(b"\r\n") + (previous == b"\r" and chunk.startswith(b"\n"))
        alone = chunk.count(b"\r") + (previous == b"\r") - pairs - chunk.endswith(b"\r")
        if alone > 0:
            return "a carriage return inside a line"
    first = chunk.find(b"\n")
    if line_run + (len(chunk) if first < 0 else first + 1) > max_line_bytes:
        return "a line longer than max_line_bytes"
    if max_line_bytes < len(chunk) and max(map(len, chunk.split(b"\n"))) + 1 > max_line_bytes:
        return "a line longer than max_line_bytes"
    return None


def _quote_problem(path: str, delimiter: str) -> str | None:
    """Why the csv module (strict) refuses the quoting of *path*, or None."""
    with fs.open_read(path, shared=True) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        try:
            collections.deque(csv.reader(text, strict=True, delimiter=delimiter), maxlen=0)
        except csv.Error:
            return "a quote the csv module refuses"
    return None
