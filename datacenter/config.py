"""``datacenter.toml``, parsed once into typed values, and refused when it is wrong.

Looked up from ``--config``, then ``$DATACENTER_CONFIG``, then
``./datacenter.toml``. Without any, nothing is guessed: :func:`load` refuses
with :class:`NoConfigError`, saying where it looked (a storage and record
store made up in the current folder would look like lost data). A storage
named alone (``--storage DIR``) is explicit enough: :func:`for_storage`
gives it the record store beside it. Relative paths are relative to the
folder of the config file. :func:`datacenter.storage.creation.template`
is what ``datacenter init`` writes.

Every mistake is refused at load, before anything is touched, with one
line naming the file, the table (or ``[[routes]]`` entry) and the key: an
unknown key or table (``storge = ...``, ``[watch] setle = ...``), a value of
the wrong type, a route without a processor or with an unknown mode, a
limit of ``[import]`` that is not a positive whole number of bytes, a
``[web]`` listen address that is not ``HOST:PORT``. The
``[processors.*]`` tables are checked by :mod:`datacenter.records.schema`,
and whether a route's processor exists by
:func:`datacenter.importing.check_config`, which knows the processors that
installed packages add; every command runs both before it touches the disk.
"""

from __future__ import annotations

import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datacenter.errors import DataCenterError

DEFAULT_NAME = "datacenter.toml"
#: The record store's name when the config names none, beside the storage.
DEFAULT_DATABASE = "records.sqlite"
#: The storage's name in a folder made by ``datacenter init``.
DEFAULT_STORAGE = "storage"
#: The modes of an import; a route or a file name may ask for one.
MODES = ("create", "update", "remove")
_TOP_KEYS = frozenset({"storage", "database", "watch", "import", "web", "processors",
                       "routes", "cluster"})
#: Where the web console listens unless told (``[web] listen``, ``--listen``).
DEFAULT_LISTEN = "127.0.0.1:8080"
#: The largest file the console takes in one upload (``[web] max_upload_bytes``).
DEFAULT_MAX_UPLOAD_BYTES = 50 << 20
#: How long an instance's claim on a file outlives its last heartbeat, by default.
DEFAULT_LEASE = 10.0
#: The schemes of a PostgreSQL record store's URL.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
#: The longest row (a line, or the lines of a row whose quoted cell spans
#: several) a dropped file may have; a cell is never longer than its row.
DEFAULT_MAX_LINE_BYTES = 16 << 20


class ConfigError(DataCenterError, ValueError):
    """The config file is missing, unreadable or wrong; the message says where."""


class NoConfigError(ConfigError):
    """No config file was named or found; the message says where it was looked for."""


@dataclass
class WatchSettings:
    """``[watch]``: how the service notices files."""

    settle: float = 2.0
    rescan: float = 60.0
    polling: bool = False


@dataclass
class ImportSettings:
    """``[import]``: limits that keep one hostile file from exhausting memory."""

    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


@dataclass
class WebSettings:
    """``[web]``: where the console listens, and the largest upload it takes."""

    listen: str = DEFAULT_LISTEN
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    #: The console's address as browsers see it behind a reverse proxy
    #: (``https://console.example.org``): a login's Origin must be it, and its
    #: cookies are Secure when it is https. Empty: the request's own Host.
    public_url: str = ""


@dataclass
class ClusterSettings:
    """``[cluster]``: several instances on one storage (PostgreSQL only)."""

    #: Seconds a dead instance's claims last before another instance takes its files over.
    lease: float = DEFAULT_LEASE


@dataclass(frozen=True)
class Route:
    """One ``[[routes]]`` entry: file names matching *pattern* go to *processor*."""

    pattern: str
    processor: str
    mode: str = "create"
    #: Where it was written, for messages: ``datacenter.toml: [[routes]] #2``.
    where: str = ""


