"""``datacenter serve``: the watch service's options, signals and exit codes.

SIGTERM and a first Ctrl-C stop after the file in hand; a second Ctrl-C
stops at once (recovery on the next start loses nothing). The exit codes
are in :data:`DESCRIPTION`, which ``datacenter serve --help`` shows: a
clean stop is 0 whatever was rejected meanwhile (a unit manager would
otherwise call the service failed after every stop that followed a bad
upload); rejections show in ``status`` and the log.

``serve`` is one of the two commands that create a storage (``init`` is the
other), never in a folder that does not exist. It says what it serves in
one line on stderr when it starts; ``--once`` only on a terminal, since
cron mails whatever a job prints and a quiet run should stay quiet.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from datacenter.cli.common import record_store, settings
from datacenter.cli.registry import CommandError, command
from datacenter.cli.web import announce, console_thread, listen_option, listening
from datacenter.config import Config, is_postgres
from datacenter.importing import Importer
from datacenter.importing.progress import describe_progress
from datacenter.records.backend import UNAVAILABLE_ERRORS
from datacenter.records.migrations import safe_url
from datacenter.service import KINDS, Service, service_running
from datacenter.service.cluster import SQLITE_ALONE
from datacenter.service.service import STILL_WRITING
from datacenter.storage import LockHeldError, creation
from datacenter.storage.logs import printable

DESCRIPTION = f"""Import each complete file dropped into the storage, exactly once.
With --once, import every complete file present at the start, then exit.
Exit status: 0 done; 1 another service holds the storage, or (--once) a
file could not be imported (rejected as a whole, or failing again and again:
named on stderr); {STILL_WRITING} (--once) a file was still being written (it changed
during the settle time): named on stderr and left for the next run.
Stopped by SIGTERM or Ctrl-C, serve exits 0 whatever it rejected meanwhile:
rejected files show in `datacenter status` and the log. When it starts, it
names the storage, the config, the watch mode and the record store on
stderr (--once: only on a terminal). A missing storage is created, in a
folder that must exist."""


#: ``--web`` given without an address: the config's ``[web] listen``.
_FROM_CONFIG = "config"


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--polling", action="store_true",
                        help="poll instead of inotify (NFS, SMB); also [watch] polling")
    parser.add_argument("--once", action="store_true",
                        help="import every complete file present now, then exit "
                             "(exit status below)")
    parser.add_argument("--web", type=listen_option, metavar="HOST:PORT", nargs="?",
                        const=_FROM_CONFIG,
                        help="also serve the web console, in this process: there, or "
                             "where [web] listen says (default 127.0.0.1:8080; port 0: a "
                             "free one; see `datacenter web`)")


@command("serve", "watch the storage, import what arrives", _options, description=DESCRIPTION)
def run(args: argparse.Namespace) -> int:
    conf = settings(args)
    if args.web and args.once:
        raise CommandError("--web and --once do not go together: the console would stop "
                           "with the run (use `datacenter web` beside it)")
    shared = is_postgres(conf.database)  # then any number of instances serve it
    holder = None if shared else service_running(conf.storage)
    if holder is not None:
        raise CommandError(f"{conf.storage} is served already by {holder}: {SQLITE_ALONE}")
    creation.check_parent(conf.storage)
    new = not os.path.isdir(conf.storage)
    where = conf.web.listen if args.web == _FROM_CONFIG else args.web
    sock = listening(where) if where else None  # a port in use stops it before anything
    try:
        importer = _open(conf)  # opening it recovers what a kill interrupted
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    try:
        service = Service(importer, conf.watch, polling=args.polling or conf.watch.polling,
                          once=args.once)
        _announce(conf, importer.storage, new, _mode(service),
                  importer.claims.instance if importer.claims is not None else "")
        with _signals(service), _console(conf, sock, importer):
            return service.drain() if args.once else service.serve()
    except LockHeldError as error:
        raise CommandError(f"{conf.storage} is served already: {error}: {SQLITE_ALONE}"
                           ) from None
    finally:
        importer.close()


@contextlib.contextmanager
def _console(conf: Config, sock: socket.socket | None, importer: Importer) -> Iterator[None]:
    """The web console in a thread of this process while the service runs (with --web).

    The service loop keeps the main thread and its signals: SIGTERM or
    Ctrl-C stop the loop after the file in hand, then the console.
    """
    if sock is None:
        yield
        return
    announce(conf, sock)
    claims = importer.claims  # with PostgreSQL the console reports on this instance
    with console_thread(conf, sock, importer.processors,
                        None if claims is None else lambda: claims.instance):
        yield


def _open(conf: Config) -> Importer:
    """The importer; with PostgreSQL, once the server answers.

    A server that does not answer yet (restarting, or the network not up)
    is said once on stderr and asked again with back-off, up to every 30
    seconds: the service waits for its record store instead of exiting.
    """
    wait, said = 1.0, False
    while True:
        try:
            return Importer(conf, kind="serve")
        except UNAVAILABLE_ERRORS as error:
            if not is_postgres(conf.database):
                raise
            if not said:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else "?"
                print(printable(f"datacenter: the record store {safe_url(conf.database)} does "
                                f"not answer ({reason}); waiting for it"),
                      file=sys.stderr, flush=True)
                said = True
            time.sleep(wait)
            wait = min(wait * 2, 30.0)


def _mode(service: Service) -> str:
    return "once" if service.once else "polling" if service.polling else "inotify"


def _announce(conf: Config, storage: str, new: bool, mode: str, instance: str = "") -> None:
    """The start line on stderr: what is served, from which config, how, into which store.

    ``--once`` says it only on a terminal (cron mails any output); a store
    that no config file chose is named then all the same.
    """
    if mode == "once" and not sys.stderr.isatty():
        record_store(conf)
        return
    config = conf.path or "none (--storage alone)"
    print(printable(f"datacenter: serving {storage}{' (new)' if new else ''}; config {config}; "
                    f"watch {mode}; record store {safe_url(conf.database)}; "
                    f"process {os.getpid()}"
                    + (f"; instance {instance}" if instance else "")),
          file=sys.stderr, flush=True)


@contextlib.contextmanager
def _signals(service: Service) -> Iterator[None]:
    """SIGTERM and a first Ctrl-C stop after the file in hand; a second Ctrl-C aborts.

    The first Ctrl-C says what is being finished: a long import can take
    minutes, and silence would look like a hang.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        service.stop(wake=False)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if signum == signal.SIGINT:
            _tell(_finishing(service))

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _finishing(service: Service) -> str:
    """What the first Ctrl-C answers: the file in hand, and that a second one is safe."""
    in_hand, meter = service.in_hand, service.meter
    if in_hand is None:
        return "datacenter: stopping"
    done = f" ({meter.rows:,} rows done)" if meter is not None else ""
    return (f"datacenter: finishing {printable(in_hand)}{done}; press Ctrl-C again to stop "
            "at once \N{EM DASH} nothing is lost")


def _tell(line: str) -> None:
    """Write *line* on stderr from a signal handler.

    Straight to the file descriptor: the interrupted code may be inside a
    write to ``sys.stderr``, whose buffer lock would refuse a second one.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no real stderr
        os.write(sys.stderr.fileno(), (line + "\n").encode("utf-8", "replace"))


def describe_status(status: dict[str, Any]) -> list[str]:
    """Lines for ``datacenter status``, from :func:`~datacenter.service.service_status`."""
    state = f"running ({status['holder']})" if status.get("running") else \
        status.get("state", "never ran here")
    queue, in_hand = status.get("queue", {}).get("count", 0), status.get("in_hand")
    progress = describe_progress(status.get("progress"))
    lines = [f"service: {state}" + (f", {queue} file(s) settling" if queue else "")
             + (f", importing {in_hand}" if in_hand else "")
             + (f": {progress}" if in_hand and progress else "")]
    for kind in KINDS:
        lines += [f"  {kind:<9} {note.get('reason')}" for note in status.get(kind, [])]
    for job in status.get("last_imports", [])[:5]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.get("at", 0)))
        lines.append(f"  imported  {when}  {job.get('source')}: {job.get('ok')} ok, "
                     f"{job.get('failed')} failed")
    return lines
