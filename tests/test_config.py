"""A wrong config is refused as a user sees it: one line, status 1, nothing on disk.

Every command that reads the config checks all of it (the ``[[routes]]``
entries against the processors included) before it touches the disk: no
storage folder, no record store, no log is made for a config that is then
refused. The line names the file, the table or ``[[routes]]`` entry, and
the key.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FakeEntryPoint, fake_entry_points

from datacenter.cli.main import main
from datacenter.cli.registry import COMMANDS

HEAD = 'storage = "storage"\ndatabase = "records.sqlite"\n'
FACULTIES = '[processors.faculties]\nkey = ["code"]\nfields = { code = "str", title = "str" }\n'

#: name: (the config's text, what its one line of refusal must name besides the file)
WRONG: dict[str, tuple[str, list[str]]] = {
    "unknown top-level key": (HEAD + 'storge = "x"\n' + FACULTIES, ["'storge'"]),
    "unknown [watch] key": (HEAD + FACULTIES + "[watch]\nsetle = 2\n", ["[watch]", "'setle'"]),
    "unknown table": (HEAD + FACULTIES + "[wach]\nsettle = 2\n", ["[wach]"]),
    "settle not a number": (HEAD + FACULTIES + '[watch]\nsettle = "soon"\n',
                            ["[watch]", "settle", "'soon'"]),
    "polling not a flag": (HEAD + FACULTIES + '[watch]\npolling = "yes"\n',
                           ["[watch]", "polling", "'yes'"]),
    "route without processor": (HEAD + FACULTIES + '[[routes]]\npattern = "f_*.csv"\n',
                                ["[[routes]] #1", "processor"]),
    "route with unknown mode": (HEAD + FACULTIES + '[[routes]]\npattern = "f_*.csv"\n'
                                'processor = "faculties"\nmode = "merge"\n',
                                ["[[routes]] #1", "mode", "'merge'"]),
    "unknown [web] key": (HEAD + FACULTIES + '[web]\nlisten = "127.0.0.1:8080"\nport = 1\n',
                          ["[web]", "'port'"]),
    "listen not HOST:PORT": (HEAD + FACULTIES + '[web]\nlisten = "8080"\n',
                             ["[web]", "listen", "'8080'"]),
    "public_url not an address": (HEAD + FACULTIES + '[web]\npublic_url = "console.org"\n',
                                  ["[web]", "public_url", "'console.org'"]),
    "public_url with a path": (HEAD + FACULTIES + '[web]\npublic_url = "https://x.org/dc"\n',
                               ["[web]", "public_url", "https://host"]),
    "upload limit not a size": (HEAD + FACULTIES + '[web]\nmax_upload_bytes = "50M"\n',
                                ["[web]", "max_upload_bytes", "'50M'"]),
    "route to an undefined processor": (
        HEAD + FACULTIES + '[[routes]]\npattern = "f_*.csv"\nprocessor = "faculties"\n'
        '[[routes]]\npattern = "s_*.csv"\nprocessor = "students"\n',
        ["[[routes]] #2", "processor", "'students'"]),
}

#: Every command that reads the config (chaos works in a throw-away folder of its own).
COMMAND_LINES: dict[str, list[str]] = {
    "status": ["status"],
    "ls": ["ls"],
    "import": ["import", "{input}"],
    "serve": ["serve", "--once"],
    "processors": ["processors"],
    "export": ["export", "faculties", "--output", "{tmp}/in/export.csv"],
    "logs": ["logs"],
    "move-storage": ["move-storage", "{tmp}/elsewhere"],
    "recover": ["recover"],
    "find": ["find", "F1"],
    "pending": ["pending"],
    "discard": ["discard", "faculties.create.pending.csv"],
    "web": ["web", "--listen", "127.0.0.1:0"],
    "user": ["user", "list"],
}


def everything(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
           command: list[str], about_the_config: bool = True) -> str:
    """Run *command* on a config of *text*; check it failed cleanly; its one line of stderr.

    The line names the config file first, unless the fault lies elsewhere.
    """
    work = tmp_path / "work"
    (work / "in").mkdir(parents=True)
    (work / "elsewhere").mkdir()
    (work / "in" / "faculties.csv").write_text("code,title\nF1,Science\n", encoding="utf-8")
    config = work / "datacenter.toml"
    config.write_text(text, encoding="utf-8")
    before = everything(tmp_path)
    argv = [arg.format(input=work / "in" / "faculties.csv", tmp=work) for arg in command]
    code = main(["--config", str(config), *argv])
    out, err = capsys.readouterr()
    assert code == 1, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("datacenter: error: "), lines[0]
    if about_the_config:
        assert lines[0].startswith(f"datacenter: error: {config}: "), lines[0]
    assert out == ""
    assert everything(tmp_path) == before  # no storage, records.sqlite, log or output
    return lines[0]


def test_every_command_that_reads_the_config_is_listed() -> None:
    # chaos works in a throw-away folder, init writes a config instead of reading one
    assert set(COMMAND_LINES) == set(COMMANDS) - {"chaos", "init"}


@pytest.mark.parametrize("case", WRONG)
def test_status_refuses_a_wrong_config(case: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text, named = WRONG[case]
    line = refuse(tmp_path, capsys, text, ["status"])
    for part in named:
        assert part in line, (part, line)


@pytest.mark.parametrize("command", [c for c in COMMAND_LINES if c != "status"])
@pytest.mark.parametrize("case", WRONG)
def test_every_command_refuses_a_wrong_config_before_touching_the_disk(
        case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text, named = WRONG[case]
    line = refuse(tmp_path, capsys, text, COMMAND_LINES[command])
    assert all(part in line for part in named), line


@pytest.mark.parametrize("command", ["import", "serve", "recover", "processors", "export"])
def test_a_broken_installed_processor_is_refused_before_touching_the_disk(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands that import resolve every processor before they open the storage."""
    monkeypatch.chdir(tmp_path)
    fake_entry_points(monkeypatch, FakeEntryPoint("broken", io.StringIO))
    line = refuse(tmp_path, capsys, HEAD + FACULTIES, COMMAND_LINES[command],
                  about_the_config=False)
    assert line.startswith("datacenter: error: entry point broken (fake:broken): "), line


