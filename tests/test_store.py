"""The record store: rows written all or none, stored rows, snapshots; SQL kept home."""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from datacenter.records.backend import Store, open_store
from datacenter.records.postgres import is_url
from datacenter.records.schema import load_processors
from datacenter.records.store import RecordStore

PACKAGE = Path(__file__).resolve().parent.parent / "datacenter"
STORE = PACKAGE / "records" / "store.py"
#: The modules that speak SQLite: the store, and the columnar engine's staging beside it.
SQL_HOMES = {STORE, PACKAGE / "records" / "staging.py"}
#: The modules that speak to PostgreSQL: the store, its schema, the instances' claims.
POSTGRES_MODULES = {PACKAGE / "records" / name
                    for name in ("postgres.py", "migrations.py", "claims.py")}
SQL_ATTRIBUTES = {"execute", "executemany", "executescript", "db"}
PROCESSORS = {
    "courses": {"key": ["year", "code"],
                "fields": {"year": "int", "code": "str", "title": "str", "credits": "int"}},
    "kinds": {"key": ["code"],
              "fields": {"code": "str", "ok": "bool", "day": "date", "count": "int"}},
}
NAMES = ("year", "code", "title", "credits")


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    """A store of each kind (SQLite, PostgreSQL): both behave the same."""
    with contextlib.closing(open_store(database, load_processors(PROCESSORS))) as opened:
        yield opened


def _write_elsewhere(database: str, sql: str) -> None:
    """Run *sql* through a connection of its own (another process, as it were)."""
    if is_url(database):
        with psycopg.connect(database, autocommit=True) as other:
            other.execute(sql)
        return
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute(sql)
        db.commit()


def courses(store: Store) -> list[tuple[object, ...]]:
    return list(store.stored_rows("courses"))


def test_inserting_rows_all_at_once(store: Store) -> None:
    schema = store.schemas["courses"]
    with store.transaction():
        assert store.insert_rows_all_or_none(
            schema, NAMES, [[2024, "B", "Biology", 5], [2024, "A", "Art", None]])
    assert courses(store) == [(2024, "A", "Art", None), (2024, "B", "Biology", 5)]


@pytest.mark.parametrize("second", [(2024, "A"), (2025, "C")], ids=["stored", "in the batch"])
def test_a_batch_with_one_duplicate_key_writes_nothing(
        store: Store, second: tuple[int, str]) -> None:
    schema = store.schemas["courses"]
    with store.transaction():
        assert store.insert_row(schema, NAMES, [2024, "A", "Art", 1])
        batch = [[2025, "C", "Chemistry", 2], [*second, "Again", 3], [2025, "D", "Drama", 4]]
        assert not store.insert_rows_all_or_none(schema, NAMES, batch)
        assert courses(store) == [(2024, "A", "Art", 1)]  # the transaction's own row stays
    assert courses(store) == [(2024, "A", "Art", 1)]


def test_insert_row_reports_an_existing_key(store: Store) -> None:
    schema = store.schemas["courses"]
    with store.transaction():
        assert store.insert_row(schema, ("year", "code"), [2024, "A"])
        assert not store.insert_row(schema, NAMES, [2024, "A", "Other", 1])
    assert courses(store) == [(2024, "A", None, None)]


def test_updating_rows_all_at_once_with_a_composite_key(store: Store) -> None:
    schema = store.schemas["courses"]
    with store.transaction():
        store.insert_rows_all_or_none(schema, NAMES, [[2024, "A", "Art", 1], [2025, "A", "Art", 1]])
        # The key may come anywhere among the names; only the other fields change.
        assert store.update_rows_all_or_none(schema, ("credits", "code", "year"),
                                             [[7, "A", 2025], [6, "A", 2024]])
    assert courses(store) == [(2024, "A", "Art", 6), (2025, "A", "Art", 7)]


def test_an_update_of_a_missing_key_writes_nothing(store: Store) -> None:
    schema = store.schemas["courses"]
    with store.transaction():
        store.insert_row(schema, NAMES, [2024, "A", "Art", 1])
        assert not store.update_rows_all_or_none(
            schema, NAMES, [[2024, "A", "Changed", 2], [2024, "Z", "Missing", 3]])
    assert courses(store) == [(2024, "A", "Art", 1)]


def test_an_update_of_the_key_alone_tells_whether_every_record_is_there(
        store: Store) -> None:
    schema = store.schemas["courses"]
    with store.transaction():
        store.insert_row(schema, NAMES, [2024, "A", "Art", 1])
        assert store.update_rows_all_or_none(schema, ("year", "code"), [[2024, "A"]])
        assert not store.update_rows_all_or_none(schema, ("year", "code"),
                                                 [[2024, "A"], [2024, "B"]])
    assert courses(store) == [(2024, "A", "Art", 1)]


def test_stored_rows_are_as_stored_in_field_and_key_order(store: Store) -> None:
    schema = store.schemas["kinds"]
    with store.transaction():
        store.insert(schema, {"day": dt.date(2024, 2, 29), "code": "b", "ok": True})
        store.insert(schema, {"code": "a", "ok": False, "count": 3})
    assert list(store.stored_rows("kinds", 1)) == [("a", 0, None, 3),
                                                   ("b", 1, "2024-02-29", None)]
    assert list(store.iter_records("kinds"))[1] == {
        "code": "b", "ok": True, "day": dt.date(2024, 2, 29), "count": None}


