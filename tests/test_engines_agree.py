"""The columnar engine against its oracle, the row engine: same store, same files.

Each seed makes a storage's worth of random files: valid and invalid cells
of every field type, empty and white-space cells, keys repeated in a file
or stored already, parents missing, rows too short or too long, blank
lines, quoted cells (commas, quotes, line breaks), an ``--IGNORE--`` and an
old ``--ERRORS--`` column, columns in any order, a byte order mark, no line
end after the last row, a ``;``-separated file; and imports them in every
mode (create, update, remove) twice: once through the row engine, once
through the columnar engine with small record batches (so batches end
anywhere). The record tables (every column, the job that wrote each record
too), the outcomes, and every file of the storage (finished, pending,
unfinished, deleted, graduated) must be the same, byte for byte.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import os
import random
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import FakeEntryPoint, fake_entry_points, write

from datacenter.config import Config
from datacenter.importing import columnar, prescan
from datacenter.importing.importer import Importer
from datacenter.importing.processors import BatchProcessor
from datacenter.importing.vectorcheck import check_column
from datacenter.records.fieldtypes import field_type
from datacenter.records.schema import load_processors
from datacenter.records.store import to_db

PROCESSORS = {
    "faculties": {"key": ["code"], "fields": {"code": "str", "title": "str", "size": "int"},
                  "required": ["title"]},
    "departments": {"key": ["code"], "fields": {"code": "str", "faculty": "str",
                                                "title": "str", "opened": "date"},
                    "required": ["title"], "parents": {"faculty": "faculties"},
                    "on_remove": "keep"},
    "students": {"key": ["student_id"],
                 "fields": {"student_id": "str", "name": "str", "email": "email",
                            "birthday": "date", "level": "int",
                            "state": "choice:admitted,returning,graduated",
                            "department": "str", "born": "date:%d/%m/%Y", "ok": "bool"},
                 "required": ["name"], "graduated": {"state": "graduated"},
                 "parents": {"department": "departments"}},
}
SEEDS = range(60)

#: Cells of each field type: mostly valid (some not canonical: " 12 ", "007"), then not.
_CELLS = {
    "str": (["Ada", "Bo la", " padded ", "a,comma", 'say "hi"', "two\nlines", "é ü", "x\ty"],
            ["", "  ", "\u00a0"]),
    "int": (["1", "42", "-7", "0", "007", "+5", " 12 ", "-0", "9223372036854775807"],
            ["abc", "1.5", "99999999999999999999", "", " ", "٣"]),
    "email": (["a@b.org", "x.y@dept.example.edu", " a@b.org ", "ü@b.org"],
              ["bad", "a@b", "a b@c.org", "a@-b.org", ""]),
    "date": (["2024-01-31", "2024-02-29", " 2024-03-01", "1999-12-31"],
             ["2023-02-30", "0999-01-01", "1999-1-1", "20240101", "", "x"]),
    "date:%d/%m/%Y": (["05/03/2004", "2004-03-05", "5/3/2004"], ["31/02/2004", "", "junk"]),
    "bool": (["true", "no", "Y", " 1 "], ["maybe", ""]),
    "choice": (["admitted", "returning", "graduated", " admitted", "graduated"],
               ["Admitted", "gone", ""]),
}


#: A CRLF inside quotes: Arrow reads it as a lone CR, so such files go to the row engine.
_CRLF = "crlf\r\ninside"


def _cell(rng: random.Random, kind: str, crlf: bool) -> str:
    if crlf and kind == "str" and rng.random() < .1:
        return _CRLF
    valid, invalid = _CELLS["choice" if kind.startswith("choice:") else kind]
    return rng.choice(valid if rng.random() < .85 else invalid)


def _file(rng: random.Random, processor: str, mode: str, keys: list[str],
          parents: list[str], crlf: bool = False) -> str:
    schema = PROCESSORS[processor]
    fields: dict[str, str] = schema["fields"]  # type: ignore[assignment]
    key = schema["key"][0]  # type: ignore[index]
    columns = [key] + [f for f in fields if f != key and (mode != "remove" or rng.random() < .3)]
    columns = [c for c in columns if c == key or c in schema.get("required", []) or mode != "create"
               or rng.random() < .85]
    rng.shuffle(columns)
    if rng.random() < .2:
        columns.insert(rng.randrange(len(columns) + 1), "--IGNORE--")
    if rng.random() < .2:
        columns.append("--ERRORS--")
    quoting = csv.QUOTE_ALL if rng.random() < .15 else csv.QUOTE_MINIMAL
    ending = rng.choice(["\n", "\r\n"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=ending, quoting=quoting)
    writer.writerow(columns)
    for _ in range(rng.randrange(1, 40)):
        roll = rng.random()
        if roll < .04:
            out.write(rng.choice(["", " ", ",,"]) + ending)  # a blank line
            continue
        row = []
        for column in columns:
            if column == key:
                row.append(rng.choice(keys) if rng.random() < .95 else rng.choice(["", " "]))
            elif column in schema.get("parents", {}):
                row.append(rng.choice([*parents, "", "NOPE"]))
            elif column == "--IGNORE--":
                row.append(rng.choice(["skip me", "", "1,2"]))
            elif column == "--ERRORS--":
                row.append(rng.choice(["old reason", ""]))
            else:
                row.append(_cell(rng, fields[column], crlf))
        if roll < .08:
            row = row[:rng.randrange(len(row))] or ["short"]
        elif roll < .11:
            row = [*row, "extra"]
        writer.writerow(row)
    return out.getvalue()


def _scenario(rng: random.Random) -> list[tuple[str, str]]:
    """(file name, text) in import order."""
    faculties = [f"F{n}" for n in range(6)]
    departments = [f"D{n}" for n in range(8)]
    students = [f"S{n:03d}" for n in range(30)]
    steps = [
        ("faculties.csv", _file(rng, "faculties", "create", faculties, [])),
        ("departments.csv", _file(rng, "departments", "create", departments, faculties)),
        ("students.csv", _file(rng, "students", "create", students, departments,
                               crlf=rng.random() < .2)),
        ("students_more.csv", _file(rng, "students", "create", students, departments)),
        ("students_fix.update.csv", _file(rng, "students", "update", students, departments)),
        ("departments_fix.update.csv",
         _file(rng, "departments", "update", departments, faculties)),
        ("faculties_gone.remove.csv", _file(rng, "faculties", "remove", faculties, [])),
        ("students_gone.remove.csv", _file(rng, "students", "remove", students, [])),
        ("departments_gone.remove.csv", _file(rng, "departments", "remove", departments, [])),
    ]
    for n, (name, text) in enumerate(steps):
        if rng.random() < .15:
            text = "\ufeff" + text  # a byte order mark, as Excel writes
        if rng.random() < .15:
            text = text.rstrip("\r\n")  # no line end after the last row
        steps[n] = (name, text)
    if rng.random() < .3:  # the ;-separated variant of one file
        name, text = steps[2]
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if all(";" not in c for r in rows for c in r):
            buf = io.StringIO()
            csv.writer(buf, delimiter=";", lineterminator="\n").writerows(rows)
            steps[2] = (name, buf.getvalue())
    return steps


def _run(work: Path, steps: list[tuple[str, str]], columnar_engine: bool,
         monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setattr(BatchProcessor, "columnar", columnar_engine)
    monkeypatch.setattr(columnar, "MIN_BYTES", 0)  # small files too, here
    conf = Config(path=None, storage=str(work / "storage"), database=str(work / "db.sqlite"),
                  processors=PROCESSORS)
    importer = Importer(conf)
    outcomes: list[object] = []
    engine = columnar.import_file
    columnar_runs: list[bool] = []

    def counted(*args: object, **kwargs: object) -> object:
        done = engine(*args, **kwargs)  # type: ignore[arg-type]
        columnar_runs.append(done is not None)
        return done

    monkeypatch.setattr(columnar, "import_file", counted)
    try:
        for name, text in steps:
            path = write(os.path.join(conf.storage, name), text)
            try:
                done = importer.import_file(path)
                outcomes.append((done.rows, done.ok, done.failed, done.pending))
            except Exception as error:  # the error is part of the outcome
                outcomes.append(str(error))
    finally:
        importer.close()
    with contextlib.closing(sqlite3.connect(conf.database)) as db:
        tables = {name: db.execute(f'SELECT * FROM "rec_{name}" ORDER BY 1').fetchall()
                  for name in PROCESSORS}
    files = {}
    for folder, dirs, names in os.walk(conf.storage):
        dirs[:] = [d for d in dirs if d not in (".datacenter", "logs")]
        for name in names:
            files[os.path.relpath(os.path.join(folder, name), conf.storage)] = \
                Path(folder, name).read_bytes()
    return {"outcomes": outcomes, "tables": tables, "files": files,
            "columnar": sum(columnar_runs)}


@pytest.mark.parametrize("seed", SEEDS)
def test_both_engines_import_alike(seed: int, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _scenario(random.Random(seed))
    row = _run(tmp_path / "row", steps, False, monkeypatch)
    monkeypatch.setattr(columnar, "BLOCK_BYTES", random.Random(seed).choice([256, 1024, 1 << 20]))
    columns = _run(tmp_path / "columnar", steps, True, monkeypatch)
    assert columns["outcomes"] == row["outcomes"]
    assert columns["tables"] == row["tables"]
    assert columns["files"] == row["files"]
    assert row["columnar"] == 0
    # The files the row engine must read (a CRLF inside quotes) are few: most were columnar.
    assert columns["columnar"] >= len(steps) - 2, columns["columnar"]


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
                  database=str(tmp_path / "db.sqlite"), processors=PROCESSORS)
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
