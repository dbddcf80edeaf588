"""Injection points: the steps of production code a fault harness may intercept.

Production keeps only this hook. Every function of
:mod:`datacenter.storage.fs` is a point ``fs.<function>``, the database
commit of an import is ``store.commit``. While no interceptor is installed
a point costs one global lookup; the harness
(:class:`datacenter.testing.faults.FaultInjector`) installs itself with
:func:`install` and then sees every call.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, cast

_F = TypeVar("_F", bound=Callable[..., Any])


class Interceptor(Protocol):
    """What an installed harness offers the points: the call, to run or not."""

    def _intercept(self, name: str, func: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: Mapping[str, Any]) -> Any: ...


#: The process-wide injector that ``injection_point`` functions consult.
_installed: Interceptor | None = None


def injection_point(name: str) -> Callable[[_F], _F]:
    """Mark a production step *name*; inert unless an injector is installed."""

    def decorate(func: _F) -> _F:
        point = _signature_point(func, name)
        if point is None:

            def point(*args: Any, **kwargs: Any) -> Any:
                # Read the global once: another thread uninstalling between
                # the test and the use cannot turn it into a call on None.
                injector = _installed
                if injector is None:
                    return func(*args, **kwargs)
                return injector._intercept(name, func, args, kwargs)

        return cast(_F, functools.wraps(func)(point))

    return decorate


# Names the generated wrapper uses itself; a parameter spelled like one of
# them would shadow it, so such functions get the generic wrapper.
_RESERVED = frozenset({"_installed", "_dc_func", "_dc_name", "_dc_inj"})

_POINT_TEMPLATE = """
def _dc_make(_dc_func, _dc_name):
    def point({params}):
        _dc_inj = _installed
        if _dc_inj is None:
            return _dc_func({params})
        return _dc_inj._intercept(_dc_name, _dc_func, ({args}), {{}})
    return point
"""


def _signature_point(func: Callable[..., Any], name: str) -> Callable[..., Any] | None:
    """A wrapper with *func*'s own parameter list, or None if it cannot be made.

    Packing and unpacking ``*args, **kwargs`` on every call added about 15 %
    to a 64-byte ``fs.write`` (``benchmarks/bench_faults.py``); a wrapper
    with the exact parameters forwards them as plain positionals and costs
    about 4 %. The code is generated, as :mod:`dataclasses` does. Only plain
    parameters, the kind every step of :mod:`datacenter.fs` has, take this
    path; anything else (``*args``, keyword-only, ...) gets the generic one.
    """
    if not inspect.isfunction(func):
        return None
    params = inspect.signature(func, follow_wrapped=False).parameters
    if _RESERVED.intersection(params) or any(
        p.kind is not p.POSITIONAL_OR_KEYWORD for p in params.values()
    ):
        return None
    source = _POINT_TEMPLATE.format(
        params=", ".join(params), args="".join(f"{p}, " for p in params)
    )
    namespace: dict[str, Any] = {}
    # The generated code is built from parameter names only, never from
    # data; its globals are this module's, so it reads the live _installed.
    code = compile(source, f"<injection_point {name}>", "exec")  # named in tracebacks
    exec(code, globals(), namespace)  # noqa: S102 - code generation, as dataclasses
    point: Callable[..., Any] = namespace["_dc_make"](func, name)
    # The generated def has no defaults of its own: give it func's.
    point.__defaults__ = func.__defaults__
    return point



def current() -> Interceptor | None:
    """The interceptor installed now, or None."""
    return _installed


def install(interceptor: Interceptor | None) -> Interceptor | None:
    """Make *interceptor* the one every point consults; returns the previous one."""
    global _installed
    previous, _installed = _installed, interceptor
    return previous


@contextlib.contextmanager
def installed(interceptor: Interceptor) -> Iterator[Interceptor]:
    """Install for the block, then restore the previous one, even on errors."""
    previous = install(interceptor)
    try:
        yield interceptor
    finally:
        install(previous)
