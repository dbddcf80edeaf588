"""``datacenter export``: the command line over :mod:`datacenter.export`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import cast

from datacenter import config as configuration
from datacenter.cli.common import settings
from datacenter.cli.registry import command, report
from datacenter.export import (
    FORMATS,
    MAX_PROBLEMS,
    STDOUT,
    ExportError,
    check_target,
    csv_header,
    export_processor,
    export_records,
    iter_problems,
    load_json_records,
    processor_schema,
)
from datacenter.importing import resolve_processors
from datacenter.records.backend import STORE_ERRORS, Store, exists, open_store
from datacenter.records.migrations import safe_url
from datacenter.records.schema import ProcessorSchema


def _options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("source", nargs="?", metavar="PROCESSOR",
                        help="export this processor's records from the record store")
    source.add_argument("--input", metavar="FILE.json", help="export a JSON list of records")
    add = parser.add_argument
    add("--processor", metavar="P", help="with --input: validate against this processor, "
        "put its fields first in the CSV header")
    add("--format", choices=FORMATS, help="default: json if --output ends in .json, else csv")
    add("--output", metavar="PATH", help="default: <processor or input stem>.<format> here; "
        "- for standard output; only a regular file is replaced (not a link, FIFO, device)")
    add("--validate", action="store_true", help="check every record first; if any has "
        "problems, list them and write nothing")
    add("--dry-run", action="store_true", help="validate, say what would be written, stop")
    add("--raw-cells", action="store_true", help="keep CSV cells starting with = + - @ tab "
        "CR (or with = + - @ behind blanks, or full width) as they are (for programs; "
        "spreadsheets would run them as formulas)")


@command("export", "write records to CSV or JSON, atomically", _options,
         description="Export a processor's records, or a JSON list of records, to CSV or "
                     "JSON. The target is replaced atomically; the old one is kept as .bak.")
def run(args: argparse.Namespace) -> int:
    """The ``export`` command: 0 done, 1 failed (reason on stderr), 2 usage."""
    parser: argparse.ArgumentParser = args.parser
    if args.source and args.processor and args.source != args.processor:
        parser.error(f"PROCESSOR {args.source!r} and --processor {args.processor!r} differ")
    name: str | None = args.source or args.processor
    if not (name or args.input):
        parser.error("give a PROCESSOR or --input FILE.json")
    fmt = args.format or ("json" if (args.output or "").endswith(".json") else "csv")
    output: str = args.output or f"{name or Path(args.input).stem}.{fmt}"
    check_target(output)  # before a long validation
    if args.input:
        return _export_input(args, name, fmt, output)
    return _export_store(args, cast(str, name), fmt, output)


def _schemas(args: argparse.Namespace) -> tuple[configuration.Config, dict[str, ProcessorSchema]]:
    # The same config checks and processors as `import`, installed packages' included.
    conf = settings(args)
    return conf, resolve_processors(conf).schemas


def _export_input(args: argparse.Namespace, name: str | None, fmt: str, output: str) -> int:
    records = load_json_records(args.input)
    if output != STDOUT and os.path.exists(output) and os.path.samefile(args.input, output):
        raise ExportError(f"{output}: is the input file; choose another --output")
    schema = processor_schema(_schemas(args)[1], name) if name else None
    if _report(iter_problems(records, schema if args.validate or args.dry_run else None)):
        return 1
    objects = cast(list[Mapping[str, object]], records)  # iter_problems checked them
    columns = csv_header(objects, schema)
    if args.dry_run:
        return _dry_run(len(objects), columns, output, fmt)
    return _done(export_records(objects, columns, output, fmt, neutralise=not args.raw_cells),
                 output)


def _export_store(args: argparse.Namespace, name: str, fmt: str, output: str) -> int:
    conf, schemas = _schemas(args)
    schema = processor_schema(schemas, name)
    if not exists(conf.database):
        raise ExportError(f"{safe_url(conf.database)}: no record store there yet "
                          "(nothing imported)")
    try:
        with contextlib.closing(open_store(conf.database, {name: schema})) as store:
            return _from_store(args, store, schema, fmt, output)
    except STORE_ERRORS as exc:
        raise ExportError(f"{safe_url(conf.database)}: {exc}") from None


def _from_store(args: argparse.Namespace, store: Store, schema: ProcessorSchema,
                fmt: str, output: str) -> int:
    with store.snapshot():  # the records validated are the records written
        if (args.validate or args.dry_run) and _report(
                iter_problems(store.iter_records(schema.name), schema)):
            return 1
        if args.dry_run:
            return _dry_run(store.count(schema.name), list(schema.fields), output, fmt)
        count = export_processor(store, schema.name, output, fmt, neutralise=not args.raw_cells)
    return _done(count, output)


def _report(problems: Iterable[str]) -> bool:
    """List the problems on stderr (at most MAX_PROBLEMS); whether there were any."""
    total = 0
    for total, problem in enumerate(problems, 1):
        if total <= MAX_PROBLEMS:
            print(problem, file=sys.stderr)
    if total > MAX_PROBLEMS:
        print(f"... and {total - MAX_PROBLEMS} more problems", file=sys.stderr)
    if total:
        report(f"{total} problem{'s' if total > 1 else ''} found; nothing written")
    return total > 0


def _dry_run(count: int, columns: Sequence[str], output: str, fmt: str) -> int:
    target = "standard output" if output == STDOUT else output
    print(f"Dry run: {count} records would be exported to {target} as {fmt}; nothing written")
    print(f"columns: {', '.join(columns)}")
    return 0


def _done(count: int, output: str) -> int:
    if output == STDOUT:  # the summary must not mix with the data
        print(f"Exported {count} records to standard output", file=sys.stderr)
    else:
        print(f"Exported {count} records to {output} (atomic write)")
    return 0
