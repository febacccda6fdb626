"""The worst-case cost model: sizes, cel-go's cost constants and the library's call estimates.

The estimate follows the cost model the Kubernetes API server applies to DRA selectors (cel-go's
checker estimator plus ``k8s.io/apiserver/pkg/cel/library`` for Kubernetes' functions), so a
selector the API server refuses as too complex is refused here as well. The facts it relies on:

- identifiers and field selections cost 1, constants 0, a list literal 10, a map literal 30;
  ``&&``/``||`` and ``?:`` cost their operands only; any other call costs 1 plus its arguments
  unless the library prices it by the size of its inputs (below);
- string traversal costs 0.1 per character and a regex 0.25 per pattern character, every
  product rounded up; ``==``/``!=``/``<`` cost 0.1 per character of the smaller operand;
- a size is known only for literals, device fields (Kubernetes' declared maximum lengths),
  scalars, and results whose size the library derives from its inputs (``lowerAscii`` keeps the
  size, ``replace`` multiplies, ``split``/``findAll`` return up to one element per character,
  ``join`` adds). Anything else (``string(<int>)``, arithmetic on attribute values) has an
  unbounded size, and a function priced by that size makes the selector too complex;
- a comprehension costs its range plus, per element, the loop condition and the step of the
  macro's expansion (``all`` 3 + predicate, ``exists`` 4 + predicate, ``map`` 12 + transform ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

INF: Final = math.inf

STRING_TRAVERSAL: Final = 0.1   # per character of a string traversed
REGEX_LENGTH: Final = 0.25      # per character of a regex (cel-go's guess at its complexity)
LIST_CREATE: Final = 10
MAP_CREATE: Final = 30


@dataclass(frozen=True, slots=True)
class Shape:
    """Upper bounds used by the cost estimate: a size plus element (or key) and value shapes."""

    size: float
    elem: Shape | None = None
    val: Shape | None = None

    def e(self) -> Shape:
        return self.elem if self.elem is not None else UNKNOWN

    def v(self) -> Shape:
        return self.val if self.val is not None else UNKNOWN


UNKNOWN: Final = Shape(INF)
SCALAR: Final = Shape(1)


def factor(n: float, f: float) -> float:
    """cel-go's MultiplyByCostFactor: ``ceil(n * f)``, unbounded stays unbounded."""
    return INF if n == INF else float(math.ceil(n * f))


def mul(a: float, b: float) -> float:
    if a == 0 or b == 0:
        return 0.0
    return a * b


def traversal(n: int) -> int:
    """Runtime string traversal cost of ``n`` characters (rounded up, as Kubernetes does)."""
    return math.ceil(n * STRING_TRAVERSAL)


@dataclass(frozen=True, slots=True)
class Arg:
    """What an estimator knows about one argument (receiver first): shape, type, constant."""

    shape: Shape
    type: Any
    const: Any = None
    is_const: bool = False


# An estimator returns the call's own cost (the arguments' costs are added by the caller) and the
# result's shape, or None when the result's size follows from its type (scalar or unknown).
Estimate = tuple[float, Shape | None]
Estimator = Callable[[list[Arg]], Estimate]


def _o1(args: list[Arg]) -> Estimate:
    return 1.0, None


def _size(a: Arg) -> float:
    return a.shape.size


def _recv_traversal_same_size(args: list[Arg]) -> Estimate:
    # lowerAscii, upperAscii, trim, substring: one traversal; the result is no longer.
    return factor(_size(args[0]), STRING_TRAVERSAL), args[0].shape


def _regex(args: list[Arg]) -> float:
    return mul(factor(_size(args[0]) + 1, STRING_TRAVERSAL), factor(_size(args[1]), REGEX_LENGTH))


def _matches(args: list[Arg]) -> Estimate:
    return _regex(args), None


def _find(args: list[Arg]) -> Estimate:
    return _regex(args), Shape(_size(args[0]))


def _find_all(args: list[Arg]) -> Estimate:
    # Worst case every character is a separate match.
    return _regex(args), Shape(_size(args[0]), UNKNOWN)


def _contains(args: list[Arg]) -> Estimate:
    return mul(factor(_size(args[0]), STRING_TRAVERSAL),
               factor(_size(args[1]), STRING_TRAVERSAL)), None


def _affix(args: list[Arg]) -> Estimate:
    # startsWith / endsWith traverse at most the affix.
    return factor(_size(args[1]), STRING_TRAVERSAL), None


def _replace(args: list[Arg]) -> Estimate:
    s, old, new = _size(args[0]), _size(args[1]), _size(args[2])
    old_min = len(args[1].const) if args[1].is_const else 0
    if old_min == 0:
        # An empty (or possibly empty) pattern surrounds every character with the replacement.
        count = s + 1 if s != INF else INF
        size = mul(count, new) + s
    elif new <= old_min:
        size = s
    else:
        size = mul(math.ceil(s / old_min) if s != INF else INF, new)
    del old
    return factor(s, 2 * STRING_TRAVERSAL), Shape(size)


