"""``datacenter serve``: files dropped in every usual way are imported once, complete.

The service runs in a thread (or, where signals and kills matter, in a
subprocess) against a storage in tmp_path, with ``settle = 0.2`` and
``rescan = 1``. Nothing here sleeps in the hope that something happened
meanwhile: tests wait for a state (a file filed away, a ledger row, the
service's scans), and where a writer's pace matters the service's
readiness clock is the test's own (:class:`ManualClock`), so that no stall
of a busy machine can change what the service sees. Timeouts are generous
upper bounds, never targets.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import ManualClock, count, faculties, jobs, serving, wait_for

from datacenter import config
from datacenter.cli import main as datacenter_main
from datacenter.config import Config
from datacenter.importing.importer import Importer
from datacenter.service import Service, service_running, service_status
from datacenter.service import service as service_module
from datacenter.service.watcher import OVERFLOW_LOGGER, HintQueue
from datacenter.testing import FaultConfig, FaultInjector

REPO = Path(__file__).resolve().parent.parent
PYTHON_M = [sys.executable, "-m", "datacenter"]  # the `datacenter` command


@pytest.fixture
def conf_path(tmp_path: Path) -> Path:
    """The repository's datacenter.toml, with a storage and store in tmp_path, quick."""
    text = (REPO / "datacenter.toml").read_text()
    text = text.replace("settle  = 2.0", "settle  = 0.2").replace("rescan  = 60", "rescan  = 1")
    path = tmp_path / "datacenter.toml"
    path.write_text(text)
    return path


@pytest.fixture
def conf(conf_path: Path) -> Config:
    conf = config.load(str(conf_path))
    assert conf.watch.settle == 0.2 and conf.watch.rescan == 1
    return conf


def seen(service: Service, name: str, state: str, size: int) -> bool:
    """Has the service taken note of *name* at *size* bytes, as *state* (``closed``...)?"""
    track = service.readiness._tracks.get(name)
    return track is not None and track.state.value == state and track.ident.size == size


def rescanned(service: Service, times: int = 1) -> Callable[[], bool]:
    """A condition: the service scanned the root *times* more times from now on."""
    target = service.scans + times
    return lambda: service.scans >= target


def quiet(service: Service) -> bool:
    """Nothing waits to settle and nothing is in hand."""
    return not len(service.readiness) and service.in_hand is None


def finished(conf: Config, name: str) -> bool:
    return os.path.exists(os.path.join(conf.storage, "finished", name))


def log_lines(conf: Config, needle: str) -> list[str]:
    path = os.path.join(conf.storage, "logs", "datacenter.log")
    return [line for line in Path(path).read_text().splitlines() if needle in line]


def drop(conf: Config, name: str, text: str) -> None:
    """Write in a sibling folder, rename in: how careful programs deliver files."""
    outside = Path(conf.storage).parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / name).write_text(text)
    os.rename(outside / name, os.path.join(conf.storage, name))


# -- ways of delivering a file --------------------------------------------------------------


def test_files_written_in_chunks_are_imported_once_complete(conf: Config) -> None:
    conf.watch.rescan = 60  # events tell; and a file held open waits max(rescan, settle)
    clock = ManualClock()
    with serving(conf, clock=clock) as service:
        two_opens = os.path.join(conf.storage, "faculties_two.csv")
        with open(two_opens, "w") as handle:  # written, closed...
            handle.write(faculties("T", 50))
        wait_for(lambda: seen(service, "faculties_two.csv", "closed",
                              os.path.getsize(two_opens)))
        clock.advance(service, 0.1)  # ...less than settle later, appended to
        with open(two_opens, "a") as handle:
            handle.write(faculties("U", 50).split("\n", 1)[1])
        one_open = os.path.join(conf.storage, "faculties_one.csv")
        with open(one_open, "w") as handle:  # a writer pausing longer than settle
            handle.write(faculties("O", 50))
            handle.flush()
            wait_for(lambda: seen(service, "faculties_one.csv", "writing",
                                  os.path.getsize(one_open)))
            clock.advance(service, 0.5)
            handle.write(faculties("P", 50).split("\n", 1)[1])
        wait_for(lambda: seen(service, "faculties_one.csv", "closed",
                              os.path.getsize(one_open)))
        clock.advance(service, 1.0)  # both settled now
        wait_for(lambda: finished(conf, "faculties_two.csv")
                 and finished(conf, "faculties_one.csv"))
        scanned = rescanned(service)
        service.queue.request_rescan()  # a scan later: still once
        wait_for(scanned)
        wait_for(lambda: quiet(service))
    assert sorted(jobs(conf)) == ["faculties_one.csv", "faculties_two.csv"]
    assert count(conf, "faculties") == 200


