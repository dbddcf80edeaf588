"""The importing wing: CSV in, rows through a processor, exactly once into the store.

:class:`Importer` is the pipeline (one commit point per import, recovery on
opening); :class:`BatchProcessor` keeps Kofa's per-row API; processors come
from the config and from installed packages (:mod:`.plugins`) and files
find theirs by name (:mod:`.routing`).
"""

from datacenter.importing.csvinput import CSVSource, FatalCSVError, naming
from datacenter.importing.importer import Importer, Outcome, Request, UnfiledError
from datacenter.importing.outputs import ImportResult
from datacenter.importing.plugins import (
    Processors,
    check_config,
    resolve_processors,
    schema_of,
)
from datacenter.importing.processors import BatchProcessor
from datacenter.importing.routing import Router, UnroutedError

__all__ = ["BatchProcessor", "CSVSource", "FatalCSVError", "ImportResult", "Importer",
           "Outcome", "Processors", "Request", "Router", "UnfiledError", "UnroutedError",
           "check_config", "naming", "resolve_processors", "schema_of"]
