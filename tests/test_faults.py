"""The fault injection harness: rules, triggering, fault types, the fs hook."""

from __future__ import annotations

import collections
import errno
import inspect
import json
import math
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from datacenter.injection import injection_point
from datacenter.storage import fs
from datacenter.testing.faults import (
    FaultConfig,
    FaultEvent,
    FaultInjector,
    FaultType,
    corrupt_data,
)


class BoomError(Exception):
    pass


def enospc() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def folder() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as path:
        yield path


def outcomes(func: Callable[[], Any], times: int) -> list[bool]:
    """True for each call that raised an injected fault."""
    failed = []
    for _ in range(times):
        try:
            func()
        except (RuntimeError, OSError, TimeoutError):
            failed.append(True)
        else:
            failed.append(False)
    return failed


# -- configuration ---------------------------------------------------------


@pytest.mark.parametrize("probability", [1.5, 1.0000001, -0.1, math.nan])
def test_probability_outside_zero_one_is_refused(probability: float) -> None:
    with pytest.raises(ValueError, match="probability") as caught:
        FaultConfig(target="x", probability=probability)
    assert repr(probability) in str(caught.value)


@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_probability_bounds_are_accepted(probability: float) -> None:
    assert FaultConfig(target="x", probability=probability).probability == probability


@pytest.mark.parametrize(
    ("field", "value"),
    [("nth", 0), ("nth", -3), ("delay", -0.5), ("max_triggers", -1)],
)
def test_invalid_fields_are_refused_naming_field_and_value(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"{field}.*{value}"):
        FaultConfig(target="x", **{field: value})


def test_defaults() -> None:
    config = FaultConfig(target="x")
    assert config.fault_type is FaultType.EXCEPTION
    assert config.probability == 1.0
    assert config.exception is None
    assert (config.delay, config.max_triggers, config.nth) == (0.0, None, None)


def test_default_exception_is_runtime_error_naming_the_call() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="svc.*"))
    work = inj.inject("svc.load")(lambda: 1)
    with pytest.raises(RuntimeError, match=r"injected fault at svc\.load"):
        work()


# -- the decorator and scopes ----------------------------------------------


def test_decorator_keeps_metadata_on_kwargs_function() -> None:
    inj = FaultInjector(seed=1)

    @inj.inject("api.call")
    def call_api(endpoint: str, **kwargs: Any) -> dict[str, Any]:
        """Call an endpoint."""
        return {"endpoint": endpoint, **kwargs}

    assert call_api.__name__ == "call_api"
    assert call_api.__doc__ == "Call an endpoint."
    assert "kwargs" in inspect.signature(call_api).parameters
    assert call_api("/x", retries=3) == {"endpoint": "/x", "retries": 3}
    assert inj.stats["by_target"] == {"api.call": {"calls": 1, "faults": 0}}


def test_decorator_works_on_methods() -> None:
    inj = FaultInjector(seed=1)

    class Store:
        def __init__(self) -> None:
            self.items: list[str] = []

        @inj.inject("store.put")
        def put(self, item: str, *, twice: bool = False) -> int:
            """Store an item."""
            self.items.extend([item] * (2 if twice else 1))
            return len(self.items)

    assert Store.put.__name__ == "put"
    assert Store.put.__doc__ == "Store an item."
    store = Store()
    assert store.put("a") == 1
    assert store.put("b", twice=True) == 3
    with inj.scope(FaultConfig(target="store.*")), pytest.raises(RuntimeError):
        store.put("c")
    assert store.items == ["a", "b", "b"]


def test_scope_removes_rules_even_when_the_block_raises() -> None:
    inj = FaultInjector(seed=1)
    work = inj.inject("job")(lambda: "ok")
    with pytest.raises(BoomError), inj.scope(FaultConfig(target="job")):
        with pytest.raises(RuntimeError):
            work()
        raise BoomError
    assert work() == "ok"
    assert inj.stats["faults_triggered"] == 1


def test_scope_leaves_other_rules_in_place() -> None:
    inj = FaultInjector(seed=1)
    permanent = FaultConfig(target="a")
    inj.add(permanent)
    with inj.scope(FaultConfig(target="b")):
        pass
    work = inj.inject("a")(lambda: None)
    with pytest.raises(RuntimeError):
        work()


def test_rules_added_after_calls_take_effect() -> None:
    inj = FaultInjector(seed=1)
    work = inj.inject("w")(lambda: "ok")
    assert work() == "ok"
    config = FaultConfig(target="w")
    inj.add(config)
    with pytest.raises(RuntimeError):
        work()
    inj.remove(config)
    assert work() == "ok"


