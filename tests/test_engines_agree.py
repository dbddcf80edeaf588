"""The columnar engine against its oracle, the row engine: same store, same files.

Each seed makes a storage's worth of random files (``helpers.seeded_storage``:
valid and invalid cells of every field type, empty and white-space cells,
keys repeated in a file or stored already, parents missing, rows too short
or too long, blank lines, quoted cells (commas, quotes, line breaks), an
``--IGNORE--`` and an old ``--ERRORS--`` column, columns in any order, a
byte order mark, no line end after the last row, a ``;``-separated file)
and imports them in every mode (create, update, remove) twice: once
through the row engine, once through the columnar engine with small record
batches (so batches end anywhere). The record tables (every column, the job that wrote each record
too), the outcomes, and every file of the storage (finished, pending,
unfinished, deleted, graduated) must be the same, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import (
    SEEDED_PROCESSORS,
    FakeEntryPoint,
    fake_entry_points,
    import_seeded,
    seeded_storage,
    write,
)

from datacenter.config import Config
from datacenter.importing import columnar, prescan
from datacenter.importing.importer import Importer
from datacenter.importing.processors import BatchProcessor
from datacenter.importing.vectorcheck import check_column
from datacenter.records.fieldtypes import field_type
from datacenter.records.schema import load_processors
from datacenter.records.store import to_db

SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_both_engines_import_alike(seed: int, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    steps = seeded_storage(seed)
    database = str(tmp_path / "{}.sqlite")
    row = import_seeded(tmp_path / "row", database.format("row"), steps, columnar_engine=False)
    monkeypatch.setattr(columnar, "BLOCK_BYTES", random.Random(seed).choice([256, 1024, 1 << 20]))
    columns = import_seeded(tmp_path / "columnar", database.format("columnar"), steps,
                            columnar_engine=True)
    assert columns.outcomes == row.outcomes
    assert columns.tables == row.tables
    assert columns.files == row.files
    assert columns.ledger == row.ledger
    assert row.columnar == 0
    # The files the row engine must read (a CRLF inside quotes) are few: most were columnar.
    assert columns.columnar >= len(steps) - 2, columns.columnar


class _Shouting(BatchProcessor):
    """A processor written in Python: a per-row hook that every row must pass through."""

    schema = load_processors({"shouts": {"key": ["code"], "fields": {"code": "str",
                                                                     "text": "str"}}})["shouts"]

    def checkConversion(self, row: Mapping[str, str], mode: str = "create",  # noqa: N802
                        ignore_empty: bool = True) -> tuple[list[str], dict[str, object]]:
        errors, values = super().checkConversion(row, mode, ignore_empty)
        if isinstance(values.get("text"), str):
            values["text"] = str(values["text"]).upper()
        return errors, values


def test_a_processor_with_per_row_hooks_keeps_the_row_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, FakeEntryPoint("shouts", _Shouting))
    monkeypatch.setattr(columnar, "MIN_BYTES", 0)
    engine, used = columnar.import_file, []
    monkeypatch.setattr(columnar, "import_file",
                        lambda *a, **k: used.append(a[0].name) or engine(*a, **k))
    conf = Config(path=None, storage=str(tmp_path / "storage"),
                  database=str(tmp_path / "db.sqlite"), processors=SEEDED_PROCESSORS)
    importer = Importer(conf)
    try:
        for name, text in (("shouts.csv", "code,text\nA,hello\n"),
                           ("faculties.csv", "code,title\nF1,Science\n")):
            assert importer.import_file(write(os.path.join(conf.storage, name), text)).ok == 1
        assert importer.store.get(_Shouting.schema, ("A",)) == {"code": "A", "text": "HELLO"}
    finally:
        importer.close()
    assert used == ["faculties"]  # the config's processor went columnar, the hooked one not


def test_the_vectorised_checks_agree_with_the_field_types() -> None:
    """Every date of four centuries, every month and day number, integers at the edges and
    white space of every kind: the column check gives the type's own value, text or error."""
    day, texts = dt.date(1899, 1, 1), []
    while day.year < 2301:
        texts.append(day.isoformat())
        day += dt.timedelta(days=1)
    texts += [f"2023-{m:02d}-{d:02d}" for m in range(14) for d in range(33)]
    cases = {
        "date": [*texts, "0999-12-31", "1999-1-1", " 2024-03-01", "2024-02-29", "2023-02-29"],
        "int": ["0", "-0", "+5", "007", "9223372036854775807", "9223372036854775808",
                "-9223372036854775808", "99999999999999999999", " 1", "1 ", "٣", "1.0", "-"],
        "email": ["a@b.org", " a@b.org", "a,b@c.org", 'a"b@c.org', "ü@b.org", "a@b", "a@-b.org",
                  "a\u00a0b@c.org", "a@b.org\u2028"],
        "str": ["x", "a\x00b", "\u3000", "\x1c", " x "],
        "bool": ["true", " Y ", "maybe"],
        "choice:a,b": ["a", " a", "A", "c"],
    }
    for spec, cells in cases.items():
        ftype = field_type(spec)
        checked = check_column("f", ftype, pa.array(cells, pa.string()), needed=True)
        for cell, stored, finished, error in zip(cells, checked.stored.to_pylist(),
                                                 checked.finished.to_pylist(),
                                                 checked.error.to_pylist(), strict=True):
            if not cell.strip():
                assert error == "f: required value missing", (spec, cell)
                continue
            try:
                value = ftype.parse(cell)
            except ValueError as exc:
                assert (stored, error) == (None, f"f: {exc}"), (spec, cell)
                continue
            shown = cell if spec == "str" else ftype.render(value)
            assert (stored, finished, error) == (to_db(ftype, value), shown, None), (spec, cell)


@pytest.mark.parametrize("chunk", [3, 4, 1 << 20])
def test_the_prescan_sends_what_arrow_would_misread_to_the_row_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(prescan, "_CHUNK", chunk)  # chunks end anywhere, inside a CRLF too
    cases = {
        b"a,b\r\n1,2\r\n": None,
        "a,b\n1,\u00e9\u20ac\n".encode(): None,
        b'a,b\n1,"x,\ny"\n': None,
        b"a,b\r1,2\n": "a carriage return inside a line",
        b"a,b\n1,2\r": "a carriage return ends the file",
        b"a,b\n1,\x002\n": "a NUL byte",
        b"a,b\n1,\xe9\n": "not UTF-8",
        b'a,b\n1,"x"y\n': "a quote the csv module refuses",
        b'a,b\n1,"never closed\n': "a quote the csv module refuses",
        b"a,b\n1," + b"x" * 40 + b"\n": "a line longer than max_line_bytes",
    }
    for n, (data, refused) in enumerate(cases.items()):
        path = tmp_path / f"{n}.csv"
        path.write_bytes(data)
        found = prescan.scan(str(path), 32, ",")
        assert (found.refused, found.size) == (refused, len(data)), data
        assert found.sha256 == hashlib.sha256(data).hexdigest()