@dataclass
class Config:
    path: str | None
    storage: str
    database: str
    watch: WatchSettings = field(default_factory=WatchSettings)
    processors: dict[str, Any] = field(default_factory=dict)
    imports: ImportSettings = field(default_factory=ImportSettings)
    routes: list[Route] = field(default_factory=list)
    web: WebSettings = field(default_factory=WebSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)

    @property
    def name(self) -> str:
        """How messages name the config: its path, or the default name."""
        return self.path or DEFAULT_NAME


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
    """The config named by *explicit*, or found; NoConfigError when there is none."""
    path = find(explicit)
    if path is None:
        raise NoConfigError(
            f"no config file (looked for --config FILE, $DATACENTER_CONFIG and "
            f"{os.path.abspath(DEFAULT_NAME)}); create one with `datacenter init`, "
            "or name the storage with --storage DIR")
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    return parse(data, path)


def for_storage(storage: str) -> Config:
    """The config of a storage named alone (``--storage DIR`` and no config file).

    Its record store is :data:`DEFAULT_DATABASE` beside it, in its parent
    folder: where ``datacenter init`` and the bundled config put it, so that
    the imports made through the config are the ones found. It is never
    inside the storage, whose root is the intake others may write to.
    """
    storage = os.path.abspath(storage)
    database = os.environ.get("DATACENTER_DATABASE") or os.path.join(
        os.path.dirname(storage), DEFAULT_DATABASE)
    return Config(None, storage, database)


def parse(data: Mapping[str, Any], path: str) -> Config:
    """A :class:`Config` from the TOML *data* of the file at *path*."""
    _known(path, "", data, _TOP_KEYS)
    base = os.path.dirname(path)
    processors = data.get("processors", {})
    if not isinstance(processors, dict):
        raise ConfigError(f"{path}: processors must be a table of [processors.<name>] tables")
    return Config(
        path=path,
        storage=_path(path, base, data, "storage", DEFAULT_STORAGE),
        database=_database(path, base, data),
        watch=_watch(path, data.get("watch", {})),
        processors=dict(processors),
        routes=_routes(path, data.get("routes", [])),
        imports=_imports(path, data.get("import", {})),
        web=_web(path, data.get("web", {})),
        cluster=_cluster(path, data.get("cluster", {})),
    )


def _known(path: str, table: str, data: Mapping[str, Any], keys: frozenset[str]) -> None:
    unknown = sorted(set(data) - keys)
    if unknown:
        where = f"{table}: " if table else ""
        raise ConfigError(f"{path}: {where}unknown {_named(unknown[0], data[unknown[0]])} "
                          f"(known: {', '.join(sorted(keys))})")


def _named(key: str, value: Any) -> str:
    """A key as the user wrote it: a misspelt table is ``table [wach]`` or ``[[ruotes]]``."""
    if isinstance(value, dict):
        return f"table [{key}]"
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return f"table [[{key}]]"
    return f"key {key!r}"


