"""The command line, as a new user meets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write

from datacenter import DataCenter
from datacenter.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_help_and_usage_error(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "datacenter"
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "move-storage" in done.stdout
    done = subprocess.run([str(exe), "frobnicate"], capture_output=True, text=True,
                          check=False, cwd=tmp_path)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_status_on_a_new_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "store"
    code, out, err = run(capsys, "--storage", str(storage), "status")
    assert code == 1 and out == ""
    assert err == (f"datacenter: error: no storage at {storage} (create it with "
                   "`datacenter init` or start `datacenter serve`)\n")
    assert not storage.exists()  # status only looks: it creates nothing


def test_status_json_counts_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    write(os.path.join(dc.storage, "a.csv"), "x\n")
    write(os.path.join(dc.storage, "b.csv"), "x\n")
    write(os.path.join(dc.unfinished_path, "c.csv"), "x\n")
    code, out, _ = run(capsys, "--storage", dc.storage, "status", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["files"]["pending"] == 2 and report["files"]["unfinished"] == 1
    assert report["interrupted"] == 0


def test_ls_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    write(os.path.join(dc.storage, "new file.csv"), "a,b\n")
    code, out, _ = run(capsys, "--storage", dc.storage, "ls")
    assert code == 0 and out.rstrip().endswith("4 bytes  new file.csv")
    code, out, _ = run(capsys, "--storage", dc.storage, "ls", "finished", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(capsys, "--storage", dc.storage, "ls", "--sort", "date", "--json")
    assert json.loads(out)[0]["name"] == "new file.csv"


def test_ls_unknown_folder_is_a_usage_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--storage", str(tmp_path), "ls", "secrets"])
    assert exit_info.value.code == 2


def test_move_storage_updates_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "datacenter.toml", 'storage = "old"\ndatabase = "db.sqlite"\n')
    dc = DataCenter(str(tmp_path / "old"))
    write(os.path.join(dc.storage, "a.csv"), "x\n")
    (tmp_path / "new").mkdir()
    code, out, _ = run(capsys, "move-storage", str(tmp_path / "new"), "--move")
    assert code == 0 and "storage is now" in out
    assert (tmp_path / "new" / "a.csv").exists()
    assert f'storage = "{tmp_path / "new"}"' in (tmp_path / "datacenter.toml").read_text()
    code, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)["storage"] == str(tmp_path / "new")


def test_move_storage_to_missing_folder_fails_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    DataCenter(str(tmp_path / "s"))  # move-storage never makes the storage it moves
    code, _, err = run(capsys, "--storage", str(tmp_path / "s"), "move-storage",
                         str(tmp_path / "nope"), "--move")
    assert code == 1
    assert err == f"datacenter: error: The path given does not exist: {tmp_path / 'nope'}\n"


def test_move_storage_reports_names_not_moved(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    write(os.path.join(dc.storage, "a.csv"), "mine\n")
    write(tmp_path / "t" / "a.csv", "theirs\n")
    code, out, _ = run(capsys, "--storage", dc.storage, "move-storage", str(tmp_path / "t"),
                       "--move")
    assert code == 0 and "not moved (exists in the target): a.csv" in out


def test_logs_query_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dc = DataCenter(str(tmp_path / "s"))
    for n in range(5):
        dc.log(f"event {n}", user="tester")
    code, out, _ = run(capsys, "--storage", dc.storage, "logs", "--query", "event [1-3]",
                       "--limit", "2", "--start", "1")
    assert code == 0 and [line[-7:] for line in out.splitlines()] == ["event 2", "event 3"]
    code, _, err = run(capsys, "--storage", dc.storage, "logs", "../../etc/passwd")
    assert code == 1 and err.startswith("datacenter: error: invalid log name")
    code, _, err = run(capsys, "--storage", dc.storage, "logs", "--query", "(")
    assert code == 1 and "invalid query" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--storage", dc.storage, "logs", "--limit", "-3"])
    assert exit_info.value.code == 2


def test_missing_config_file_is_a_clear_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--config", str(tmp_path / "nope.toml"), "status")
    expected = f"datacenter: error: {tmp_path / 'nope.toml'}: config file not found\n"
    assert code == 1 and err == expected


def test_broken_config_file_names_file_and_line(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    conf = write(tmp_path / "bad.toml", 'storage = "x"\nthis is not toml\n')
    code, _, err = run(capsys, "--config", conf, "status")
    assert code == 1 and conf in err and "line 2" in err


def test_config_paths_are_relative_to_the_config_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write(tmp_path / "etc" / "dc.toml", 'storage = "../data"\n')
    (tmp_path / "data").mkdir()  # status never makes a storage
    monkeypatch.setenv("DATACENTER_CONFIG", conf)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["storage"] == str(tmp_path / "data")


def test_storage_that_is_a_file_fails_in_one_line(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "file", "x")
    code, _, err = run(capsys, "--storage", path, "ls")
    assert code == 1 and err.count("\n") == 1 and path in err
