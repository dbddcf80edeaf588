"""The web console: a second face on the library, beside the command line.

:func:`~datacenter.web.app.create_app` builds the Starlette app for a
config; :mod:`.auth` says who is asking; :mod:`.console` is the state
every view is handed; :mod:`.views` holds the pages, the API, the folders
and downloads, the pending grid, uploads, ``/healthz`` and ``/metrics``.
Nothing in the library imports this wing; the CLI runs it (``datacenter
web``, ``datacenter serve --web``).
"""

from datacenter.web.app import create_app

__all__ = ["create_app"]