def test_copy_move_and_write_then_rename_each_import_once(conf: Config, tmp_path: Path) -> None:
    source = tmp_path / "faculties_copied.csv"
    source.write_text(faculties("C", 5))
    with serving(conf) as service:
        shutil.copyfile(source, os.path.join(conf.storage, "faculties_copied.csv"))
        drop(conf, "faculties_moved.csv", faculties("M", 5))
        part = os.path.join(conf.storage, ".faculties_renamed.csv.part")
        Path(part).write_text(faculties("R", 5))
        os.rename(part, os.path.join(conf.storage, "faculties_renamed.csv"))
        names = ["faculties_copied.csv", "faculties_moved.csv", "faculties_renamed.csv"]
        wait_for(lambda: all(finished(conf, n) for n in names))
        wait_for(rescanned(service))  # a reconcile scan later: still once
        wait_for(lambda: quiet(service))
    assert sorted(jobs(conf)) == names
    assert count(conf, "faculties") == 15


def test_a_new_file_under_an_imported_name_is_new_data(conf: Config) -> None:
    with serving(conf):
        drop(conf, "faculties_daily.csv", faculties("A", 3))
        wait_for(lambda: jobs(conf) == ["faculties_daily.csv"])
        wait_for(lambda: not os.path.exists(os.path.join(conf.storage, "faculties_daily.csv")))
        drop(conf, "faculties_daily.csv", faculties("B", 4))
        wait_for(lambda: len(jobs(conf)) == 2)
    assert count(conf, "faculties") == 7


def test_files_present_before_the_start_are_imported(conf: Config) -> None:
    Importer(conf).close()  # make the storage
    old = Path(conf.storage, "faculties_old.csv")
    old.write_text(faculties("O", 2))
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    Path(conf.storage, "faculties_fresh.csv").write_text(faculties("F", 2))
    with serving(conf):
        wait_for(lambda: len(jobs(conf)) == 2)
    assert count(conf, "faculties") == 4


def test_polling_imports_renamed_and_written_files(conf: Config) -> None:
    clock = ManualClock()
    with serving(conf, polling=True, clock=clock) as service:
        assert service.watcher.polling
        drop(conf, "faculties_polled.csv", faculties("P", 3))
        slow = os.path.join(conf.storage, "faculties_slow.csv")
        with open(slow, "w") as handle:
            handle.write(faculties("S", 3))
            handle.flush()
            wait_for(lambda: seen(service, "faculties_slow.csv", "unknown",
                                  os.path.getsize(slow)))
            clock.advance(service, 0.1)  # less than settle: no import yet
            handle.write("S9,last\n")
        wait_for(lambda: seen(service, "faculties_slow.csv", "unknown", os.path.getsize(slow)))
        clock.advance(service, 1.0)
        wait_for(lambda: len(jobs(conf)) == 2)
    assert count(conf, "faculties") == 7


# -- what is never picked up --------------------------------------------------------------------


def test_hidden_temporary_symlinked_and_other_files_are_left_alone(
        conf: Config, tmp_path: Path) -> None:
    elsewhere = tmp_path / "secret.csv"
    elsewhere.write_text(faculties("X", 1))
    ignored = [".faculties_hidden.csv", "faculties.csv.part", "faculties.csv.tmp",
               "faculties.csv.crdownload", "faculties.csv~", "faculties.txt"]
    with serving(conf) as service:
        for name in ignored:
            Path(conf.storage, name).write_text(faculties("I", 1))
        os.mkdir(os.path.join(conf.storage, "faculties_folder.csv"))
        os.symlink(elsewhere, os.path.join(conf.storage, "faculties_link.csv"))
        drop(conf, "faculties_real.csv", faculties("R", 1))
        wait_for(lambda: jobs(conf) == ["faculties_real.csv"])
        wait_for(rescanned(service, 2))  # two reconcile scans
        wait_for(lambda: quiet(service))
        status = service_status(conf.storage)
    assert jobs(conf) == ["faculties_real.csv"]
    for name in [*ignored, "faculties_folder.csv", "faculties_link.csv"]:
        assert os.path.lexists(os.path.join(conf.storage, name)), name
    assert len(log_lines(conf, "faculties_link.csv")) == 1
    assert "symbolic link" in log_lines(conf, "faculties_link.csv")[0]
    assert [n["name"] for n in status["rejected"]] == ["faculties_link.csv"]


