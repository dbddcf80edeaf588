"""Which processor, in which mode, imports a file: by name, by route, by request."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from helpers import ROOT, drop, load_students, student, write

from datacenter.importing.importer import Importer, UnroutedError


@pytest.mark.parametrize(("name", "expected"), [
    ("students.csv", ("students", "create")),
    ("students_2024.csv", ("students", "create")),
    ("students.update.csv", ("students", "update")),
    ("students_x.remove.csv", ("students", "remove")),
    ("departments.create.pending.csv", ("departments", "create")),
    ("students_2024.update.pending.csv", ("students", "update")),
    ("faculties.remove.csv", ("faculties", "remove")),
    ("graduates_students.csv", ("students", "update")),  # the config's route
    ("graduates_students.remove.pending.csv", ("students", "remove")),
])
def test_routing_by_name_and_config(imp: Importer, name: str, expected: tuple[str, str]) -> None:
    assert imp.route(name) == expected


@pytest.mark.parametrize("name", ["people.csv", "studentsx.csv", "Students.csv",
                                  "students.merge.csv", "notes.txt"])
def test_unroutable_names(imp: Importer, name: str) -> None:
    with pytest.raises(UnroutedError, match=re.escape(name)):
        imp.route(name)
    path = drop(imp, name, "student_id,name\nS1,Ada\n")
    with pytest.raises(UnroutedError):
        imp.import_file(path)
    assert os.path.isfile(path) and imp.store.count("students") == 0


def test_config_route_imports_in_its_mode(imp: Importer) -> None:
    load_students(imp)
    text = (ROOT / "examples" / "graduates_students.csv").read_text(encoding="utf-8")
    outcome = imp.import_file(drop(imp, "graduates_students.csv",
                                   text.replace("S0002", "S1")))
    assert (outcome.processor, outcome.mode, outcome.ok) == ("students", "update", 1)
    s1 = student(imp, "S1")
    assert s1 is not None and s1["state"] == "graduated" and s1["name"] == "Ada Obi"


def test_explicit_processor_and_mode_override_routing(imp: Importer) -> None:
    load_students(imp)
    outcome = imp.import_file(drop(imp, "students_x.csv", "student_id\nS1\n"),
                              processor="students", mode="remove")
    assert (outcome.mode, outcome.ok) == ("remove", 1)
    assert student(imp, "S1") is None
    outcome = imp.import_file(drop(imp, "people.csv", "code,title\nF1,Science\n"),
                              processor="faculties", mode="create")
    assert (outcome.processor, outcome.ok) == ("faculties", 1)
    with pytest.raises(UnroutedError, match="unknown processor 'nope'"):
        imp.import_file(drop(imp, "students_y.csv", "student_id\nS1\n"), processor="nope")


def test_explicit_processor_without_mode_needs_no_routable_name(imp: Importer) -> None:
    outcome = imp.import_file(drop(imp, "people.csv", "code,title\nF1,Science\n"),
                              processor="faculties")
    assert (outcome.processor, outcome.mode, outcome.ok) == ("faculties", "create", 1)


def test_only_files_at_the_root_are_imported(imp: Importer, tmp_path: Path) -> None:
    path = write(tmp_path / "elsewhere" / "students.csv", "student_id,name\nS1,Ada\n")
    with pytest.raises(ValueError, match="only files at the storage's root"):
        imp.import_file(path)
    assert imp.store.count("students") == 0
