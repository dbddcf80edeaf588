"""Several instances on one storage with PostgreSQL; one service per storage with SQLite.

Every test here uses a PostgreSQL database of its own (skipped without a
server, failed in CI), except the one that shows what SQLite says to a
second service.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from helpers import REPO_CONFIG, TcpProxy, faculties, serving, wait_for

from datacenter import config
from datacenter.cli import main as datacenter_main
from datacenter.config import Config
from datacenter.importing.importer import Importer
from datacenter.records import migrations
from datacenter.records.claims import (
    ClaimBook,
    ClaimedError,
    ClaimLostError,
    claims_left,
    list_instances,
)
from datacenter.records.postgres import PostgresStore
from datacenter.records.schema import load_processors

PYTHON_M = [sys.executable, "-m", "datacenter"]


@pytest.fixture
def conf(tmp_path: Path, pg_url: str) -> Config:
    """The repository's config, quick, with the record store in a PostgreSQL database."""
    text = REPO_CONFIG.replace("settle  = 2.0", "settle  = 0.2").replace("rescan  = 60",
                                                                        "rescan  = 1")
    path = tmp_path / "datacenter.toml"
    path.write_text(text + "\n[cluster]\nlease = 2\n")
    conf = config.load(str(path))
    conf.database = pg_url
    return conf


def _finished_sources(conf: Config) -> list[str]:
    folder = os.path.join(conf.storage, "finished")
    return sorted(n for n in os.listdir(folder) if not n.endswith(".finished.csv"))


def _ledger(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as db:
        return [(str(s), int(d)) for s, d in db.execute(
            "SELECT source, distributed FROM datacenter_jobs ORDER BY source")]


def _codes(url: str) -> list[str]:
    with psycopg.connect(url) as db:
        return [str(c) for (c,) in db.execute('SELECT code FROM "rec_faculties" ORDER BY code')]


# -- the schema -----------------------------------------------------------------------------


def test_two_stores_opening_a_new_database_at_once_make_its_schema_once(
        pg_url: str) -> None:
    schemas = load_processors({
        "things": {"key": ["id"], "fields": {"id": "str"}},
        "parts": {"key": ["id"], "fields": {"id": "str", "thing": "str"},
                  "parents": {"thing": "things"}}})  # an index too
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresStore(pg_url, schemas))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT version FROM datacenter_schema").fetchall() == [
            (migrations.CURRENT,)]
    for store in opened:
        store.close()
    again = PostgresStore(pg_url, schemas)  # idempotent: a current schema is left as it is
    again.close()


def test_a_database_of_a_later_version_is_refused(pg_url: str) -> None:
    PostgresStore(pg_url, {}).close()
    with psycopg.connect(pg_url) as db:
        db.execute("UPDATE datacenter_schema SET version = version + 1")
    with pytest.raises(migrations.SchemaVersionError, match="made by a later datacenter"):
        PostgresStore(pg_url, {})


# -- claims and leases ------------------------------------------------------------------------


def test_a_claim_keeps_others_off_until_its_lease_runs_out(pg_url: str, tmp_path: Path) -> None:
    PostgresStore(pg_url, {}).close()
    storage = str(tmp_path)
    first = ClaimBook(pg_url, storage, lease=0.6)
    second = ClaimBook(pg_url, storage, lease=0.6)
    try:
        token = first.claim("x.csv", "1:2:3")
        with pytest.raises(ClaimedError, match=f"in hand by instance {first.instance}"):
            second.claim("x.csv", "1:2:3")
        first._stop.set()  # its heartbeats stop, as if it hung
        wait_for(lambda: _takes(second, "x.csv"), timeout=30)
        # The first one comes back: its claim was taken over, its commit is refused.
        store = PostgresStore(pg_url, {})
        with pytest.raises(ClaimLostError), store.transaction():
            first.confirm(store, "x.csv", token, 1)
        store.close()
    finally:
        first.close()
        second.close()


def _takes(book: ClaimBook, name: str) -> bool:
    try:
        book.claim(name, "1:2:3")
    except ClaimedError:
        return False
    return True


