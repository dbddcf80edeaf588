"""One registry of sub-commands, and one way of reporting their failures.

Each module of this folder registers its commands with :func:`command`:
a name, a help line, a function that adds the command's options, and the
function that runs it and returns the exit status. :func:`report` is the
single place that turns an error into the one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from datacenter.errors import DataCenterError
from datacenter.records.backend import STORE_ERRORS
from datacenter.storage.logs import printable

Run = Callable[[argparse.Namespace], int]
Options = Callable[[argparse.ArgumentParser], None]
#: Exit statuses: done, failed, usage, rows left pending.
OK, FAILED, USAGE, PENDING = 0, 1, 2, 3
#: What a command may raise to be reported in one line with status 1.
EXPECTED: tuple[type[Exception], ...] = (DataCenterError, ValueError, OSError,
                                         *STORE_ERRORS)


class CommandError(DataCenterError):
    """A failure to report in one line, exit status 1."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Run
    options: Options | None = None
    description: str | None = None


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, options: Options | None = None,
            description: str | None = None) -> Callable[[Run], Run]:
    """Register the decorated function as sub-command *name*."""

    def register(run: Run) -> Run:
        COMMANDS[name] = Command(name, help, run, options, description)
        return run

    return register


def describe(error: BaseException) -> str:
    """One line for *error*: an OSError names its file first."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def report(error: BaseException | str) -> int:
    """Say *error* on stderr, in one line; returns the failure status."""
    text = error if isinstance(error, str) else describe(error)
    print(f"datacenter: error: {printable(text)}", file=sys.stderr)
    return FAILED


def say(line: str) -> None:
    """A line for people: a file name with a newline or an escape stays one plain line."""
    print(printable(line))


def emit(data: Any) -> None:
    """Machine-readable output (``--json``)."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def emit_each(items: Iterable[Any]) -> None:
    """A JSON list, written item by item as *items* come (the same text as :func:`emit`)."""
    first = True
    for item in items:
        print("[" if first else ",")
        print(_indented(item), end="")
        first = False
    print("[]" if first else "\n]")


_encode = json.JSONEncoder(ensure_ascii=False).encode


def _indented(item: Any) -> str:
    """*item* as :func:`emit` shows it inside a list; a flat object without the slow
    indenting encoder (a million of them is what ``ls --json`` may print)."""
    if isinstance(item, dict) and item and not any(
            isinstance(value, dict | list | tuple) for value in item.values()):
        return "  {\n" + ",\n".join(f"    {_encode(key)}: {_encode(value)}"
                                     for key, value in item.items()) + "\n  }"
    return "  " + json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n  ")


def natural(text: str) -> int:
    """An argparse type: a whole number, zero or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value
