"""Sorting a folder's entries in bounded memory: a page by a heap, a whole listing by runs.

A folder of a million files must be listed without a million objects: a
``DataCenterFile`` (or even a ``DirEntry``) per file costs about a
kilobyte, a gigabyte in all. What is sorted here is a key and a name per
entry, and never all of them as objects at once:

* a page (*offset* + *limit* entries, up to :data:`HEAP`) is the smallest
  entries of a bounded heap (``heapq.nsmallest``), whatever the folder holds;
* anything longer is sorted in runs of :data:`RUN` entries, each packed as
  it is sorted (the keys in an ``array``, the names in one ``bytes`` joined
  by NUL, which no file name holds: about the name's length per entry),
  and the runs are merged lazily, one entry at a time.
"""

from __future__ import annotations

import heapq
import itertools
from array import array
from collections.abc import Iterable, Iterator

#: Entries sorted and packed together (about 2 MB of objects while a run is sorted).
RUN = 1 << 14
#: The largest page (*offset* + *limit*) taken by a heap rather than from runs.
HEAP = 1 << 16
#: A key and a name: entries are ordered by the key, then by the name.
Entry = tuple[float, str]
_SEP = b"\0"


def sorted_entries(items: Iterable[Entry], offset: int = 0,
                   limit: int | None = None) -> Iterator[Entry]:
    """*items* in order, from number *offset*, at most *limit* (None: all)."""
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError("offset and limit must not be negative")
    if limit is not None and offset + limit <= HEAP:
        return iter(heapq.nsmallest(offset + limit, items)[offset:])
    stop = None if limit is None else offset + limit
    return itertools.islice(_merged(items), offset, stop)


def _merged(items: Iterable[Entry]) -> Iterator[Entry]:
    runs: list[tuple[array[float] | float, bytes]] = []
    chunk: list[Entry] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= RUN:
            runs.append(_pack(chunk))
            chunk = []
    if not runs:
        chunk.sort()
        yield from chunk
        return
    if chunk:
        runs.append(_pack(chunk))
    del chunk
    yield from heapq.merge(*(_unpack(keys, names) for keys, names in runs))


def _pack(chunk: list[Entry]) -> tuple[array[float] | float, bytes]:
    """A sorted run: its keys (one key when they are all the same: sorted by name), its names."""
    chunk.sort()
    same = chunk[0][0] == chunk[-1][0]
    keys = chunk[0][0] if same else array("d", (key for key, _ in chunk))
    names = _SEP.join(name.encode("utf-8", "surrogateescape") for _, name in chunk)
    return keys, names


def _unpack(keys: array[float] | float, names: bytes) -> Iterator[Entry]:
    start, end = 0, len(names)
    each = itertools.repeat(keys) if isinstance(keys, float) else iter(keys)
    for key in each:
        if start > end:
            return
        stop = names.find(_SEP, start)
        if stop < 0:
            stop = end
        yield key, names[start:stop].decode("utf-8", "surrogateescape")
        start = stop + 1
