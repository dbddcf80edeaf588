"""The columnar CSV export writes exactly the bytes of the row writer, and stays fail-safe.

Every comparison runs both routes on the same store (``export_processor``
with ``columnar`` on and off): the row writer is the oracle, so a change to
the formula guard, the quoting or how a value prints shows up as a
difference, not as a rewritten expectation.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import sqlite3
from pathlib import Path

import pytest

from datacenter import export
from datacenter.cli import main as datacenter_main
from datacenter.columnar_export import Guard, csv_chunks
from datacenter.records.schema import load_processors
from datacenter.records.store import RecordStore, text_batches
from datacenter.storage import fs
from datacenter.testing.faults import FaultInjector

PROCESSORS = {
    "kinds": {"key": ["code"], "fields": {
        "code": "str", "note": "str", "mail": "email", "day": "date", "at": "datetime",
        "count": "int", "ratio": "float", "ok": "bool", "state": "choice:a,b,=c"}},
    "lone": {"key": ["code"], "fields": {"code": "str"}},
}
#: Cells that test the guard and the quoting: formula starts, signs behind blanks and
#: invisible characters, full-width signs, letters of other scripts, quotes, separators.
TRICKY = ["plain", "=1+2", "+1", "-x", "@SUM(A1)", "\tTab", "\rCR", " =1", "\u200b+1",
          "\u00a0-3", "\uff1d1", "\u3000@x", "\ufeff=x", " x-1", "  ", "Émile", "Ωmega",
          "日本", "😀=", "a,b", 'say "hi"', "two\nlines", "crlf\r\nend", '"', ",", "-",
          "'quoted", "\u2028=x", "\x1c=x", "\u0301=x", "", "=", "x" * 300]
FLOATS = [0.1, 0.1 + 0.2, 1e20, 1e16, 1e-7, -0.0, 5.0, -2.5, 123456789.125, None]


def _store(tmp_path: Path) -> RecordStore:
    return RecordStore(str(tmp_path / "records.sqlite"), load_processors(PROCESSORS))


def _fill(store: RecordStore, count: int, seed: int = 7) -> None:
    draw = random.Random(seed)
    schema = store.schemas["kinds"]
    with store.transaction():
        for n in range(count):
            values: dict[str, object] = {
                "code": f"K{n:05d}" if n % 5 else draw.choice(TRICKY) + f"#{n}",
                "note": draw.choice([*TRICKY, None]),
                "mail": draw.choice([f"p{n}@example.org", "-x@example.org", None]),
                "day": draw.choice(["2024-02-29", "1999-12-31", None]),
                "at": draw.choice(["2024-02-29 13:45:00", None]),
                "count": draw.choice([0, -5, 2**62, n, None]),
                "ratio": draw.choice(FLOATS),
                "ok": draw.choice([True, False, None]),
                "state": draw.choice(["a", "=c", None]),
            }
            assert store.insert(schema, values)


def _both(store: RecordStore, tmp_path: Path, name: str = "kinds",
          neutralise: bool = True) -> tuple[bytes, bytes]:
    rows, columns = tmp_path / "rows.csv", tmp_path / "columns.csv"
    counted = [export.export_processor(store, name, str(path), neutralise=neutralise,
                                       columnar=columnar)
               for path, columnar in ((rows, False), (columns, True))]
    assert counted[0] == counted[1]
    return rows.read_bytes(), columns.read_bytes()


@pytest.mark.parametrize("neutralise", [True, False], ids=["guarded", "raw cells"])
def test_the_columnar_export_writes_the_row_writers_bytes(
        tmp_path: Path, neutralise: bool) -> None:
    with contextlib.closing(_store(tmp_path)) as store:
        _fill(store, 3_000)
        by_rows, by_columns = _both(store, tmp_path, neutralise=neutralise)
    assert by_columns == by_rows
    assert by_rows.startswith(b"code,note,mail,day,at,count,ratio,ok,state\r\n")
    text = by_rows.decode()
    assert ("'=1+2" in text) is neutralise and ('"two\nlines"' in text)
    assert "0.30000000000000004" in text and ",true," in text


def test_every_tricky_cell_alone(tmp_path: Path) -> None:
    """One record per tricky text, in every text column: the guard and quoting per cell."""
    with contextlib.closing(_store(tmp_path)) as store:
        schema = store.schemas["kinds"]
        with store.transaction():
            for n, cell in enumerate(TRICKY):
                store.insert(schema, {"code": cell + f"/{n}", "note": cell,
                                      "mail": cell or None, "state": cell})
        by_rows, by_columns = _both(store, tmp_path)
    assert by_columns == by_rows
    assert b"'\xef\xbc\x9d1" in by_rows  # the full-width sign is guarded


def test_a_lone_empty_cell_is_quoted_like_csv_writer(tmp_path: Path) -> None:
    with contextlib.closing(_store(tmp_path)) as store:
        assert _both(store, tmp_path, "lone") == (b"code\r\n", b"code\r\n")  # no records
        with store.transaction():
            for code in ("", "x", "=y"):
                store.insert(store.schemas["lone"], {"code": code})
        by_rows, by_columns = _both(store, tmp_path, "lone")
    assert by_columns == by_rows == b"code\r\n\"\"\r\n'=y\r\nx\r\n"


def test_a_column_null_through_its_first_batch_still_reads(tmp_path: Path) -> None:
    """The driver types a column by its first batch: NULLs there must not make it INT."""
    with contextlib.closing(_store(tmp_path)) as store:
        schema = store.schemas["kinds"]
        with store.transaction():
            for n in range(50):
                later = n >= 40
                store.insert(schema, {"code": f"K{n:03d}", "note": "=late" if later else None,
                                      "ratio": 0.5 if later else None,
                                      "ok": later or None, "count": n if later else None})
        guard = Guard(export.neutralise_cell, export.FORMULA_STARTS)
        chunks = list(csv_chunks(text_batches(store.path, schema, rows=8), schema, guard))
        assert sum(records for records, _ in chunks) == 50 and len(chunks) == 7
        by_rows, by_columns = _both(store, tmp_path)
        assert by_columns == by_rows
        assert by_columns.splitlines()[-1] == b"K049,'=late,,,,49,0.5,true,"
        assert b"".join(data for _, data in chunks) == by_columns.split(b"\r\n", 1)[1]


def test_a_value_that_does_not_fit_its_column_falls_back_to_rows(tmp_path: Path) -> None:
    """Text in a REAL column (written around the imports): the same bytes, row by row."""
    with contextlib.closing(_store(tmp_path)) as store:
        _fill(store, 200)
        with contextlib.closing(sqlite3.connect(store.path)) as db, db:
            db.execute("UPDATE rec_kinds SET ratio = 'not a number' WHERE code = 'K00003'")
        by_rows, by_columns = _both(store, tmp_path)
    assert by_columns == by_rows and b",not a number," in by_rows


def test_standard_output_gets_the_same_bytes(tmp_path: Path,
                                             capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    with contextlib.closing(_store(tmp_path)) as store:
        _fill(store, 300)
        by_rows, _ = _both(store, tmp_path)
        capfdbinary.readouterr()
        assert export.export_processor(store, "kinds", "-") == 300
    assert capfdbinary.readouterr().out == by_rows


CONFIG = """
database = "records.sqlite"

