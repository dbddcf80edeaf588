"""``IDataCenter``: what any data center offers, as a runtime-checkable Protocol.

Kofa used zope.interface; a ``typing.Protocol`` gives the same contract to
type checkers, and ``isinstance(obj, IDataCenter)`` checks it at run time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol, runtime_checkable

from datacenter.storage.files import DataCenterFile, LogFile


@runtime_checkable
class IDataCenter(Protocol):
    max_files: int

    @property
    def storage(self) -> str: ...

    @property
    def deleted_path(self) -> str: ...

    @property
    def graduated_path(self) -> str: ...

    def getPendingFiles(self, sort: str = "name") -> list[DataCenterFile]: ...  # noqa: N802

    def getFinishedFiles(self) -> list[DataCenterFile]: ...  # noqa: N802

    def getLogFiles(self, exclude_backups: bool = True) -> list[LogFile]: ...  # noqa: N802

    def queryLogfiles(  # noqa: N802
        self, basename: str, query: str | None = None, limit: int = 0, start: int = 0
    ) -> Iterator[str]: ...

    def setStoragePath(  # noqa: N802
        self, path: str | os.PathLike[str], move: bool = False, overwrite: bool = False
    ) -> list[str]: ...

    def distProcessedFiles(  # noqa: N802
        self,
        successful: bool,
        source_path: str,
        finished_file: str,
        pending_file: str | None,
        mode: str = "create",
        move_orig: bool = True,
    ) -> None: ...

    def backupRecords(  # noqa: N802
        self, processor: str, rows: Iterable[Mapping[str, object]], graduated: bool = False
    ) -> str: ...

    def subscribe(self, callback: Callable[[str, str], None]) -> None: ...
