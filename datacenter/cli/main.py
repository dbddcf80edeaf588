"""The ``datacenter`` command: a thin face over the library.

Every sub-command lives in a module of this folder and registers itself
(:mod:`.registry`); this module builds the parser from the registry and
reports any failure in one line. Exit codes: 0 done, 1 the operation
failed (one line on stderr naming the path and the reason), 2 usage,
3 an import left rows pending.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

# Each import registers its commands, in the order --help lists them.
from datacenter.cli import chaos, export, importing, project, records, serve, storage, web
from datacenter.cli.registry import COMMANDS, EXPECTED, Command, report
from datacenter.storage import LockHeldError

_MODULES = (storage, importing, records, serve, web, export, project, chaos)
#: The order --help lists the commands in: the daily ones first.
_ORDER = ("status", "ls", "import", "serve", "web", "user", "find", "pending", "discard",
          "processors", "export", "logs", "move-storage", "recover", "init", "chaos")


def _listed_at(command: Command) -> int:
    """Where --help lists *command*: by :data:`_ORDER`, any other at the end."""
    return _ORDER.index(command.name) if command.name in _ORDER else len(_ORDER)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datacenter",
        description="Drop CSV files into a storage folder; import them exactly once.",
    )
    parser.add_argument("--storage", metavar="DIR",
                        help="the storage folder (overrides the config; without a config, "
                             "the record store is records.sqlite beside DIR)")
    parser.add_argument("--config", metavar="FILE",
                        help="config file (default: $DATACENTER_CONFIG, else ./datacenter.toml; "
                             "without one, commands stop unless --storage is given)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                help="what to do (COMMAND --help tells more)")
    for command in sorted(COMMANDS.values(), key=_listed_at):
        child = sub.add_parser(command.name, help=command.help,
                               description=command.description or command.help)
        if command.options is not None:
            command.options(child)
        child.set_defaults(parser=child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = COMMANDS[args.command].run(args)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at exit
        return status
    except BrokenPipeError:  # a reader that stopped reading (| head) is no failure
        _silence_stdout()
        return 0
    except (*EXPECTED, LockHeldError) as error:  # type: ignore[misc]  # a tuple of classes
        return report(error)
    except KeyboardInterrupt:
        print("datacenter: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at the null device after a broken pipe.

    Python flushes stdout once more at exit; into the closed pipe that
    fails again and prints "Exception ignored ... BrokenPipeError". This is
    the cure the ``signal`` module's documentation gives (Note on SIGPIPE).
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):  # not a real stdout
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