def _path(path: str, base: str, data: Mapping[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: {key} must be a non-empty string, not {value!r}")
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


def _database(path: str, base: str, data: Mapping[str, Any]) -> str:
    """The record store: ``$DATACENTER_DATABASE``, else the config's; a URL is kept as it is."""
    from_env = os.environ.get("DATACENTER_DATABASE")
    value = from_env or data.get("database", DEFAULT_DATABASE)
    if isinstance(value, str) and value.startswith(POSTGRES_SCHEMES):
        return value
    if from_env:
        return os.path.abspath(os.path.expanduser(from_env))
    return _path(path, base, data, "database", DEFAULT_DATABASE)


def is_postgres(database: str) -> bool:
    """Does *database* name a PostgreSQL server (else: an SQLite file)?"""
    return database.startswith(POSTGRES_SCHEMES)


def _cluster(path: str, table: Any) -> ClusterSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: cluster must be a table ([cluster]), not {table!r}")
    _known(path, "[cluster]", table, frozenset({"lease"}))
    value = table.get("lease", DEFAULT_LEASE)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{path}: [cluster]: lease must be a number of seconds (more than "
                          f"0), not {value!r}")
    return ClusterSettings(lease=float(value))


def _watch(path: str, watch: Any) -> WatchSettings:
    if not isinstance(watch, dict):
        raise ConfigError(f"{path}: watch must be a table ([watch]), not {watch!r}")
    _known(path, "[watch]", watch, frozenset({"settle", "rescan", "polling"}))
    defaults = WatchSettings()
    return WatchSettings(
        settle=_seconds(path, watch, "settle", defaults.settle),
        rescan=_seconds(path, watch, "rescan", defaults.rescan),
        polling=_flag(path, watch, "polling", defaults.polling),
    )


def _seconds(path: str, table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"{path}: [watch]: {key} must be a number of seconds (0 or more), "
                          f"not {value!r}")
    return float(value)


def _flag(path: str, table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: [watch]: {key} must be true or false, not {value!r}")
    return value


def _imports(path: str, table: Any) -> ImportSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: import must be a table ([import]), not {table!r}")
    _known(path, "[import]", table, frozenset({"max_line_bytes"}))
    value = table.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{path}: [import]: max_line_bytes must be a whole number of bytes "
                          f"(1 or more), not {value!r}")
    return ImportSettings(max_line_bytes=value)


def _web(path: str, table: Any) -> WebSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: web must be a table ([web]), not {table!r}")
    _known(path, "[web]", table, frozenset({"listen", "max_upload_bytes", "public_url"}))
    listen = table.get("listen", DEFAULT_LISTEN)
    try:
        parse_listen(listen)
    except ValueError as error:
        raise ConfigError(f"{path}: [web]: listen {error}") from None
    size = table.get("max_upload_bytes", DEFAULT_MAX_UPLOAD_BYTES)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"{path}: [web]: max_upload_bytes must be a whole number of bytes "
                          f"(1 or more), not {size!r}")
    return WebSettings(listen=listen, max_upload_bytes=size,
                       public_url=_public_url(path, table.get("public_url", "")))


def _public_url(path: str, value: object) -> str:
    """``[web] public_url`` as ``scheme://host[:port]`` (lower case), or ``""``."""
    if value == "":
        return ""
    parts = urllib.parse.urlsplit(value) if isinstance(value, str) else None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username is not None):
        raise ConfigError(f"{path}: [web]: public_url must be the console's address as a "
                          f"browser sees it (https://host or https://host:port), not {value!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def parse_listen(value: object) -> tuple[str, int]:
    """``"HOST:PORT"`` as ``(host, port)``; ValueError saying what is wrong.

    An IPv6 host is written in brackets (``[::1]:8080``); port 0 asks for a free one.
    """
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"must be \"HOST:PORT\" (like {DEFAULT_LISTEN!r}), not {value!r}")
    host, _, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be \"HOST:PORT\" (like {DEFAULT_LISTEN!r}), not {value!r}")
    return host, int(port)


def _routes(path: str, routes: Any) -> list[Route]:
    if not isinstance(routes, list):
        raise ConfigError(f"{path}: routes must be [[routes]] entries, not {routes!r}")
    return [_route(path, f"[[routes]] #{n}", entry) for n, entry in enumerate(routes, 1)]


def _route(path: str, where: str, entry: Any) -> Route:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: {where}: must be a table, not {entry!r}")
    _known(path, where, entry, frozenset({"pattern", "processor", "mode"}))
    for key in ("pattern", "processor"):
        value = entry.get(key)
        if value is None:
            raise ConfigError(f"{path}: {where}: {key} is missing")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: {where}: {key} must be a non-empty string, "
                              f"not {value!r}")
    mode = entry.get("mode", "create")
    if mode not in MODES:
        raise ConfigError(f"{path}: {where}: mode must be one of {', '.join(MODES)}, "
                          f"not {mode!r}")
    return Route(entry["pattern"], entry["processor"], mode, f"{path}: {where}")
