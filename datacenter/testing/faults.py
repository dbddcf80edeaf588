"""Fault injection: make the rare error paths run on purpose.

Error handling is the code that runs least and matters most: it only
executes during a real outage. This harness lets a test make any decorated
call raise, stall, time out, return corrupted data or kill the process, so
recovery code is exercised on every test run instead of on the worst day.

Two ways in:

* ``@injector.inject("name")`` ties a function to one injector;
* ``@injection_point("name")`` marks a step of production code (every
  function of :mod:`datacenter.fs` is ``fs.<function>``). It costs one
  global lookup while no injector is installed; ``injector.install()`` or
  ``with injector.installed():`` routes those calls through the injector.

Decisions come from a ``random.Random(seed)`` owned by the injector: the
same seed and the same sequence of calls give the same faults, so an
intermittent failure found once can be replayed at will.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import fnmatch
import functools
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar, cast

from datacenter import injection

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

# Replacement characters for corrupted strings: printable, so a corrupted
# value still looks plausible and is not rejected by a trivial check.
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789#?!"


class FaultType(enum.Enum):
    """What happens when a rule fires."""

    EXCEPTION = "exception"  #: raise the configured exception
    DELAY = "delay"  #: sleep, then run the call normally
    TIMEOUT = "timeout"  #: sleep, then raise TimeoutError
    DATA_CORRUPTION = "data_corruption"  #: run the call, corrupt its result
    CRASH = "crash"  #: SIGKILL the process: no cleanup of any kind runs


@dataclass
class FaultConfig:
    """One rule: which calls (an fnmatch pattern) get which fault, how often.

    ``nth`` picks exactly the n-th call matching this rule (probability is
    then not consulted); ``max_triggers`` caps how often the rule fires.
    """

    target: str
    fault_type: FaultType = FaultType.EXCEPTION
    probability: float = 1.0
    exception: BaseException | None = None
    delay: float = 0.0
    max_triggers: int | None = None
    nth: int | None = None

    def __post_init__(self) -> None:
        # Written as "not inside" so that NaN, which compares false with
        # everything, is refused too.
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability!r}")
        if not self.delay >= 0.0:
            raise ValueError(f"delay must be >= 0 seconds, got {self.delay!r}")
        if self.max_triggers is not None and self.max_triggers < 0:
            raise ValueError(f"max_triggers must be >= 0, got {self.max_triggers!r}")
        if self.nth is not None and self.nth < 1:
            raise ValueError(f"nth must be >= 1 (calls count from 1), got {self.nth!r}")


@dataclass(frozen=True)
class FaultEvent:
    """A fault that fired: when, where, which kind, at which call of target."""

    time: float
    target: str
    fault_type: FaultType
    call_number: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fault_type": self.fault_type.name}


@dataclass(eq=False)  # identity: two rules from equal configs stay distinct
class _Rule:
    """A config once added, with its own counters (fresh when re-added)."""

    config: FaultConfig
    matched: int = 0
    fired: int = 0


def corrupt_data(value: _T, rng: random.Random) -> _T:
    """A corrupted copy of *value*, same type and shape, chosen by *rng*.

    Containers are corrupted element by element; None and types it does not
    know are returned unchanged.
    """
    return cast(_T, _corrupt(value, rng))


def _corrupt(value: object, rng: random.Random) -> object:
    # bool first: bool is a subclass of int, so the int branch would turn
    # True into a number like 734 and a caller checking "is True" or the
    # type would see something a real fault never produces.
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice((-1, 1)) * rng.randint(1, 1000)
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0.0
        if value == 0.0:
            return rng.choice((-1.0, 1.0)) * rng.uniform(1.0, 100.0)
        # A relative change: adding a constant would vanish in a large float.
        return value * (1.0 + rng.choice((-1.0, 1.0)) * rng.uniform(0.1, 0.9))
    if isinstance(value, str):
        if not value:
            return rng.choice(_ALPHABET)
        i = rng.randrange(len(value))
        choice = rng.choice(_ALPHABET.replace(value[i], ""))
        return value[:i] + choice + value[i + 1 :]
    if isinstance(value, bytes | bytearray):
        buf = bytearray(value) or bytearray(1)
        buf[rng.randrange(len(buf))] ^= rng.randint(1, 255)
        return type(value)(buf)
    if isinstance(value, dict):
        result = copy.copy(value)  # keeps OrderedDict, defaultdict, ...
        for key in result:
            result[key] = _corrupt(result[key], rng)
        return result
    if isinstance(value, list):
        return [_corrupt(item, rng) for item in value]
    if isinstance(value, tuple):
        items = [_corrupt(item, rng) for item in value]
        if hasattr(value, "_fields"):  # a namedtuple takes positional fields
            return cast(Any, value)._make(items)
        return tuple(items)
    return value


class FaultInjector:
    """Holds rules, decides which calls fail, and records what it did."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        # Not for security: a seeded generator is the point, so that a run
        # can be replayed exactly.
        self._rng = random.Random(seed)  # noqa: S311 - reproducible fault choice
        # Counters and the generator are shared by threads; the decorated
        # call itself runs outside the lock so nested points cannot deadlock.
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        # Rules matching each call name, so a call does not run fnmatch on
        # every rule; rebuilt lazily whenever the rules change.
        self._matching: dict[str, list[_Rule]] = {}
        self._calls = 0
        self._faults = 0
        self._by_target: dict[str, dict[str, int]] = {}
        self._events: list[FaultEvent] = []

    @classmethod
    def crash_at(cls, n: int, target: str = "fs.*", seed: int | None = None) -> FaultInjector:
        """An injector that SIGKILLs the process at the n-th call of *target*."""
        injector = cls(seed)
        injector.add(FaultConfig(target=target, fault_type=FaultType.CRASH, nth=n))
        return injector

    # -- rules -------------------------------------------------------------

    def add(self, config: FaultConfig) -> None:
        self._add(config)

    def _add(self, config: FaultConfig) -> _Rule:
        rule = _Rule(config)
        with self._lock:
            self._set_rules([*self._rules, rule])
        return rule

    def remove(self, config: FaultConfig) -> None:
        """Remove the rule(s) added with this very config object."""
        with self._lock:
            kept = [rule for rule in self._rules if rule.config is not config]
            if len(kept) == len(self._rules):
                raise ValueError(f"no such rule: {config!r}")
            self._set_rules(kept)

    def clear(self) -> None:
        """Remove every rule; statistics and events are kept."""
        with self._lock:
            self._set_rules([])

    @contextlib.contextmanager
    def scope(self, *configs: FaultConfig) -> Iterator[FaultInjector]:
        """Rules that exist only inside the ``with`` block.

        The removal sits in ``finally``: a block that raises (the usual case
        when faults are injected) must not leave its rules behind to fail
        unrelated code later.
        """
        added = [self._add(config) for config in configs]
        try:
            yield self
        finally:
            with self._lock:
                self._set_rules([rule for rule in self._rules if rule not in added])

    def _set_rules(self, rules: list[_Rule]) -> None:
        self._rules = rules
        self._matching = {}

    # -- process-wide installation -------------------------------------------

    def install(self) -> None:
        """Make this the injector every ``injection_point`` consults."""
        injection.install(self)

    def uninstall(self) -> None:
        """Detach the injection points, if this is the injector installed."""
        if injection.current() is self:
            injection.install(None)

    @contextlib.contextmanager
    def installed(self) -> Iterator[FaultInjector]:
        """Install for the block, then restore the previous one, even on errors."""
        with injection.installed(self):
            yield self

    # -- interception --------------------------------------------------------

    def inject(self, name: str) -> Callable[[_F], _F]:
        """Decorator: calls to the function pass through this injector as *name*."""

        def decorate(func: _F) -> _F:
            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self._intercept(name, func, args, kwargs)

            return cast(_F, wrapper)

        return decorate

    def _intercept(
        self,
        name: str,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> Any:
        rule = self._decide(name)
        if rule is None:
            return func(*args, **kwargs)
        config = rule.config
        kind = config.fault_type
        if kind is FaultType.CRASH:
            # SIGKILL cannot be caught: no finally, no __exit__, no atexit and
            # no buffer flush, which is what a power cut does to the process.
            os.kill(os.getpid(), signal.SIGKILL)
        if kind is FaultType.EXCEPTION:
            raise _fresh_exception(config, name)
        if kind is FaultType.TIMEOUT:
            time.sleep(config.delay)
            raise TimeoutError(f"injected timeout at {name} after {config.delay}s")
        if kind is FaultType.DELAY:
            time.sleep(config.delay)
            return func(*args, **kwargs)
        result = func(*args, **kwargs)  # DATA_CORRUPTION
        with self._lock:
            return corrupt_data(result, self._rng)

    def _decide(self, name: str) -> _Rule | None:
        """Count the call and return the rule that fires for it, if any."""
        with self._lock:
            self._calls += 1
            counts = self._by_target.get(name)
            if counts is None:
                counts = self._by_target[name] = {"calls": 0, "faults": 0}
            counts["calls"] += 1
            rules = self._matching.get(name)
            if rules is None:
                rules = self._matching[name] = [
                    r for r in self._rules if fnmatch.fnmatchcase(name, r.config.target)
                ]
            chosen: _Rule | None = None
            for rule in rules:
                config = rule.config
                # Every matching rule counts the call, so nth means "the
                # n-th call this rule sees" even when another rule fired.
                rule.matched += 1
                if chosen is not None:
                    continue
                limit = config.max_triggers
                if limit is not None and rule.fired >= limit:
                    continue
                if config.nth is not None:
                    fires = rule.matched == config.nth
                else:
                    fires = self._rng.random() < config.probability
                if fires:
                    chosen = rule
            if chosen is None:
                return None
            chosen.fired += 1
            self._faults += 1
            counts["faults"] += 1
            self._events.append(
                FaultEvent(
                    time=time.time(),
                    target=name,
                    fault_type=chosen.config.fault_type,
                    call_number=counts["calls"],
                    detail=_describe(chosen.config, name),
                )
            )
            return chosen

    # -- observations --------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (later calls do not change it)."""
        with self._lock:
            return {
                "calls_intercepted": self._calls,
                "faults_triggered": self._faults,
                "by_target": {t: dict(c) for t, c in self._by_target.items()},
            }

    @property
    def events(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._events)

    def report(self) -> dict[str, Any]:
        """Stats and every event as plain JSON types, for ``json.dumps``."""
        stats = self.stats
        calls = stats["calls_intercepted"]
        return {
            "seed": self.seed,
            "stats": stats,
            "trigger_rate": stats["faults_triggered"] / calls if calls else 0.0,
            "events": [event.to_dict() for event in self.events],
        }


def _fresh_exception(config: FaultConfig, name: str) -> BaseException:
    if config.exception is None:
        return RuntimeError(f"injected fault at {name}")
    # A copy per raise: raising one instance again would chain each new
    # traceback onto the old one and share state between failures.
    try:
        return copy.copy(config.exception)
    except Exception:  # an exception class that refuses to be copied
        return config.exception.with_traceback(None)


def _describe(config: FaultConfig, name: str) -> str:
    kind, exc = config.fault_type, config.exception
    if kind is FaultType.EXCEPTION:
        exc = exc if exc is not None else RuntimeError(f"injected fault at {name}")
        return f"raised {type(exc).__name__}: {exc}"
    return {
        FaultType.DELAY: f"delayed {config.delay}s",
        FaultType.TIMEOUT: f"timed out after {config.delay}s",
        FaultType.DATA_CORRUPTION: "corrupted the return value",
    }.get(kind, "killed the process with SIGKILL")
