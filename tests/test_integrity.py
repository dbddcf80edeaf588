"""Removing a parent that other records name: refused, cascaded, or kept (``on_remove``)."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import PROCESSORS, at, drop, make_importer, read, table, write_tmp

from datacenter.config import ConfigError
from datacenter.importing.importer import Importer
from datacenter.records.schema import ProcessorSchema, SchemaError, load_processors
from datacenter.records.store import RecordStore
from datacenter.testing.crashpoints import enumerate_crashes

FACULTIES = "code,title\r\nFAC1,Science\r\nFAC2,Arts\r\nFAC3,Law\r\n"
DEPARTMENTS = ("code,faculty_code,title\r\nD1,FAC1,Physics\r\nD2,FAC1,Chemistry\r\n"
               "D3,FAC1,Biology\r\nD4,FAC2,History\r\n")


def processors(faculties: str | None = None, departments: str | None = None,
               ) -> dict[str, Any]:
    found = copy.deepcopy(PROCESSORS)
    if faculties is not None:
        found["faculties"]["on_remove"] = faculties
    if departments is not None:
        found["departments"]["on_remove"] = departments
    found["courses"] = {"key": ["code"], "fields": {"code": "str", "department": "str"},
                        "parents": {"department": "departments"}}
    return found


def seeded(tmp_path: Path, faculties: str | None = None,
           departments: str | None = None) -> Importer:
    imp = make_importer(tmp_path, processors(faculties, departments))
    assert imp.import_file(drop(imp, "faculties.csv", FACULTIES)).failed == 0
    assert imp.import_file(drop(imp, "departments.csv", DEPARTMENTS)).failed == 0
    return imp


@pytest.fixture
def closing() -> Iterator[list[Importer]]:
    opened: list[Importer] = []
    yield opened
    for imp in opened:
        imp.close()


def codes(imp: Importer, processor: str) -> list[str]:
    return [str(r["code"]) for r in imp.store.iter_records(processor)]


def test_removing_a_referenced_parent_is_refused_by_default(
        tmp_path: Path, closing: list[Importer]) -> None:
    imp = seeded(tmp_path)
    closing.append(imp)
    assert imp.schemas["faculties"].on_remove == "refuse"
    outcome = imp.import_file(drop(imp, "faculties.remove.csv", "code\r\nFAC1\r\nFAC3\r\n"))
    assert (outcome.ok, outcome.failed) == (1, 1)
    assert codes(imp, "faculties") == ["FAC1", "FAC2"]  # FAC3 had no department: removed
    assert codes(imp, "departments") == ["D1", "D2", "D3", "D4"]
    assert outcome.pending is not None
    pending = table(at(imp, outcome.pending))
    assert pending == [["code", "--ERRORS--"], ["FAC1", "still referenced by 3 departments"]]
    assert table(at(imp, "deleted", "faculties.csv"))[1:] == [["FAC3", "Law"]]
    assert not os.path.exists(at(imp, "deleted", "departments.csv"))


def test_cascade_removes_and_backs_up_the_children_in_one_transaction(
        tmp_path: Path, closing: list[Importer]) -> None:
    imp = seeded(tmp_path, faculties="cascade")
    closing.append(imp)
    outcome = imp.import_file(drop(imp, "faculties.remove.csv", "code\r\nFAC1\r\n"))
    assert (outcome.ok, outcome.failed) == (1, 0)
    assert codes(imp, "faculties") == ["FAC2", "FAC3"]
    assert codes(imp, "departments") == ["D4"]
    assert table(at(imp, "deleted", "faculties.csv")) == [["code", "title"],
                                                          ["FAC1", "Science"]]
    assert table(at(imp, "deleted", "departments.csv")) == [
        ["code", "faculty_code", "title"], ["D1", "FAC1", "Physics"],
        ["D2", "FAC1", "Chemistry"], ["D3", "FAC1", "Biology"]]
    finished = [n for n in os.listdir(at(imp, "finished")) if n.endswith(".finished.csv")
                and n.startswith("faculties.remove")]
    assert [table(at(imp, "finished", n)) for n in finished] == [[["code"], ["FAC1"]]]
    assert not os.listdir(at(imp, ".datacenter", "jobs"))  # every staged backup filed away
    log = read(at(imp, "logs", "datacenter.log"))
    assert "backed up: departments records to deleted/departments.csv" in log


def test_a_cascade_stops_where_a_child_refuses(tmp_path: Path,
                                               closing: list[Importer]) -> None:
    """FAC1 cascades to D1, whose processor refuses while a course names it: nothing goes."""
    imp = seeded(tmp_path, faculties="cascade")
    closing.append(imp)
    imp.import_file(drop(imp, "courses.csv", "code,department\r\nC1,D1\r\nC2,D1\r\n"))
    outcome = imp.import_file(drop(imp, "faculties.remove.csv", "code\r\nFAC1\r\n"))
    assert outcome.failed == 1 and outcome.pending is not None
    assert table(at(imp, outcome.pending))[1] == [
        "FAC1", "departments D1 is still referenced by 2 courses (removed with FAC1)"]
    assert codes(imp, "faculties") == ["FAC1", "FAC2", "FAC3"]
    assert codes(imp, "departments") == ["D1", "D2", "D3", "D4"]
    assert not os.path.exists(at(imp, "deleted", "departments.csv"))


def test_a_cascade_goes_down_every_level_that_cascades(tmp_path: Path,
                                                       closing: list[Importer]) -> None:
    imp = seeded(tmp_path, faculties="cascade", departments="cascade")
    closing.append(imp)
    imp.import_file(drop(imp, "courses.csv", "code,department\r\nC1,D1\r\nC2,D4\r\n"))
    assert imp.import_file(drop(imp, "faculties.remove.csv", "code\r\nFAC1\r\n")).ok == 1
    assert codes(imp, "courses") == ["C2"]
    assert table(at(imp, "deleted", "courses.csv"))[1:] == [["C1", "D1"]]


def test_keep_removes_the_parent_alone(tmp_path: Path, closing: list[Importer]) -> None:
    imp = seeded(tmp_path, faculties="keep")
    closing.append(imp)
    outcome = imp.import_file(drop(imp, "faculties.remove.csv", "code\r\nFAC1\r\n"))
    assert (outcome.ok, outcome.failed) == (1, 0)
    assert codes(imp, "faculties") == ["FAC2", "FAC3"]
    assert codes(imp, "departments") == ["D1", "D2", "D3", "D4"]  # orphans, as asked
    assert not os.path.exists(at(imp, "deleted", "departments.csv"))


def test_kofa_doimport_backs_up_a_cascade_too(tmp_path: Path,
                                              closing: list[Importer]) -> None:
    imp = seeded(tmp_path, faculties="cascade")
    closing.append(imp)
    path = write_tmp(tmp_path, "gone.csv", "code\r\nFAC2\r\n")
    rows, failed, _, pending = imp.processor("faculties").doImport(path, ["code"], "remove")
    assert (rows, failed, pending) == (1, 0, None)
    assert table(at(imp, "deleted", "departments.csv"))[1:] == [["D4", "FAC2", "History"]]


def test_a_removal_asks_an_index_not_a_scan(tmp_path: Path) -> None:
    schemas = load_processors(processors())
    store = RecordStore(str(tmp_path / "db.sqlite"), schemas)
    try:
        plan = store.db.execute(
            'EXPLAIN QUERY PLAN SELECT COUNT(*) FROM "rec_departments" '
            'WHERE "faculty_code" = ?', ("FAC1",)).fetchall()
        assert "USING COVERING INDEX" in str(plan) or "USING INDEX" in str(plan)
        assert store.count_referencing(schemas["departments"], "faculty_code", "FAC1") == 0
    finally:
        store.close()


@pytest.mark.parametrize("value", ["casade", "", 1, ["cascade"]])
def test_on_remove_is_checked_in_one_line(value: object) -> None:
    with pytest.raises(SchemaError) as info:
        load_processors({"faculties": {"key": ["code"], "fields": {"code": "str"},
                                       "on_remove": value}}, "conf/dc.toml")
    assert str(info.value) == ("conf/dc.toml: [processors.faculties]: on_remove must be one "
                               f"of 'refuse', 'cascade', 'keep', not {value!r}")
    assert isinstance(info.value, ConfigError) and "\n" not in str(info.value)


def test_on_remove_defaults_to_refuse() -> None:
    schema = ProcessorSchema("faculties", ("code",), {"code": load_processors(
        processors())["faculties"].fields["code"]})
    assert schema.on_remove == "refuse"
    assert load_processors(processors(faculties="keep"))["faculties"].on_remove == "keep"


@pytest.mark.slow
def test_kill_anywhere_in_a_cascade(tmp_path: Path) -> None:
    """The parent and its children are removed and backed up exactly once, whatever is
    killed when (every fs step and the commit), recovery killed at each of its steps too."""
    work = tmp_path / "work"
    found = processors(faculties="cascade")

    def prepare() -> None:
        shutil.rmtree(work, ignore_errors=True)
        seeded(work, faculties="cascade").close()
        with open(work / "storage" / "faculties.remove.csv", "w") as handle:
            handle.write("code\r\nFAC1\r\n")

    def act() -> None:
        make_importer(work, found).import_file(str(work / "storage" / "faculties.remove.csv"))

    def check() -> None:
        if os.path.exists(work / "storage" / "faculties.remove.csv"):
            act()  # rolled back: the next attempt removes them
        imp = make_importer(work, found)
        try:
            assert codes(imp, "faculties") == ["FAC2", "FAC3"]
            assert codes(imp, "departments") == ["D4"]
            assert table(at(imp, "deleted", "faculties.csv"))[1:] == [["FAC1", "Science"]]
            assert [r[0] for r in table(at(imp, "deleted", "departments.csv"))[1:]] == [
                "D1", "D2", "D3"]
            state = at(imp, ".datacenter")
            assert [os.listdir(os.path.join(state, area))
                    for area in ("journal", "staging", "jobs")] == [[], [], []]
        finally:
            imp.close()

    report = enumerate_crashes(prepare, act, lambda: make_importer(work, found).close(), check,
                               target="*")
    assert report.points >= 20
    print(f"cascade: {report.points} crash points, {report.runs} runs")
