"""Why a row fails in the store: the reasons both import engines give, word for word."""

from __future__ import annotations

EXISTS = "This object already exists. Skipping."
NO_PARENT = "Not all parents do exist yet. Skipping"
NO_UPDATE = "Cannot update: no such entry"
NO_REMOVE = "Cannot remove: no such entry"
