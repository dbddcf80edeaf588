"""Which processor, in which mode, imports a file: routing by name.

The config's ``[[routes]]`` come first; then the name itself says it:
``<processor>[_anything][.<mode>].csv``. A pending file
``x.<mode>.pending.csv`` is routed like ``x.csv`` in that mode (the storage
owns that naming rule: :func:`datacenter.storage.distribution.pending_origin`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from datacenter.config import MODES, ConfigError, Route
from datacenter.errors import DataCenterError
from datacenter.storage.distribution import pending_origin


class UnroutedError(DataCenterError, ValueError):
    """No processor claims the file."""


class Router:
    """Routes file names to ``(processor, mode)`` among the *processors* named."""

    def __init__(self, routes: Sequence[Route], processors: Iterable[str]) -> None:
        self.processors = sorted(processors, key=len, reverse=True)  # longest prefix wins
        for route in routes:
            if route.processor not in self.processors:
                known = ", ".join(sorted(self.processors)) or "none"
                raise ConfigError(f"{route.where}: processor {route.processor!r} is not "
                                  f"defined (known: {known})")
        self.routes = list(routes)

    def route(self, filename: str) -> tuple[str, str]:
        """``(processor, mode)`` for a file name, or UnroutedError."""
        original, pending_mode = original_name(filename)
        for route in self.routes:
            if fnmatch.fnmatchcase(original, route.pattern):
                return route.processor, pending_mode or route.mode
        stem = original[:-4] if original.lower().endswith(".csv") else original
        base, _, mode = stem.rpartition(".")
        if not base or mode not in MODES:
            base, mode = stem, "create"
        for name in self.processors:
            if base == name or base.startswith(name + "_"):
                return name, pending_mode or mode
        raise UnroutedError(f"{filename}: no processor claims this file (name it "
                            f"<processor>[_anything][.<mode>].csv, or add a route)")

    def mode_for(self, filename: str, processor: str) -> str:
        """The mode a name asks of *processor*: routed if it routes there, else create."""
        try:
            routed, mode = self.route(filename)
        except UnroutedError:
            return original_name(filename)[1] or "create"
        return mode if routed == processor else "create"


def original_name(filename: str) -> tuple[str, str | None]:
    """``x.create.pending.csv`` -> ``("x.csv", "create")``; others unchanged."""
    origin = pending_origin(filename)
    if origin and origin[1] in MODES:
        return origin
    return filename, None