# -- events that go missing ---------------------------------------------------------------------


def test_a_failing_handler_does_not_stop_later_pickups(
        conf: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    conf.watch.rescan = 60  # pick-ups below come from events, not from periodic scans
    real_put = HintQueue.put
    calls = []

    def put_failing_once(self: HintQueue, name: str, hint: object) -> None:
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("a bug in the handler")
        real_put(self, name, hint)  # type: ignore[arg-type]

    monkeypatch.setattr(HintQueue, "put", put_failing_once)
    with serving(conf) as service:
        drop(conf, "faculties_first.csv", faculties("A", 1))
        wait_for(lambda: service.watcher.counts["handler_errors"] == 1)
        wait_for(lambda: finished(conf, "faculties_first.csv"))  # the rescan it asked for
        for n in range(3):
            drop(conf, f"faculties_later{n}.csv", faculties(f"L{n}-", 1))
        wait_for(lambda: len(jobs(conf)) == 4)
        assert service.watcher.problem() is None


def test_an_overflow_leads_to_a_rescan_that_finds_every_file(
        conf: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    conf.watch.rescan = 60
    lost: set[str] = set()
    with serving(conf) as service:
        monkeypatch.setattr(HintQueue, "put", lambda self, name, hint: lost.add(name))
        for n in range(5):
            drop(conf, f"faculties_lost{n}.csv", faculties(f"L{n}-", 2))
        wait_for(lambda: len(lost) == 5)  # every event arrived, and was lost
        assert jobs(conf) == [] and not len(service.readiness)  # nothing told the service
        monkeypatch.undo()
        logging.getLogger(OVERFLOW_LOGGER).warning(
            "Inotify queue overflowed; filesystem events were lost")
        wait_for(lambda: len(jobs(conf)) == 5)
        assert service.watcher.counts["overflows"] == 1
    assert count(conf, "faculties") == 10


def test_a_replaced_storage_folder_gets_a_new_watch(conf: Config) -> None:
    conf.watch.rescan = 60
    with serving(conf) as service:
        drop(conf, "faculties_before.csv", faculties("B", 1))
        wait_for(lambda: finished(conf, "faculties_before.csv"))
        away = conf.storage + ".away"
        os.rename(conf.storage, away)  # a person moves the folder aside...
        os.mkdir(conf.storage)  # ...and puts a new one with the same contents in its place
        for name in os.listdir(away):
            os.rename(os.path.join(away, name), os.path.join(conf.storage, name))
        os.rmdir(away)
        wait_for(lambda: service.watcher.counts["rebuilds"] >= 1)
        drop(conf, "faculties_after.csv", faculties("A", 1))
        wait_for(lambda: finished(conf, "faculties_after.csv"))
    assert log_lines(conf, "rebuilding the watch")


def test_the_service_follows_a_storage_move(conf: Config, tmp_path: Path) -> None:
    new = tmp_path / "moved"
    new.mkdir()
    with serving(conf) as service:
        service.importer.dc.setStoragePath(str(new), move=True)
        wait_for(lambda: service.watcher.root == str(new))
        wait_for(lambda: service_running(str(new)) is not None)
        conf.storage = str(new)
        drop(conf, "faculties_moved.csv", faculties("M", 1))
        wait_for(lambda: os.path.exists(new / "finished" / "faculties_moved.csv"))
    assert service_status(str(new))["state"] == "stopped"


# -- what is left alone, and retried --------------------------------------------------------


def test_an_unrouted_file_is_logged_once_shown_and_left_until_changed(conf: Config) -> None:
    with serving(conf) as service:
        drop(conf, "mystery.csv", "a,b\n1,2\n")
        wait_for(lambda: log_lines(conf, "mystery.csv"))
        wait_for(rescanned(service, 2))  # two reconcile scans
        wait_for(lambda: quiet(service))
        assert len(log_lines(conf, "mystery.csv")) == 1
        wait_for(lambda: [n["name"] for n in service_status(conf.storage)["unrouted"]]
                 == ["mystery.csv"])
        with open(os.path.join(conf.storage, "mystery.csv"), "a") as handle:
            handle.write("3,4\n")  # changed: looked at again
        wait_for(lambda: len(log_lines(conf, "mystery.csv")) == 2)
    assert jobs(conf) == []
    assert os.path.exists(os.path.join(conf.storage, "mystery.csv"))


def test_pending_files_wait_for_their_parents_or_for_a_person(conf: Config) -> None:
    pending = os.path.join(conf.storage, "departments_x.create.pending.csv")
    with serving(conf) as service:
        drop(conf, "departments_x.csv",
             "code,faculty_code,title\nD1,F,Dept one\nD2,F,Dept two\n")
        wait_for(lambda: os.path.exists(pending))
        wait_for(rescanned(service, 2))  # rescans see the pending file: no re-import in a loop
        wait_for(lambda: quiet(service))
        assert jobs(conf) == ["departments_x.csv"]
        drop(conf, "faculties_f.csv", faculties("F", 1).replace("F0", "F"))
        wait_for(lambda: not os.path.exists(pending))  # the parent import woke it up
        assert jobs(conf) == ["departments_x.csv", "faculties_f.csv",
                              "departments_x.create.pending.csv"]
        assert finished(conf, "departments_x.csv") and count(conf, "departments") == 2

        drop(conf, "departments_y.csv", "code,faculty_code,title\nD3,G,Dept three\n")
        pending_y = os.path.join(conf.storage, "departments_y.create.pending.csv")
        wait_for(lambda: os.path.exists(pending_y))
        wait_for(rescanned(service))
        wait_for(lambda: quiet(service))
        assert jobs(conf).count("departments_y.create.pending.csv") == 0
        text = Path(pending_y).read_text().replace(",G,", ",F,")
        Path(pending_y).write_text(text)  # a person fixes the row in place
        wait_for(lambda: not os.path.exists(pending_y))
    assert jobs(conf).count("departments_y.create.pending.csv") == 1
    assert count(conf, "departments") == 3


# -- the process -----------------------------------------------------------------------------------


def test_a_second_service_on_the_same_storage_exits_1_naming_the_holder(
        conf: Config, conf_path: Path) -> None:
    with serving(conf):
        done = subprocess.run([*PYTHON_M, "--config", str(conf_path), "serve"], capture_output=True,
                              text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert f"process {os.getpid()}" in done.stderr and done.stderr.count("\n") == 1


def test_sigterm_stops_the_service_cleanly(conf: Config, conf_path: Path) -> None:
    Importer(conf).close()
    proc = subprocess.Popen([*PYTHON_M, "--config", str(conf_path), "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: service_status(conf.storage).get("state") == "running")
        drop(conf, "faculties_term.csv", faculties("T", 3))
        wait_for(lambda: finished(conf, "faculties_term.csv"))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Imported 3 rows from faculties_term.csv: 3 ok, 0 failed" in out
    status = service_status(conf.storage)
    assert status["state"] == "stopped" and not status["running"]


def test_once_imports_what_is_there_and_exits(conf: Config, conf_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    Importer(conf).close()
    Path(conf.storage, "faculties_a.csv").write_text(faculties("A", 2))
    Path(conf.storage, "departments_a.csv").write_text("code,faculty_code,title\nD,A0,D\n")
    Path(conf.storage, "notes.csv").write_text("a\n1\n")
    assert datacenter_main(["--config", str(conf_path), "serve", "--once"]) == 0
    out, err = capsys.readouterr()
    # the parent first: the department finds its faculty
    assert out.splitlines() == ["Imported 2 rows from faculties_a.csv: 2 ok, 0 failed",
                                "Imported 1 rows from departments_a.csv: 1 ok, 0 failed"]
    assert "notes.csv: no processor claims this file" in err
    Path(conf.storage, "faculties_empty.csv").write_text("")
    assert datacenter_main(["--config", str(conf_path), "serve", "--once"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("datacenter: error: faculties_empty.csv: ")
    # rejected: left alone until it changes
    assert datacenter_main(["--config", str(conf_path), "serve", "--once"]) == 0
    assert jobs(conf) == ["faculties_a.csv", "departments_a.csv"]


def work_started(conf: Config, ledger: int, folders: set[str]) -> Callable[[], bool]:
    """A condition: an import began since the ledger had *ledger* rows and *folders* existed.

    An import's job folder appears in ``.datacenter/jobs`` before its first
    row is read, and its ledger row when it commits.
    """
    def started() -> bool:
        return bool(job_folders(conf) - folders) or len(jobs(conf)) > ledger
    return started


def job_folders(conf: Config) -> set[str]:
    try:
        return set(os.listdir(os.path.join(conf.storage, ".datacenter", "jobs")))
    except FileNotFoundError:
        return set()


def test_killed_again_and_again_nothing_is_lost_or_imported_twice(
        conf: Config, conf_path: Path) -> None:
    Importer(conf).close()
    rng = random.Random(7)
    lives, per_life, rows = 10, 10, 5
    files = lives * per_life
    for life in range(lives):
        started = work_started(conf, len(jobs(conf)), job_folders(conf))
        proc = subprocess.Popen([*PYTHON_M, "--config", str(conf_path), "serve"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Files arrive while it starts (and recovers), so each life has work.
            for n in range(life * per_life, (life + 1) * per_life):
                drop(conf, f"faculties_k{n:03}.csv", faculties(f"K{n}-", rows))
            wait_for(started)
            # Not a wait for anything: it spreads the kills over the phases of
            # the work (reading, committing, filing away).
            time.sleep(rng.uniform(0.0, 0.05))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    done = subprocess.run([*PYTHON_M, "--config", str(conf_path), "serve", "--once"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    sources = jobs(conf)
    assert len(sources) == len(set(sources)) == files
    assert count(conf, "faculties") == files * rows
    assert sorted(os.listdir(os.path.join(conf.storage, "finished"))) == sorted(
        [f"faculties_k{n:03}.csv" for n in range(files)]
        + [f"faculties_k{n:03}.create.finished.csv" for n in range(files)])
    assert [n for n in os.listdir(conf.storage) if n.endswith(".csv")] == []
    for area in ("jobs", "journal", "staging"):
        folder = os.path.join(conf.storage, ".datacenter", area)
        assert not os.path.isdir(folder) or os.listdir(folder) == [], area
    state = json.loads(Path(conf.storage, ".datacenter", "service.json").read_text())
    assert state["state"] == "stopped"


def test_a_passing_failure_is_retried_without_anyone_touching_the_file(
        conf: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk at the commit: nothing is imported then, the file is tried again."""
    monkeypatch.setattr(service_module, "RETRY_FIRST", 0.2)
    injector = FaultInjector(seed=1)
    injector.add(FaultConfig(target="store.commit", nth=1,
                             exception=OSError(errno.ENOSPC, "No space left on device")))
    with injector.installed(), serving(conf):
        drop(conf, "faculties.csv", faculties("R", 3))
        wait_for(lambda: finished(conf, "faculties.csv"))
    assert injector.stats["faults_triggered"] == 1
    assert count(conf, "faculties") == 3
    assert log_lines(conf, "No space left on device; trying again")


def test_a_burst_goes_in_batches_each_file_once_and_a_bad_file_alone(
        conf: Config, conf_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """More files than a batch holds: every good one imported once (children after
    their parents), each bad one named in one line with its line and reason, left
    where it is, holding back none of the others; no job folder left behind."""
    Importer(conf).close()
    storage = Path(conf.storage)
    good = [f"faculties_b{n:03}.csv" for n in range(150)]
    for n, name in enumerate(good):
        (storage / name).write_text(faculties(f"B{n}-", 2))
    kids = "".join(f"K{n},B{n}-1,Kid {n}\n" for n in range(0, 150, 7))
    (storage / "departments_kids.csv").write_text("code,faculty_code,title\n" + kids)
    (storage / "faculties_latin1.csv").write_bytes(b"code,title\nL1,Caf\xe9\n")
    (storage / "faculties_quote.csv").write_text('code,title\nQ1,"open\nQ2,x\n')
    (storage / "faculties_empty.csv").write_text("")
    (storage / "notes.csv").write_text("a\n1\n")
    assert datacenter_main(["--config", str(conf_path), "serve", "--once"]) == 1
    out, err = capsys.readouterr()
    assert sorted(jobs(conf)) == sorted([*good, "departments_kids.csv"])  # each once
    assert count(conf, "faculties") == 300 and count(conf, "departments") == 22
    assert all(finished(conf, name) for name in [*good, "departments_kids.csv"])
    assert "Imported 22 rows from departments_kids.csv: 22 ok, 0 failed" in out
    assert not [n for n in os.listdir(storage) if n.endswith(".pending.csv")]
    reasons = {"faculties_latin1.csv": "line 2: not UTF-8",
               "faculties_quote.csv": "line 2:",
               "faculties_empty.csv": "no header line",
               "notes.csv": "no processor claims this file"}
    for name, reason in reasons.items():
        assert (storage / name).exists()  # left where it is
        named = [line for line in err.splitlines() if name in line]
        assert len(named) == 1 and reason in named[0], named
        what = "not imported" if name == "notes.csv" else "rejected"
        assert len(log_lines(conf, f"service: {what}: {name}")) == 1
    assert os.listdir(storage / ".datacenter" / "jobs") == []
