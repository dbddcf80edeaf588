"""Which files at the storage's root are waiting, and which the service left alone.

Every CSV file at the root is a pending file, but one the service rejected
as a whole or could not route waits for nobody: it stays until a person
changes it. Counting it as pending would show work that never happens.
Only the service knows which files those are; its state file lists them
with the identity each file had, and a verdict counts while the file is
still that file (a person's edit makes it a new candidate). Without a state
file no service has looked: the split is unknown, and said to be, not
guessed.

It only reads; ``datacenter status`` uses it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from datacenter.service.verdicts import REJECTED, UNROUTED
from datacenter.storage.identity import FileIdentity


@dataclass(frozen=True)
class RootFiles:
    """The root's CSV files, by what happens to them."""

    #: Waiting: to be imported, or pending files waiting for their parents or a fix.
    pending: int
    #: Left alone because they cannot be imported as they are; None: unknown.
    rejected: int | None
    #: Left alone because no processor claims them; None: unknown.
    unrouted: int | None


def census(storage: str, names: Iterable[str], state: Mapping[str, Any]) -> RootFiles:
    """Split the root files *names* of *storage* by the verdicts in the service's *state*.

    *state* is what :func:`~datacenter.service.state.service_status` read;
    without a ``state`` key no service ever wrote one here. Only the
    verdicts are looked at (one ``lstat`` each), never every file.
    """
    present = set(names)
    if "state" not in state:
        return RootFiles(len(present), None, None)
    left = {kind: _holding(storage, present, state.get(kind)) for kind in (REJECTED, UNROUTED)}
    return RootFiles(len(present) - sum(left.values()), left[REJECTED], left[UNROUTED])


def _holding(storage: str, present: set[str], entries: Any) -> int:
    """How many verdicts in *entries* are about a file of *present*, unchanged since."""
    count = 0
    for entry in entries if isinstance(entries, list) else []:
        try:
            name, ident = str(entry["name"]), FileIdentity.from_list(entry["ident"])
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # malformed: the service would not take it back either
        if name in present and FileIdentity.at(os.path.join(storage, name)) == ident:
            count += 1
    return count
