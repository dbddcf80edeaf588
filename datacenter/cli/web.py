"""``datacenter web`` (the console alone) and ``datacenter user`` (its accounts).

The console listens on ``--listen HOST:PORT``, else ``[web] listen``
(default ``127.0.0.1:8080``); port 0 takes a free one, and the start line
on stderr names the address it got. It works with or without a service on
the storage; ``datacenter serve --web HOST:PORT`` runs both in one process
(:func:`listening` and :func:`console_thread` are shared with it).

Accounts live in the storage (``.datacenter/accounts.json``); the
password comes from a prompt (asked twice), or from the first line of
standard input with ``--password-stdin``. ``user token NAME`` prints a new
script token once (the old one stops working); only its hash is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator

import uvicorn

from datacenter.cli.common import settings
from datacenter.cli.registry import CommandError, command, emit, say
from datacenter.config import Config, parse_listen
from datacenter.importing import Processors, resolve_processors
from datacenter.service.accounts import ROLES, Accounts
from datacenter.storage import creation
from datacenter.storage.logs import printable
from datacenter.web import create_app


def listen_option(value: str) -> str:
    """An argparse type: ``HOST:PORT`` (or ``config``: the config's ``[web] listen``)."""
    if value == "config":
        return value
    try:
        parse_listen(value)
    except ValueError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None
    return value


def listening(address: str) -> socket.socket:
    """A socket bound to *address* and listening; CommandError naming it when it cannot be."""
    host, port = parse_listen(address)
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host
                                    else socket.AF_INET, reuse_port=False, backlog=128)
    except OSError as problem:
        raise CommandError(f"cannot listen on {address}: {problem.strerror or problem}") \
            from None


def address_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def console_server(conf: Config, processors: Processors | None = None,
                   instance: Callable[[], str] | None = None) -> uvicorn.Server:
    app = create_app(conf, processors, instance=instance)
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                         lifespan="on", server_header=False))


def announce(conf: Config, sock: socket.socket) -> None:
    """The console's start line on stderr, and how to make the first account if none."""
    print(printable(f"datacenter: console on {address_of(sock)} for {conf.storage}"),
          file=sys.stderr, flush=True)
    if not Accounts(conf.storage):
        print("datacenter: no accounts yet; create the first with "
              "`datacenter user add NAME --role admin`", file=sys.stderr, flush=True)


@contextlib.contextmanager
def console_thread(conf: Config, sock: socket.socket, processors: Processors | None = None,
                   instance: Callable[[], str] | None = None) -> Iterator[uvicorn.Server]:
    """The console served from *sock* in a thread, until the block ends (then stopped)."""
    server = console_server(conf, processors, instance)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="console", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _web_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", type=listen_option, metavar="HOST:PORT",
                        help="where the console listens (default: [web] listen, else "
                             "127.0.0.1:8080; port 0: a free one)")


@command("web", "run the web console alone (with or without a running service)",
         _web_options)
def _web(args: argparse.Namespace) -> int:
    conf = settings(args)
    creation.require(conf.storage)
    processors = resolve_processors(conf)
    sock = listening(args.listen or conf.web.listen)
    server = console_server(conf, processors)
    announce(conf, sock)
    try:
        with _stopped_by_signals(server):
            server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


@contextlib.contextmanager
def _stopped_by_signals(server: uvicorn.Server) -> Iterator[None]:
    """SIGTERM and Ctrl-C stop the console cleanly, with exit status 0.

    uvicorn handles them while it runs, then raises them again once it has
    stopped, for the handlers that were there before: these, which only ask
    it to stop (it has), so a unit manager sees a clean stop.
    """
    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _user_options(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                help="add, list, remove, passwd or token")
    add = sub.add_parser("add", help="add an account")
    add.add_argument("name", metavar="NAME", help="the account's name")
    add.add_argument("--role", choices=ROLES, required=True,
                     help="viewer reads; manager also uploads, fixes, discards and exports; "
                          "admin also manages accounts")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    sub.add_parser("list", help="list the accounts").add_argument(
        "--json", action="store_true", help="machine-readable output")
    sub.add_parser("remove", help="remove an account").add_argument(
        "name", metavar="NAME", help="the account to remove")
    passwd = sub.add_parser("passwd", help="set an account's password")
    passwd.add_argument("name", metavar="NAME", help="the account")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")
    sub.add_parser("token", help="print a new script token for an account (shown once)"
                   ).add_argument("name", metavar="NAME", help="the account")


@command("user", "the web console's accounts: add, list, remove, passwd, token", _user_options)
def _user(args: argparse.Namespace) -> int:
    conf = settings(args)
    creation.require(conf.storage)
    accounts = Accounts(conf.storage)
    if args.action == "add":
        account = accounts.add(args.name, args.role, _password(args.password_stdin))
        say(f"added {account.name} ({account.role})")
    elif args.action == "list":
        found = accounts.list()
        if args.json:
            emit([{"name": a.name, "role": a.role, "token": a.has_token} for a in found])
        elif not found:
            say("no accounts (datacenter user add NAME --role admin)")
        for a in [] if args.json else found:
            say(f"{a.name:<20} {a.role:<8}{'  (has a script token)' if a.has_token else ''}")
    elif args.action == "remove":
        accounts.remove(args.name)
        say(f"removed {args.name}")
    elif args.action == "passwd":
        if accounts.get(args.name) is None:
            raise CommandError(f"no account {args.name!r}")
        accounts.set_password(args.name, _password(args.password_stdin))
        say(f"password of {args.name} changed")
    else:
        token = accounts.new_token(args.name)
        print(token)
        print(f"datacenter: a new token for {args.name} (the old one no longer works); send "
              "it as 'Authorization: Bearer <token>'. It is shown only this once.",
              file=sys.stderr)
    return 0


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask the password on: use --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CommandError("the two passwords differ; nothing changed")
    return first
