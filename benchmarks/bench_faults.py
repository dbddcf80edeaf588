"""What an idle fault injection point costs production.

Every step of :mod:`datacenter.fs` is wrapped by ``injection_point``. With no
injector installed the wrapper must cost (nearly) nothing: the target is a
ratio of at most 1.05 between ``fs.write`` as shipped and the undecorated
function (``fs.write.__wrapped__``), both writing 64 bytes to a temporary
file. A write without fsync is the cheapest real step, so it is where the
wrapper's share is largest. Also shown: the cost per call once an injector
is installed but no rule matches (counting under a lock), which only tests
pay.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from datacenter.storage import fs
from datacenter.testing.faults import FaultConfig, FaultInjector

CALLS = 20_000  # per round: 1.3 MB written, then the file offset is rewound
ROUNDS = 41
TARGET = 1.05

_Write = Callable[[int, bytes], int]
_Variant = tuple[_Write, FaultInjector | None]


def _round(write: _Write, injector: FaultInjector | None, fd: int) -> float:
    """ns per call for one round of CALLS writes of 64 bytes."""
    data = b"x" * 64
    os.lseek(fd, 0, os.SEEK_SET)
    with injector.installed() if injector else contextlib.nullcontext():
        started = time.perf_counter_ns()
        for _ in range(CALLS):
            write(fd, data)
        return (time.perf_counter_ns() - started) / CALLS


def measure(variants: dict[str, _Variant]) -> dict[str, list[float]]:
    """ns per call of each variant, one sample per round, rounds interleaved.

    Interleaving puts every variant under the same machine noise (another
    process, frequency scaling) instead of giving one of them a quiet minute,
    and lets ratios be taken within a round.
    """
    samples: dict[str, list[float]] = {name: [] for name in variants}
    fd, path = tempfile.mkstemp(prefix="bench-faults-")
    gc.disable()  # a collection landing in one round would skew it
    try:
        for write, injector in variants.values():  # warm up
            _round(write, injector, fd)
        for _ in range(ROUNDS):
            for name, (write, injector) in variants.items():
                samples[name].append(_round(write, injector, fd))
    finally:
        gc.enable()
        os.close(fd)
        os.unlink(path)
    return samples


def _ratio(samples: dict[str, list[float]], name: str, reference: str) -> float:
    """Median of the per-round ratios: drift between rounds cancels out."""
    pairs = zip(samples[name], samples[reference], strict=True)
    return statistics.median(a / b for a, b in pairs)


def main() -> None:
    undecorated: _Write = fs.write.__wrapped__  # type: ignore[attr-defined]
    bystander = FaultInjector(seed=0)
    bystander.add(FaultConfig(target="net.*"))  # installed, never matches fs.*
    samples = measure(
        {
            "undecorated": (undecorated, None),
            "idle": (fs.write, None),
            "installed": (fs.write, bystander),
        }
    )
    raw, idle, installed = (
        statistics.median(samples[name]) for name in ("undecorated", "idle", "installed")
    )
    ratio = _ratio(samples, "idle", "undecorated")
    verdict = "ok" if ratio <= TARGET else "ABOVE TARGET"
    print(f"fs.write of 64 bytes, median of {ROUNDS} rounds of {CALLS} calls")
    print(f"   undecorated (fs.write.__wrapped__):  {raw:7.0f} ns/call")
    print(f"   injection point, none installed:     {idle:7.0f} ns/call")
    print(f"   overhead of the idle point:          {idle - raw:7.0f} ns/call")
    print(f"   ratio idle / undecorated:            {ratio:7.3f}  (target <= {TARGET}: {verdict})")
    print(
        f"   injector installed, no rule matches: {installed:7.0f} ns/call"
        f"  (ratio {_ratio(samples, 'installed', 'undecorated'):.2f})"
    )


if __name__ == "__main__":
    main()