def test_the_ledger_refuses_a_second_unfiled_commit_of_one_source(pg_url: str) -> None:
    """Whatever the instances believe, one source of a storage commits once until filed."""
    store = PostgresStore(pg_url, {})
    job = {"source": "x.csv", "sha256": "0", "processor": "p", "mode": "create", "user": "u",
           "rows": 1, "ok": 1, "failed": 0, "outcome": "finished", "started": 0.0,
           "workdir": "w", "storage": "/s"}
    with store.transaction():
        store.record_job(**job)
    with pytest.raises(psycopg.errors.UniqueViolation), store.transaction():
        store.record_job(**job)
    store.mark_distributed([store.jobs()[0].id])
    with store.transaction():  # filed: the same name may come again (a new file)
        store.record_job(**job)
    assert [j.distributed for j in store.jobs()] == [False, True]
    store.close()


# -- services sharing a storage ----------------------------------------------------------------


def test_two_services_import_each_file_once_and_leave_no_claim(conf: Config) -> None:
    with serving(conf), serving(conf):
        for n in range(12):
            path = os.path.join(conf.storage, f"faculties_{n:02d}.csv")
            Path(path + ".part").write_text(faculties(f"F{n:02d}_", 5))
            os.rename(path + ".part", path)
        wait_for(lambda: len(_finished_sources(conf)) == 12)
        wait_for(lambda: claims_left(conf.database) == [])
    assert _finished_sources(conf) == [f"faculties_{n:02d}.csv" for n in range(12)]
    assert _ledger(conf.database) == [(f"faculties_{n:02d}.csv", 1) for n in range(12)]
    assert len(_codes(conf.database)) == 60 == len(set(_codes(conf.database)))


