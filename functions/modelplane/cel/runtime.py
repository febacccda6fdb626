"""Runtime values, errors and the cost meter shared by the evaluator and the function library.

CEL values map onto Python values: bool, int (CEL int, int64-checked), :class:`UInt`, float, str,
bytes, None (null), list, dict, plus :class:`Quantity`, :class:`Semver` and :class:`DeviceValue`.
Python's ``True == 1`` is why equality and typing go through :func:`cel_eq` / :func:`type_name`
instead of ``==`` / ``type()``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Final

from .quantity import Quantity
from .semver import Semver

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1

# Kubernetes' resource/v1 CELSelectorExpressionMaxCost.
COST_LIMIT: Final = 1_000_000


def _time_limit() -> float:
    raw = os.environ.get("MODELPLANE_CEL_TIME_LIMIT", "")
    try:
        value = float(raw) if raw else 0.5
    except ValueError:
        value = 0.5
    return value if value > 0 else 0.5


# Wall-clock budget of one evaluation in seconds (MODELPLANE_CEL_TIME_LIMIT overrides it).
TIME_LIMIT: Final = _time_limit()


class CELError(Exception):
    """A CEL evaluation error (absorbed by ``&&``/``||``/``all``/``exists`` as in cel-go)."""


class CostExceeded(Exception):
    """The per-evaluation cost budget ran out; never absorbed by logical operators."""


class Meter:
    """Cost accounting for one evaluation: Kubernetes' cost units plus a wall-clock deadline.

    The units decide almost always, deterministically. The deadline is the backstop for work
    the units under-price in this implementation (a regex match costs microseconds here, a
    fraction of a unit in Kubernetes' model): past ``time_limit`` seconds the evaluation stops.
    It is checked wherever work is charged in a loop (every comprehension step, every charge,
    every 1,024 regex matches).
    """

    __slots__ = ("cost", "deadline", "limit", "time_limit")

    def __init__(self, limit: int = COST_LIMIT, time_limit: float | None = None) -> None:
        self.cost = 0
        self.limit = limit
        self.time_limit = TIME_LIMIT if time_limit is None else time_limit
        self.deadline = time.monotonic() + self.time_limit

    def charge(self, units: int) -> None:
        self.cost += units
        if self.cost > self.limit:
            raise CostExceeded("operation cancelled: actual cost limit exceeded")
        self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise CostExceeded(f"operation cancelled: evaluation time limit of "
                               f"{self.time_limit:g}s exceeded")


class UInt(int):
    """CEL ``uint``: a distinct type so ``1u`` and ``1`` keep their CEL identities."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


class DeviceValue:
    """The ``device`` variable: one DRA device as the selector sees it."""

    __slots__ = ("allow_multiple_allocations", "attributes", "capacity", "driver")

    def __init__(self, driver: str, attributes: DomainMap, capacity: DomainMap,
                 allow_multiple_allocations: bool) -> None:
        self.driver = driver
        self.attributes = attributes
        self.capacity = capacity
        self.allow_multiple_allocations = allow_multiple_allocations


class DomainMap(dict[str, Any]):
    """``device.attributes`` / ``device.capacity``: a lookup of an unknown domain is an empty map.

    Kubernetes returns an empty map for a missing domain (so ``"x" in device.attributes`` is false
    but ``device.attributes["x"]`` is ``{}``) and a "no such key" error for a missing id.
    """

    __slots__ = ()


_EMPTY: Final[dict[str, Any]] = {}


def domain_lookup(m: DomainMap, key: Any) -> Any:
    got = m.get(key) if isinstance(key, str) else None
    return _EMPTY if got is None else got


def type_name(v: Any) -> str:
    """The CEL type name of a runtime value, for messages and dynamic dispatch."""
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is UInt:
        return "uint"
    if t is float:
        return "double"
    if t is str:
        return "string"
    if t is bytes:
        return "bytes"
    if v is None:
        return "null_type"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "map"
    if t is Quantity:
        return "kubernetes.Quantity"
    if t is Semver:
        return "kubernetes.Semver"
    if t is DeviceValue:
        return "kubernetes.DRADevice"
    return t.__name__


def is_num(v: Any) -> bool:
    t = type(v)
    return t is int or t is float or t is UInt


def no_overload(name: str, *args: Any) -> CELError:
    return CELError(f"no such overload: {name}({', '.join(type_name(a) for a in args)})")


def cel_eq(a: Any, b: Any) -> bool:
    """CEL heterogeneous equality (numbers compare across int/uint/double)."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a is b
    if is_num(a) and is_num(b):
        if ta is float or tb is float:
            return float(a) == float(b) if not (math.isnan(a) or math.isnan(b)) else False
        return int(a) == int(b)
    if ta is Quantity or ta is Semver or tb is Quantity or tb is Semver:
        if ta is not tb:
            raise no_overload("_==_", a, b)
        return bool(a == b)
    if ta is str or ta is bytes or a is None:
        return ta is tb and a == b
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(cel_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        return all(k in b and cel_eq(v, b[k]) for k, v in a.items())
    return a is b


def cel_cmp(a: Any, b: Any, op: str) -> int:
    """-1/0/1 ordering for ``<``-family operators; raises CELError without an overload."""
    ta, tb = type(a), type(b)
    if is_num(a) and is_num(b) and ta is not bool and tb is not bool:
        if ta is float or tb is float:
            x, y = float(a), float(b)
            if math.isnan(x) or math.isnan(y):
                return 2  # unordered: every comparison false
            return (x > y) - (x < y)
        return (int(a) > int(b)) - (int(a) < int(b))
    if ta is tb and ta in (str, bytes, bool):
        return (a > b) - (a < b)
    raise no_overload(op, a, b)


def check_int(v: int) -> int:
    if v < INT64_MIN or v > INT64_MAX:
        raise CELError("integer overflow")
    return v


def check_uint(v: int) -> UInt:
    if v < 0 or v > UINT64_MAX:
        raise CELError("unsigned integer overflow")
    return UInt(v)


def str_cost(n: int) -> int:
    """cel-go charges string traversal at 0.1 per character, rounded up."""
    return (n + 9) // 10
