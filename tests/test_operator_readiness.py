"""Readiness for writers that write in place, and the progress of a long import.

Fake clocks only: no files but the few a header check reads, no threads,
no sleeping. ("The operator's day": in-place writers that put the header
first and the rows a moment later; rows per second and an ETA.)
"""

from __future__ import annotations

import pytest

from datacenter.importing.progress import Meter, describe_progress


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


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
