"""The console's accounts, and ``datacenter user``: what is kept, where, and how it is checked."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from helpers import PASSWORD, ROOT, web_conf

from datacenter.cli.main import main
from datacenter.service.accounts import AccountError, Accounts
from datacenter.service.health import Health, judge


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return web_conf(tmp_path).storage


def test_only_a_memory_hard_hash_is_kept_in_the_state_folder_0600(storage: str) -> None:
    accounts = Accounts(storage)
    accounts.add("alice", "manager", PASSWORD)
    path = Path(storage, ".datacenter", "accounts.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text
    entry = json.loads(text)["users"]["alice"]
    assert entry["role"] == "manager" and entry["scrypt"] == [1 << 14, 8, 1]
    assert accounts.check_password("alice", PASSWORD) is not None
    assert accounts.check_password("alice", PASSWORD + "!") is None
    assert accounts.check_password("nobody", PASSWORD) is None
    # Two accounts with one password have different hashes (a salt of their own).
    accounts.add("bob", "viewer", PASSWORD)
    users = json.loads(path.read_text())["users"]
    assert users["alice"]["hash"] != users["bob"]["hash"]
    assert not any(PASSWORD in line for line in _log(storage))


def test_a_script_token_is_kept_as_its_hash_and_replaced_by_a_new_one(storage: str) -> None:
    accounts = Accounts(storage)
    accounts.add("alice", "viewer", PASSWORD)
    token = accounts.new_token("alice")
    text = Path(storage, ".datacenter", "accounts.json").read_text()
    assert token not in text and hashlib.sha256(token.encode()).hexdigest() in text
    found = accounts.check_token(token)
    assert found is not None and found.name == "alice"
    accounts.new_token("alice")
    assert accounts.check_token(token) is None


@pytest.mark.parametrize(("name", "role", "password", "reason"), [
    ("../x", "viewer", PASSWORD, "invalid account name"),
    ("", "viewer", PASSWORD, "invalid account name"),
    ("alice", "root", PASSWORD, "unknown role 'root'"),
    ("alice", "viewer", "short", "too short"),
])
def test_a_wrong_account_is_refused_in_one_line(storage: str, name: str, role: str,
                                                password: str, reason: str) -> None:
    with pytest.raises(AccountError, match=reason):
        Accounts(storage).add(name, role, password)
    assert not Path(storage, ".datacenter", "accounts.json").exists()


def test_the_user_commands(storage: str, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["--storage", storage, "user", *args])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("add", "alice", "--role", "admin", "--password-stdin",
               stdin=PASSWORD + "\n") == (0, "added alice (admin)\n", "")
    code, _, err = run("add", "alice", "--role", "viewer", "--password-stdin",
                       stdin=PASSWORD + "\n")
    assert code == 1 and err == ("datacenter: error: account 'alice' exists already "
                                 "(user passwd changes its password)\n")
    assert run("add", "bob", "--role", "viewer")[0] == 1  # no terminal: no prompt
    assert run("list")[1] == "alice                admin   \n"
    assert run("passwd", "alice", "--password-stdin", stdin="another password\n")[0] == 0
    assert Accounts(storage).check_password("alice", "another password") is not None
    code, token, err = run("token", "alice")
    assert code == 0 and token.startswith("dct_") and "shown only this once" in err
    assert json.loads(run("list", "--json")[1]) == [
        {"name": "alice", "role": "admin", "token": True}]
    assert run("remove", "alice") == (0, "removed alice\n", "")
    assert run("remove", "alice")[2] == "datacenter: error: no account 'alice'\n"
    assert run("list")[1] == "no accounts (datacenter user add NAME --role admin)\n"


def test_health_says_alive_stuck_or_gone() -> None:
    now = 1000.0
    assert judge({"running": False}, now=now) == Health(
        False, "gone", "gone: no service process holds the storage (no service ever ran here)")
    assert judge({"running": False, "state": "stopped"}, now=now).detail.endswith(
        "(its state file says 'stopped')")
    stuck = judge({"running": True, "holder": "process 7", "updated": now - 61}, now=now)
    assert (stuck.alive, stuck.state) == (False, "stuck")
    assert "process 7 holds the storage but its loop last wrote its state 61 s ago" in \
        stuck.detail
    alive = judge({"running": True, "holder": "process 7", "updated": now - 2,
                   "in_hand": "big.csv"}, now=now)
    assert alive.alive and alive.detail == ("alive: process 7, state written 2.0 s ago, "
                                            "importing big.csv")


def _log(storage: str) -> list[str]:
    path = os.path.join(storage, "logs", "datacenter.log")
    return Path(path).read_text().splitlines() if os.path.exists(path) else []


def test_the_command_lines_discard_is_recorded_in_the_ledger_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "datacenter.toml"
    config.write_text((ROOT / "datacenter.toml").read_text())
    (tmp_path / "storage").mkdir()
    dropped = tmp_path / "departments.csv"
    dropped.write_text("code,faculty_code,title\nD1,F9,Physics\n")
    assert main(["--config", str(config), "import", str(dropped)]) == 3
    assert main(["--config", str(config), "discard", "departments.create.pending.csv",
                 "--user", "bob"]) == 0
    capsys.readouterr()
    with sqlite3.connect(tmp_path / "records.sqlite") as db:
        assert db.execute("SELECT user, action, name FROM datacenter_actions").fetchall() == [
            ("bob", "discard", "departments.create.pending.csv")]
