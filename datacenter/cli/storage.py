"""Commands on the storage: ``status``, ``ls``, ``move-storage``, ``logs``, ``recover``."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from datacenter.cli.common import open_storage, point_config_at, settings
from datacenter.cli.registry import CommandError, command, emit, natural
from datacenter.cli.serve import describe_status
from datacenter.importing import Importer, resolve_processors
from datacenter.records import Job, RecordStore
from datacenter.service import service_running, service_status
from datacenter.storage import FOLDERS, DataCenter, layout


def _status_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@command("status", "counts, last operations, interrupted work", _status_options)
def _status(args: argparse.Namespace) -> int:
    conf = settings(args)
    dc = open_storage(args, conf)
    counts = {folder: len(dc.list_files(folder)) for folder in FOLDERS}
    jobs: list[Job] = []
    unfiled = 0
    if os.path.exists(conf.database):
        store = RecordStore(conf.database, {})
        jobs = store.jobs(limit=10)
        unfiled = len(store.jobs(undistributed=True))
        store.close()
    served = service_status(dc.storage)
    waiting = dc.needs_a_person()
    held = sum(1 for line in waiting if line.startswith(os.path.join(layout.STATE, layout.JOBS)))
    report: dict[str, Any] = {
        "storage": dc.storage,
        "database": conf.database,
        "files": counts,
        "finished_files": len(dc.getFinishedFiles()),
        "interrupted": len(dc.journal.pending_intents()) + max(unfiled - held, 0),
        "needs_a_person": waiting,
        "last_imports": [_job_dict(job) for job in jobs],
        "service": served,
    }
    if args.json:
        emit(report)
        return 0
    print(f"storage: {dc.storage}")
    for folder, count in counts.items():
        print(f"  {folder:<11} {count:>6} file(s)")
    print(f"interrupted operations: {report['interrupted']}")
    if waiting:
        print(f"needs a person: {len(waiting)}")
    for line in waiting:
        print(f"  {line}")
    for line in describe_status(served):
        print(line)
    if jobs:
        print("last imports:")
    for job in jobs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.finished))
        print(f"  {when}  {job.source}  {job.processor}/{job.mode}  {job.rows} rows: "
              f"{job.ok} ok, {job.failed} failed  ({job.user})")
    return 0


def _job_dict(job: Job) -> dict[str, Any]:
    return {"id": job.id, "source": job.source, "processor": job.processor, "mode": job.mode,
            "user": job.user, "rows": job.rows, "ok": job.ok, "failed": job.failed,
            "outcome": job.outcome, "finished": job.finished, "sha256": job.sha256}


def _ls_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", default="pending", choices=FOLDERS,
                        help="the folder to list (default: pending, the root's CSV files)")
    parser.add_argument("--sort", choices=("name", "date"), default="name",
                        help="by name, or newest first")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@command("ls", "list the files of a folder", _ls_options)
def _ls(args: argparse.Namespace) -> int:
    files = open_storage(args).list_files(args.folder, args.sort)
    if args.json:
        emit([f.as_dict() for f in files])
        return 0
    for f in files:
        print(f"{f.getDate()}  {f.getSize():>12}  {f.name}")
    return 0


def _move_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the new storage folder (must exist)")
    parser.add_argument("--move", action="store_true", help="move the contents along")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files of the same name in the target")


@command("move-storage", "use another folder as the storage", _move_options)
def _move_storage(args: argparse.Namespace) -> int:
    conf = settings(args)
    holder = service_running(conf.storage)
    if holder is not None:
        raise CommandError(f"{conf.storage} is being served by {holder} (datacenter serve); "
                           "stop it first")
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
        print(f"not moved (exists in the target): {name}")
    print(f"storage is now {dc.storage}")
    if conf.path and not args.storage:
        point_config_at(conf.path, dc.storage)
        print(f"updated {conf.path}")
    return 0


def _logs_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("basename", nargs="?", default=layout.LOG_NAME,
                        help=f"the log to read (default: {layout.LOG_NAME})")
    parser.add_argument("--query", metavar="RE", help="regular expression lines must match")
    parser.add_argument("--limit", type=natural, default=0, metavar="N",
                        help="at most N lines (default: all)")
    parser.add_argument("--start", type=natural, default=0, metavar="N",
                        help="skip the first N matching lines")


@command("logs", "search a log and its rotations", _logs_options)
def _logs(args: argparse.Namespace) -> int:
    dc = open_storage(args)
    for line in dc.queryLogfiles(args.basename, args.query, args.limit, args.start):
        print(line)
    return 0


@command("recover", "finish or roll back interrupted work")
def _recover(args: argparse.Namespace) -> int:
    conf = settings(args)
    processors = resolve_processors(conf)  # all of them, before the storage is touched
    dc = open_storage(args, conf)  # opening finishes interrupted operations
    rolled, imports = dc.recovered, 0
    if os.path.exists(conf.database):
        importer = Importer(conf, dc, processors)  # opening files committed imports away
        imports = importer.recovered
        importer.close()
    print(f"recovered: {rolled} interrupted operation(s) finished, "
          f"{imports} committed import(s) filed away")
    return 0
