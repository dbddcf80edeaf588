"""Readiness for writers that write in place, and the progress of a long import.

Fake clocks only: no files but the few a header check reads, no threads,
no sleeping. ("The operator's day": in-place writers that put the header
first and the rows a moment later; rows per second and an ETA.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Clock

from datacenter.importing.csvinput import only_a_header
from datacenter.importing.progress import Meter, describe_progress
from datacenter.service.readiness import Hint, Readiness
from datacenter.storage.identity import FileIdentity

WALL = 1_700_000_000.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


def ident(size: int = 100, mtime: float = WALL) -> FileIdentity:
    return FileIdentity(1, 10, size, int(mtime * 1e9))


def header() -> bool:
    """The service's look at a file that holds only a header."""
    return True


def no_look() -> bool:
    raise AssertionError("the file need not be read")


def rules(clock: Clock, settle: float = 3.0, polling: bool = False) -> Readiness:
    """Readiness as the service makes it: only the settle and the clocks given."""
    return Readiness(settle, polling=polling, clock=clock,
                     wall=lambda: WALL + (clock.now - 1000.0))


# -- the settle of a file written in place is the configured one ----------------------------


def test_a_file_closed_in_place_counts_after_the_configured_settle(clock: Clock) -> None:
    r = rules(clock, settle=3.0)
    r.hint("x.csv", ident(0), Hint.CREATED)
    r.hint("x.csv", ident(100), Hint.CLOSED)
    clock.advance(2.9)
    assert r.due() == []  # not 0.5 s: a writer may append again after closing
    assert r.next_due() == pytest.approx(clock.now + 0.1)
    clock.advance(0.1)
    assert r.due() == ["x.csv"]


def test_a_file_renamed_in_stays_immediate(clock: Clock) -> None:
    r = rules(clock, settle=3.0)
    r.hint("x.csv", ident(12), Hint.MOVED_IN)
    assert r.due() == ["x.csv"]
    assert not r.wait_for_rows("x.csv", no_look)  # a rename says "complete", header or not


# -- a header and no rows yet: one settle more --------------------------------------------


def test_a_header_only_file_waits_one_settle_more_then_counts_as_empty(clock: Clock) -> None:
    r = rules(clock, settle=2.0)
    r.hint("x.csv", ident(11), Hint.CLOSED)  # echo code,title > x.csv
    clock.advance(2.0)
    assert r.due() == ["x.csv"]
    assert r.wait_for_rows("x.csv", header)  # the rows may come a moment later: wait
    assert r.due() == []
    assert r.next_due() == pytest.approx(clock.now + 2.0)
    clock.advance(1.9)
    assert r.due() == []
    clock.advance(0.1)
    assert r.due() == ["x.csv"]
    assert not r.wait_for_rows("x.csv", no_look)  # it waited a settle more: empty it is
    assert r.confirm("x.csv", ident(11))


def test_a_settled_file_with_rows_is_due_at_once(clock: Clock) -> None:
    r = rules(clock, settle=2.0)
    r.hint("x.csv", ident(40), Hint.CLOSED)
    clock.advance(2.0)
    assert not r.wait_for_rows("x.csv", lambda: False)
    assert r.due() == ["x.csv"]


def test_rows_appended_during_the_extra_wait_settle_as_usual(clock: Clock) -> None:
    r = rules(clock, settle=2.0)
    r.hint("x.csv", ident(11), Hint.CLOSED)
    clock.advance(2.0)
    assert r.wait_for_rows("x.csv", header)
    clock.advance(1.0)
    r.hint("x.csv", ident(40), Hint.CLOSED)  # ... >> x.csv
    clock.advance(1.9)
    assert r.due() == []
    clock.advance(0.1)
    assert r.due() == ["x.csv"]  # one settle after the rows: no extra wait is owed


