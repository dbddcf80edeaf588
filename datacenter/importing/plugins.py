"""Which processors exist: the config's, and those that installed packages add.

An entry point of the group ``datacenter.processors`` names either a
:class:`~datacenter.records.ProcessorSchema` or a
:class:`~datacenter.importing.processors.BatchProcessor` subclass with a
``schema`` attribute. They are resolved once, when the importer (or a
command) opens, and kept in a :class:`Processors` registry.

:func:`check_config` is what every command runs on the config before it
touches the disk: the processors and the routes to them.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from datacenter.config import Config
from datacenter.errors import DataCenterError
from datacenter.importing.processors import BatchProcessor
from datacenter.importing.routing import Router
from datacenter.records import ProcessorSchema, SchemaError, load_processors

ENTRY_POINT_GROUP = "datacenter.processors"
Definition = ProcessorSchema | type[BatchProcessor]


class UnknownProcessorError(DataCenterError, ValueError):
    """No processor of that name."""


@dataclass(frozen=True)
class Processors:
    """The processors, by name: a schema each, and the class that imports its rows."""

    definitions: Mapping[str, Definition]

    @property
    def schemas(self) -> dict[str, ProcessorSchema]:
        return {name: schema_of(d) for name, d in self.definitions.items()}

    def __contains__(self, name: object) -> bool:
        return name in self.definitions

    def names(self) -> list[str]:
        return sorted(self.definitions)

    def processor_class(self, name: str) -> type[BatchProcessor]:
        """The class importing *name*'s rows; UnknownProcessorError for another name."""
        if name not in self.definitions:
            known = ", ".join(self.names()) or "none"
            raise UnknownProcessorError(f"unknown processor {name!r} (known: {known})")
        definition = self.definitions[name]
        return BatchProcessor if isinstance(definition, ProcessorSchema) else definition


def resolve_processors(conf: Config) -> Processors:
    """The config's processors, then those of installed packages; SchemaError if wrong."""
    found: dict[str, Definition] = dict(load_processors(conf.processors, conf.name))
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        target = entry.load()
        schema = target if isinstance(target, ProcessorSchema) else getattr(target, "schema", None)
        if not isinstance(schema, ProcessorSchema):
            raise SchemaError(f"entry point {entry.name} ({entry.value}): neither a "
                              "ProcessorSchema nor a BatchProcessor with a schema")
        if schema.name in found:
            raise SchemaError(f"entry point {entry.name}: processor {schema.name!r} is "
                              "defined twice")
        found[schema.name] = cast(Definition, target)
    return Processors(found)


def check_config(conf: Config) -> None:
    """Refuse *conf* if a processor or a route is wrong (SchemaError, ConfigError).

    What :func:`datacenter.config.load` cannot know alone: the
    ``[processors.*]`` tables are parsed, and every ``[[routes]]`` entry must
    name a processor that exists. Installed packages' processors are looked
    up only when a route names one the config does not define, so commands
    that need no processor stay quick; the importer resolves them all anyway.
    """
    defined = load_processors(conf.processors, conf.name)
    if any(route.processor not in defined for route in conf.routes):
        Router(conf.routes, resolve_processors(conf).names())


def schema_of(definition: Any) -> ProcessorSchema:
    return definition if isinstance(definition, ProcessorSchema) else definition.schema
