"""The console in a real process: ``datacenter serve --web`` and ``datacenter web``.

One story end to end, over HTTP against the running command: a manager
uploads a file with a bad row, the service imports it (under her name),
she reads the failed row in the grid, fixes the cell, and the service
imports it; ``/healthz`` and ``/metrics`` say so; SIGTERM stops both the
loop and the console cleanly. Every wait is for a condition.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import PASSWORD, students_csv, wait_for

from datacenter import config

REPO = Path(__file__).resolve().parent.parent
PYTHON_M = [sys.executable, "-m", "datacenter"]


@pytest.fixture
def conf_path(tmp_path: Path) -> Path:
    """The repository's datacenter.toml, with a storage and store in tmp_path, quick."""
    text = (REPO / "datacenter.toml").read_text()
    text = text.replace("settle  = 2.0", "settle  = 0.2").replace("rescan  = 60", "rescan  = 1")
    path = tmp_path / "datacenter.toml"
    path.write_text(text)
    (tmp_path / "storage").mkdir()
    return path


class Running:
    """A ``datacenter`` process whose stderr lines are collected as they come."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        stream = self.proc.stderr
        assert stream is not None
        self._reader = threading.Thread(target=lambda: self.lines.extend(
            iter(stream.readline, "")))
        self._reader.start()

    def address(self) -> str:
        wait_for(lambda: self._console() or self.proc.poll() is not None)
        found = self._console()
        assert found, self.lines
        return found

    def _console(self) -> str | None:
        for line in self.lines:
            found = re.search(r"console on (http://[^ ]+/)", line)
            if found:
                return found.group(1)
        return None

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=60)
        return code


@contextlib.contextmanager
def running(*args: str) -> Iterator[Running]:
    process = Running([*PYTHON_M, *args])
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def cli(conf_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PYTHON_M, "--config", str(conf_path), *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def test_upload_fix_and_import_through_a_running_serve_web(conf_path: Path) -> None:
    conf = config.load(str(conf_path))
    with running("--config", str(conf_path), "serve", "--web", "127.0.0.1:0") as served:
        base = served.address()
        assert any("no accounts yet; create the first with `datacenter user add NAME "
                   "--role admin`" in line for line in served.lines)
        made = cli(conf_path, "user", "add", "alice", "--role", "manager", "--password-stdin",
                   stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        with httpx.Client(base_url=base, timeout=30) as web:
            wait_for(lambda: web.get("/healthz").status_code == 200)
            assert web.get("/healthz").text == "alive\n"  # the file it imports is not said
            csrf = web.post("/api/login", json={"username": "alice", "password": PASSWORD}
                            ).json()["csrf"]
            sent = students_csv("S1,Ada Obi,ada@example.org,2004-03-15,100,admitted",
                                "S2,Bo Eze,bo@example.org,2003-11-02,abc,admitted")
            uploaded = web.post("/api/uploads", headers={"X-CSRF-Token": csrf},
                                files={"file": ("students.csv", sent.encode())})
            assert uploaded.status_code == 201 and uploaded.json()["name"] == "students.csv"
            name = "students.create.pending.csv"
            wait_for(lambda: web.get(f"/api/pending/{name}").status_code == 200)
            first = web.get("/api/status").json()["last_imports"][0]
            assert (first["source"], first["user"], first["ok"], first["failed"]) == (
                "students.csv", "alice", 1, 1)
            grid = web.get(f"/api/pending/{name}").json()
            [row] = grid["rows"]
            assert row["fields"] == ["level"] and row["cells"]["level"] == "abc"
            fixed = {**row["cells"], "level": "200"}
            saved = web.put(f"/api/pending/{name}", headers={"X-CSRF-Token": csrf},
                            json={"rows": [{"cells": fixed}], "version": grid["version"]})
            assert saved.status_code == 200, saved.text
            wait_for(lambda: web.get(f"/api/pending/{name}").status_code == 404)
            last = web.get("/api/status").json()["last_imports"][0]
            assert (last["source"], last["user"], last["ok"], last["failed"]) == (
                name, "alice", 1, 0)
            assert sorted(web.get("/api/export/students", params={"format": "json"}).json(),
                          key=str) == sorted([
                {"student_id": "S1", "name": "Ada Obi", "email": "ada@example.org",
                 "birthday": "2004-03-15", "level": 100, "state": "admitted"},
                {"student_id": "S2", "name": "Bo Eze", "email": "bo@example.org",
                 "birthday": "2003-11-02", "level": 200, "state": "admitted"}], key=str)
            metrics = web.get("/metrics").text
            for line in ("datacenter_up 1", "datacenter_files_imported_total 2",
                         "datacenter_rows_imported_total 2", "datacenter_rows_failed_total 1",
                         "datacenter_queue_length 0", 'datacenter_import_duration_seconds_'
                         'bucket{le="+Inf"} 2', "datacenter_import_duration_seconds_count 2"):
                assert line in metrics.splitlines(), (line, metrics)
            assert re.search(r"^datacenter_seconds_since_last_import \d", metrics, re.M)
            log = Path(conf.storage, "logs", "datacenter.log").read_text()
            assert " - alice - uploaded: students.csv" in log
            assert " - alice - fixed: students.create.pending.csv" in log
        assert served.stop() == 0
    assert Path(conf.storage, "finished", "students.csv").is_file()
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "healthz", timeout=5)


def test_the_console_alone_answers_and_says_the_service_is_gone(conf_path: Path) -> None:
    with running("--config", str(conf_path), "web", "--listen", "127.0.0.1:0") as console:
        base = console.address()
        health = httpx.get(base + "healthz", timeout=30)
        assert health.status_code == 503
        assert health.text == "gone\n"
        assert httpx.get(base + "api/status", timeout=30).status_code == 401
        assert console.stop() == 0


def test_a_port_in_use_is_refused_before_anything_starts(conf_path: Path) -> None:
    with running("--config", str(conf_path), "web", "--listen", "127.0.0.1:0") as console:
        port = console.address().rsplit(":", 1)[1].strip("/")
        taken = cli(conf_path, "serve", "--web", f"127.0.0.1:{port}")
        assert taken.returncode == 1
        assert taken.stderr.startswith(f"datacenter: error: cannot listen on 127.0.0.1:{port}:")
        assert "serving" not in taken.stderr
        assert console.stop() == 0


def test_the_systemd_unit_runs_serve_web_restarts_on_failure_and_stops_on_sigterm() -> None:
    unit = (REPO / "deploy" / "datacenter.service").read_text()
    keys = dict(line.split("=", 1) for line in unit.splitlines()
                if "=" in line and not line.startswith("#"))
    assert keys["Type"] == "simple" and keys["Restart"] == "on-failure"
    assert keys["KillSignal"] == "SIGTERM"
    assert keys["ExecStart"].endswith(" serve --web")
    assert "deploy/datacenter.service" in (REPO / "README.md").read_text()


def test_serve_web_on_postgresql_says_alive_while_it_runs_and_gone_after(
        conf_path: Path, pg_url: str) -> None:
    """Instances of a PostgreSQL store hold no serve.lock: their liveness is the cluster's."""
    text = conf_path.read_text().replace('database = "records.sqlite"', f'database = "{pg_url}"')
    conf_path.write_text(text)
    with running("--config", str(conf_path), "serve", "--web", "127.0.0.1:0") as served, \
            running("--config", str(conf_path), "web", "--listen", "127.0.0.1:0") as console:
        base, beside = served.address(), console.address()
        made = cli(conf_path, "user", "add", "alice", "--role", "manager", "--password-stdin",
                   stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        with httpx.Client(base_url=base, timeout=30) as web:
            wait_for(lambda: web.get("/healthz").status_code == 200)
            assert web.get("/healthz").text == "alive\n"
            web.post("/api/login", json={"username": "alice", "password": PASSWORD})
            assert "datacenter_up 1" in web.get("/metrics").text.splitlines()
        wait_for(lambda: httpx.get(beside + "healthz", timeout=30).status_code == 200)
        status = cli(conf_path, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["service"]["running"] is True
        assert served.stop() == 0
        wait_for(lambda: httpx.get(beside + "healthz", timeout=30).status_code == 503)
        assert httpx.get(beside + "healthz", timeout=30).text == "gone\n"
        assert console.stop() == 0
    status = cli(conf_path, "status", "--json")
    assert json.loads(status.stdout)["service"]["running"] is False