def test_a_snapshot_does_not_see_a_commit_made_meanwhile(store: Store) -> None:
    schema = store.schemas["kinds"]
    with store.transaction():
        store.insert(schema, {"code": "a"})
    with store.snapshot():
        assert store.count("kinds") == 1
        _write_elsewhere(store.path, "INSERT INTO rec_kinds (code) VALUES ('b')")
        assert store.count("kinds") == 1
        assert [row[0] for row in store.stored_rows("kinds")] == ["a"]
    assert store.count("kinds") == 2


def test_a_snapshot_inside_a_transaction_is_that_transaction(store: Store) -> None:
    schema = store.schemas["kinds"]
    with pytest.raises(_UndoError), store.transaction():
        store.insert(schema, {"code": "a"})
        with store.snapshot():
            assert store.count("kinds") == 1
        raise _UndoError  # the snapshot did not end the transaction: all of it is undone
    assert store.count("kinds") == 0


class _UndoError(Exception):
    """Raised inside a transaction to undo it."""


def _sql_outside_the_store(path: Path) -> Iterator[str]:
    """Where *path* imports a database driver, runs SQL or reaches for a connection (``.db``).

    SQLite is spoken in the modules of :data:`SQL_HOMES` alone; PostgreSQL in
    those of :data:`POSTGRES_MODULES` alone.
    """
    where = path.relative_to(PACKAGE)
    speaks = ({"sqlite3"} if path in SQL_HOMES else {"psycopg"} if path in POSTGRES_MODULES
              else set())
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            if (path not in SQL_HOMES and path not in POSTGRES_MODULES
                    and isinstance(node, ast.Attribute) and node.attr in SQL_ATTRIBUTES):
                yield f"{where}:{node.lineno} .{node.attr}"
            continue
        for driver in ({"sqlite3", "psycopg"} - speaks):
            if any(module.split(".")[0] == driver for module in modules):
                yield f"{where}:{node.lineno} imports {driver}"


def test_only_the_stores_speak_sql() -> None:
    offenders = [offence for path in sorted(PACKAGE.rglob("*.py"))
                 for offence in _sql_outside_the_store(path)]
    assert offenders == []


NASTY = 'a"; DROP TABLE x; --'


def test_any_field_name_reaches_sql_quoted(tmp_path: Path) -> None:
    """Every statement of the store with names made to break SQL: nothing breaks, x stays."""
    path = str(tmp_path / "records.sqlite")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE x (kept INTEGER)")
    schemas = load_processors({
        "owners": {"key": [NASTY], "fields": {NASTY: "str", "Prénom": "str"}},
        "things": {"key": ["Nr."], "fields": {"Nr.": "int", 'owner "of"': "str"},
                   "parents": {'owner "of"': "owners"}}})
    with contextlib.closing(RecordStore(path, schemas)) as store:
        owners, things = schemas["owners"], schemas["things"]
        with store.transaction():
            assert store.insert(owners, {NASTY: "o1", "Prénom": "Zoë"})
            assert store.insert_rows_all_or_none(things, ("Nr.", 'owner "of"'),
                                                 [[1, "o1"], [2, "o1"]])
            assert store.update(owners, ("o1",), {"Prénom": "Ada"})
            assert store.update_rows_all_or_none(things, ("Nr.", 'owner "of"'), [[2, "o2"]])
        assert store.get(owners, ("o1",)) == {NASTY: "o1", "Prénom": "Ada"}
        assert store.count_referencing(things, 'owner "of"', "o1") == 1
        assert store.referencing(things, 'owner "of"', "o1") == [{"Nr.": 1, 'owner "of"': "o1"}]
        assert list(store.stored_rows("things")) == [(1, "o1"), (2, "o2")]
        with store.transaction():
            assert store.delete(things, (1,))
        assert store.count("things") == 1
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM x").fetchone() == (0,)
        indexes = {row[1] for row in db.execute('PRAGMA index_list("rec_things")')}
        assert 'rec_things_by_owner "of"' in indexes


def test_a_store_made_before_opens_as_it_is(tmp_path: Path) -> None:
    """A table made by an earlier version (bare identifiers, no job column) keeps its rows."""
    path = str(tmp_path / "records.sqlite")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE rec_courses (year INTEGER, code TEXT, title TEXT, "
                   "credits INTEGER, PRIMARY KEY (year, code))")
        db.execute("INSERT INTO rec_courses VALUES (2024, 'A', 'Art', 3)")
    with contextlib.closing(RecordStore(path, load_processors(PROCESSORS))) as store:
        assert courses(store) == [(2024, "A", "Art", 3)]
        with store.transaction():
            assert store.insert(store.schemas["courses"], {"year": 2025, "code": "B"})
        assert courses(store) == [(2024, "A", "Art", 3), (2025, "B", None, None)]
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert [row[1] for row in db.execute("PRAGMA table_info(rec_courses)")] == [
            "year", "code", "title", "credits", "--job--"]
