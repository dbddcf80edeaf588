"""``datacenter.toml``: where the storage and the record store are, how to watch.

Looked up from ``--config``, then ``$DATACENTER_CONFIG``, then
``./datacenter.toml``; without any, the defaults below apply. Relative
paths are relative to the folder of the config file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from datacenter import fs

DEFAULT_NAME = "datacenter.toml"


class ConfigError(ValueError):
    """The config file is missing, unreadable or wrong; the message says where."""


@dataclass
class WatchSettings:
    settle: float = 2.0
    rescan: float = 60.0
    polling: bool = False


@dataclass
class Config:
    path: str | None
    storage: str
    database: str
    watch: WatchSettings = field(default_factory=WatchSettings)
    processors: dict[str, Any] = field(default_factory=dict)
    routes: list[dict[str, Any]] = field(default_factory=list)


def find(explicit: str | None = None) -> str | None:
    """The config file to use, or None when there is none."""
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigError(f"{explicit}: config file not found")
        return os.path.abspath(explicit)
    env = os.environ.get("DATACENTER_CONFIG")
    if env:
        if not os.path.isfile(env):
            raise ConfigError(f"{env}: config file not found (from $DATACENTER_CONFIG)")
        return os.path.abspath(env)
    return os.path.abspath(DEFAULT_NAME) if os.path.isfile(DEFAULT_NAME) else None


def load(explicit: str | None = None) -> Config:
    path = find(explicit)
    if path is None:
        return Config(None, os.path.abspath("storage"), os.path.abspath("records.sqlite"))
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    base = os.path.dirname(path)
    watch = data.get("watch", {})
    try:
        settings = WatchSettings(
            settle=float(watch.get("settle", 2.0)),
            rescan=float(watch.get("rescan", 60.0)),
            polling=bool(watch.get("polling", False)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [watch]: {exc}") from None
    return Config(
        path=path,
        storage=_path(path, base, data, "storage", "storage"),
        database=_path(path, base, data, "database", "records.sqlite"),
        watch=settings,
        processors=dict(data.get("processors", {})),
        routes=list(data.get("routes", [])),
    )


def _path(path: str, base: str, data: dict[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: {key} must be a non-empty string, not {value!r}")
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


_STORAGE_LINE = re.compile(r'^(storage\s*=\s*)("(?:[^"\\]|\\.)*"|\'[^\']*\')', re.MULTILINE)


def set_storage(path: str, storage: str) -> None:
    """Point the config file's ``storage`` at *storage*, keeping everything else."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    quoted = '"' + storage.replace("\\", "\\\\").replace('"', '\\"') + '"'
    new, count = _STORAGE_LINE.subn(lambda m: m.group(1) + quoted, text, count=1)
    if not count:
        new = f"storage = {quoted}\n" + text
    fs.atomic_write(path, new.encode("utf-8"))