def _split(args: list[Arg]) -> Estimate:
    n = _size(args[0])
    if len(args) > 2 and args[2].is_const and type(args[2].const) is int:
        n = float(args[2].const)
    return factor(_size(args[0]), 2 * STRING_TRAVERSAL), Shape(n, UNKNOWN)


def _join(args: list[Arg]) -> Estimate:
    lst = args[0].shape
    size = mul(lst.size, lst.e().size)
    if len(args) > 1:
        size += mul(_size(args[1]), max(0.0, lst.size - 1))
    return factor(size, STRING_TRAVERSAL), Shape(size)


def _parse(args: list[Arg]) -> Estimate:
    # quantity, isQuantity, semver, isSemver parse their string argument once.
    return factor(_size(args[0]), STRING_TRAVERSAL), None


def _list_scan(args: list[Arg]) -> Estimate:
    # isSorted, sum, min, max, indexOf, lastIndexOf: one comparison per element, plus the
    # traversal of string elements; on a string receiver (indexOf) one traversal.
    recv = args[0]
    if isinstance(recv.type, tuple):
        elem_t = recv.type[1]
        per = 1.0
        if elem_t in ("string", "bytes"):
            per += factor(recv.shape.e().size, STRING_TRAVERSAL)
        return mul(recv.shape.size, per), None
    return factor(recv.shape.size, STRING_TRAVERSAL), None


def _allocating(cost_factor: float, size: float, result: Shape) -> Estimate:
    return factor(size, cost_factor) + 1 + LIST_CREATE, result


def _int_const(a: Arg, default: float) -> float:
    return float(a.const) if a.is_const and type(a.const) is int else default


def _range(args: list[Arg]) -> Estimate:
    n = max(0.0, _int_const(args[0], INF))
    return _allocating(1, n, Shape(n, Shape(1)))


def _slice(args: list[Arg]) -> Estimate:
    recv = args[0].shape
    start = _int_const(args[1], 0)
    end = _int_const(args[2], recv.size)
    n = max(0.0, end - start) if end != INF else INF
    return _allocating(1, n, Shape(n, recv.elem, recv.val))


def _reverse(args: list[Arg]) -> Estimate:
    return _allocating(1, args[0].shape.size, args[0].shape)


def _flatten(args: list[Arg]) -> Estimate:
    depth = _int_const(args[1], INF) if len(args) > 1 else 1.0
    return _allocating(depth, args[0].shape.size, Shape(args[0].shape.size, UNKNOWN))


def _distinct(args: list[Arg]) -> Estimate:
    n = args[0].shape.size
    return _allocating(2, mul(n, n), args[0].shape)


def sort_estimate(shape: Shape, elem_type: Any) -> Estimate:
    f = 2.0 + (STRING_TRAVERSAL if elem_type in ("string", "bytes") else 0)
    return _allocating(f, mul(shape.size, shape.size), shape)


def _sort(args: list[Arg]) -> Estimate:
    t = args[0].type
    return sort_estimate(args[0].shape, t[1] if isinstance(t, tuple) else None)


def _sets(f: float) -> Estimator:
    def est(args: list[Arg]) -> Estimate:
        return factor(mul(_size(args[0]), _size(args[1])), f) + 1, None

    return est


def _quote(args: list[Arg]) -> Estimate:
    s = _size(args[0])
    return factor(s, STRING_TRAVERSAL), Shape(2 * s + 2)


def _to_bytes(args: list[Arg]) -> Estimate:
    if args[0].type in ("string", "dyn", "any"):
        return factor(_size(args[0]), STRING_TRAVERSAL), Shape(4 * _size(args[0]))
    return 1.0, None


def _to_string(args: list[Arg]) -> Estimate:
    if args[0].type == "bytes":
        return factor(_size(args[0]), STRING_TRAVERSAL), args[0].shape
    if args[0].type in ("dyn", "any"):
        # string(<attribute>) may be string(bytes): priced as that traversal, keeps the bound.
        return max(1.0, factor(_size(args[0]), STRING_TRAVERSAL)), args[0].shape
    return 1.0, None  # string(int), string(string) ...: the result's size is not known


ESTIMATORS: Final[dict[str, Estimator]] = {
    "matches": _matches, "find": _find, "findAll": _find_all,
    "contains": _contains, "startsWith": _affix, "endsWith": _affix,
    "lowerAscii": _recv_traversal_same_size, "upperAscii": _recv_traversal_same_size,
    "trim": _recv_traversal_same_size, "substring": _recv_traversal_same_size,
    "replace": _replace, "split": _split, "join": _join,
    "quantity": _parse, "isQuantity": _parse, "semver": _parse, "isSemver": _parse,
    "isSorted": _list_scan, "sum": _list_scan, "min": _list_scan, "max": _list_scan,
    "indexOf": _list_scan, "lastIndexOf": _list_scan,
    "lists.range": _range, "slice": _slice, "reverse": _reverse, "flatten": _flatten,
    "distinct": _distinct, "sort": _sort,
    "sets.contains": _sets(1), "sets.intersects": _sets(1), "sets.equivalent": _sets(2),
    "strings.quote": _quote, "bytes": _to_bytes, "string": _to_string,
}


