"""``datacenter init``: a new config and the storage it names, the one way to start a place.

Every other command refuses a storage that is not there; ``serve`` may
create one too. ``init`` writes ``datacenter.toml`` (never over an existing
one) and makes the storage's folders (:func:`~datacenter.storage.creation.init_project`).
"""

from __future__ import annotations

import argparse

from datacenter.cli.registry import command, emit, say
from datacenter.config import DEFAULT_NAME
from datacenter.records.migrations import safe_url
from datacenter.storage.creation import init_project

DESCRIPTION = f"""Write DIR/{DEFAULT_NAME} (a commented config with one example
processor) and make the storage it names: DIR/storage, or the folder given by
--storage. An existing {DEFAULT_NAME} is never overwritten (exit status 1);
DIR and the storage are made only in folders that exist. The record store,
DIR/records.sqlite, is made by the first import."""


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", default=".", metavar="DIR",
                        help=f"where {DEFAULT_NAME} goes (default: the current folder)")
    parser.add_argument("--json", action="store_true",
                        help="machine-readable output: the paths written")


@command("init", "write a new datacenter.toml and make its storage", _options,
         description=DESCRIPTION)
def run(args: argparse.Namespace) -> int:
    if args.config:
        args.parser.error(f"init writes DIR/{DEFAULT_NAME}; --config names one to read")
    project = init_project(args.folder, args.storage)
    if args.json:
        emit({"config": project.config, "storage": project.storage,
              "database": project.database, "created": project.created})
        return 0
    say(f"wrote {project.config}")
    say(f"storage: {project.storage}")
    say(f"record store: {safe_url(project.database)} (made by the first import)")
    say(f"next: define your processors in {project.config}, then run `datacenter serve` there")
    return 0
