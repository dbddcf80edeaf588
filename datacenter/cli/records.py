"""Commands about records and failed rows: ``find``, ``pending``, ``discard``.

``find`` and ``pending`` only look (a read-only view, the store read as
``status`` reads the ledger); ``discard`` changes the storage in one
journal group (:mod:`datacenter.storage.discarding`).
"""

from __future__ import annotations

import argparse
import sys

from datacenter.cli.common import open_importer, open_view, settings
from datacenter.cli.registry import CommandError, command, emit, natural, say
from datacenter.importing import Router, resolve_processors
from datacenter.importing.pendingfiles import KEYS_SHOWN, discard, summarize
from datacenter.importing.whereabouts import Sighting, Whereabouts, find, iso
from datacenter.storage.logs import printable


def _find_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", nargs="+", metavar="KEY",
                        help="the record's key; a key of several fields is given as several "
                             "values, in the order of the processor's key fields")
    parser.add_argument("--processor", metavar="P",
                        help="look in processor P only (default: every processor whose key "
                             "has as many fields as values given)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@command("find", "where a record stands: store, finished, pending, discarded, backups "
                 "(reads only)", _find_options,
         description="Say where the record with KEY stands: in the store (since which "
                     "import), in which finished files, failed in which pending files and "
                     "why, discarded by whom, removed and backed up where. Exit status 1 "
                     "when it is nowhere.")
def _find(args: argparse.Namespace) -> int:
    conf = settings(args)
    view = open_view(args, conf)
    processors = resolve_processors(conf)
    router = Router(conf.routes, processors.names())
    findings = find(view.storage, conf.database, processors.schemas, router, args.key,
                    args.processor, conf.imports.max_line_bytes)
    for skipped in findings.skipped:
        print(f"datacenter: skipped {printable(skipped)}", file=sys.stderr)
    if args.json:
        emit([found.as_dict() for found in findings.found])
    else:
        for found in findings.found:
            _say_whereabouts(found)
    if not findings.found:
        raise CommandError(f"{' '.join(args.key)}: no record and no row with that key "
                           "(store, finished, pending, unfinished, discarded, backups)")
    return 0


def _say_whereabouts(found: Whereabouts) -> None:
    key = ", ".join(f"{name} {value}" for name, value in found.key.items())
    say(f"{found.processor}: {key}")
    for sighting in found.sightings:
        say(f"  {sighting.kind:<10}  {_where(sighting)}")


def _where(sighting: Sighting) -> str:
    if sighting.kind == "store":
        if not sighting.jobs:
            return "in the store (written outside the ledger: no import job recorded)"
        job = sighting.jobs[0]
        return (f"in the store since job {job.id}: {job.source}, {job.mode} mode, "
                f"{iso(job.finished)}, by {job.user}")
    text = f"{sighting.file} line {sighting.line}"
    if sighting.kind == "finished" and sighting.jobs:
        text += f" (job{'s' if len(sighting.jobs) > 1 else ''} " \
                f"{', '.join(str(job.id) for job in sighting.jobs)})"
    if sighting.by or sighting.at:
        text += f", by {sighting.by} at {sighting.at}"
    if sighting.reason:
        text += f": {sighting.reason}"
    return text


def _pending_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME",
                        help="one pending file at the storage's root (default: every "
                             "*.pending.csv there)")
    parser.add_argument("--keys", type=natural, default=KEYS_SHOWN, metavar="N",
                        help=f"keys shown per reason (default: {KEYS_SHOWN})")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@command("pending", "failed rows grouped by reason, with counts and keys (reads only)",
         _pending_options)
def _pending(args: argparse.Namespace) -> int:
    conf = settings(args)
    view = open_view(args, conf)
    processors = resolve_processors(conf)
    router = Router(conf.routes, processors.names())
    files = summarize(view.storage, processors.schemas, router, args.name, args.keys,
                      conf.imports.max_line_bytes)
    if args.json:
        emit([f.as_dict() for f in files])
        return 0
    if not files:
        say("no pending files")
    for pending in files:
        owner = pending.processor or "no processor claims it"
        if pending.problem is not None:
            say(f"{pending.name} ({owner}): cannot be read: {pending.problem}")
            continue
        say(f"{pending.name} ({owner}): {pending.rows} row(s) failed; keys: "
            f"{','.join(pending.key)}")
        for reason in pending.reasons:
            more = ", ..." if reason.count > len(reason.keys) else ""
            say(f"  {reason.count:>6}  {reason.reason}  [{', '.join(reason.keys)}{more}]")
    return 0


def _discard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME",
                        help="the pending file at the storage's root to give up "
                             "(x.<mode>.pending.csv)")
    parser.add_argument("--user", metavar="U",
                        help="who gives the rows up, for the log and the discarded file "
                             "(default: the user running the command)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@command("discard", "give up a pending file's rows: kept in finished/, the source closed",
         _discard_options,
         description="Give up the rows of pending file NAME for good. They join "
                     "finished/<x>.<mode>.discarded.csv with who discarded them and when, "
                     "the source unfinished/<x>.csv moves to finished/, and the pending "
                     "file goes: all of it or none of it, even across a crash.")
def _discard(args: argparse.Namespace) -> int:
    importer = open_importer(args)
    try:
        done = discard(importer, args.name, args.user)
    finally:
        importer.close()
    if args.json:
        emit({"name": done.name, "rows": done.rows, "discarded": done.dest,
              "source": done.source, "user": done.user, "at": done.at})
        return 0
    closed = f"; its source moved to {done.source}" if done.source else ""
    say(f"Discarded {done.rows} row(s) of {done.name} -> {done.dest}{closed} "
        f"(by {done.user} at {done.at})")
    return 0
