"""Referential integrity of removals: the records that name a removed record as parent.

A processor's ``parents`` table makes some of its fields name records of
another processor (a department's ``faculty_code`` names a faculty). What
removing such a parent does is the parent's ``on_remove``:

``refuse`` (the default)
    the row fails, and stays pending: ``still referenced by 3 departments``;
``cascade``
    the records naming it are removed with it, in the same transaction, and
    backed up like every removed record (``deleted/<processor>.csv``, or
    ``graduated/`` by their own processor's rule); their own children
    follow their processor's ``on_remove`` in turn;
``keep``
    nothing happens to them: they go on naming a parent that is gone.

:func:`plan_removal` finds everything first and removes nothing, so a
refusal deep down a cascade leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from datacenter.records.backend import Store
from datacenter.records.schema import ProcessorSchema
from datacenter.records.store import to_db


@dataclass(frozen=True)
class Reference:
    """Records of ``child`` name a parent's key in their field ``field``."""

    child: ProcessorSchema
    field: str


def references_to(schemas: Mapping[str, ProcessorSchema], parent: str) -> list[Reference]:
    """Every field of every processor that names records of *parent*."""
    return [Reference(schema, name) for schema in schemas.values()
            for name, target in schema.parents.items() if target == parent]


#: One record to remove: its processor and its typed values.
Doomed = tuple[ProcessorSchema, dict[str, object]]


class _RefusedError(Exception):
    """A removal must not happen; the message is the row's reason."""


def plan_removal(store: Store, schema: ProcessorSchema,
                 entry: dict[str, object]) -> list[Doomed] | str:
    """The records that removing *entry* removes (itself first), or why it must not be."""
    doomed: list[Doomed] = []
    try:
        _collect(store, schema, entry, doomed, set(), None)
    except _RefusedError as refused:
        return str(refused)
    return doomed


def _collect(store: Store, schema: ProcessorSchema, entry: dict[str, object],
             doomed: list[Doomed], seen: set[tuple[str, tuple[object, ...]]],
             via: str | None) -> None:
    mark = (schema.name, store.key_of(schema, entry))
    if mark in seen:
        return  # a cycle of parents, or a record reached twice
    seen.add(mark)
    doomed.append((schema, entry))
    if schema.on_remove == "keep" or len(schema.key) != 1:
        return  # keep; or a key of several fields, which no parent field can name
    value = to_db(schema.fields[schema.key[0]], entry[schema.key[0]])
    counts: list[str] = []
    for ref in references_to(store.schemas, schema.name):
        if schema.on_remove == "refuse":
            count = store.count_referencing(ref.child, ref.field, value)
            if count:
                counts.append(f"{count} {ref.child.name}")
            continue
        for child in store.referencing(ref.child, ref.field, value):
            _collect(store, ref.child, child, doomed, seen, via or _shown(schema, entry))
    if counts:
        tail = f" (removed with {via})" if via else ""
        what = f"{schema.name} {_shown(schema, entry)}"
        raise _RefusedError(f"still referenced by {', '.join(counts)}" if via is None
                       else f"{what} is still referenced by {', '.join(counts)}{tail}")


def _shown(schema: ProcessorSchema, entry: Mapping[str, object]) -> str:
    return ",".join(str(entry[k]) for k in schema.key)
