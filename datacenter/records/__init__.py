"""The records wing: field types, processor schemas, and the record store (all SQL)."""

from datacenter.records.fieldtypes import FieldType, field_type
from datacenter.records.schema import (
    ERRORS_COLUMN,
    IGNORE_COLUMN,
    MODES,
    ProcessorSchema,
    SchemaError,
    load_processors,
)
from datacenter.records.store import Job, RecordStore

__all__ = ["ERRORS_COLUMN", "IGNORE_COLUMN", "MODES", "FieldType", "Job", "ProcessorSchema",
           "RecordStore", "SchemaError", "field_type", "load_processors"]
