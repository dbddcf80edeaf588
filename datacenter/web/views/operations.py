"""``/healthz`` and ``/metrics``: for the unit manager, the load balancer and Prometheus.

``/healthz`` needs no session: it says only alive, stuck or gone (200 or
503, the reason in one line), which whoever can reach the port may know.
``/metrics`` needs a viewer's session or script token (``datacenter user
token NAME``; Prometheus sends it with ``authorization: credentials_file``):
the volumes and timing of imports say what an institution is doing, and the
console may listen beyond the machine.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from datacenter.service.accounts import VIEWER
from datacenter.service.health import health, metrics
from datacenter.web.console import caller, console_of


def healthz(request: Request) -> Response:
    found = health(console_of(request).storage)
    return PlainTextResponse(found.detail + "\n", status_code=200 if found.alive else 503,
                             headers={"Cache-Control": "no-store"})


def metrics_text(request: Request) -> Response:
    caller(request, VIEWER)
    console = console_of(request)
    return PlainTextResponse(metrics(console.storage, console.conf.database),
                             media_type="text/plain; version=0.0.4; charset=utf-8",
                             headers={"Cache-Control": "no-store"})


ROUTES = [
    Route("/healthz", healthz, name="healthz"),
    Route("/metrics", metrics_text, name="metrics"),
]
