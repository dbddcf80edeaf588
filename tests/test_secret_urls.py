"""A record store's password is never printed: not in a notice, not in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from datacenter.cli import main

#: Nothing listens on port 1: every command that asks the store fails.
SECRET_URL = "postgresql://keeper:s3cret-word@127.0.0.1:1/records"


def test_a_storage_named_alone_says_its_record_store_without_the_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATACENTER_DATABASE", SECRET_URL)
    assert main(["init", str(tmp_path / "project")]) == 0
    capsys.readouterr()
    main(["--storage", str(tmp_path / "project" / "storage"), "status"])
    err = capsys.readouterr().err
    assert "using the record store postgresql://keeper:***@127.0.0.1:1/records" in err
    assert "s3cret" not in err


def test_export_names_its_record_store_without_the_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATACENTER_DATABASE", SECRET_URL)
    assert main(["init", str(tmp_path)]) == 0
    capsys.readouterr()
    code = main(["--config", str(tmp_path / "datacenter.toml"), "export", "faculties",
                 "--output", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code != 0 and "postgresql://keeper:***@127.0.0.1:1/records" in err
    assert "s3cret" not in err
