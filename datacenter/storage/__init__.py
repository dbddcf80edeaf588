"""The storage wing: the folder, the one module that changes the disk, the journal.

Nothing here knows of records, imports or the service. Kofa's facade is
:class:`DataCenter`; every change to the disk goes through :mod:`.fs`;
changes that touch several files are journal groups (:mod:`.journal`,
:mod:`.steps`).
"""

from datacenter.storage import fs, layout
from datacenter.storage.center import FOLDERS, DataCenter
from datacenter.storage.files import DataCenterFile, LogFile
from datacenter.storage.interfaces import IDataCenter
from datacenter.storage.journal import JournalError, UnfinishedError
from datacenter.storage.lock import LockHeldError, StorageLock
from datacenter.storage.relocation import (
    RelocationRefusedError,
    StorageMovedError,
    StorageServedError,
)

__all__ = ["FOLDERS", "DataCenter", "DataCenterFile", "IDataCenter", "JournalError",
           "LockHeldError", "LogFile", "RelocationRefusedError", "StorageLock",
           "StorageMovedError", "StorageServedError", "UnfinishedError", "fs", "layout"]
