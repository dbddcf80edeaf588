"""Commands on the storage: ``status``, ``ls``, ``move-storage``, ``logs``, ``recover``.

``status``, ``ls`` and ``logs`` only look: they read through a
:class:`~datacenter.storage.view.StorageView` and the ledger read-only, so
they work on a read-only storage and never recover or rewrite anything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import Any

from datacenter.cli.common import (
    open_storage,
    open_view,
    point_config_at,
    record_store,
    settings,
)
from datacenter.cli.registry import (
    CommandError,
    command,
    emit,
    emit_each,
    natural,
    say,
)
from datacenter.cli.serve import describe_status
from datacenter.importing import Importer, resolve_processors
from datacenter.records.backend import exists, open_store, read_ledger
from datacenter.service import cluster, service_running, service_status
from datacenter.service.report import status_report, timestamp
from datacenter.storage import FOLDERS, DataCenter, DataCenterFile, creation, layout
from datacenter.storage.logs import printable

#: How many of the last imports ``status`` shows unless told.
LAST_IMPORTS = 10


def _status_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--limit", type=natural, default=LAST_IMPORTS, metavar="N",
                        help=f"show the last N imports (default: {LAST_IMPORTS})")
    parser.add_argument("--offset", type=natural, default=0, metavar="N",
                        help="skip the N newest imports (default: 0)")


@command("status", "counts, last operations, interrupted work (reads only)", _status_options)
def _status(args: argparse.Namespace) -> int:
    conf = settings(args)
    view = open_view(args, conf)  # writes nothing: not even on a read-only storage
    record_store(conf)
    served = service_status(view.storage, conf.database, conf.cluster.lease)
    report = status_report(conf, view, args.limit, args.offset, served)
    if args.json:
        emit(report)
        return 0
    say(f"storage: {view.storage}")
    for folder, count in report["files"].items():
        shown = "unknown (no service has looked at the root's files)" if count is None \
            else f"{count:>6} file(s)"
        say(f"  {folder:<11} {shown}")
    say(_interrupted(report["interrupted_operations"], report["unfiled_imports"]))
    waiting = report["needs_a_person"]
    if waiting:
        say(f"needs a person: {len(waiting)}")
    for line in waiting:
        say(f"  {printable(line)}")
    not_importable = report["not_importable"]
    if not_importable:
        say(f"not importable: {len(not_importable)} file(s) at the root")
    for item in not_importable:
        say(f"  {printable(item['name'])}: {item['reason']}")
    if report["instances"]:
        for line in _describe_instances(report["instances"]):
            say(line)
    else:
        for line in describe_status(served):
            say(line)
    ledger = read_ledger(conf.database, args.limit, args.offset, view.storage)
    if ledger.last:
        say("last imports:")
    for job in ledger.last:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.finished))
        say(f"  {when}  {job.source}  {job.processor}/{job.mode}  {job.rows} rows: "
            f"{job.ok} ok, {job.failed} failed  ({job.user})")
    return 0


def _describe_instances(instances: list[dict[str, Any]]) -> list[str]:
    """The instances serving (or importing into) the storage: one line each."""
    alive = sum(1 for i in instances if i["alive"])
    lines = [f"instances: {alive} alive" + (f", {len(instances) - alive} silent past their "
                                             "lease (their files are taken over)"
                                             if alive < len(instances) else "")]
    for i in instances:
        beat = time.strftime("%H:%M:%S", time.localtime(i["heartbeat"]))
        hand = f"; in hand: {printable(i['in_hand'])}" if i["in_hand"] else ""
        state = "" if i["alive"] else " (silent)"
        lines.append(f"  {i['id']}  {i['kind']}  {printable(i['host'])}  process {i['pid']}  "
                     f"last heartbeat {beat}{state}{hand}")
    return lines


def _interrupted(intents: int, unfiled: int) -> str:
    """Interrupted work is counted, not recovered: looking must not change anything."""
    line = f"interrupted operations: {intents + unfiled}"
    if intents or unfiled:
        line += (f" ({intents} unfinished change(s), {unfiled} import(s) not filed away; "
                 "`datacenter recover` finishes them)")
    return line


def _ls_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", default="pending", choices=FOLDERS,
                        help="the folder to list (default: pending, the root's CSV files)")
    parser.add_argument("--sort", choices=("name", "date"), default="name",
                        help="by name, or newest first")
    parser.add_argument("--limit", type=natural, default=0, metavar="N",
                        help="at most N files (default: 0, all of them)")
    parser.add_argument("--offset", type=natural, default=0, metavar="N",
                        help="skip the first N files in that order (default: 0)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@command("ls", "list the files of a folder (reads only)", _ls_options)
def _ls(args: argparse.Namespace) -> int:
    # Streamed: each file is printed as the page yields it (memory: the page, not the folder).
    files = open_view(args).iter_files(args.folder, args.sort, args.offset, args.limit or None)
    if args.json:
        emit_each(_file_json(f) for f in files)
        return 0
    for f in files:
        say(f"{f.getDate()}  {f.getSize():>12}  {f.name}")
    return 0


def _file_json(file: DataCenterFile) -> dict[str, object]:
    """A file for ``ls --json``: its time in ISO 8601 with its zone, like every --json time."""
    data = file.as_dict()
    data.pop("timestamp", None)
    data["date"] = timestamp(file.getTimeStamp())
    return data


def _move_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the new storage folder (must exist)")
    parser.add_argument("--move", action="store_true", help="move the contents along")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files of the same name in the target")


@command("move-storage", "use another folder as the storage", _move_options)
def _move_storage(args: argparse.Namespace) -> int:
    conf = settings(args)
    creation.require(conf.storage)
    holder = service_running(conf.storage)
    if holder is not None:
        raise CommandError(f"{conf.storage} is being served by {holder} (datacenter serve); "
                           "stop it first")
    running = cluster.running(conf, conf.storage)
    if running:
        named = ", ".join(f"{i.id} ({i.kind} on {i.host}, process {i.pid})" for i in running)
        raise CommandError(f"{conf.storage} is being worked on by {len(running)} instance(s): "
                           f"{named}; stop them first")
    dc = DataCenter(conf.storage) if args.move else open_storage(args, conf)
    if dc.storage != conf.storage:
        # Moved while this command waited for the storage (or by a move a crash
        # interrupted): this one is not made; the config learns where it went.
        if conf.path and not args.storage:
            point_config_at(conf.path, dc.storage)
        raise CommandError(f"the storage {conf.storage} has moved to {dc.storage} meanwhile; "
                           "nothing moved")
    not_moved = dc.setStoragePath(args.path, move=args.move, overwrite=args.overwrite)
    for name in not_moved:
        say(f"not moved (exists in the target): {name}")
    print(f"storage is now {dc.storage}")
    _ledger_follows(conf.database, conf.storage, dc.storage)
    if conf.path and not args.storage:
        point_config_at(conf.path, dc.storage)
        print(f"updated {conf.path}")
    return 0


def _ledger_follows(database: str, old: str, new: str) -> None:
    """The imports recorded for the storage at *old* show in *new*'s status from now on."""
    if old != new and exists(database):
        with contextlib.closing(open_store(database, {})) as store:
            store.relabel_storage(old, new)


