"""What the commands share: the config, the storage and the importer they open.

Commands that only look (``status``, ``ls``, ``logs``) take a
:class:`~datacenter.storage.view.StorageView` (:func:`open_view`), which
writes nothing; the others open the storage itself (:func:`open_storage`),
which recovers interrupted work and follows, and records, a move. Both
refuse a storage that does not exist: only ``init`` and ``serve`` make one.

Nothing is guessed: without a config file (``--config``,
``$DATACENTER_CONFIG``, ``./datacenter.toml``) a command stops, unless
``--storage DIR`` names the storage; the record store is then the one
beside it, and :func:`record_store` says so on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from datacenter import config as configuration
from datacenter.importing import Importer, check_config, resolve_processors
from datacenter.records.migrations import safe_url
from datacenter.storage import DataCenter, creation, fs
from datacenter.storage.logs import printable
from datacenter.storage.view import StorageView


def settings(args: argparse.Namespace) -> configuration.Config:
    """The config named by ``--config`` (or found), with ``--storage`` applied.

    All of it is checked here, processors and routes included, so that a
    command refuses a wrong config before it touches the disk. Without a
    config file, ``--storage DIR`` alone stands for one
    (:func:`~datacenter.config.for_storage`); without either, NoConfigError.
    """
    if args.storage and configuration.find(args.config) is None:
        conf = configuration.for_storage(args.storage)
    else:
        conf = configuration.load(args.config)
        if args.storage:
            conf.storage = os.path.abspath(args.storage)
    check_config(conf)
    return conf


def record_store(conf: configuration.Config) -> str:
    """The record store's path; said on stderr when no config file chose it.

    A storage named alone gets the store beside it; whoever expected
    another one learns which was used before reading "no imports".
    """
    if conf.path is None:
        print(printable(f"datacenter: no config file: using the record store "
                        f"{safe_url(conf.database)} (beside the storage {conf.storage})"),
              file=sys.stderr)
    return conf.database


def open_storage(args: argparse.Namespace, conf: configuration.Config | None = None
                 ) -> DataCenter:
    """The data center of the configured storage, following it if it moved.

    A storage moved while the config still names its old place (a move a
    crash interrupted) is found through the note it left; the config file
    is then updated, and the user told so.
    """
    conf = conf or settings(args)
    creation.require(conf.storage)
    dc = DataCenter(conf.storage)
    if dc.storage != conf.storage:
        print(printable(f"datacenter: the storage {conf.storage} has moved to {dc.storage}"),
              file=sys.stderr)
        if conf.path and not args.storage:
            point_config_at(conf.path, dc.storage)
            print(f"datacenter: updated {conf.path}", file=sys.stderr)
        conf.storage = dc.storage
    return dc


def open_view(args: argparse.Namespace, conf: configuration.Config | None = None
              ) -> StorageView:
    """A read-only view of the configured storage, following it if it moved.

    Nothing is written: not the config (the user is told instead), not the
    storage (no folder made, no lock taken, nothing recovered).
    """
    conf = conf or settings(args)
    view = StorageView(conf.storage)
    if not view.exists:
        raise creation.NoStorageError(view.storage)
    if view.moved:
        where = f"; {conf.path} still names the old place (any command that changes " \
                "the storage updates it)" if conf.path and not args.storage else ""
        print(printable(f"datacenter: the storage {view.asked} has moved to {view.storage}"
                        f"{where}"), file=sys.stderr)
    return view


def open_importer(args: argparse.Namespace) -> Importer:
    """The importer of the configured storage; its processors resolved before it opens."""
    conf = settings(args)
    processors = resolve_processors(conf)
    dc = open_storage(args, conf)
    record_store(conf)
    return Importer(conf, dc, processors)


_STORAGE_LINE = re.compile(r'^(storage\s*=\s*)("(?:[^"\\]|\\.)*"|\'[^\']*\')', re.MULTILINE)


def point_config_at(path: str, storage: str) -> None:
    """Point the config file's ``storage`` at *storage*, keeping everything else."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    quoted = '"' + storage.replace("\\", "\\\\").replace('"', '\\"') + '"'
    new, count = _STORAGE_LINE.subn(lambda m: m.group(1) + quoted, text, count=1)
    if not count:
        new = f"storage = {quoted}\n" + text
    fs.atomic_write(path, new.encode("utf-8"))
