"""The console while its record store fails: one line and the right status, never a 500 page
of a stack.

A store that does not answer (the PostgreSQL server gone, SQLite locked)
is 503: trying again later may work. Any other failure of the store is 500,
said in one line too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import TcpProxy, log_in, web_accounts, web_conf
from starlette.testclient import TestClient

from datacenter.config import Config
from datacenter.importing import Importer
from datacenter.service import health
from datacenter.web import create_app


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    with TcpProxy.to(pg_url) as found:
        yield found


@pytest.fixture
def conf(tmp_path: Path, pg_url: str, proxy: TcpProxy) -> Config:
    conf = web_conf(tmp_path)
    conf.database = proxy.via(pg_url)
    Importer(conf).close()  # the record store's tables
    web_accounts(conf)
    return conf


def test_with_the_record_store_gone_the_console_answers_503_in_one_line(
        conf: Config, proxy: TcpProxy) -> None:
    with TestClient(create_app(conf), raise_server_exceptions=False) as client:
        log_in(client, "admin")
        assert client.get("/metrics").status_code == 200
        proxy.cut()
        for path in ("/metrics", "/api/status", "/api/export/students"):
            answer = client.get(path)
            assert answer.status_code == 503, (path, answer.text)
            [reason] = answer.json()["error"].splitlines()
            assert "record store" in reason, reason
        page = client.get("/")
        assert page.status_code == 503
        assert "record store" in page.text and "Traceback" not in page.text
        proxy.restore()
        assert client.get("/metrics").status_code == 200


def test_another_failure_of_the_store_is_a_500_in_one_line(
        conf: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> object:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(health, "read_totals", broken)
    with TestClient(create_app(conf), raise_server_exceptions=False) as client:
        log_in(client, "viewer")
        answer = client.get("/metrics")
        assert answer.status_code == 500
        assert answer.json() == {"error": "the record store failed: "
                                          "database disk image is malformed"}
