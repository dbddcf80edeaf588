"""The storage log: one line per operation, rotation, queries that stay in logs/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import write

from datacenter import DataCenter
from datacenter.storage.logs import StorageLogHandler


def _logs(dc: DataCenter, lines: dict[str, list[str]]) -> None:
    for name, content in lines.items():
        write(os.path.join(dc.logs_path, name), "".join(f"{line}\n" for line in content))


def test_operations_write_one_line_each_with_user(dc: DataCenter) -> None:
    dc.log("hello world", user="alice")
    dc.log("second", user="bob")
    lines = list(dc.queryLogfiles("datacenter.log"))
    assert len(lines) == 2
    assert " - INFO - alice - hello world" in lines[0]
    assert " - INFO - bob - second" in lines[1]


def test_query_searches_rotations_oldest_first(dc: DataCenter) -> None:
    _logs(dc, {
        "datacenter.log": ["new match 5", "new other"],
        "datacenter.log.1": ["mid match 3", "mid match 4"],
        "datacenter.log.2": ["old match 1", "old match 2"],
        "datacenter.log.x": ["not a rotation match"],
        "datacenter.log2": ["another log match"],
    })
    assert list(dc.queryLogfiles("datacenter.log", "match")) == [
        "old match 1", "old match 2", "mid match 3", "mid match 4", "new match 5"]
    assert list(dc.queryLogfiles("datacenter.log", "match", limit=2, start=1)) == [
        "old match 2", "mid match 3"]
    assert list(dc.queryLogfiles("datacenter.log", "match", start=10)) == []
    assert len(list(dc.queryLogfiles("datacenter.log"))) == 6


def test_bad_regular_expression_fails_at_the_call(dc: DataCenter) -> None:
    _logs(dc, {"datacenter.log": ["x"]})
    with pytest.raises(ValueError, match="invalid query"):
        dc.queryLogfiles("datacenter.log", "[unclosed")


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "..", "", "logs/../../x", "a\0b"])
def test_log_names_cannot_leave_the_logs_folder(dc: DataCenter, name: str) -> None:
    with pytest.raises(ValueError):
        dc.queryLogfiles(name)


def test_symlinked_log_is_refused(dc: DataCenter, tmp_path: Path) -> None:
    secret = write(tmp_path / "secret", "password\n")
    os.symlink(secret, os.path.join(dc.logs_path, "evil.log"))
    with pytest.raises(ValueError, match="not a regular file"):
        dc.queryLogfiles("evil.log")
    assert [f.name for f in dc.getLogFiles()] == []


def test_missing_log_is_a_clear_error(dc: DataCenter) -> None:
    with pytest.raises(ValueError, match=r"no log named 'nothing\.log'"):
        dc.queryLogfiles("nothing.log")


def test_negative_paging_is_refused(dc: DataCenter) -> None:
    _logs(dc, {"datacenter.log": ["x"]})
    with pytest.raises(ValueError):
        dc.queryLogfiles("datacenter.log", limit=-1)


def test_log_files_exclude_backups_unless_asked(dc: DataCenter) -> None:
    _logs(dc, {"datacenter.log": ["a"], "datacenter.log.1": ["b"], "import.log": ["c"]})
    assert [f.name for f in dc.getLogFiles()] == ["datacenter.log", "import.log"]
    assert [f.name for f in dc.getLogFiles(exclude_backups=False)] == [
        "datacenter.log", "datacenter.log.1", "import.log"]


def test_log_file_markers_describe_the_last_import(dc: DataCenter) -> None:
    _logs(dc, {"datacenter.log": [
        "2026-01-01 10:00:00,000 - INFO - alice - processed: a.csv, create mode, 3 lines "
        "(3 successful/ 0 failed), 0.010 s (0.0033 s/item)",
        "2026-01-01 10:00:01,000 - INFO - bob - processed: b.csv, update mode, 2 lines "
        "(1 successful/ 1 failed), 0.010 s (0.0050 s/item)",
        "2026-01-01 10:00:02,000 - INFO - carol - something else: entirely",
    ]})
    log = dc.getLogFiles()[0]
    assert (log.user, log.mode, log.source) == ("bob", "update", "b.csv")
    assert log.processed.startswith("b.csv, update mode, 2 lines")
    assert log.getUserId() == "bob" and log.getMode() == "update"


def test_log_file_without_markers_says_so(dc: DataCenter) -> None:
    _logs(dc, {"other.log": ["plain text"]})
    log = dc.getLogFiles()[0]
    assert (log.user, log.mode, log.processed, log.source) == (
        "<UNKNOWN>", "<NOT SET>", "<Info not avail.>", None)


def test_log_rotates_by_size(dc: DataCenter) -> None:
    handler = next(h for h in dc.logger.handlers if isinstance(h, StorageLogHandler))
    handler.max_bytes, handler.backups = 300, 2
    for n in range(20):
        dc.log(f"line {n:02d} " + "x" * 40)
    names = sorted(os.listdir(dc.logs_path))
    assert names == ["datacenter.log", "datacenter.log.1", "datacenter.log.2"]
    assert all(os.path.getsize(os.path.join(dc.logs_path, n)) <= 300 for n in names)
    lines = list(dc.queryLogfiles("datacenter.log", "line"))
    numbers = [int(line.split("line ")[1][:2]) for line in lines]
    assert numbers == sorted(numbers) and numbers[-1] == 19


def test_log_follows_the_storage(dc: DataCenter, tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    dc.setStoragePath(str(new), move=True)
    dc.log("after the move")
    assert any("after the move" in line for line in dc.queryLogfiles("datacenter.log"))
    assert os.path.isfile(new / "logs" / "datacenter.log")


def test_a_query_runs_in_linear_time_and_a_backreference_is_said_in_one_line(
        dc: DataCenter) -> None:
    _logs(dc, {"datacenter.log": ["a," * 15, "a,x", "plain"]})
    with pytest.raises(ValueError, match=r"invalid query '\(a\)\\\\1': .*RE2 syntax"):
        dc.queryLogfiles("datacenter.log", r"(a)\1")
    # A pattern that backtracks exponentially in Python's re on a line of 30 characters.
    assert list(dc.queryLogfiles("datacenter.log", "^(.*?,?)*?x$")) == ["a,x"]


def test_a_query_finds_matches_across_batches(dc: DataCenter) -> None:
    _logs(dc, {"datacenter.log.1": [f"old {n}" for n in range(5000)],
               "datacenter.log": [f"new {n}" for n in range(5000)]})
    found = list(dc.queryLogfiles("datacenter.log", r"(old|new) 4\d{3}$", limit=1500,
                                  start=500))
    assert found[0] == "old 4500" and found[499] == "old 4999"
    assert found[500] == "new 4000" and found[-1] == "new 4999" and len(found) == 1500
