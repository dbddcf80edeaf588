"""``/healthz`` and ``/metrics``: for the unit manager, the load balancer and Prometheus.

``/healthz`` needs no session: to a caller without one it says only
``alive``, ``stuck`` or ``gone`` (200 or 503), which whoever can reach the
port may know; a viewer's session or token also gets the reason in one
line (which process, how old its heartbeat is, the file it imports).
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
from datacenter.web.auth import Denied
from datacenter.web.console import caller, console_of, maybe_caller


def healthz(request: Request) -> Response:
    console = console_of(request)
    found = health(console.storage, database=console.conf.database,
                   lease=console.conf.cluster.lease, own=console.own_instance())
    said = found.detail if _known(request) else found.state
    return PlainTextResponse(said + "\n", status_code=200 if found.alive else 503,
                             headers={"Cache-Control": "no-store"})


def _known(request: Request) -> bool:
    """Does *request* come from an account? (A bad token still gets the state word.)"""
    try:
        return maybe_caller(request) is not None
    except Denied:
        return False


def metrics_text(request: Request) -> Response:
    caller(request, VIEWER)
    console = console_of(request)
    return PlainTextResponse(metrics(console.storage, console.conf.database,
                                     lease=console.conf.cluster.lease,
                                     own=console.own_instance()),
                             media_type="text/plain; version=0.0.4; charset=utf-8",
                             headers={"Cache-Control": "no-store"})


ROUTES = [
    Route("/healthz", healthz, name="healthz"),
    Route("/metrics", metrics_text, name="metrics"),
]
