"""The ``datacenter`` command: a thin layer over the library.

Exit codes: 0 done, 1 the operation failed (one line on stderr naming the
path and the reason), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from datacenter import config as configuration
from datacenter import layout
from datacenter.center import FOLDERS, DataCenter
from datacenter.lock import LockHeldError

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
    except (CommandError, ValueError, OSError, LockHeldError) as exc:
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


def open_storage(args: argparse.Namespace) -> DataCenter:
    return DataCenter(settings(args).storage)


def emit(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# -- commands ----------------------------------------------------------------


@command("status")
def _status(args: argparse.Namespace) -> int:
    dc = open_storage(args)
    counts = {folder: len(dc.list_files(folder)) for folder in FOLDERS}
    recent: list[str] = []
    if os.path.exists(os.path.join(dc.logs_path, layout.LOG_NAME)):
        recent = list(dc.queryLogfiles(layout.LOG_NAME))[-5:]
    report = {
        "storage": dc.storage,
        "files": counts,
        "finished_files": len(dc.getFinishedFiles()),
        "interrupted": len(dc.journal.pending_intents()),
        "recent": recent,
    }
    if args.json:
        emit(report)
        return 0
    print(f"storage: {dc.storage}")
    for folder, count in counts.items():
        print(f"  {folder:<11} {count:>6} file(s)")
    print(f"interrupted operations: {report['interrupted']}")
    if recent:
        print("recent log lines:")
        for line in recent:
            print(f"  {line}")
    return 0


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
    dc = DataCenter(conf.storage)
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
    dc = open_storage(args)  # opening already finishes what it finds
    rolled = dc.recovered + dc.recover()
    print(f"recovered: {rolled} interrupted operation(s) finished")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