def test_status_needs_no_installed_processor(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken package does not keep a user from the status; a route to it is refused."""
    config = tmp_path / "datacenter.toml"
    config.write_text(HEAD + FACULTIES, encoding="utf-8")
    (tmp_path / "storage").mkdir()  # status and ls never make one
    asked = fake_entry_points(monkeypatch, FakeEntryPoint("broken", io.StringIO))
    assert main(["--config", str(config), "status"]) == 0
    assert asked == []
    config.write_text(HEAD + FACULTIES + '[[routes]]\npattern = "c_*.csv"\nprocessor = "courses"\n',
                      encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(config), "ls"]) == 1
    assert asked == ["datacenter.processors"]
    assert "entry point broken" in capsys.readouterr().err


def test_a_missing_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["--config", "nowhere.toml", "status"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == ["datacenter: error: nowhere.toml: config file not found"]
    assert everything(tmp_path) == set()


def test_a_config_that_is_not_toml_is_refused(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATACENTER_CONFIG", raising=False)
    (tmp_path / "datacenter.toml").write_text('storage = "s"\n[watch\n', encoding="utf-8")
    code = main(["status"])  # found in the current folder
    _, err = capsys.readouterr()
    assert code == 1
    assert len(err.splitlines()) == 1
    assert err.startswith(f"datacenter: error: {tmp_path / 'datacenter.toml'}: ")
    assert everything(tmp_path) == {"datacenter.toml"}


def test_the_refusal_is_one_line_from_the_real_command(tmp_path: Path) -> None:
    config = tmp_path / "datacenter.toml"
    config.write_text(WRONG["route to an undefined processor"][0], encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "datacenter", "--config", str(config),
                           "status"], capture_output=True, text=True, check=False,
                          cwd=tmp_path, env={**os.environ, "DATACENTER_CONFIG": ""})
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"datacenter: error: {config}: [[routes]] #2: processor 'students' is not defined "
        "(known: faculties)"]
    assert everything(tmp_path) == {"datacenter.toml"}


def test_python_m_datacenter_help_lists_the_commands(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "datacenter", "--help"], capture_output=True,
                          text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: datacenter ")
    for name in COMMANDS:
        assert re.search(rf"^ +{name}\b", done.stdout, re.MULTILINE), name
    assert everything(tmp_path) == set()
