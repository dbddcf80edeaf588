"""The operator's day: mistakes that looked like lost data, and answers that mean what they say.

* No silent defaults: without a config a command stops and says where it
  looked; a storage that is not there is refused, never made on the spot,
  except by ``init`` and ``serve`` (and never in a folder that is missing);
  ``--storage DIR`` alone uses the record store beside DIR, and says so.
* ``serve`` names what it serves when it starts, and a clean stop is exit 0
  whatever it rejected meanwhile.
* Every option has a help text; every moment in ``--json`` output is
  ISO 8601 with its zone; ``chaos`` counts its files honestly;
  ``status`` counts as pending only the root files that wait.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, wait_for, write

from datacenter import DataCenter, config
from datacenter.cli import build_parser, main
from datacenter.importing import check_config
from datacenter.records.store import read_ledger
from datacenter.service import service_status

PYTHON_M = [sys.executable, "-m", "datacenter"]
FACULTIES = "code,title\nF1,Science\nF2,Arts\n"
#: ISO 8601 with milliseconds and a zone, as every --json moment is written.
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder, and no config named by the environment."""
    folder = tmp_path / "here"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def everything(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def quick_config(folder: Path, storage: str = "storage") -> Path:
    """The bundled datacenter.toml in *folder*, naming *storage*, with a short settle."""
    text = (ROOT / "datacenter.toml").read_text(encoding="utf-8")
    text = text.replace('storage  = "storage"', f'storage  = "{storage}"')
    text = text.replace("settle  = 2.0", "settle  = 0.2").replace("rescan  = 60", "rescan  = 1")
    return Path(write(folder / "datacenter.toml", text))


# -- 1. no silent defaults ------------------------------------------------------------------

#: Every command that needs a storage or a config, as an operator types it.
NEEDS_A_CONFIG = [["status"], ["ls"], ["logs"], ["import", "faculties.csv"], ["recover"],
                  ["move-storage", "elsewhere"], ["serve", "--once"], ["export", "faculties"],
                  ["processors"]]


@pytest.mark.parametrize("argv", NEEDS_A_CONFIG, ids=lambda argv: argv[0])
def test_without_a_config_a_command_stops_and_says_where_it_looked(
        argv: list[str], here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(here / "faculties.csv", FACULTIES)
    (here / "elsewhere").mkdir()
    before = everything(here)
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"datacenter: error: no config file (looked for --config FILE, $DATACENTER_CONFIG "
        f"and {here / 'datacenter.toml'}); create one with `datacenter init`, or name the "
        "storage with --storage DIR"]
    assert everything(here) == before  # no ./storage, no ./records.sqlite


def test_inside_the_storage_itself_nothing_is_made(tmp_path: Path, here: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    quick_config(tmp_path / "place")
    DataCenter(str(tmp_path / "place" / "storage"))
    os.chdir(tmp_path / "place" / "storage")
    before = everything(tmp_path)
    code, _, err = run(capsys, "ls")
    assert code == 1 and "no config file" in err and len(err.splitlines()) == 1
    assert everything(tmp_path) == before


#: Commands that use an existing storage (serve makes one; init writes one).
USES_A_STORAGE = [["status"], ["status", "--json"], ["ls"], ["logs"],
                  ["import", "{here}/faculties.csv"], ["recover"],
                  ["move-storage", "{here}/elsewhere", "--move"]]


@pytest.mark.parametrize("argv", USES_A_STORAGE, ids=" ".join)
@pytest.mark.parametrize("where", ["storage", "no/such/dir/storage"])
def test_a_storage_that_is_not_there_is_refused_and_nothing_is_made(
        argv: list[str], where: str, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = quick_config(here, where)
    write(here / "faculties.csv", FACULTIES)
    (here / "elsewhere").mkdir()
    before = everything(here)
    code, out, err = run(capsys, "--config", str(conf), *[a.format(here=here) for a in argv])
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"datacenter: error: no storage at {here / where} (create it with `datacenter init` "
        "or start `datacenter serve`)"]
    assert everything(here) == before  # no storage, no record store, no log


def test_serve_refuses_a_storage_whose_folder_is_missing(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "nonexistent" / "dir" / "storage"
    conf = quick_config(here, str(storage))
    code, out, err = run(capsys, "--config", str(conf), "serve", "--once")
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"datacenter: error: cannot create the storage {storage}: "
                                f"its folder {storage.parent} does not exist"]
    assert not (tmp_path / "nonexistent").exists()


def test_serve_makes_a_new_storage_in_a_folder_that_exists(
        here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = quick_config(here)
    assert run(capsys, "--config", str(conf), "serve", "--once")[0] == 0
    assert sorted(os.listdir(here / "storage")) == [
        ".datacenter", "deleted", "finished", "graduated", "logs", "unfinished"]
    assert run(capsys, "--config", str(conf), "status")[0] == 0


def test_a_storage_named_alone_uses_the_store_beside_it_and_says_so(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = quick_config(tmp_path / "project")
    (tmp_path / "project" / "storage").mkdir()
    write(here / "faculties.csv", FACULTIES)
    assert run(capsys, "--config", str(conf), "import", "faculties.csv")[0] == 0
    storage = tmp_path / "project" / "storage"
    code, out, err = run(capsys, "--storage", str(storage), "status", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["database"] == str(tmp_path / "project" / "records.sqlite")
    assert [job["source"] for job in report["last_imports"]] == ["faculties.csv"]
    assert err.splitlines() == [
        f"datacenter: no config file: using the record store {tmp_path}/project/records.sqlite "
        f"(beside the storage {storage})"]
    assert not (here / "records.sqlite").exists()
    code, _, err = run(capsys, "--storage", str(storage), "ls")
    assert code == 0 and err == ""  # ls uses no record store: nothing to say


# -- init -------------------------------------------------------------------------------------


def test_init_writes_a_commented_config_and_the_storage(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    place = tmp_path / "place"
    code, out, err = run(capsys, "init", str(place), "--json")
    assert (code, err) == (0, "")
    made = json.loads(out)
    assert made == {
        "config": str(place / "datacenter.toml"), "storage": str(place / "storage"),
        "database": str(place / "records.sqlite"),
        "created": [str(place), str(place / "storage"),
                    *(str(place / "storage" / name) for name in
                      ("finished", "unfinished", "deleted", "graduated", "logs")),
                    str(place / "datacenter.toml")]}
    text = (place / "datacenter.toml").read_text(encoding="utf-8")
    for part in ('storage  = "storage"', 'database = "records.sqlite"', "[watch]", "settle",
                 "rescan", "polling", "[processors.faculties]", "# [[routes]]", "# pattern"):
        assert part in text, part
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 5
    conf = config.load(str(place / "datacenter.toml"))
    check_config(conf)
    assert (conf.storage, conf.database) == (made["storage"], made["database"])
    os.chdir(place)  # found in the current folder from now on
    write(here / "faculties.csv", FACULTIES)
    assert run(capsys, "import", str(here / "faculties.csv"))[0] == 0
    code, out, _ = run(capsys, "status")
    assert code == 0 and "faculties.csv  faculties/create  2 rows: 2 ok, 0 failed" in out


def test_init_never_overwrites_a_config(tmp_path: Path, here: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    write(here / "datacenter.toml", "# mine\n")
    code, out, err = run(capsys, "init")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"datacenter: error: {here / 'datacenter.toml'} exists already; init never "
        "overwrites a config (edit it, or init another folder)"]
    assert everything(here) == {"datacenter.toml"}
    assert (here / "datacenter.toml").read_text() == "# mine\n"


def test_init_makes_nothing_in_a_folder_that_is_missing(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", str(tmp_path / "no" / "place"))
    assert code == 1 and err.splitlines() == [
        f"datacenter: error: cannot create the folder {tmp_path / 'no' / 'place'}: "
        f"its folder {tmp_path / 'no'} does not exist"]
    code, _, err = run(capsys, "--storage", str(tmp_path / "no" / "storage"), "init")
    assert code == 1 and f"its folder {tmp_path / 'no'} does not exist" in err
    assert not (tmp_path / "no").exists() and everything(here) == set()


def test_init_with_a_storage_elsewhere_names_it_in_the_config(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "srv").mkdir()
    storage = tmp_path / "srv" / "imports"
    code, out, _ = run(capsys, "--storage", str(storage), "init")
    assert code == 0 and f"storage: {storage}" in out
    assert config.load("datacenter.toml").storage == str(storage)
    assert (storage / "finished").is_dir()


def test_the_bundled_setup_has_its_storage() -> None:
    """``make run`` on a fresh clone: the bundled config names a storage that is in git."""
    bundled = config.load(str(ROOT / "datacenter.toml"))
    assert bundled.storage == str(ROOT / "storage")
    assert (ROOT / "storage" / ".gitkeep").exists()
    assert "--config datacenter.toml serve" in (ROOT / "Makefile").read_text()


def test_the_readme_tour_shows_init() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    assert "$ datacenter init" in tour


# -- 2 and 3. serve: a start line, and a clean stop is 0 ----------------------------------------


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python -m datacenter ...`` in a subprocess; killed at the end if still alive."""
    started: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> subprocess.Popen[str]:
        env = {**os.environ, "DATACENTER_CONFIG": ""}
        proc = subprocess.Popen([*PYTHON_M, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_serve_says_what_it_serves_and_a_clean_stop_is_0_after_a_rejection(
        polling: bool, tmp_path: Path, serving: Callable[..., subprocess.Popen[str]]) -> None:
    conf = quick_config(tmp_path)
    storage = tmp_path / "storage"
    proc = serving("--config", str(conf), "serve", *(["--polling"] if polling else []))
    wait_for(lambda: service_status(str(storage)).get("state") == "running")
    write(storage / "faculties_bad.csv", "code,title\nF1,\"never closed\n")
    wait_for(lambda: service_status(str(storage)).get("rejected"))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    mode = "polling" if polling else "inotify"
    assert err.splitlines()[0] == (
        f"datacenter: serving {storage} (new); config {conf}; watch {mode}; "
        f"record store {tmp_path / 'records.sqlite'}; process {proc.pid}")
    assert "datacenter: error: faculties_bad.csv" in err  # said, and kept in the status
    assert [n["name"] for n in service_status(str(storage))["rejected"]] == ["faculties_bad.csv"]


def test_serve_once_says_its_start_on_a_terminal_only(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    conf = quick_config(tmp_path)
    (tmp_path / "storage").mkdir()
    code, _, err = run(capsys, "--config", str(conf), "serve", "--once")
    assert (code, err) == (0, "")  # cron mails what a job prints: a quiet run stays quiet
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, "--config", str(conf), "serve", "--once")
    assert code == 0
    assert err.splitlines() == [
        f"datacenter: serving {tmp_path / 'storage'}; config {conf}; watch once; "
        f"record store {tmp_path / 'records.sqlite'}; process {os.getpid()}"]


def test_serve_once_still_fails_on_a_rejected_file(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = quick_config(tmp_path)
    write(tmp_path / "storage" / "faculties_empty.csv", "")
    assert run(capsys, "--config", str(conf), "serve", "--once")[0] == 1


# -- 4. help texts, times, chaos, pending --------------------------------------------------------


def parsers(parser: argparse.ArgumentParser, path: str = "datacenter"
            ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


def test_every_option_and_positional_of_every_command_has_help() -> None:
    missing = []
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            names = "/".join(action.option_strings) or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path}: {names}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{path} {choice.dest}" for choice in action._choices_actions
                            if not choice.help]
    assert missing == []


def moments(data: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every value of *data* under a key that names a moment."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from moments(v, k)
    elif isinstance(data, list):
        for item in data:
            yield from moments(item, key)
    elif key in {"started", "updated", "at", "finished", "date", "since"}:
        yield key, data


def test_every_moment_in_json_output_is_iso_8601_with_its_zone(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = quick_config(tmp_path)
    write(tmp_path / "storage" / "faculties.csv", FACULTIES)
    assert run(capsys, "--config", str(conf), "serve", "--once")[0] == 0
    code, out, _ = run(capsys, "--config", str(conf), "status", "--json")
    assert code == 0
    report = json.loads(out)
    found = dict(moments(report["last_imports"])) | {
        "service " + k: v for k, v in moments(report["service"])}
    code, out, _ = run(capsys, "--config", str(conf), "ls", "finished", "--json")
    assert code == 0
    listed = json.loads(out)
    for key, value in [*found.items(), *moments(listed)]:
        assert isinstance(value, str) and ISO.match(value), (key, value)
        assert datetime.fromisoformat(value).utcoffset() is not None
    assert set(found) == {"started", "finished", "service started", "service updated",
                          "service at"}
    assert len(listed) == 2 and all("timestamp" not in item for item in listed)
    stored = read_ledger(str(tmp_path / "records.sqlite")).last[0].finished
    finished = datetime.fromisoformat(report["last_imports"][0]["finished"]).timestamp()
    assert finished == pytest.approx(stored, abs=0.001)  # the same moment, not shifted
    code, out, _ = run(capsys, "--config", str(conf), "status")  # people keep local time
    assert code == 0
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(finished))
    assert f"  {local}  faculties.csv  faculties/create" in out


def test_chaos_says_how_many_files_it_dropped_in_each_phase(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--seed", "3", "--files", "2", "--probability", "0.05"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("chaos: seed 3, 4 files (2 imported by hand + 2 dropped while the "
                          "service ran), ")
    assert main(["chaos", "--seed", "3", "--files", "2", "--no-service", "--report"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == {"dropped": 2, "by_hand": 2, "through_the_service": 0}


def status_counts(capsys: pytest.CaptureFixture[str], conf: Path) -> tuple[dict[str, Any], str]:
    code, out, _ = run(capsys, "--config", str(conf), "status", "--json")
    assert code == 0
    files = json.loads(out)["files"]
    code, out, _ = run(capsys, "--config", str(conf), "status")
    assert code == 0
    return files, out


def test_status_counts_as_pending_only_the_root_files_that_wait(
        tmp_path: Path, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = quick_config(tmp_path)
    storage = tmp_path / "storage"
    write(storage / "faculties_empty.csv", "")                        # rejected as a whole
    write(storage / "holidays.csv", "day\n2026-12-24\n")             # no processor claims it
    write(storage / "departments.csv", "code,faculty_code,title\nD1,F9,Physics\n")  # waits
    files, out = status_counts(capsys, conf)  # no service has looked yet: the split is unknown
    assert (files["pending"], files["rejected"], files["unrouted"]) == (3, None, None)
    assert "  rejected    unknown (no service has looked at the root's files)" in out
    assert run(capsys, "--config", str(conf), "serve", "--once")[0] == 1
    files, out = status_counts(capsys, conf)
    assert (files["pending"], files["rejected"], files["unrouted"]) == (1, 1, 1)
    assert "  pending          1 file(s)\n  rejected         1 file(s)\n" \
           "  unrouted         1 file(s)\n" in out
    with open(storage / "faculties_empty.csv", "a") as handle:  # a person fixes it: it waits
        handle.write("code,title\nF1,Science\n")
    files, _ = status_counts(capsys, conf)
    assert (files["pending"], files["rejected"], files["unrouted"]) == (2, 0, 1)