[processors.kinds]
key = ["code"]
fields = { code = "str", note = "str" }
"""


def _crash_export(nth: int) -> None:
    FaultInjector.crash_at(nth).install()
    datacenter_main(["--config", "datacenter.toml", "export", "kinds", "--output", "x.csv"])


def _listing() -> list[str]:
    return sorted(os.listdir("."))


def test_a_crash_at_every_step_of_a_processor_export_leaves_old_or_new(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("datacenter.toml").write_text(CONFIG, encoding="utf-8")
    schemas = load_processors({"kinds": {"key": ["code"],
                                         "fields": {"code": "str", "note": "str"}}})
    with contextlib.closing(RecordStore("records.sqlite", schemas)) as store, \
            store.transaction():
        for n in range(100):
            store.insert(schemas["kinds"], {"code": f"K{n:03d}", "note": f"=n{n}"})
    new = "code,note\r\n" + "".join(f"K{n:03d},'=n{n}\r\n" for n in range(100))
    fork = multiprocessing.get_context("fork")
    outcomes = set()
    for nth in range(1, 100):
        for name, text in (("x.csv", "old\n"), ("x.csv.bak", "older\n")):
            Path(name).unlink(missing_ok=True)  # a crash may leave them two names of one file
            Path(name).write_text(text, encoding="utf-8")
        child = fork.Process(target=_crash_export, args=(nth,))
        child.start()
        child.join()
        pair = (Path("x.csv").read_bytes().decode(), Path("x.csv.bak").read_bytes().decode())
        assert pair in {("old\n", "older\n"), ("old\n", "old\n"), (new, "old\n")}
        outcomes.add(pair)
        leftovers = set(_listing()) - {"x.csv", "x.csv.bak", "datacenter.toml",
                                       "records.sqlite", "records.sqlite-wal",
                                       "records.sqlite-shm"}
        assert all(name.startswith(fs.TEMP_PREFIX) for name in leftovers)
        for name in leftovers:
            os.unlink(name)
        if child.exitcode == 0:
            break
    assert len(outcomes) == 3 and nth > 5

