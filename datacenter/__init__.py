"""datacenter: drop CSV files into a folder, import them exactly once, never lose one.

The public API keeps Kofa's names (``DataCenter.getPendingFiles``,
``distProcessedFiles``, ...) so that Kofa users' code carries over.
"""

from datacenter.storage.center import DataCenter
from datacenter.storage.files import DataCenterFile, LogFile
from datacenter.storage.interfaces import IDataCenter

__all__ = ["DataCenter", "DataCenterFile", "IDataCenter", "LogFile"]
__version__ = "0.1.0"
