"""Processors that installed packages add through the ``datacenter.processors`` entry point."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers import FakeEntryPoint, at, drop, fake_entry_points, make_importer, table

from datacenter.importing.processors import BatchProcessor
from datacenter.records.fieldtypes import field_type
from datacenter.records.schema import ProcessorSchema, SchemaError

COURSES = ProcessorSchema(name="courses", key=("code",),
                          fields={"code": field_type("str"), "credits": field_type("int")},
                          required=("credits",))


class CourseProcessor(BatchProcessor):
    """A processor shipped by a package: credits may never go down."""

    schema = COURSES

    def checkUpdateRequirements(  # noqa: N802
            self, entry: Mapping[str, object], values: Mapping[str, object], mode: str
    ) -> str | None:
        new, old = values.get("credits"), entry.get("credits")
        if isinstance(new, int) and isinstance(old, int) and new < old:
            return f"credits: may not go down ({old} -> {new})"
        return None


def test_entry_point_processor_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_entry_points(monkeypatch, FakeEntryPoint("courses", CourseProcessor))
    imp = make_importer(tmp_path)
    assert asked == ["datacenter.processors"]
    assert isinstance(imp.processor("courses"), CourseProcessor)
    assert imp.route("courses_2024.update.csv") == ("courses", "update")
    imp.import_file(drop(imp, "courses.csv", "code,credits\nC1,5\nC2,5\n"))
    outcome = imp.import_file(drop(imp, "courses.update.csv", "code,credits\nC1,3\nC2,6\n"))
    assert (outcome.ok, outcome.failed) == (1, 1)
    assert table(at(imp, outcome.pending or "?")) == [
        ["code", "credits", "--ERRORS--"], ["C1", "3", "credits: may not go down (5 -> 3)"]]
    assert imp.store.get(COURSES, ("C1",)) == {"code": "C1", "credits": 5}
    assert imp.store.get(COURSES, ("C2",)) == {"code": "C2", "credits": 6}
    assert imp.store.count("students") == 0  # the config's processors are still there
    imp.close()


def test_entry_point_schema_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, FakeEntryPoint("courses", COURSES))
    imp = make_importer(tmp_path)
    assert type(imp.processor("courses")) is BatchProcessor
    outcome = imp.import_file(drop(imp, "courses.csv", "code,credits\nC1,x\n"))
    assert table(at(imp, outcome.pending or "?"))[1][-1] == "credits: invalid integer 'x'"
    imp.close()


def test_entry_point_duplicate_name_is_an_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    clash = ProcessorSchema(name="students", key=("id",), fields={"id": field_type("str")})
    fake_entry_points(monkeypatch, FakeEntryPoint("mine", clash))
    with pytest.raises(SchemaError, match="processor 'students' is defined twice"):
        make_importer(tmp_path)
    fake_entry_points(monkeypatch, FakeEntryPoint("a", COURSES), FakeEntryPoint("b", COURSES))
    with pytest.raises(SchemaError, match="'courses' is defined twice"):
        make_importer(tmp_path)


def test_entry_point_without_a_schema_is_an_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake_entry_points(monkeypatch, FakeEntryPoint("broken", io.StringIO))
    with pytest.raises(SchemaError, match="entry point broken"):
        make_importer(tmp_path)
