"""The outside of ``datacenter serve``: its command line, and what others see of it.

* The command: options, signals (SIGTERM and a first Ctrl-C stop after the
  file in hand), exit codes (0 done; 1 when another service holds the
  storage, or with ``--once`` when a file was rejected as a whole).
* The state file ``.datacenter/service.json`` (queue, file in hand,
  unrouted, rejected and pending files with reasons, last imports), written
  by the service at most a few times a second, read by ``datacenter status``.
* Whether a service runs, which is never read from that file (a killed
  service cannot say it stopped) but from ``.datacenter/serve.lock``, which
  only a live process can hold.

The loop itself is :mod:`datacenter.service`, which re-exports the names
the cli needs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from datacenter import fs, layout
from datacenter.importer import Importer
from datacenter.lock import LockHeldError, StorageLock

if TYPE_CHECKING:
    from datacenter.service import Service

STATE_FILE = "service.json"
WRITE_INTERVAL = 0.25  # seconds: at most 4 writes a second, each one durable
KINDS = ("unrouted", "rejected", "pending")
_log = logging.getLogger(__name__)


class StateFile:
    """The state file of one storage, written at most every *interval* seconds."""

    def __init__(self, storage: str, interval: float = WRITE_INTERVAL) -> None:
        self.path = layout.state_path(storage, STATE_FILE)
        self.interval = interval
        #: A write was skipped: one is owed at :attr:`next_write`.
        self.dirty = False
        self.next_write = 0.0
        self._failing = False

    def write(self, state: Callable[[], dict[str, Any]], force: bool = False) -> None:
        """Write ``state()`` now, or at the end of the interval unless *force*."""
        if not force and time.monotonic() < self.next_write:
            self.dirty = True
            return
        self.dirty, self.next_write = False, time.monotonic() + self.interval
        data = json.dumps(state(), indent=1, ensure_ascii=False).encode("utf-8")
        try:
            fs.atomic_write(self.path, data)
            self._failing = False
        except OSError as error:
            if not self._failing:  # once per spell of trouble, not 4 times a second
                _log.warning("datacenter: cannot write %s: %s", self.path, error)
            self._failing = True

    def sweep(self) -> None:
        """Remove what a kill in the middle of a write left behind.

        Only the holder of the service lock writes in the state folder's
        top level, so a temporary file there is garbage of an earlier run.
        """
        with contextlib.suppress(OSError), os.scandir(os.path.dirname(self.path)) as found:
            for entry in found:
                if entry.name.startswith(fs.TEMP_PREFIX) and entry.name.endswith(".part"):
                    fs.unlink(entry.path, missing_ok=True)


def read_state(storage: str) -> dict[str, Any]:
    """The state the service last wrote for *storage*, or {}."""
    try:
        with open(layout.state_path(storage, STATE_FILE), "rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def service_running(storage: str) -> str | None:
    """``"process N"`` while a service holds *storage*, else None."""
    return StorageLock.holder(layout.state_path(os.path.abspath(storage), layout.SERVICE_LOCK))


def service_status(storage: str) -> dict[str, Any]:
    """The service's last state, with ``running`` and ``holder`` as of now."""
    data = read_state(storage)
    holder = service_running(storage)
    data.update(running=holder is not None, holder=holder)
    if holder is None and data.get("state") == "running":
        data["state"] = "gone without stopping (killed?)"
    return data


def describe_status(status: dict[str, Any]) -> list[str]:
    """Lines for ``datacenter status``, from :func:`service_status`."""
    state = f"running ({status['holder']})" if status.get("running") else \
        status.get("state", "never ran here")
    queue, in_hand = status.get("queue", {}).get("count", 0), status.get("in_hand")
    lines = [f"service: {state}" + (f", {queue} file(s) settling" if queue else "")
             + (f", importing {in_hand}" if in_hand else "")]
    for kind in KINDS:
        lines += [f"  {kind:<9} {note.get('reason')}" for note in status.get(kind, [])]
    for job in status.get("last_imports", [])[:5]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.get("at", 0)))
        lines.append(f"  imported  {when}  {job.get('source')}: {job.get('ok')} ok, "
                     f"{job.get('failed')} failed")
    return lines


# -- the command ---------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> None:
    """Add ``serve [--polling] [--once]`` to the ``datacenter`` command."""
    _add_options(subparsers.add_parser("serve", help="watch the storage, import what arrives"))


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--polling", action="store_true",
                        help="poll instead of inotify (NFS, SMB); also [watch] polling")
    parser.add_argument("--once", action="store_true",
                        help="import what is ready now and exit: 0 when every file was "
                             "handled, 1 when one was rejected as a whole")


def run(args: argparse.Namespace) -> int:
    from datacenter.cli import settings  # the cli imports this module...
    from datacenter.service import Service  # ...and that one this

    conf = settings(args)
    holder = service_running(conf.storage)
    if holder is not None:
        print(f"datacenter: error: {conf.storage} is served already by {holder}",
              file=sys.stderr)
        return 1
    importer = Importer(conf)  # opening it recovers what a kill interrupted
    try:
        service = Service(importer, conf.watch, polling=args.polling or conf.watch.polling,
                          once=args.once)
        with _signals(service):
            return service.drain() if args.once else service.serve()
    except LockHeldError as error:
        print(f"datacenter: error: {conf.storage} is served already: {error}", file=sys.stderr)
        return 1
    finally:
        importer.close()


@contextlib.contextmanager
def _signals(service: Service) -> Iterator[None]:
    """SIGTERM and a first Ctrl-C stop after the file in hand; a second Ctrl-C aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        service.stop(wake=False)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m datacenter.service [--storage DIR] [--config FILE] [--polling] [--once]``."""
    parser = argparse.ArgumentParser(prog="datacenter serve",
                                     description="Import each complete file dropped, once.")
    parser.add_argument("--storage", metavar="DIR", help="the storage folder")
    parser.add_argument("--config", metavar="FILE", help="config file")
    _add_options(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError, LockHeldError, sqlite3.Error) as error:
        print(f"datacenter: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("datacenter: interrupted", file=sys.stderr)
        return 130
