"""Crash enumeration: kill a process at every filesystem step, recover, check.

An exception is not a crash: ``finally`` blocks run, files are closed and
flushed. A real crash (power cut, OOM killer, ``kill -9``) runs nothing.
So the operation runs in a forked child whose fault injector SIGKILLs it at
the N-th call to a ``fs.*`` step; the parent then runs recovery and checks
the invariants. N goes 1, 2, 3, ... until the operation completes without
reaching step N: then every step has been a crash point.

Recovery is itself crashed the same way: after each crash of the
operation, recovery runs in a child killed at its 1st step, then again
killed at its 2nd step, and so on until one recovery completes.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from datacenter.testing.faults import FaultConfig, FaultInjector, FaultType

COMPLETED = "completed"
CRASHED = "crashed"


class ChildFailedError(AssertionError):
    """The child raised instead of completing or being killed."""


@dataclass
class CrashReport:
    #: Steps of the operation that were crash points (K).
    points: int = 0
    #: Forked runs in all: operation runs plus recovery runs.
    runs: int = 0
    #: Crashes inside recovery that recovery survived on its next run.
    recovery_crashes: int = 0


def run_child(action: Callable[[], object], crash_at: int | None, target: str = "fs.*") -> str:
    """Run *action* in a forked child killed at the *crash_at*-th *target* step.

    Returns ``"completed"`` or ``"crashed"``; raises ChildFailedError if the
    action raised (with the child's traceback in the message).
    """
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        os.close(read_end)
        code = 0
        try:
            if crash_at is not None:
                injector = FaultInjector(seed=0)
                injector.add(FaultConfig(target=target, fault_type=FaultType.CRASH, nth=crash_at))
                injector.install()
            action()
        except BaseException:
            os.write(write_end, traceback.format_exc().encode(errors="replace"))
            code = 3
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return CRASHED
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return COMPLETED
    raise ChildFailedError(f"child failed at crash point {crash_at}:\n{message}")


def enumerate_crashes(
    prepare: Callable[[], object],
    action: Callable[[], object],
    recover: Callable[[], object],
    check: Callable[[], object],
    target: str = "fs.*",
    crash_recovery: bool = True,
    limit: int = 100_000,
) -> CrashReport:
    """Crash *action* at each of its steps in turn; after each, recover and *check*.

    *prepare* builds the starting state afresh before every run; *check*
    raises when an invariant does not hold. Returns what was covered.
    """
    report = CrashReport()
    for point in range(1, limit + 1):
        prepare()
        report.runs += 1
        if run_child(action, point, target) == COMPLETED:
            check()  # no crash: the plain run must satisfy the invariants too
            return report
        report.points = point
        if crash_recovery:
            report.recovery_crashes += _crash_recovery(recover, target, report)
        recover()
        check()
    raise RuntimeError(f"the action still had steps left after {limit} crash points")


def _crash_recovery(recover: Callable[[], object], target: str, report: CrashReport) -> int:
    for point in range(1, 100_000):
        report.runs += 1
        if run_child(recover, point, target) == COMPLETED:
            return point - 1
    raise RuntimeError("recovery never completed")