def test_a_header_rewritten_during_the_extra_wait_waits_again(clock: Clock) -> None:
    r = rules(clock, settle=2.0)
    r.hint("x.csv", ident(11), Hint.CLOSED)
    clock.advance(2.0)
    assert r.wait_for_rows("x.csv", header)
    clock.advance(2.0)
    r.hint("x.csv", ident(12, WALL + 4), Hint.CLOSED)  # another header, still no rows
    clock.advance(2.0)
    assert r.due() == ["x.csv"]
    assert r.wait_for_rows("x.csv", header)


def test_polled_header_only_files_wait_one_settle_more(clock: Clock) -> None:
    r = rules(clock, settle=2.0, polling=True)
    r.hint("x.csv", ident(11), Hint.SCANNED)
    clock.advance(2.0)
    assert r.wait_for_rows("x.csv", header)
    clock.advance(2.0)
    assert not r.wait_for_rows("x.csv", no_look)


def test_a_header_only_file_untouched_for_long_before_the_start_counts_at_once(
        clock: Clock) -> None:
    r = rules(clock, settle=2.0)
    r.hint("old.csv", ident(11, WALL - 3600), Hint.STARTUP)
    r.hint("new.csv", ident(11, WALL - 2.5), Hint.STARTUP)  # settled, not twice over
    assert r.due() == ["old.csv", "new.csv"]
    assert not r.wait_for_rows("old.csv", no_look)
    r.forget("old.csv")  # taken
    assert r.wait_for_rows("new.csv", header)
    clock.advance(1.5)
    assert r.due() == ["new.csv"]  # 2.5 s unchanged before the start, 1.5 s since


@pytest.mark.parametrize(("text", "header_only"), [
    ("", True),
    ("code,title", True),
    ("code,title\n", True),
    ("code,title\r\n\r\n\n  \n", True),
    ("\ncode,title\n\n", True),
    ("code,title\nF1,One", False),
    ("code,title\n\nF1,One\n", False),
])
def test_what_counts_as_only_a_header(tmp_path: Path, text: str, header_only: bool) -> None:
    path = tmp_path / "x.csv"
    path.write_text(text)
    assert only_a_header(str(path)) is header_only


def test_a_long_first_line_is_read_only_so_far(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("c" * 1000 + "\n")
    assert only_a_header(str(path), limit=100) is False  # no time lost on huge headers


# -- the progress of one import ------------------------------------------------------------------


def test_the_meter_gives_rows_per_second_percent_and_eta(clock: Clock) -> None:
    meter = Meter("big.csv", size=1_000_000, clock=clock)
    assert meter.report()["rows_per_second"] is None
    clock.advance(5)  # waiting for the storage's lock: not part of the rate
    meter.update(0, 100)  # reading began
    clock.advance(2)
    meter.update(20_000, 200_100)
    report = meter.report()
    assert report == {"file": "big.csv", "rows": 20_000, "bytes": 200_100, "size": 1_000_000,
                      "percent": 20, "rows_per_second": 10_000, "eta_seconds": 8.0}
    assert describe_progress(report) == "20% (20,000 rows, 10,000 rows/s, ETA 8 s)"


@pytest.mark.parametrize(("seconds", "shown"), [
    (0.2, "ETA 1 s"), (59, "ETA 59 s"), (61, "ETA 1:01"), (3725, "ETA 1:02:05"),
])
def test_eta_reads_like_a_clock(clock: Clock, seconds: float, shown: str) -> None:
    meter = Meter("big.csv", size=1000 + int(seconds * 10), clock=clock)
    meter.update(0, 0)
    clock.advance(100)
    meter.update(5000, 1000)  # 10 bytes a second
    assert describe_progress(meter.report()).endswith(f"50 rows/s, {shown})")


def test_progress_before_any_rows_says_only_the_percent(clock: Clock) -> None:
    meter = Meter("big.csv", size=0, clock=clock)
    meter.update(0, 0)
    assert describe_progress(meter.report()) == "0% (0 rows)"
    assert describe_progress({}) == ""
