"""What the service says: lines for whoever started it, warnings for the log, its exit status.

One :class:`Voice` is shared by the loop (:mod:`datacenter.service.service`)
and the intake (:mod:`datacenter.service.intake`): both tell, and either
may decide that the run failed.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TextIO

from datacenter.importing.importer import Importer
from datacenter.storage.logs import printable


class Voice:
    """Lines on stdout and stderr, warnings in the storage's log, and the exit status."""

    def __init__(self, importer: Importer, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.importer, self.out, self.err = importer, out, err
        #: 0, or 1 when the service could not go on (its storage moved into another
        #: service's hands) or, under --once, a file was rejected as a whole. A
        #: rejection never fails a watching service: stopping it cleanly is no failure.
        self.exit_code = 0

    def say(self, line: str, error: bool = False) -> None:
        stream = (self.err or sys.stderr) if error else (self.out or sys.stdout)
        with contextlib.suppress(OSError, ValueError):  # a closed pipe must not stop imports
            print(printable(line), file=stream, flush=True)

    def warn(self, message: str) -> None:
        self.importer.log(f"service: {message}", level=logging.WARNING)
