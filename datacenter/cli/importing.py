"""Commands that import: ``import`` one file now, ``processors`` to see what imports."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from datacenter.cli.common import open_importer, settings
from datacenter.cli.registry import CommandError, command, emit, say
from datacenter.importing import (
    FatalCSVError,
    Importer,
    Outcome,
    UnfiledError,
    UnroutedError,
    naming,
    resolve_processors,
)
from datacenter.importing.progress import Meter, describe_progress
from datacenter.records import MODES, ProcessorSchema
from datacenter.storage import UnfinishedError, fs, kinds
from datacenter.storage.identity import FileIdentity
from datacenter.storage.logs import printable


def _import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a CSV file (copied into the storage if it is elsewhere)")
    parser.add_argument("--processor", metavar="P", help="default: routed by the file name")
    parser.add_argument("--mode", choices=MODES, help="default: from the file name, else create")
    parser.add_argument("--user", metavar="U", help="who imports (for the log)")


@command("import", "import one CSV file now", _import_options)
def _import(args: argparse.Namespace) -> int:
    source = os.path.abspath(args.file)
    _check_source(args.file, source)  # before the storage opens: a refusal creates nothing
    importer = open_importer(args)
    try:
        # The copy and its import are one operation: a service watching the
        # storage cannot take the copy in between (the lock is re-entrant).
        with importer.dc.lock:
            outcome = _copy_and_import(importer, args, source)
    finally:
        Progress.clear()
        importer.close()
    say(outcome.summary())
    return 3 if outcome.failed else 0


def _copy_and_import(importer: Importer, args: argparse.Namespace, source: str) -> Outcome:
    """Import *source*, copied into the storage's root first if it lies elsewhere."""
    target = os.path.join(importer.storage, os.path.basename(source))
    copy = None
    if source != target:
        if os.path.lexists(target):
            raise CommandError(f"{target}: a pending file of that name is waiting already; "
                               "import that one, or rename yours")
        fs.copy_new(os.path.realpath(source), target)  # a link the user named is theirs
        copy = FileIdentity.at(target)
    try:
        return importer.import_file(target, args.processor, args.mode, args.user,
                                    progress=Progress(target).update)
    except Exception as error:
        # Nothing was imported, so our copy goes (the user's file is untouched);
        # unless the import committed and only its filing is unfinished. Only
        # the very copy: whatever took its name since is someone else's.
        if (copy is not None and not isinstance(error, (UnfinishedError, UnfiledError))
                and FileIdentity.at(target) == copy):
            fs.unlink(target, missing_ok=True)
        if isinstance(error, (FatalCSVError, UnroutedError)):
            raise CommandError(naming(error, source)) from None
        raise


def _check_source(shown: str, path: str) -> None:
    """Refuse, naming *shown*, anything but a regular file at *path* (through symlinks).

    Only a stat: the open of a FIFO would block until a writer came.
    """
    what = kinds.kind_at(path)
    if what is None:
        raise CommandError(f"{shown}: no such file")
    if what != kinds.REGULAR:
        raise CommandError(kinds.not_a_file(shown, what))


class Progress:
    """A progress bar on a terminal (percent, rows, rows per second, ETA); nothing in a pipe."""

    def __init__(self, path: str) -> None:
        self.meter = Meter(printable(os.path.basename(path)), os.path.getsize(path))
        self.shown = sys.stderr.isatty()

    def update(self, rows: int, position: int) -> None:
        self.meter.update(rows, position)
        if self.shown:  # \033[K: a shorter line (a falling ETA) leaves nothing behind
            print(f"\rimporting {self.meter.name}: {describe_progress(self.meter.report())}"
                  "\033[K", end="", file=sys.stderr, flush=True)

    @staticmethod
    def clear() -> None:
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _processors_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help="one processor (default: all)")
    parser.add_argument("--template", action="store_true",
                        help="print a header-only CSV for NAME")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@command("processors", "show processors, or a CSV template", _processors_options)
def _processors(args: argparse.Namespace) -> int:
    schemas = resolve_processors(settings(args)).schemas
    if args.name is not None and args.name not in schemas:
        known = ", ".join(sorted(schemas)) or "none"
        raise CommandError(f"unknown processor {args.name!r} (known: {known})")
    chosen = [schemas[args.name]] if args.name else list(schemas.values())
    if args.template:
        if args.name is None:
            raise CommandError("--template needs a processor NAME")
        print(chosen[0].csv_template().removesuffix("\r\n"))
        return 0
    described = [_describe_schema(s) for s in chosen]
    if args.json:
        emit(described)
        return 0
    for item in described:
        encoding = "" if item["encoding"] == "utf-8" else f", encoding: {item['encoding']}"
        print(f"{item['name']}  (key: {', '.join(item['key'])}{encoding})")
        for name, ftype in item["fields"].items():
            marks = " required" if name in item["required"] else ""
            parent = item["parents"].get(name)
            marks += f" -> {parent}" if parent else ""
            print(f"  {name:<16} {ftype}{marks}")
        for header, name in item["columns"].items():
            print(f"  column {header!r} -> {name}")
    return 0


def _describe_schema(schema: ProcessorSchema) -> dict[str, Any]:
    return {
        "name": schema.name,
        "key": list(schema.key),
        "fields": {n: t.name for n, t in schema.fields.items()},
        "required": list(schema.required_fields),
        "parents": dict(schema.parents),
        "graduated": dict(schema.graduated),
        "encoding": schema.encoding,
        "columns": dict(schema.columns),
    }