def test_remove_and_clear() -> None:
    inj = FaultInjector(seed=1)
    work = inj.inject("w")(lambda: "ok")
    config = FaultConfig(target="w")
    inj.add(config)
    inj.remove(config)
    assert work() == "ok"
    with pytest.raises(ValueError, match="no such rule"):
        inj.remove(config)
    inj.add(FaultConfig(target="*"))
    inj.clear()
    assert work() == "ok"


# -- triggering ------------------------------------------------------------


def test_max_triggers_stops_injection_after_the_limit() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="db.query", max_triggers=3))
    query = inj.inject("db.query")(lambda: "rows")
    assert outcomes(query, 10) == [True] * 3 + [False] * 7
    assert inj.stats["faults_triggered"] == 3


def test_max_triggers_zero_never_fires() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="*", max_triggers=0))
    assert outcomes(inj.inject("x")(lambda: 1), 5) == [False] * 5


def triggered_calls(seed: int, probability: float = 0.3) -> list[int]:
    inj = FaultInjector(seed=seed)
    inj.add(FaultConfig(target="net.*", probability=probability))
    send = inj.inject("net.send")(lambda: None)
    outcomes(send, 200)
    return [event.call_number for event in inj.events]


def test_same_seed_replays_the_same_faults() -> None:
    first = triggered_calls(seed=42)
    assert first == triggered_calls(seed=42)
    assert 20 < len(first) < 100  # roughly 30 % of 200
    assert first != triggered_calls(seed=43)


def test_probability_zero_never_fires_and_one_always_fires() -> None:
    assert triggered_calls(seed=5, probability=0.0) == []
    assert triggered_calls(seed=5, probability=1.0) == list(range(1, 201))


def test_nth_fires_exactly_once_at_that_call() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="step", nth=5, probability=0.0))
    step = inj.inject("step")(lambda: None)
    assert outcomes(step, 12) == [i == 5 for i in range(1, 13)]
    assert [e.call_number for e in inj.events] == [5]


def test_nth_counts_the_calls_matching_the_rule() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="b", nth=2))
    a, b = inj.inject("a")(lambda: 1), inj.inject("b")(lambda: 2)
    a(), b(), a(), a()
    with pytest.raises(RuntimeError):
        b()
    assert inj.events[0].target == "b"
    assert inj.events[0].call_number == 2


def test_at_most_the_first_matching_rule_fires() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="fs.*", exception=enospc()))
    inj.add(FaultConfig(target="fs.write", fault_type=FaultType.TIMEOUT))
    write = inj.inject("fs.write")(lambda: 1)
    with pytest.raises(OSError) as caught:
        write()
    assert caught.value.errno == errno.ENOSPC
    assert len(inj.events) == 1


def test_target_is_an_fnmatch_pattern() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="fs.rename"))
    assert outcomes(inj.inject("fs.replace")(lambda: 1), 3) == [False] * 3
    assert outcomes(inj.inject("fs.rename")(lambda: 1), 1) == [True]
    inj.clear()
    inj.add(FaultConfig(target="fs.*"))
    assert outcomes(inj.inject("fs.unlink")(lambda: 1), 1) == [True]
    assert outcomes(inj.inject("db.fs.unlink")(lambda: 1), 1) == [False]


# -- fault types -----------------------------------------------------------


def test_exception_is_a_fresh_copy_each_time() -> None:
    template = enospc()
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="disk", exception=template))
    write = inj.inject("disk")(lambda: None)
    raised = []
    for _ in range(2):
        with pytest.raises(OSError) as caught:
            write()
        raised.append(caught.value)
    first, second = raised
    assert first is not second
    assert template not in raised
    assert template.__traceback__ is None
    assert (second.errno, second.strerror) == (errno.ENOSPC, "No space left on device")
    assert len(list(_frames(second))) == len(list(_frames(first)))


def _frames(exc: BaseException) -> Iterator[object]:
    tb = exc.__traceback__
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def test_timeout_sleeps_then_raises_timeout_error() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="rpc", fault_type=FaultType.TIMEOUT, delay=0.02))
    ran = []
    rpc = inj.inject("rpc")(lambda: ran.append(1))
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="rpc"):
        rpc()
    assert time.monotonic() - started >= 0.02
    assert ran == []


def test_delay_sleeps_then_runs_the_call() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="rpc", fault_type=FaultType.DELAY, delay=0.02))
    rpc = inj.inject("rpc")(lambda x: x * 2)
    started = time.monotonic()
    assert rpc(21) == 42
    assert time.monotonic() - started >= 0.02
    assert inj.events[0].fault_type is FaultType.DELAY