def test_status_lists_the_instances_and_move_storage_waits_for_them(
        conf: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATACENTER_DATABASE", conf.database)
    args = ["--config", str(conf.path)]
    with serving(conf) as service:
        instance = service.importer.claims.instance  # type: ignore[union-attr]
        assert datacenter_main([*args, "status"]) == 0
        out = capsys.readouterr().out
        assert "instances: 1 alive" in out and instance in out and f"process {os.getpid()}" in out
        target = tmp_path / "elsewhere"
        target.mkdir()
        assert datacenter_main([*args, "move-storage", str(target), "--move"]) == 1
        err = capsys.readouterr().err
        assert f"being worked on by 1 instance(s): {instance} (import on" in err
    assert os.listdir(target) == []


def test_with_sqlite_a_second_service_says_why_it_cannot_join(tmp_path: Path) -> None:
    path = tmp_path / "datacenter.toml"
    path.write_text(REPO_CONFIG)
    conf = config.load(str(path))
    conf.database = str(tmp_path / "records.sqlite")
    with contextlib.ExitStack() as stack:
        stack.enter_context(serving(conf))
        done = subprocess.run([*PYTHON_M, "--config", str(path), "serve"], capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 1
    assert "served already by process" in done.stderr
    assert "several instances need a PostgreSQL one" in done.stderr




# -- the database going away -------------------------------------------------------------------


def _log_lines(conf: Config, needle: str) -> list[str]:
    path = Path(conf.storage, "logs", "datacenter.log")
    return [line for line in path.read_text().splitlines() if needle in line]


def _drop(conf: Config, name: str, text: str) -> str:
    path = os.path.join(conf.storage, name)
    Path(path + ".part").write_text(text)
    os.rename(path + ".part", path)
    return path


def test_the_database_going_away_keeps_every_file_and_is_said_once(conf: Config) -> None:
    url = conf.database
    with TcpProxy.to(url) as proxy:
        conf.database = proxy.via(url)
        with serving(conf) as service:
            _drop(conf, "faculties_a.csv", faculties("A", 3))
            wait_for(lambda: "faculties_a.csv" in _finished_sources(conf))
            proxy.cut()
            waiting = _drop(conf, "faculties_b.csv", faculties("B", 4))
            wait_for(lambda: _log_lines(conf, "the record store does not answer"))
            wait_for(lambda: service.verdicts.note("faculties_b.csv") is not None)  # to retry
            assert os.path.exists(waiting)  # kept where it is
            assert os.listdir(os.path.join(conf.storage, ".datacenter", "jobs")) == []
            proxy.restore()
            wait_for(lambda: "faculties_b.csv" in _finished_sources(conf))
            wait_for(lambda: claims_left(url) == [])
    assert len(_log_lines(conf, "the record store does not answer")) == 1
    assert _log_lines(conf, "the record store answers again")
    assert _ledger(url) == [("faculties_a.csv", 1), ("faculties_b.csv", 1)]
    assert _codes(url) == [f"A{i}" for i in range(3)] + [f"B{i}" for i in range(4)]


# -- the kill soak -----------------------------------------------------------------------------


def _serve(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*PYTHON_M, "--config", str(path), "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pending_rows(storage: str) -> list[str]:
    rows = []
    for name in os.listdir(storage):
        if name.endswith(".pending.csv"):
            lines = Path(storage, name).read_text().splitlines()[1:]
            rows += [line.split(",")[0] for line in lines if line]
    return sorted(rows)


def _settled(conf: Config, url: str, names: list[str]) -> bool:
    """Every source filed, nothing in hand: no claim, intent, job folder or unfiled import."""
    storage = conf.storage
    filed = [n for folder in ("finished", "unfinished")
             for n in os.listdir(os.path.join(storage, folder)) if n in names]
    state = os.path.join(storage, ".datacenter")
    leftovers = [n for area in ("journal", "staging", "jobs")
                 for n in os.listdir(os.path.join(state, area)) if n != "failed"]
    settled = (sorted(filed) == sorted(names) and not leftovers and claims_left(url) == []
               and all(distributed for _, distributed in _ledger(url)))
    if not settled:  # what is left, for the message of a timeout
        _settled.left = (sorted(set(names) - set(filed)), leftovers,  # type: ignore[attr-defined]
                         claims_left(url))
    return settled


@pytest.mark.slow
def test_three_instances_killed_and_cut_off_import_everything_exactly_once(
        tmp_path: Path, pg_url: str) -> None:
    """Three ``serve`` processes; files arriving; a random one SIGKILLed and restarted
    every second or so; the database cut off for two seconds through a proxy."""
    rng = random.Random(17)
    names = [f"faculties_{n:02d}.csv" for n in range(36)]
    with TcpProxy.to(pg_url) as proxy:
        text = (REPO_CONFIG.replace("settle  = 2.0", "settle  = 0.1")
                .replace("rescan  = 60", "rescan  = 0.5")
                .replace('database = "records.sqlite"', f'database = "{proxy.via(pg_url)}"'))
        path = tmp_path / "datacenter.toml"
        path.write_text(text + "\n[cluster]\nlease = 1\n")
        conf = config.load(str(path))
        os.makedirs(conf.storage)
        instances = [_serve(path) for _ in range(3)]
        kills = 0
        try:
            for n, name in enumerate(names):
                # 4 good rows and one without its required title: it stays pending.
                _drop(conf, name, faculties(f"F{n:02d}_", 4) + f"F{n:02d}_X,\n")
                if n % 4 == 3:
                    victim = rng.randrange(3)
                    instances[victim].kill()  # SIGKILL
                    instances[victim].wait()
                    instances[victim] = _serve(path)
                    kills += 1
                if n == 18:
                    proxy.cut()
                if n == 24:
                    proxy.restore()
                # Files arrive over time, not at once (a pace, not a wait for a result).
                threading.Event().wait(0.25 + rng.random() / 4)
            try:
                wait_for(lambda: _settled(conf, pg_url, names), timeout=120)
            except AssertionError:
                raise AssertionError(f"left: {_settled.left}") from None  # type: ignore[attr-defined]
        finally:
            for instance in instances:
                instance.terminate()
            for instance in instances:
                instance.wait(timeout=60)
    codes = _codes(pg_url)
    assert codes == sorted(f"F{n:02d}_{i}" for n in range(36) for i in range(4))
    assert _pending_rows(conf.storage) == sorted(f"F{n:02d}_X" for n in range(36))
    finished = sorted(os.listdir(os.path.join(conf.storage, "unfinished")))
    assert finished == names  # each source once, beside its pending rows
    assert [source for source, _ in _ledger(pg_url)] == names  # one commit each
    assert kills == 9


def test_serve_waits_for_a_database_that_does_not_answer_yet(tmp_path: Path,
                                                             pg_url: str) -> None:
    with TcpProxy.to(pg_url) as proxy:
        proxy.cut()
        text = REPO_CONFIG.replace('database = "records.sqlite"',
                                   f'database = "{proxy.via(pg_url)}"')
        path = tmp_path / "datacenter.toml"
        path.write_text(text.replace("settle  = 2.0", "settle  = 0.1"))
        conf = config.load(str(path))
        os.makedirs(conf.storage)
        _drop(conf, "faculties.csv", faculties("F", 2))
        serve = subprocess.Popen([*PYTHON_M, "--config", str(path), "serve"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert serve.stderr is not None
            first = serve.stderr.readline()
            assert "does not answer" in first and "waiting for it" in first
            assert os.path.exists(os.path.join(conf.storage, "faculties.csv"))
            proxy.restore()
            wait_for(lambda: os.path.exists(os.path.join(conf.storage, "finished",
                                                         "faculties.csv")))
        finally:
            serve.terminate()
            assert serve.wait(timeout=60) == 0
    assert _codes(pg_url) == ["F0", "F1"]


# -- an instance that carries on anew --------------------------------------------------------


def test_an_instance_that_carries_on_anew_names_its_job_folders_after_its_new_id(
        conf: Config) -> None:
    importer = Importer(conf)
    try:
        claims = importer.claims
        assert claims is not None
        old = claims.instance
        claims._register()  # what a silence past the lease leads to: a new id
        assert claims.instance != old
        path = os.path.join(conf.storage, "faculties.csv")
        Path(path).write_text(faculties("F", 2))
        outcome = importer.import_file(path)
        assert outcome.ok == 2
        [job] = importer.store.jobs()
        assert os.path.basename(job.workdir).startswith(f"{claims.instance}.")
    finally:
        importer.close()


def test_a_commit_from_a_job_folder_named_after_a_former_id_is_refused(conf: Config) -> None:
    importer = Importer(conf)
    try:
        claims = importer.claims
        assert claims is not None
        make = importer.folders.make

        def make_then_renew() -> str:
            workdir = make()
            claims._register()  # the instance was silent past its lease meanwhile
            return workdir

        importer.folders.make = make_then_renew  # type: ignore[method-assign]
        path = os.path.join(conf.storage, "faculties.csv")
        Path(path).write_text(faculties("F", 2))
        with pytest.raises(ClaimLostError):
            importer.import_file(path)
        assert importer.store.jobs() == []
        assert Path(path).read_text() == faculties("F", 2)
    finally:
        importer.close()


def test_an_importer_that_fails_to_open_leaves_no_live_instance(
        conf: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    def recover(self: Importer) -> int:
        raise psycopg.OperationalError("the server closed the connection")

    monkeypatch.setattr(Importer, "recover", recover)
    with pytest.raises(psycopg.OperationalError):
        Importer(conf)
    assert list_instances(conf.database, conf.storage, conf.cluster.lease) == []
    wait_for(lambda: not any(t.name == "datacenter-heartbeat" for t in threading.enumerate()))


def test_instances_dead_for_a_lease_elsewhere_are_forgotten_when_an_importer_opens(
        conf: Config) -> None:
    """One of another machine (or of before a reboot) that never said goodbye."""
    Importer(conf).close()  # the schema
    with psycopg.connect(conf.database, autocommit=True) as db:
        db.execute("INSERT INTO datacenter_instances (id, host, machine, pid, kind, storage, "
                   "started, heartbeat) VALUES ('ghost', 'elsewhere', 'elsewhere/old-boot', "
                   "4242, 'serve', %s, now() - interval '1 day', now() - interval '1 day')",
                   (os.path.realpath(conf.storage),))
    assert [i.id for i in list_instances(conf.database, conf.storage, conf.cluster.lease)] \
        == ["ghost"]
    importer = Importer(conf)
    try:
        found = list_instances(conf.database, conf.storage, conf.cluster.lease)
        assert [i.id for i in found] == [importer.claims.instance]  # type: ignore[union-attr]
    finally:
        importer.close()