def estimate_call(name: str, args: list[Arg]) -> Estimate:
    return ESTIMATORS.get(name, _o1)(args)


# -- runtime ----------------------------------------------------------------------------------
# The meter charges what Kubernetes' runtime cost tracker charges for a call (its CallCost), from
# the actual argument sizes, before the call runs; functions whose output can be much larger than
# their input (replace, join, concatenation) are also charged for the output they would build, so
# a selector cannot build a gigabyte string within budget.


def _len(v: Any) -> int:
    return len(v) if isinstance(v, (str, bytes, list, dict)) else 1


def _rt_regex(vals: list[Any]) -> int:
    return math.ceil((1 + _len(vals[0])) * STRING_TRAVERSAL) * math.ceil(
        _len(vals[1]) * REGEX_LENGTH)


def _rt_contains(vals: list[Any]) -> int:
    return 1 + traversal(_len(vals[0])) * traversal(_len(vals[1]))


def _rt_replace(vals: list[Any]) -> int:
    s, old, new = vals[0], vals[1], vals[2]
    cost = math.ceil(_len(s) * 2 * STRING_TRAVERSAL)
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        n = s.count(old) if old else len(s) + 1
        if len(vals) > 3 and type(vals[3]) is int and vals[3] >= 0:
            n = min(n, vals[3])
        cost += traversal(max(0, len(s) + n * (len(new) - len(old))))
    return cost


def _rt_join(vals: list[Any]) -> int:
    lst = vals[0]
    if not isinstance(lst, list):
        return 1
    sep = _len(vals[1]) if len(vals) > 1 else 0
    size = sum(_len(x) for x in lst) + sep * max(0, len(lst) - 1)
    return math.ceil(size * 2 * STRING_TRAVERSAL)


def _rt_traverse(vals: list[Any]) -> int:
    return traversal(_len(vals[0]))


def _rt_split(vals: list[Any]) -> int:
    return math.ceil(_len(vals[0]) * 2 * STRING_TRAVERSAL)


def _rt_list_scan(vals: list[Any]) -> int:
    v = vals[0]
    if isinstance(v, list):
        return 1 + sum(traversal(len(x)) if isinstance(x, (str, bytes)) else 1 for x in v)
    return 1 + traversal(_len(v))


def _rt_list(f: float) -> Callable[[list[Any]], int]:
    def rt(vals: list[Any]) -> int:
        return 1 + math.ceil(_len(vals[0]) * f)

    return rt


def _rt_square(f: float) -> Callable[[list[Any]], int]:
    def rt(vals: list[Any]) -> int:
        return 1 + math.ceil(_len(vals[0]) * _len(vals[0]) * f)

    return rt


def _rt_sets(f: float) -> Callable[[list[Any]], int]:
    def rt(vals: list[Any]) -> int:
        return 1 + math.ceil(_len(vals[0]) * _len(vals[1]) * f)

    return rt


def _rt_range(vals: list[Any]) -> int:
    n = vals[0]
    return 1 + (max(0, n) if type(n) is int else 0)


RUNTIME: Final[dict[str, Callable[[list[Any]], int]]] = {
    "matches": _rt_regex, "find": _rt_regex, "findAll": _rt_regex,
    "contains": _rt_contains, "startsWith": lambda v: 1 + traversal(_len(v[1])),
    "endsWith": lambda v: 1 + traversal(_len(v[1])),
    "lowerAscii": _rt_traverse, "upperAscii": _rt_traverse, "trim": _rt_traverse,
    "substring": _rt_traverse, "replace": _rt_replace, "split": _rt_split, "join": _rt_join,
    "quantity": _rt_traverse, "isQuantity": _rt_traverse, "semver": _rt_traverse,
    "isSemver": _rt_traverse, "strings.quote": lambda v: 1 + 2 * traversal(_len(v[0])),
    "isSorted": _rt_list_scan, "sum": _rt_list_scan, "min": _rt_list_scan,
    "max": _rt_list_scan, "indexOf": _rt_list_scan, "lastIndexOf": _rt_list_scan,
    "lists.range": _rt_range, "slice": _rt_list(1), "reverse": _rt_list(1),
    "flatten": _rt_list(1), "distinct": _rt_square(2), "sort": _rt_square(2),
    "sets.contains": _rt_sets(1), "sets.intersects": _rt_sets(1),
    "sets.equivalent": _rt_sets(2),
    "bytes": _rt_traverse, "string": _rt_traverse,
}