def _logs_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("basename", nargs="?", default=layout.LOG_NAME,
                        help=f"the log to read (default: {layout.LOG_NAME})")
    parser.add_argument("--query", metavar="RE", help="regular expression lines must match")
    parser.add_argument("--limit", type=natural, default=0, metavar="N",
                        help="at most N lines (default: all)")
    parser.add_argument("--start", type=natural, default=0, metavar="N",
                        help="skip the first N matching lines")


@command("logs", "search a log and its rotations (reads only)", _logs_options)
def _logs(args: argparse.Namespace) -> int:
    view = open_view(args)

    def skipped(path: str, reason: str) -> None:
        print(f"datacenter: skipped {printable(path)}: {reason}", file=sys.stderr)

    for line in view.queryLogfiles(args.basename, args.query, args.limit, args.start, skipped):
        say(line)
    return 0


@command("recover", "finish or roll back interrupted work")
def _recover(args: argparse.Namespace) -> int:
    conf = settings(args)
    processors = resolve_processors(conf)  # all of them, before the storage is touched
    dc = open_storage(args, conf)  # opening finishes interrupted operations
    rolled, imports = dc.recovered, 0
    if os.path.exists(record_store(conf)):
        importer = Importer(conf, dc, processors)  # opening files committed imports away
        imports = importer.recovered
        importer.close()
    print(f"recovered: {rolled} interrupted operation(s) finished, "
          f"{imports} committed import(s) filed away")
    return 0
