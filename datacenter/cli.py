"""The ``datacenter`` command: a thin layer over the library.

Exit codes: 0 done, 1 the operation failed (one line on stderr naming the
path and the reason), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from datacenter import chaos, export_command, fs, layout, service
from datacenter import config as configuration
from datacenter.center import FOLDERS, DataCenter
from datacenter.csvinput import FatalCSVError, naming
from datacenter.importer import (
    Importer,
    UnfiledError,
    UnroutedError,
    discover_processors,
    schema_of,
)
from datacenter.journal import UnfinishedError
from datacenter.lock import LockHeldError
from datacenter.schema import MODES, ProcessorSchema
from datacenter.store import Job, RecordStore

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


class CommandError(Exception):
    """A failure to report in one line, exit status 1."""


def command(name: str) -> Callable[[Command], Command]:
    def register(func: Command) -> Command:
        _COMMANDS[name] = func
        return func

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datacenter",
        description="Drop CSV files into a storage folder; import them exactly once.",
    )
    parser.add_argument("--storage", metavar="DIR",
                        help="the storage folder (overrides the config)")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./datacenter.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    status = sub.add_parser("status", help="counts, last operations, interrupted work")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    ls = sub.add_parser("ls", help="list the files of a folder")
    ls.add_argument("folder", nargs="?", default="pending", choices=FOLDERS)
    ls.add_argument("--sort", choices=("name", "date"), default="name")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    move = sub.add_parser("move-storage", help="use another folder as the storage")
    move.add_argument("path", help="the new storage folder (must exist)")
    move.add_argument("--move", action="store_true", help="move the contents along")
    move.add_argument("--overwrite", action="store_true",
                      help="replace files of the same name in the target")

    log = sub.add_parser("logs", help="search a log and its rotations")
    log.add_argument("basename", nargs="?", default=layout.LOG_NAME)
    log.add_argument("--query", metavar="RE", help="regular expression lines must match")
    log.add_argument("--limit", type=_natural, default=0, metavar="N")
    log.add_argument("--start", type=_natural, default=0, metavar="N")

    sub.add_parser("recover", help="finish or roll back interrupted work")

    imp = sub.add_parser("import", help="import one CSV file now")
    imp.add_argument("file", help="a CSV file (copied into the storage if it is elsewhere)")
    imp.add_argument("--processor", metavar="P", help="default: routed by the file name")
    imp.add_argument("--mode", choices=MODES, help="default: from the file name, else create")
    imp.add_argument("--user", metavar="U", help="who imports (for the log)")

    procs = sub.add_parser("processors", help="show processors, or a CSV template")
    procs.add_argument("name", nargs="?", metavar="NAME")
    procs.add_argument("--template", action="store_true",
                       help="print a header-only CSV for NAME")
    procs.add_argument("--json", action="store_true", help="machine-readable output")
    chaos.add_parser(sub)
    export_command.add_parser(sub)
    service.add_parser(sub)
    return parser


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (CommandError, ValueError, OSError, LockHeldError, sqlite3.Error) as exc:
        print(f"datacenter: error: {_describe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("datacenter: interrupted", file=sys.stderr)
        return 130


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def settings(args: argparse.Namespace) -> configuration.Config:
    conf = configuration.load(args.config)
    if args.storage:
        conf.storage = os.path.abspath(args.storage)
    return conf


def open_storage(args: argparse.Namespace, conf: configuration.Config | None = None
                 ) -> DataCenter:
    """The data center of the configured storage, following it if it moved.

    A storage moved while the config still names its old place (a move a
    crash interrupted) is found through the note it left; the config file
    is then updated, and the user told so.
    """
    conf = conf or settings(args)
    dc = DataCenter(conf.storage)
    if dc.storage != conf.storage:
        print(f"datacenter: the storage {conf.storage} has moved to {dc.storage}",
              file=sys.stderr)
        if conf.path and not args.storage:
            configuration.set_storage(conf.path, dc.storage)
            print(f"datacenter: updated {conf.path}", file=sys.stderr)
        conf.storage = dc.storage
    return dc


def open_importer(args: argparse.Namespace) -> Importer:
    conf = settings(args)
    return Importer(conf, open_storage(args, conf))


def emit(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# -- commands ----------------------------------------------------------------


@command("status")
def _status(args: argparse.Namespace) -> int:
    conf = settings(args)
    dc = open_storage(args, conf)
    counts = {folder: len(dc.list_files(folder)) for folder in FOLDERS}
    jobs: list[Job] = []
    if os.path.exists(conf.database):
        store = RecordStore(conf.database, {})
        jobs = store.jobs(limit=10)
        unfiled = len(store.jobs(undistributed=True))
        store.close()
    else:
        unfiled = 0
    served = service.service_status(dc.storage)
    report: dict[str, Any] = {
        "storage": dc.storage,
        "database": conf.database,
        "files": counts,
        "finished_files": len(dc.getFinishedFiles()),
        "interrupted": len(dc.journal.pending_intents()) + unfiled,
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
    for line in service.describe_status(served):
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


@command("ls")
def _ls(args: argparse.Namespace) -> int:
    files = open_storage(args).list_files(args.folder, args.sort)
    if args.json:
        emit([f.as_dict() for f in files])
        return 0
    for f in files:
        print(f"{f.getDate()}  {f.getSize():>12}  {f.name}")
    return 0


@command("move-storage")
def _move_storage(args: argparse.Namespace) -> int:
    conf = settings(args)
    holder = service.service_running(conf.storage)
    if holder is not None:
        raise CommandError(f"{conf.storage} is being served by {holder} (datacenter serve); "
                           "stop it first")
    dc = open_storage(args, conf)
    not_moved = dc.setStoragePath(args.path, move=args.move, overwrite=args.overwrite)
    for name in not_moved:
        print(f"not moved (exists in the target): {name}")
    print(f"storage is now {dc.storage}")
    if conf.path and not args.storage:
        configuration.set_storage(conf.path, dc.storage)
        print(f"updated {conf.path}")
    return 0


@command("logs")
def _logs(args: argparse.Namespace) -> int:
    dc = open_storage(args)
    for line in dc.queryLogfiles(args.basename, args.query, args.limit, args.start):
        print(line)
    return 0


@command("recover")
def _recover(args: argparse.Namespace) -> int:
    conf = settings(args)
    dc = open_storage(args, conf)  # opening finishes interrupted operations
    rolled, imports = dc.recovered, 0
    if os.path.exists(conf.database):
        imports = Importer(conf, dc).recovered  # opening files committed imports away
    print(f"recovered: {rolled} interrupted operation(s) finished, "
          f"{imports} committed import(s) filed away")
    return 0


@command("import")
def _import(args: argparse.Namespace) -> int:
    importer = open_importer(args)
    source = os.path.abspath(args.file)
    if not os.path.isfile(source):
        raise CommandError(f"{args.file}: no such file")
    target = os.path.join(importer.dc.storage, os.path.basename(source))
    copied = source != target
    if copied:
        with importer.dc.lock:  # opening a storage sweeps temporaries; not ours mid-copy
            if os.path.lexists(target):
                raise CommandError(f"{target}: a pending file of that name is waiting already; "
                                   "import that one, or rename yours")
            fs.copy_new(source, target)
    try:
        outcome = importer.import_file(target, args.processor, args.mode, args.user,
                                       progress=Progress(target).update)
    except Exception as error:
        # Nothing was imported, so our copy goes (the user's file is untouched);
        # unless the import committed and only its filing is unfinished.
        if copied and not isinstance(error, (UnfinishedError, UnfiledError)):
            fs.unlink(target, missing_ok=True)
        if isinstance(error, (FatalCSVError, UnroutedError)):
            raise CommandError(naming(error, source)) from None
        raise
    finally:
        Progress.clear()
    print(outcome.summary())
    return 3 if outcome.failed else 0


class Progress:
    """A progress line on a terminal; nothing in a pipe."""

    def __init__(self, path: str) -> None:
        self.size = max(os.path.getsize(path), 1)
        self.name = os.path.basename(path)
        self.shown = sys.stderr.isatty()

    def update(self, rows: int, position: int) -> None:
        if self.shown:
            percent = min(100, 100 * position // self.size)
            print(f"\rimporting {self.name}: {percent:3d}% ({rows:,} rows)", end="",
                  file=sys.stderr, flush=True)

    @staticmethod
    def clear() -> None:
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr, flush=True)


command("export")(export_command.run)
command("serve")(service.run)


@command("chaos")
def _chaos(args: argparse.Namespace) -> int:
    return chaos.run(args)


@command("processors")
def _processors(args: argparse.Namespace) -> int:
    conf = settings(args)
    schemas = {name: schema_of(d) for name, d in discover_processors(conf).items()}
    if args.name is not None and args.name not in schemas:
        known = ", ".join(sorted(schemas)) or "none"
        raise CommandError(f"unknown processor {args.name!r} (known: {known})")
    chosen = [schemas[args.name]] if args.name else list(schemas.values())
    if args.template:
        if args.name is None:
            raise CommandError("--template needs a processor NAME")
        print(",".join(chosen[0].csv_header()))
        return 0
    described = [_describe_schema(s) for s in chosen]
    if args.json:
        emit(described)
        return 0
    for item in described:
        print(f"{item['name']}  (key: {', '.join(item['key'])})")
        for name, ftype in item["fields"].items():
            marks = " required" if name in item["required"] else ""
            parent = item["parents"].get(name)
            marks += f" -> {parent}" if parent else ""
            print(f"  {name:<16} {ftype}{marks}")
    return 0


def _describe_schema(schema: ProcessorSchema) -> dict[str, Any]:
    return {
        "name": schema.name,
        "key": list(schema.key),
        "fields": {n: t.name for n, t in schema.fields.items()},
        "required": list(schema.required_fields),
        "parents": dict(schema.parents),
        "graduated": dict(schema.graduated),
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