def test_data_corruption_changes_the_result_keeping_its_type() -> None:
    inj = FaultInjector(seed=3)
    inj.add(FaultConfig(target="read", fault_type=FaultType.DATA_CORRUPTION))

    @inj.inject("read")
    def read() -> dict[str, Any]:
        return {"id": 7, "name": "alice", "ok": True, "raw": b"\x00\x01"}

    clean = read.__wrapped__()  # type: ignore[attr-defined]
    corrupted = read()
    assert corrupted != clean
    assert corrupted.keys() == clean.keys()
    for key, value in clean.items():
        assert type(corrupted[key]) is type(value)
        assert corrupted[key] != value


def test_crash_kills_the_process_without_running_finally(folder: str) -> None:
    marker = os.path.join(folder, "finally-ran")

    @injection_point("test.crash")
    def step() -> str:
        return "done"

    pid = os.fork()
    if pid == 0:  # the child: nothing here may return into pytest
        try:
            FaultInjector.crash_at(1, target="test.*").install()
            try:
                step()
            finally:
                with open(marker, "w") as handle:
                    handle.write("cleanup ran")
            os._exit(0)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), f"child exited normally: {status}"
    assert os.WTERMSIG(status) == signal.SIGKILL
    assert not os.path.exists(marker)


# -- corrupt_data ----------------------------------------------------------


def test_corrupt_bool_is_checked_before_int() -> None:
    rng = random.Random(0)
    assert corrupt_data(True, rng) is False
    assert corrupt_data(False, rng) is True


@pytest.mark.parametrize(
    "value",
    [0, 41, -7, 3.5, 0.0, -2.25, 1e300, "hello", "", "x", b"\x00\xff", b"", 10**30],
)
def test_corrupt_scalars_keep_type_and_change(value: Any) -> None:
    for seed in range(20):
        corrupted = corrupt_data(value, random.Random(seed))
        assert type(corrupted) is type(value)
        assert corrupted != value
        if isinstance(value, str | bytes) and value:
            assert len(corrupted) == len(value)


def test_corrupt_containers_keep_shape() -> None:
    Point = collections.namedtuple("Point", "x y")
    value = {"a": [1, "two", (3.0, False)], "b": Point(1, 2), "c": None}
    corrupted = corrupt_data(value, random.Random(9))
    assert list(corrupted) == ["a", "b", "c"]
    assert [type(v) for v in corrupted["a"]] == [int, str, tuple]
    assert corrupted["a"][2][1] is True
    assert type(corrupted["b"]) is Point
    assert corrupted["c"] is None
    assert corrupted != value
    assert value == {"a": [1, "two", (3.0, False)], "b": Point(1, 2), "c": None}


def test_corrupt_unknown_types_and_none_are_unchanged() -> None:
    thing = object()
    assert corrupt_data(thing, random.Random(0)) is thing
    assert corrupt_data(None, random.Random(0)) is None


def test_corrupt_is_deterministic_given_the_rng() -> None:
    value = {"n": 5, "s": "abcdef", "f": 1.5, "l": [1, 2, 3]}
    assert corrupt_data(value, random.Random(11)) == corrupt_data(value, random.Random(11))


# -- stats, events, report -------------------------------------------------


def test_stats_events_and_json_report() -> None:
    inj = FaultInjector(seed=42)
    inj.add(FaultConfig(target="svc.a", nth=2, exception=enospc()))
    a, b = inj.inject("svc.a")(lambda: 1), inj.inject("svc.b")(lambda: 2)
    outcomes(a, 3)
    b()
    assert inj.stats == {
        "calls_intercepted": 4,
        "faults_triggered": 1,
        "by_target": {
            "svc.a": {"calls": 3, "faults": 1},
            "svc.b": {"calls": 1, "faults": 0},
        },
    }
    (event,) = inj.events
    assert isinstance(event, FaultEvent)
    assert (event.target, event.fault_type, event.call_number) == (
        "svc.a",
        FaultType.EXCEPTION,
        2,
    )
    assert "No space left" in event.detail
    assert abs(event.time - time.time()) < 60
    report = json.loads(json.dumps(inj.report()))
    assert report["stats"] == inj.stats
    assert report["events"][0]["fault_type"] == "EXCEPTION"
    assert report["seed"] == 42


