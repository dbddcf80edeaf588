"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable


def median_seconds(func: Callable[[], object], rounds: int = 7) -> float:
    """The median wall time of *rounds* calls of *func*."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def row(label: str, value: str) -> None:
    print(f"   {label:<58} {value}")


def judged(value: float, target: float, text: str, at_most: bool = True) -> str:
    """*text* for a figure, marked ``MISS`` when *value* misses its *target*."""
    met = value <= target if at_most else value >= target
    return text if met else f"{text}  MISS"
