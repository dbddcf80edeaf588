"""A field added to the config after its processor's table exists.

An optional field is added to the table (old records have no value): an
export shows it empty, never the field's name. A new required or key field
cannot be filled for the records already there: the import is refused with
one line naming the processor and the field, and the user's file stays.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datacenter.cli import main

CONFIG = """
storage = "storage"
database = "{database}"

[processors.items]
key = ["id"]
{required}

[processors.items.fields]
id = "str"
name = "str"
{added}
"""


def configure(folder: Path, database: str, added: str = "", required: str = "") -> Path:
    """The config at *folder* (its storage made by ``init`` the first time)."""
    path = folder / "datacenter.toml"
    if not path.exists():
        assert main(["init", str(folder)]) == 0
    path.write_text(CONFIG.format(added=added, required=required, database=database),
                    encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def user_file(folder: Path, name: str, text: str) -> Path:
    path = folder / "home" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def exported(folder: Path) -> str:
    return (folder / "out.csv").read_bytes().decode()


def test_an_optional_field_added_later_exports_empty_then_takes_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], database: str) -> None:
    config = configure(tmp_path, database)
    code, _, err = run(capsys, config, "import",
                       str(user_file(tmp_path, "items.csv", "id,name\nI1,Ada\n")))
    assert code == 0, err
    configure(tmp_path, database, added='colour = "str"')
    code, out, err = run(capsys, config, "find", "I1", "--json")  # reads only: nothing added
    assert code == 0, err
    [found] = json.loads(out)
    assert found["processor"] == "items" and found["sightings"][0]["kind"] == "store"
    code, _, err = run(capsys, config, "export", "items", "--output",
                       str(tmp_path / "out.csv"))
    assert code == 0, err
    assert exported(tmp_path) == "id,name,colour\r\nI1,Ada,\r\n"
    code, _, err = run(capsys, config, "import", str(user_file(
        tmp_path, "items_more.csv", "id,name,colour\nI2,Bo,red\n")))
    assert code == 0, err
    run(capsys, config, "export", "items", "--output", str(tmp_path / "out.csv"))
    assert exported(tmp_path) == "id,name,colour\r\nI1,Ada,\r\nI2,Bo,red\r\n"


def test_a_required_field_added_later_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], database: str) -> None:
    config = configure(tmp_path, database)
    assert run(capsys, config, "import",
               str(user_file(tmp_path, "items.csv", "id,name\nI1,Ada\n")))[0] == 0
    configure(tmp_path, database, added='size = "int"', required='required = ["size"]')
    mine = user_file(tmp_path, "items_more.csv", "id,name,size\nI2,Bo,3\n")
    code, out, err = run(capsys, config, "import", str(mine))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "processor 'items': field 'size' is required" in err
    assert mine.read_text() == "id,name,size\nI2,Bo,3\n"
