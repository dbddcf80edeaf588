"""Field types and processor schemas (datacenter.records.schema)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import pickle
from typing import Any

import pytest

from datacenter import config
from datacenter.records.fieldtypes import FieldType, field_type
from datacenter.records.schema import ProcessorSchema, SchemaError, load_processors

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "datacenter.toml")
KNOWN = "(known: str, int, float, bool, date, datetime, email, choice:a,b,...)"
STATES = "choice:admitted,returning,graduated"


def parse_error(spec: str, text: str) -> str:
    with pytest.raises(ValueError) as info:
        field_type(spec).parse(text)
    return str(info.value)


def students() -> ProcessorSchema:
    types = {"student_id": "str", "name": "str", "email": "email", "birthday": "date",
             "level": "int", "state": STATES}
    return ProcessorSchema(
        name="students",
        key=("student_id",),
        fields={name: field_type(spec) for name, spec in types.items()},
        required=("name",),
        parents={},
        graduated={"state": "graduated"},
    )


# --- field_type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "sql"),
    [("str", "TEXT"), ("int", "INTEGER"), ("float", "REAL"), ("bool", "INTEGER"),
     ("date", "TEXT"), ("datetime", "TEXT"), ("email", "TEXT"), ("choice:a,b", "TEXT")],
)
def test_names_and_sql_types(spec: str, sql: str) -> None:
    ft = field_type(spec)
    assert isinstance(ft, FieldType)
    assert (ft.name, ft.sql_type) == (spec, sql)


@pytest.mark.parametrize("spec", ["integer", "Int", "", "choice", "str "])
def test_unknown_type(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        field_type(spec)
    assert str(info.value) == f"unknown field type {spec!r} {KNOWN}"


def test_types_compare_by_name() -> None:
    assert field_type("choice: a , b") == field_type("choice:a,b")
    assert field_type("int") != field_type("float")
    assert repr(field_type("int")) == "field_type('int')"


# --- str ----------------------------------------------------------------------------------


def test_str_keeps_the_cell_as_is() -> None:
    ft = field_type("str")
    assert ft.parse("  Chidi \t") == "  Chidi \t"
    assert ft.format("x y") == "x y"
    assert ft.accepts("") and not ft.accepts(1) and not ft.accepts(None)


def test_str_refuses_nul() -> None:
    assert parse_error("str", "a\x00b") == "contains a NUL character"
    assert not field_type("str").accepts("a\x00b")


# --- int ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("42", 42), (" 42 ", 42), ("+7", 7), ("-13", -13), ("007", 7),
                        ("9223372036854775807", 2**63 - 1), ("-9223372036854775808", -(2**63)),
                        ("-0", 0), ("+09223372036854775807", 2**63 - 1), ("0" * 5000 + "5", 5)]
)
def test_int_parse(text: str, value: int) -> None:
    assert field_type("int").parse(text) == value


@pytest.mark.parametrize("text", ["abc", "1.0", "1e3", "٣", "1 000", "--1", "+", "0x10", "1_0"])
def test_int_parse_refuses(text: str) -> None:
    assert parse_error("int", text) == f"invalid integer {text.strip()!r}"


def test_int_errors_show_the_stripped_text_and_range() -> None:
    assert parse_error("int", " abc ") == "invalid integer 'abc'"
    assert parse_error("int", "9223372036854775808") == (
        "invalid integer '9223372036854775808' (out of 64-bit range)")
    assert parse_error("int", "9" * 5000).endswith("(out of 64-bit range)")
    assert parse_error("int", "-9223372036854775809").endswith("(out of 64-bit range)")


def test_int_format_and_accepts() -> None:
    ft = field_type("int")
    assert ft.format(42) == "42" and ft.format(-3) == "-3" and ft.format(" +5 ") == "5"
    assert ft.accepts(0) and ft.accepts(-(2**63))
    # bool is an int subclass: checked first, or True would pass as 1.
    assert not ft.accepts(True) and not ft.accepts(False)
    assert not ft.accepts(1.0) and not ft.accepts("1") and not ft.accepts(None)
    assert not ft.accepts(2**63)
    with pytest.raises(ValueError, match="expected int, got bool"):
        ft.format(True)


# --- float --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("1.5", 1.5), (" -2 ", -2.0), ("1e3", 1000.0), (".5", 0.5),
                        ("+3.", 3.0), ("6.02E23", 6.02e23)]
)
def test_float_parse(text: str, value: float) -> None:
    assert field_type("float").parse(text) == value


@pytest.mark.parametrize("text", ["x", "nan", "NaN", "inf", "-Infinity", "1e999", "1_0", "٣",
                                  "1,5", ""])
def test_float_parse_refuses(text: str) -> None:
    assert parse_error("float", text) == f"invalid number {text!r}"


def test_float_format_and_accepts() -> None:
    ft = field_type("float")
    assert ft.format(1.5) == "1.5" and ft.format(3) == "3.0" and ft.format(0.1) == "0.1"
    assert ft.parse(ft.format(1e16)) == 1e16
    assert ft.accepts(1) and ft.accepts(2.5)
    assert not ft.accepts(True) and not ft.accepts("2.5") and not ft.accepts(float("nan"))
    assert not ft.accepts(10**400)


# --- bool ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["true", "TRUE", " yes ", "1", "t", "Y"])
def test_bool_true(text: str) -> None:
    assert field_type("bool").parse(text) is True


@pytest.mark.parametrize("text", ["false", "False", "no", "0", "F", " n"])
def test_bool_false(text: str) -> None:
    assert field_type("bool").parse(text) is False


def test_bool_refuses_and_formats() -> None:
    assert parse_error("bool", " maybe ") == (
        "invalid boolean 'maybe' (use true/false, yes/no, 1/0)")
    ft = field_type("bool")
    assert (ft.format(True), ft.format(False), ft.format("yes")) == ("true", "false", "true")
    assert ft.accepts(True) and ft.accepts(False)
    assert not ft.accepts(1) and not ft.accepts("true") and not ft.accepts(None)


# --- date / datetime ----------------------------------------------------------------------


def test_date_parse_and_format() -> None:
    ft = field_type("date")
    assert ft.parse(" 2024-02-29 ") == dt.date(2024, 2, 29)
    assert ft.format(dt.date(2024, 3, 1)) == "2024-03-01"
    assert ft.format("2024-03-01") == "2024-03-01"


@pytest.mark.parametrize("text", ["2023-02-29", "2024-13-01", "20240101", "2024-1-01",
                                  "01.02.2024", "2024-01-01T00:00:00", "٢٠٢٤-01-01"])
def test_date_refuses(text: str) -> None:
    assert parse_error("date", text) == f"invalid date {text!r} (use YYYY-MM-DD)"


def test_date_accepts() -> None:
    ft = field_type("date")
    assert ft.accepts(dt.date(2024, 1, 1)) and ft.accepts("2024-02-29")
    assert not ft.accepts(dt.datetime(2024, 1, 1))
    assert not ft.accepts("2023-02-29") and not ft.accepts(20240101)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2024-01-02 03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("2024-01-02T03:04", dt.datetime(2024, 1, 2, 3, 4)),
        (" 2024-01-02T03:04:05.250 ", dt.datetime(2024, 1, 2, 3, 4, 5, 250000)),
        ("2024-01-02T03:04:05Z", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        ("2024-01-02T03:04:05+01:00",
         dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ],
)
def test_datetime_parse(text: str, value: dt.datetime) -> None:
    parsed = field_type("datetime").parse(text)
    assert parsed == value and parsed.utcoffset() == value.utcoffset()  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["2024-01-02", "2024-01-02 25:00:00", "yesterday",
                                  "20240102T030405", "2024-02-30 00:00:00"])
def test_datetime_refuses(text: str) -> None:
    assert parse_error("datetime", text) == (
        f"invalid datetime {text!r} (use YYYY-MM-DD HH:MM:SS or ISO 8601)")


def test_datetime_format_round_trips_with_a_space() -> None:
    ft = field_type("datetime")
    aware = ft.parse("2024-01-02T03:04:05+01:00")
    assert ft.format(aware) == "2024-01-02 03:04:05+01:00"
    assert ft.parse(ft.format(aware)) == aware
    assert ft.format(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
    assert ft.format("2024-01-02T03:04:05") == "2024-01-02 03:04:05"
    assert ft.accepts(dt.datetime(2024, 1, 1)) and ft.accepts("2024-01-01T00:00:00")
    assert not ft.accepts(dt.date(2024, 1, 1)) and not ft.accepts("2024-01-01")


# --- email --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["chidi@example.com", "Chidi.Anagonye+x@Mail.Example.ng",
                                  "a@b-c.d", "x@xn--bcher-kva.example"])
def test_email_good(text: str) -> None:
    ft = field_type("email")
    assert ft.parse(f" {text} ") == text  # kept as written, case included
    assert ft.format(text) == text and ft.accepts(text)


@pytest.mark.parametrize(
    "text",
    ["chidi@example", "chidi", "@example.com", "chi di@example.com", "a@@example.com",
     "a@b@example.com", "a@.example.com", "a@example.com.", "a@example..com", "a@-x.com",
     "a@x-.com", "a@ex_ample.com", "a@exa mple.com", ""],
)
def test_email_bad(text: str) -> None:
    assert parse_error("email", text) == f"invalid email address {text!r}"


def test_email_accepts_only_text() -> None:
    assert not field_type("email").accepts(None)
    assert not field_type("email").accepts("chidi@example")


# --- choice -------------------------------------------------------------------------------


def test_choice_strips_spaces_in_spec_and_cell() -> None:
    ft = field_type("choice: admitted , returning,graduated ")
    assert ft.name == STATES
    assert ft.parse("  returning ") == "returning"
    assert ft.format("graduated") == "graduated"
    assert ft.accepts("admitted") and not ft.accepts("Admitted") and not ft.accepts(1)


def test_choice_values_may_hold_inner_spaces() -> None:
    ft = field_type("choice:first class, second class")
    assert ft.parse("second class") == "second class"
    assert parse_error("choice:first class, second class", "second") == (
        "invalid choice 'second' (choose one of: first class, second class)")


def test_choice_refuses() -> None:
    assert parse_error(STATES, "x") == (
        "invalid choice 'x' (choose one of: admitted, returning, graduated)")


@pytest.mark.parametrize("spec", ["choice:", "choice: ", "choice:a,,b", "choice:a,b,a"])
def test_choice_bad_list_is_a_definition_error(spec: str) -> None:
    with pytest.raises(ValueError, match="choice"):
        field_type(spec)


# --- ProcessorSchema: Kofa's field lists --------------------------------------------------


def test_field_lists() -> None:
    schema = dataclasses.replace(students(), required=("state", "name", "student_id"))
    assert schema.location_fields == ("student_id",)
    assert schema.required_fields == ("student_id", "name", "state")
    assert schema.available_fields == (
        "student_id", "name", "email", "birthday", "level", "state")
    assert schema.csv_header() == list(schema.available_fields)
    assert schema.req == {"create": ("student_id", "name", "state"),
                          "update": ("student_id",), "remove": ("student_id",)}


def test_schema_is_frozen_and_owns_its_dicts() -> None:
    fields = {"code": field_type("str")}
    schema = ProcessorSchema(name="faculties", key=["code"], fields=fields)  # type: ignore[arg-type]
    fields["title"] = field_type("str")
    assert schema.available_fields == ("code",) and schema.key == ("code",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        schema.name = "other"  # type: ignore[misc]
    assert hash(schema) == hash(copy.deepcopy(schema))
    assert pickle.loads(pickle.dumps(schema)) == schema
    assert dataclasses.asdict(schema)["key"] == ("code",)


def test_direct_construction_is_checked() -> None:
    with pytest.raises(SchemaError) as info:
        ProcessorSchema(name="students", key=("id",), fields={"code": field_type("str")})
    assert str(info.value) == "[processors.students]: key field 'id' is not a field"


# --- convert ------------------------------------------------------------------------------


ROW = {"student_id": " K1 ", "name": "Chidi", "email": "chidi@example.com",
       "birthday": "2000-02-29", "level": " 200 ", "state": "admitted", "--IGNORE--": "x"}


def test_convert_create() -> None:
    values, errors = students().convert(ROW)
    assert errors == []
    assert values == {"student_id": " K1 ", "name": "Chidi", "email": "chidi@example.com",
                      "birthday": dt.date(2000, 2, 29), "level": 200, "state": "admitted"}
    assert list(values) == list(students().available_fields)


def test_convert_joins_errors_in_field_order() -> None:
    row = dict(ROW, state="x", level="abc", name=" ", birthday="2023-02-29")
    values, errors = students().convert(row)
    assert errors == [
        "name: required value missing",
        "birthday: invalid date '2023-02-29' (use YYYY-MM-DD)",
        "level: invalid integer 'abc'",
        "state: invalid choice 'x' (choose one of: admitted, returning, graduated)",
    ]
    assert values == {"student_id": " K1 ", "email": "chidi@example.com"}


def test_convert_create_missing_columns() -> None:
    _, errors = students().convert({"level": "1"})
    assert errors == ["student_id: required value missing", "name: required value missing"]


def test_convert_update_leaves_empty_cells_out() -> None:
    row = {"student_id": "K1", "name": "", "level": "  ", "state": "returning"}
    values, errors = students().convert(row, mode="update")
    assert errors == []
    assert values == {"student_id": "K1", "state": "returning"}


def test_convert_update_without_ignore_empty_clears() -> None:
    row = {"student_id": "K1", "level": "  ", "state": "returning"}
    values, errors = students().convert(row, mode="update", ignore_empty=False)
    assert errors == []
    # Only cells that are there and empty become None; absent columns stay out.
    assert values == {"student_id": "K1", "level": None, "state": "returning"}


def test_convert_update_cannot_clear_a_required_field() -> None:
    row = {"student_id": "K1", "name": "", "state": "returning"}
    _, errors = students().convert(row, mode="update", ignore_empty=False)
    assert errors == ["name: required value missing"]


def test_convert_create_without_ignore_empty() -> None:
    values, errors = students().convert(dict(ROW, email=""), ignore_empty=False)
    assert errors == [] and values["email"] is None
    _, errors = students().convert(dict(ROW, name=""), ignore_empty=False)
    assert errors == ["name: required value missing"]


@pytest.mark.parametrize("mode", ["update", "remove"])
def test_key_is_required_in_every_mode(mode: str) -> None:
    _, errors = students().convert({"student_id": "", "name": "x"}, mode=mode)
    assert errors == ["student_id: required value missing"]


def test_convert_remove_needs_only_the_key() -> None:
    values, errors = students().convert(dict(ROW, level="abc", name=""), mode="remove")
    assert errors == [] and values == {"student_id": " K1 "}


def test_convert_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown mode 'delete'"):
        students().convert(ROW, mode="delete")


# --- format_record / validate_record / is_graduated ----------------------------------------


def test_format_record() -> None:
    values, _ = students().convert(ROW)
    texts = students().format_record(dict(values, email=None, extra=1))
    assert texts == {"student_id": " K1 ", "name": "Chidi", "email": "",
                     "birthday": "2000-02-29", "level": "200", "state": "admitted"}
    with pytest.raises(ValueError, match=r"^level: expected int, got list$"):
        students().format_record({"level": [1]})


def test_validate_record_good() -> None:
    record: dict[str, Any] = {"student_id": "K1", "name": "Chidi", "birthday": "2000-02-29",
                              "level": 100, "state": "graduated", "email": None, "other": [1]}
    assert students().validate_record(record) == []


def test_validate_record_reports_in_field_order() -> None:
    record: dict[str, Any] = {"student_id": "", "email": "chidi@example",
                              "birthday": dt.datetime(2000, 1, 1), "level": True,
                              "state": "x"}
    assert students().validate_record(record) == [
        "student_id: required value missing",
        "name: required value missing",
        "email: invalid email address 'chidi@example'",
        "birthday: expected date, got datetime",
        "level: expected int, got bool",
        "state: invalid choice 'x' (choose one of: admitted, returning, graduated)",
    ]


def test_validate_record_uses_parse_for_texts() -> None:
    record = {"student_id": "K1", "name": "n", "level": "abc"}
    assert students().validate_record(record) == ["level: invalid integer 'abc'"]
    record = {"student_id": "K1", "name": "n", "level": "12"}
    assert students().validate_record(record) == ["level: expected int, got str"]


def test_is_graduated() -> None:
    schema = students()
    assert schema.is_graduated({"state": "graduated"})
    assert schema.is_graduated({"state": " graduated "})
    assert not schema.is_graduated({"state": "admitted"})
    assert not schema.is_graduated({"state": None})
    assert not schema.is_graduated({})
    assert not dataclasses.replace(schema, graduated={}).is_graduated({"state": "graduated"})


def test_is_graduated_compares_canonical_text() -> None:
    schema = dataclasses.replace(students(), graduated={"level": "0500", "state": "graduated"})
    assert schema.is_graduated({"level": 500, "state": "graduated"})
    assert schema.is_graduated({"level": "500", "state": "graduated"})
    assert not schema.is_graduated({"level": 500, "state": "returning"})
    assert not schema.is_graduated({"level": "abc", "state": "graduated"})


# --- load_processors ----------------------------------------------------------------------


def test_load_the_example_config() -> None:
    cfg = config.load(EXAMPLE)
    assert cfg.path is not None
    schemas = load_processors(cfg.processors, cfg.path)
    assert list(schemas) == ["faculties", "departments", "students"]
    faculties, departments, studs = schemas.values()
    assert faculties.key == ("code",) and faculties.available_fields == ("code", "title")
    assert faculties.required_fields == ("code", "title") and faculties.parents == {}
    assert departments.parents == {"faculty_code": "faculties"}
    assert departments.required_fields == ("code", "faculty_code", "title")
    assert studs == students()
    assert studs.fields["state"].name == STATES
    assert studs.fields["level"].sql_type == "INTEGER"
    assert studs.is_graduated({"state": "graduated"})


def raw(**students_table: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "key": ["student_id"],
        "fields": {"student_id": "str", "level": "int", "faculty_code": "str", "state": STATES},
    }
    table.update(students_table)
    return {"faculties": {"key": ["code"], "fields": {"code": "str"}}, "students": table}


PREFIX = "conf/dc.toml: [processors.students]: "


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ({"fields": {"student_id": "str", "level": "integer"}},
         f"unknown field type 'integer' for field 'level' {KNOWN}"),
        ({"key": ["id"]}, "key field 'id' is not a field"),
        ({"required": ["x"]}, "required field 'x' is not a field"),
        ({"parents": {"faculty_code": "facs"}},
         "parent 'faculty_code' refers to unknown processor 'facs'"),
        ({"parents": {"x": "faculties"}}, "parent field 'x' is not a field"),
        ({"graduated": {"x": "graduated"}}, "graduated field 'x' is not a field"),
        ({"graduated": {"state": "grad"}},
         "graduated value for 'state' is not a valid choice: invalid choice 'grad' "
         "(choose one of: admitted, returning, graduated)"),
        ({"graduated": {"level": "high"}},
         "graduated value for 'level' is not a valid int: invalid integer 'high'"),
        ({"key": []}, "key must be a non-empty list of field names"),
        ({"key": "student_id"}, "key must be a non-empty list of field names"),
        ({"key": None}, "key must be a non-empty list of field names"),
        ({"key": [1]}, "key must be a non-empty list of field names"),
        ({"key": ["student_id", "student_id"]}, "key lists 'student_id' twice"),
        ({"required": "level"}, "required must be a list of field names"),
        ({"colour": "blue"}, "unknown setting 'colour'"),
        ({"fields": None}, "fields must be a non-empty table of field name = type"),
        ({"fields": {}}, "fields must be a non-empty table of field name = type"),
        ({"fields": {"student_id": 1}},
         "type of field 'student_id' must be a string such as \"int\", not 1"),
        ({"fields": {"student_id": "str", "s": "choice:"}},
         "field 's': choice type needs at least one value, e.g. 'choice:a,b'"),
        ({"parents": ["faculties"]}, "parents must be a table of field = processor"),
        ({"parents": {"faculty_code": 1}}, "parents must be a table of field = processor"),
        ({"graduated": "yes"}, "graduated must be a table of field = value"),
        ({"fields": {"student_id": "str", "": "str"}}, "invalid field name '' (empty)"),
        ({"fields": {"student_id": "str", "a\nb": "str"}},
         "invalid field name 'a\\nb' (holds a control character)"),
        ({"fields": {"student_id": "str", " name": "str"}},
         "invalid field name ' name' (blanks at either end; headers are matched without)"),
        ({"fields": {"student_id": "str", "--Job--": "int"}},
         "invalid field name '--Job--' (reserved for the job that wrote each record)"),
        ({"fields": {"student_id": "str", "Name": "str", "name": "str"}},
         "fields 'Name' and 'name' would be one column (SQLite does not tell upper and lower "
         "case apart)"),
        ({"fields": {"student_id": "str", "Pr\u00e9nom": "str", "Pre\u0301nom": "str"}},
         "fields 'Pr\u00e9nom' and 'Pre\u0301nom' would be one header (the same text in two "
         "Unicode forms)"),
        ({"columns": ["phone"]}, 'columns must be a table of "header" = "field"'),
        ({"columns": {"Phone": 1}}, 'columns must be a table of "header" = "field"'),
        ({"columns": {"Contact Phone": "phone"}},
         "columns: 'Contact Phone' maps to 'phone', which is not a field"),
        ({"columns": {"Student": "student_id", "Matric": "student_id"}},
         "columns: 'Student' and 'Matric' both map to field 'student_id'"),
        ({"columns": {"student_id": "student_id"}},
         "columns: 'student_id' is the header of field 'student_id' already"),
        ({"columns": {"--ERRORS--": "student_id"}},
         "columns: invalid header '--ERRORS--' (reserved for the error column of pending "
         "files)"),
        ({"columns": {"": "student_id"}}, "columns: invalid header '' (empty)"),
        ({"fields": {"student_id": "str", "--IGNORE--": "str"}},
         "invalid field name '--IGNORE--' (reserved for columns to skip)"),
        ({"fields": {"student_id": "str", "--ERRORS--": "str"}},
         "invalid field name '--ERRORS--' (reserved for the error column of pending files)"),
    ],
)
def test_config_errors(table: dict[str, Any], reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        load_processors(raw(**table), "conf/dc.toml")
    assert str(info.value) == PREFIX + reason
    assert isinstance(info.value, config.ConfigError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", ["Bad-Name", "Students", "1st", "_x", "a b", ""])
def test_invalid_processor_name(name: str) -> None:
    with pytest.raises(SchemaError) as info:
        load_processors({name: {"key": ["a"], "fields": {"a": "str"}}}, "dc.toml")
    assert str(info.value) == (
        f"dc.toml: [processors.{name}]: invalid processor name {name!r} "
        "(use lowercase letters, digits, _)")


def test_processor_must_be_a_table() -> None:
    with pytest.raises(SchemaError, match=r"^dc\.toml: \[processors\.x\]: must be a table"):
        load_processors({"x": "str"}, "dc.toml")


def test_field_names_are_case_sensitive_and_values_may_be_typed() -> None:
    fields = {"Code": "str", "code_no": "int", "Active": "bool", "day": "date"}
    schemas = load_processors({"items": {
        "key": ["code_no"], "fields": fields, "required": ["Code"], "parents": {"Code": "items"},
        "graduated": {"Active": True, "day": dt.date(2024, 1, 1), "code_no": "7"}}})
    items = schemas["items"]
    assert items.available_fields == ("Code", "code_no", "Active", "day")
    assert items.required_fields == ("Code", "code_no")
    assert items.is_graduated({"Active": True, "day": dt.date(2024, 1, 1), "code_no": 7})
    assert not items.is_graduated({"Active": False, "day": dt.date(2024, 1, 1), "code_no": 7})
    assert (items.field_of(" Code "), items.field_of("code"), items.field_of("CODE")) == (
        "Code", None, None)


def test_default_source_name() -> None:
    with pytest.raises(SchemaError, match=r"^datacenter\.toml: \[processors\.x\]: unknown"):
        load_processors({"x": {"key": ["a"], "fields": {"a": "str"}, "colur": 1}})