def test_counters_are_thread_safe() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="t", probability=0.5))
    work = inj.inject("t")(lambda: None)

    def hammer() -> None:
        outcomes(work, 500)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = inj.stats
    assert stats["calls_intercepted"] == 2000
    assert stats["faults_triggered"] == len(inj.events)
    assert 700 < stats["faults_triggered"] < 1300


# -- the process-wide hook -------------------------------------------------


@injection_point("test.point")
def sample_point(a: int, b: int = 2) -> int:
    """Add two numbers."""
    return a + b


def test_injection_point_is_inert_without_an_installed_injector() -> None:
    bystander = FaultInjector(seed=1)
    bystander.add(FaultConfig(target="*"))
    assert sample_point(1) == 3
    assert sample_point(1, b=5) == 6
    assert bystander.stats["calls_intercepted"] == 0
    assert sample_point.__name__ == "sample_point"
    assert sample_point.__doc__ == "Add two numbers."
    assert str(inspect.signature(sample_point)) == "(a: 'int', b: 'int' = 2) -> 'int'"


def test_installed_routes_injection_points_through_the_injector() -> None:
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="test.point", nth=2))
    with inj.installed():
        assert sample_point(1, b=1) == 2
        with pytest.raises(RuntimeError, match=r"test\.point"):
            sample_point(1)
    assert sample_point(1) == 3
    assert inj.stats["calls_intercepted"] == 2


def test_installed_restores_the_previous_injector_even_on_error() -> None:
    outer, inner = FaultInjector(seed=1), FaultInjector(seed=2)
    with outer.installed():
        with pytest.raises(BoomError), inner.installed():
            sample_point(1)
            raise BoomError
        sample_point(1)
    sample_point(1)
    assert inner.stats["calls_intercepted"] == 1
    assert outer.stats["calls_intercepted"] == 1


def test_install_and_uninstall() -> None:
    inj = FaultInjector(seed=1)
    inj.install()
    try:
        sample_point(0)
        FaultInjector().uninstall()  # not the installed one: no effect
        sample_point(0)
    finally:
        inj.uninstall()
    sample_point(0)
    assert inj.stats["calls_intercepted"] == 2


def test_generic_wrapper_for_other_signatures() -> None:
    @injection_point("test.varargs")
    def joined(*parts: str, sep: str = "-") -> str:
        return sep.join(parts)

    assert joined("a", "b") == "a-b"
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="test.varargs", fault_type=FaultType.DATA_CORRUPTION))
    with inj.installed():
        result = joined("a", "b", sep="+")
    assert result != "a+b"
    assert len(result) == 3


# -- the real filesystem steps ---------------------------------------------


def test_enospc_on_replace_keeps_the_old_file_and_no_temporary(folder: str) -> None:
    path = os.path.join(folder, "data.csv")
    fs.atomic_write(path, b"old")
    inj = FaultInjector(seed=1)
    inj.add(FaultConfig(target="fs.replace", exception=enospc()))
    with inj.installed(), pytest.raises(OSError) as caught:
        fs.atomic_write(path, b"new")
    assert caught.value.errno == errno.ENOSPC
    with open(path, "rb") as handle:
        assert handle.read() == b"old"
    assert os.listdir(folder) == ["data.csv"]
    assert set(inj.stats["by_target"]) == {"fs.write", "fs.fsync", "fs.replace"}


def test_every_fs_step_is_a_point_and_nested_steps_count(folder: str) -> None:
    inj = FaultInjector(seed=1)
    with inj.installed():
        fs.mkdir(os.path.join(folder, "sub"))
    assert inj.stats["by_target"] == {
        "fs.mkdir": {"calls": 1, "faults": 0},
        "fs.fsync_dir": {"calls": 1, "faults": 0},
    }
    assert fs.unlink.__wrapped__ is not fs.unlink  # type: ignore[attr-defined]
    fs.unlink(os.path.join(folder, "absent"), missing_ok=True)


def test_crash_during_atomic_write_leaves_the_old_file(folder: str) -> None:
    path = os.path.join(folder, "data.csv")
    fs.atomic_write(path, b"old")
    pid = os.fork()
    if pid == 0:
        try:
            FaultInjector.crash_at(1, target="fs.replace").install()
            fs.atomic_write(path, b"new")
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGKILL
    with open(path, "rb") as handle:
        assert handle.read() == b"old"
    # SIGKILL ran no cleanup: the staged copy is still there, hidden by its
    # prefix, for recovery to sweep away.
    leftovers = sorted(os.listdir(folder))
    assert leftovers[1:] == ["data.csv"]
    assert leftovers[0].startswith(fs.TEMP_PREFIX)
