"""Setting aside committed intents that can never be applied.

A committed intent that can *never* be applied (a step fails for a reason
that trying again cannot change: a name too long or not valid on the
destination's filesystem, a folder where a file should go) is *set aside*
rather than stopping every later opening of the storage: it moves to
``.datacenter/journal/failed/<id>.json`` with ``<id>.why`` beside it (the
step that failed and why), its staging folder is kept, and recovery goes
on with the other intents. The steps before the failing one have been
applied, those after it have not; a person decides (see :func:`listing`).
A passing failure (a full disk, an I/O error, a permission) is not set
aside: recovery keeps trying it, since the next attempt may succeed. Nor
is a relocation's intent: setting a half-done move aside would split the
storage between two roots.

The journal (:mod:`datacenter.storage.journal`) decides when an intent is
set aside; this module keeps the folder of those set aside: putting one
there, listing them, and the inputs they hold.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from datacenter.errors import DataCenterError
from datacenter.storage import fs
from datacenter.storage.steps import Cleanup, JournalError, Step

#: Where intents that cannot be applied are set aside, in the journal's folder.
FAILED = "failed"
#: Errors a step cannot get past by trying again: the name cannot exist there.
CANNOT_APPLY = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL, errno.ELOOP,
                          errno.ENOTDIR, errno.EISDIR})


class CannotApplyError(DataCenterError, OSError):
    """A step of a committed group failed for a reason that trying again cannot change.

    ``step`` is its index in the group; the OSError's errno, reason and file are
    those of the failure.
    """

    def __init__(self, step: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror or str(error), error.filename)
        self.step = step
        if error.filename2 is not None:
            self.filename2 = error.filename2


def _cannot_apply_reason(error: CannotApplyError) -> str:
    """The failure in words, naming the destination too: for a rename the first
    file is only the staged one, the second the name that could not be made."""
    if not error.filename:
        return str(error)
    files = str(error.filename)
    if error.filename2 is not None:
        files += f" -> {error.filename2}"
    return f"{files}: {error.strerror}"


class SetAsideError(JournalError):
    """A committed group could not be applied, and was set aside for a person."""


@dataclass(frozen=True)
class SetAside:
    """An intent set aside: where it is, the step that failed (its index) and why."""

    id: str
    path: str
    step: int
    reason: str


def put_aside(failed_dir: str, intent: str, group_id: str, steps: int,
              error: CannotApplyError) -> tuple[str, str]:
    """Move committed intent *intent* (of *steps* steps) out of recovery's way.

    The note (why) is written first, then the intent renamed beside it:
    a crash in between leaves the intent in place, recovery meets the
    same failure again and sets it aside again. Returns the reason and the
    path the intent has now.
    """
    reason = _cannot_apply_reason(error)
    fs.makedirs(failed_dir)
    why = {"step": error.step, "steps": steps, "reason": reason}
    fs.atomic_write(os.path.join(failed_dir, f"{group_id}.why"),
                    json.dumps(why, ensure_ascii=False).encode("utf-8"))
    path = os.path.join(failed_dir, f"{group_id}.json")
    fs.replace(intent, path)
    return reason, path


def listing(failed_dir: str) -> list[SetAside]:
    """The intents set aside in *failed_dir*, oldest first.

    For a person: the steps before ``step`` were applied, ``step`` and
    those after it were not; the staged bytes they name are still in
    ``.datacenter/staging/<id>/``. Once the cause is removed, moving the
    intent back into the journal's folder applies it again (every step
    may be applied again); deleting it (and its ``.why``) gives it up.
    """
    try:
        names = sorted(os.listdir(failed_dir))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if not name.endswith(".json"):
            continue
        group_id = name[:-5]
        try:
            with open(os.path.join(failed_dir, f"{group_id}.why"), "rb") as handle:
                why = json.load(handle)
            step, reason = int(why["step"]), str(why["reason"])
        except (OSError, ValueError, KeyError, TypeError):
            step, reason = 0, "unknown (no readable .why note)"
        found.append(SetAside(group_id, os.path.join(failed_dir, name), step, reason))
    return found


def held_inputs(entries: Iterable[SetAside],
                steps_of: Callable[[str], Sequence[Step]]) -> dict[str, SetAside]:
    """Files that the set-aside intents *entries* hold: they must not be planned anew.

    A group's part for one input ends with the Cleanup step that consumes
    it. The part whose step failed may be half applied, so its inputs
    (the files of the first Cleanup at or after the failed step) are
    held: planning them again could apply the applied half twice. The
    parts after it were not applied at all, and the parts before it
    consumed their inputs; neither is held. *steps_of* reads the steps of
    an intent file (OSError or ValueError: it is skipped).
    """
    held: dict[str, SetAside] = {}
    for entry in entries:
        try:
            steps = steps_of(entry.path)
        except (OSError, ValueError):
            continue
        for step in steps[entry.step:]:
            if isinstance(step, Cleanup):
                held.update(dict.fromkeys(step.files, entry))
                break
    return held


def sweep_notes(failed_dir: str) -> None:
    """Remove notes a crash cut short (temporary names) from *failed_dir*."""
    try:
        for name in os.listdir(failed_dir):
            if name.startswith(fs.TEMP_PREFIX):
                fs.unlink(os.path.join(failed_dir, name))
    except FileNotFoundError:
        pass
