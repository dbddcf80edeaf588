"""Removing a record in an import: what goes with it, each backed up before it goes.

A remove row's record takes with it what its processor's ``on_remove``
says (:mod:`.references` finds that, removing nothing); every record
removed is first written to a backup in the job folder (``deleted.csv``,
or ``deleted.<processor>.csv`` for a cascade's; ``graduated`` by its own
processor's rule), which the filing later joins to ``deleted/`` or
``graduated/``.
"""

from __future__ import annotations

from datacenter.importing.outputs import Outputs, backup_name
from datacenter.importing.references import plan_removal
from datacenter.records.backend import Store
from datacenter.records.schema import ProcessorSchema


def back_up_removal(store: Store, schema: ProcessorSchema, entry: dict[str, object],
                    outputs: Outputs, owner: str) -> str | None:
    """Back *entry* up with what its removal takes along, and remove those; or the refusal.

    *entry* itself is backed up first but left in the store: the caller
    removes it (Kofa's ``delEntry``). *owner* is the importing processor,
    whose job folder names the backups. Returns None, or the reason the
    removal is refused (nothing then written or removed).
    """
    doomed = plan_removal(store, schema, entry)
    if isinstance(doomed, str):
        return doomed
    for n, (record_schema, record) in enumerate(doomed):  # the record itself first
        kind = "graduated" if record_schema.is_graduated(record) else "deleted"
        outputs.writer(backup_name(kind, record_schema.name, owner), list(record_schema.fields)
                       ).writerow(list(record_schema.format_record(record).values()))
        if n:
            store.delete(record_schema, store.key_of(record_schema, record))
    return None
