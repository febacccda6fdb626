"""The function library of Kubernetes' CEL base environment as device selectors see it (1.34).

Every function has static signatures (for compile-time overload checks, like cel-go's checker),
a runtime implementation that checks its own argument types (values may be ``dyn``), and a cost
function of argument sizes used both for the compile-time worst-case estimate and for the runtime
meter, so the two agree on what a call costs.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import re2

from .quantity import Quantity, QuantityError, is_quantity, parse_quantity, quantity_from_int
from .runtime import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    CELError,
    Meter,
    UInt,
    cel_cmp,
    cel_eq,
    check_int,
    check_uint,
    is_num,
    no_overload,
    str_cost,
    type_name,
)
from .semver import Semver, SemverError, is_semver, parse_semver

# A static type: a primitive/opaque name, ("list", T) or ("map", K, V). "dyn" matches anything.
Type = Any
DYN: Final = "dyn"
INT: Final = "int"
UINT: Final = "uint"
DOUBLE: Final = "double"
BOOL: Final = "bool"
STRING: Final = "string"
BYTES: Final = "bytes"
NULL: Final = "null_type"
QUANTITY: Final = "kubernetes.Quantity"
SEMVER: Final = "kubernetes.Semver"
LIST_DYN: Final = ("list", DYN)
MAP_DYN: Final = ("map", DYN, DYN)
LIST_STR: Final = ("list", STRING)

Sizes = Sequence[float]
CostFn = Callable[[Sizes], float]
SizeFn = Callable[[Sizes], float]


def _one(_: Sizes) -> float:
    return 1


def _str_recv(s: Sizes) -> float:
    return 1 + str_cost(int(min(s[0], 1e18))) if s[0] != math.inf else math.inf


def _str_all(s: Sizes) -> float:
    total = sum(s)
    return 1 + str_cost(int(total)) if total != math.inf else math.inf


def _list_recv(s: Sizes) -> float:
    return 1 + s[0]


def _list_all(s: Sizes) -> float:
    return 1 + sum(s)


def _nlogn(s: Sizes) -> float:
    n = s[0]
    return 1 + n * max(1.0, math.ceil(math.log2(n))) if n not in (0, math.inf) else 1 + n


def _regex(s: Sizes) -> float:
    # RE2 runs in time linear in the input; charge input and pattern length.
    return _str_all(s)


def _same_size(s: Sizes) -> float:
    return s[0]


def _scalar(_: Sizes) -> float:
    return 1


@dataclass(frozen=True)
class Func:
    """One callable name: global (``f(x)``) or member (``x.f()``, receiver first in ``sigs``)."""

    sigs: tuple[tuple[tuple[Type, ...], Type | Callable[[list[Type]], Type]], ...]
    impl: Callable[..., Any]
    cost: CostFn = _one
    size: SizeFn | None = None  # static size bound of the result; None = scalar / unknown
    regex_arg: int | None = None  # index of a regex argument validated when it is a literal
    metered: bool = False  # impl takes the Meter first: it works per element and must be stoppable


# -- regex -------------------------------------------------------------------------------------
_RE_OPTS = re2.Options()
_RE_OPTS.log_errors = False


@functools.lru_cache(maxsize=512)
def compile_regex(pattern: str) -> Any:
    """RE2 (linear-time, Go-compatible syntax) so a selector cannot backtrack forever."""
    try:
        return re2.compile(pattern, options=_RE_OPTS)
    except Exception as exc:  # re2 raises its own error type
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise CELError(f"error parsing regexp: {detail}: `{pattern}`") from None


def _need(name: str, args: tuple[Any, ...], *types: type) -> None:
    for a, t in zip(args, types, strict=True):
        if type(a) is not t:
            raise no_overload(name, *args)


def _matches(s: Any, p: Any) -> bool:
    _need("matches", (s, p), str, str)
    return compile_regex(p).search(s) is not None


def _find(s: Any, p: Any) -> str:
    _need("find", (s, p), str, str)
    m = compile_regex(p).search(s)
    return "" if m is None else str(m.group(0))


def _find_all(meter: Meter, s: Any, p: Any, n: Any = -1) -> list[str]:
    _need("findAll", (s, p, n), str, str, int)
    if n == 0:
        return []
    # Each match costs this binding microseconds, far more than Kubernetes' per-character price
    # suggests: check the evaluation's deadline as the matches are collected.
    out: list[str] = []
    for i, m in enumerate(compile_regex(p).finditer(s)):
        if i & 1023 == 1023:
            meter.check_time()
        out.append(str(m.group(0)))
        if len(out) == n:
            break
    return out


# -- standard ----------------------------------------------------------------------------------
def _size(v: Any) -> int:
    if isinstance(v, (str, bytes, list, dict)):
        return len(v)
    raise no_overload("size", v)


def _contains(s: Any, sub: Any) -> bool:
    _need("contains", (s, sub), str, str)
    return sub in s


def _starts(s: Any, p: Any) -> bool:
    _need("startsWith", (s, p), str, str)
    return bool(s.startswith(p))


def _ends(s: Any, p: Any) -> bool:
    _need("endsWith", (s, p), str, str)
    return bool(s.endswith(p))


def _to_int(v: Any) -> int:
    t = type(v)
    if t is int:
        return v
    if t is UInt:
        return check_int(int(v))
    if t is float:
        if math.isnan(v) or math.isinf(v) or not (INT64_MIN <= v < 2.0**63):
            raise CELError("double out of int range")
        return int(v)
    if t is str:
        try:
            return check_int(int(v, 10)) if v.strip() == v and "_" not in v else _bad_int(v)
        except ValueError:
            raise CELError(f"cannot convert string '{v}' to int") from None
    raise no_overload("int", v)


def _bad_int(v: str) -> int:
    raise ValueError(v)


def _to_uint(v: Any) -> UInt:
    t = type(v)
    if t is UInt:
        return v
    if t is int:
        return check_uint(v)
    if t is float:
        if math.isnan(v) or not (0 <= v < 2.0**64):
            raise CELError("double out of uint range")
        return UInt(int(v))
    if t is str:
        if v.isdigit() and v.isascii():
            return check_uint(int(v))
        raise CELError(f"cannot convert string '{v}' to uint")
    raise no_overload("uint", v)


def _to_double(v: Any) -> float:
    t = type(v)
    if t is float:
        return v
    if t is int or t is UInt:
        return float(v)
    if t is str:
        try:
            return float(v) if v.strip() == v and "_" not in v else float("x")
        except ValueError:
            raise CELError(f"cannot convert string '{v}' to double") from None
    raise no_overload("double", v)


def format_double(v: float) -> str:
    """Go's strconv.FormatFloat(v, 'g', -1, 64) spelling, which CEL's string(double) uses."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    r = repr(v)
    if "e" in r:
        mant, _, exp = r.partition("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        mant = mant.removesuffix(".0")
        return f"{mant}e{sign}{digits}"
    if r.endswith(".0"):
        r = r[:-2]
    # Go switches to exponent form when exp < -4 || exp >= 21 (shortest repr digits).
    if abs(v) >= 1e21:
        return format_double(float(f"{v:e}"))
    return r


def _to_string(v: Any) -> str:
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if t is int or t is UInt:
        return str(int(v))
    if t is float:
        return format_double(v)
    if t is bytes:
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise CELError("invalid UTF-8 in bytes, cannot convert to string") from None
    if t is Quantity or t is Semver:
        raise no_overload("string", v)
    raise no_overload("string", v)


def _to_bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    if type(v) is str:
        if v in ("1", "t", "T", "true", "TRUE", "True"):
            return True
        if v in ("0", "f", "F", "false", "FALSE", "False"):
            return False
        raise CELError(f"cannot convert string '{v}' to bool")
    raise no_overload("bool", v)


def _to_bytes(v: Any) -> bytes:
    if type(v) is bytes:
        return v
    if type(v) is str:
        return v.encode("utf-8")
    raise no_overload("bytes", v)


def _dyn(v: Any) -> Any:
    return v


# -- ext.Strings (version 2) -------------------------------------------------------------------
def _char_at(s: Any, i: Any) -> str:
    _need("charAt", (s, i), str, int)
    if i < 0 or i > len(s):
        raise CELError(f"index out of range: {i}")
    return str(s[i]) if i < len(s) else ""


def _index_of(s: Any, sub: Any, off: Any = 0) -> int:
    _need("indexOf", (s, sub, off), str, str, int)
    if off < 0 or off > len(s):
        raise CELError(f"index out of range: {off}")
    return int(s.find(sub, off))


def _last_index_of(s: Any, sub: Any, off: Any = None) -> int:
    if off is None:
        _need("lastIndexOf", (s, sub), str, str)
        return int(s.rfind(sub))
    _need("lastIndexOf", (s, sub, off), str, str, int)
    if off < 0 or (off >= len(s) and len(s) > 0) or (len(s) == 0 and off != 0):
        raise CELError(f"index out of range: {off}")
    return int(s.rfind(sub, 0, off + len(sub)))


def _lower(s: Any) -> str:
    _need("lowerAscii", (s,), str)
    return "".join(c.lower() if c.isascii() else c for c in s)


def _upper(s: Any) -> str:
    _need("upperAscii", (s,), str)
    return "".join(c.upper() if c.isascii() else c for c in s)


def _replace(s: Any, old: Any, new: Any, n: Any = -1) -> str:
    _need("replace", (s, old, new, n), str, str, str, int)
    return str(s.replace(old, new, n if n >= 0 else -1))


def _split(s: Any, sep: Any, n: Any = -1) -> list[str]:
    _need("split", (s, sep, n), str, str, int)
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        if 0 < n < len(chars):
            return [*chars[: n - 1], "".join(chars[n - 1 :])]
        return chars
    return list(s.split(sep, n - 1 if n > 0 else -1))


def _substring(s: Any, start: Any, end: Any = None) -> str:
    if end is None:
        _need("substring", (s, start), str, int)
        end = len(s)
    else:
        _need("substring", (s, start, end), str, int, int)
    if start < 0 or start > len(s):
        raise CELError(f"index out of range: {start}")
    if end < 0 or end > len(s):
        raise CELError(f"index out of range: {end}")
    if start > end:
        raise CELError(f"invalid substring range. start: {start}, end: {end}")
    return str(s[start:end])


def _trim(s: Any) -> str:
    _need("trim", (s,), str)
    return str(s.strip())


def _join(lst: Any, sep: Any = "") -> str:
    if not isinstance(lst, list) or type(sep) is not str:
        raise no_overload("join", lst, sep)
    for e in lst:
        if type(e) is not str:
            raise CELError("join: list must contain only strings")
    return str(sep.join(lst))


def _quote(s: Any) -> str:
    _need("strings.quote", (s,), str)
    out = ['"']
    for c in s:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[c])
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


# -- Kubernetes library.Lists and ext.Lists (version 3) ----------------------------------------
def _list(name: str, v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise no_overload(name, v)
    return v


def _is_sorted(lst: Any) -> bool:
    items = _list("isSorted", lst)
    return all(cel_cmp(a, b, "isSorted") <= 0 for a, b in itertools.pairwise(items))


def _sum(lst: Any) -> Any:
    items = _list("sum", lst)
    if not items:
        return 0
    kinds = {type(x) for x in items}
    if len(kinds) != 1 or not is_num(items[0]) or type(items[0]) is bool:
        raise no_overload("sum", lst)
    if float in kinds:
        return float(math.fsum(items))
    total = sum(int(x) for x in items)
    return check_uint(total) if UInt in kinds else check_int(total)


def _min(lst: Any) -> Any:
    items = _list("min", lst)
    if not items:
        raise CELError("min(list) called on empty list")
    best = items[0]
    for x in items[1:]:
        if cel_cmp(x, best, "min") < 0:
            best = x
    return best


def _max(lst: Any) -> Any:
    items = _list("max", lst)
    if not items:
        raise CELError("max(list) called on empty list")
    best = items[0]
    for x in items[1:]:
        if cel_cmp(x, best, "max") > 0:
            best = x
    return best


def _list_index_of(lst: Any, v: Any, *rest: Any) -> int:
    if isinstance(lst, str):
        return _index_of(lst, v, *rest)
    for i, x in enumerate(_list("indexOf", lst)):
        if cel_eq(x, v):
            return i
    return -1


def _list_last_index_of(lst: Any, v: Any, *rest: Any) -> int:
    if isinstance(lst, str):
        return _last_index_of(lst, v, *rest)
    items = _list("lastIndexOf", lst)
    for i in range(len(items) - 1, -1, -1):
        if cel_eq(items[i], v):
            return i
    return -1


def _range(n: Any) -> list[int]:
    _need("lists.range", (n,), int)
    return list(range(max(0, n)))


def _slice(lst: Any, start: Any, end: Any) -> list[Any]:
    items = _list("slice", lst)
    _need("slice", (start, end), int, int)
    if start < 0 or end < 0:
        raise CELError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise CELError(f"cannot slice({start}, {end}), start index must be less than or equal "
                       "to end index")
    if end > len(items):
        raise CELError(f"cannot slice({start}, {end}), list is length {len(items)}")
    return items[start:end]


def _flatten(lst: Any, depth: Any = 1) -> list[Any]:
    items = _list("flatten", lst)
    _need("flatten", (depth,), int)
    if depth < 0:
        raise CELError("level must be non-negative")
    out: list[Any] = []
    for x in items:
        if isinstance(x, list) and depth > 0:
            out.extend(_flatten(x, depth - 1))
        else:
            out.append(x)
    return out


def _distinct(lst: Any) -> list[Any]:
    out: list[Any] = []
    for x in _list("distinct", lst):
        if not any(cel_eq(x, y) for y in out):
            out.append(x)
    return out


def _reverse(lst: Any) -> list[Any]:
    return list(reversed(_list("reverse", lst)))


def _sort(lst: Any) -> list[Any]:
    items = _list("sort", lst)
    if items:
        first = type(items[0])
        if any(type(x) is not first for x in items) or first not in (int, UInt, float, str,
                                                                     bool, bytes):
            raise CELError("list elements must have the same type and be comparable")
    return sorted(items, key=functools.cmp_to_key(lambda a, b: cel_cmp(a, b, "sort")))


# -- ext.Sets ----------------------------------------------------------------------------------
def _sets_contains(a: Any, b: Any) -> bool:
    la, lb = _list("sets.contains", a), _list("sets.contains", b)
    return all(any(cel_eq(x, y) for y in la) for x in lb)


def _sets_equivalent(a: Any, b: Any) -> bool:
    return _sets_contains(a, b) and _sets_contains(b, a)


def _sets_intersects(a: Any, b: Any) -> bool:
    la, lb = _list("sets.intersects", a), _list("sets.intersects", b)
    return any(any(cel_eq(x, y) for y in la) for x in lb)


# -- Kubernetes Quantity library ---------------------------------------------------------------
def _quantity(s: Any) -> Quantity:
    _need("quantity", (s,), str)
    try:
        return parse_quantity(s)
    except QuantityError as exc:
        raise CELError(str(exc)) from None


def _is_quantity(s: Any) -> bool:
    _need("isQuantity", (s,), str)
    return is_quantity(s)


def _q(name: str, v: Any) -> Quantity:
    if type(v) is not Quantity:
        raise no_overload(name, v)
    return v


def _q_arg(name: str, recv: Any, v: Any) -> Quantity:
    if type(v) is Quantity:
        return v
    if type(v) is int:
        return quantity_from_int(v)
    raise no_overload(name, recv, v)


def _q_add(a: Any, b: Any) -> Quantity:
    try:
        return _q("add", a).add(_q_arg("add", a, b))
    except QuantityError as exc:
        raise CELError(str(exc)) from None


def _q_sub(a: Any, b: Any) -> Quantity:
    try:
        return _q("sub", a).sub(_q_arg("sub", a, b))
    except QuantityError as exc:
        raise CELError(str(exc)) from None


def _sign(a: Any) -> int:
    return _q("sign", a).sign()


def _is_integer(a: Any) -> bool:
    return _q("isInteger", a).as_int64() is not None


def _as_integer(a: Any) -> int:
    v = _q("asInteger", a).as_int64()
    if v is None:
        raise CELError("cannot convert value to integer")
    return v


def _as_float(a: Any) -> float:
    return _q("asApproximateFloat", a).as_approximate_float()


# -- Kubernetes Semver library -----------------------------------------------------------------
def _semver(s: Any, normalize: Any = False) -> Semver:
    _need("semver", (s, normalize), str, bool)
    try:
        return parse_semver(s, normalize)
    except SemverError as exc:
        raise CELError(f"could not parse semver: {exc}") from None


def _is_semver(s: Any, normalize: Any = False) -> bool:
    _need("isSemver", (s, normalize), str, bool)
    return is_semver(s, normalize)


def _sv(name: str, v: Any) -> Semver:
    if type(v) is not Semver:
        raise no_overload(name, v)
    return v


def _compare(name: str, a: Any, b: Any) -> int:
    if type(a) is Quantity and type(b) is Quantity:
        return a.cmp(b)
    if type(a) is Semver and type(b) is Semver:
        return a.compare(b)
    raise no_overload(name, a, b)


def _compare_to(a: Any, b: Any) -> int:
    return _compare("compareTo", a, b)


def _greater(a: Any, b: Any) -> bool:
    return _compare("isGreaterThan", a, b) > 0


def _less(a: Any, b: Any) -> bool:
    return _compare("isLessThan", a, b) < 0


def _major(v: Any) -> int:
    return check_int(_sv("major", v).major)


def _minor(v: Any) -> int:
    return check_int(_sv("minor", v).minor)


def _patch(v: Any) -> int:
    return check_int(_sv("patch", v).patch)


# -- the tables --------------------------------------------------------------------------------
def _elem(ts: list[Type]) -> Type:
    t = ts[0]
    return t[1] if isinstance(t, tuple) and t[0] == "list" else DYN


def _first(ts: list[Type]) -> Type:
    return ts[0]


_NUMERIC_LISTS = (("list", INT), ("list", UINT), ("list", DOUBLE))

GLOBALS: Final[dict[str, Func]] = {
    "size": Func(((( STRING,), INT), ((BYTES,), INT), ((LIST_DYN,), INT), ((MAP_DYN,), INT)),
                 _size),
    "matches": Func((((STRING, STRING), BOOL),), _matches, _regex, regex_arg=1),
    "int": Func((((INT,), INT), ((UINT,), INT), ((DOUBLE,), INT), ((STRING,), INT)), _to_int),
    "uint": Func((((UINT,), UINT), ((INT,), UINT), ((DOUBLE,), UINT), ((STRING,), UINT)),
                 _to_uint),
    "double": Func((((DOUBLE,), DOUBLE), ((INT,), DOUBLE), ((UINT,), DOUBLE),
                    ((STRING,), DOUBLE)), _to_double),
    "string": Func((((STRING,), STRING), ((BOOL,), STRING), ((INT,), STRING), ((UINT,), STRING),
                    ((DOUBLE,), STRING), ((BYTES,), STRING)), _to_string, _str_recv, _same_size),
    "bool": Func((((BOOL,), BOOL), ((STRING,), BOOL)), _to_bool),
    "bytes": Func((((BYTES,), BYTES), ((STRING,), BYTES)), _to_bytes, _str_recv, _same_size),
    "dyn": Func((((DYN,), DYN),), _dyn, _one, _same_size),
    "quantity": Func((((STRING,), QUANTITY),), _quantity),
    # Kubernetes declares sign as a global function of a quantity, not a member.
    "sign": Func((((QUANTITY,), INT),), _sign),
    "isQuantity": Func((((STRING,), BOOL),), _is_quantity),
    "semver": Func((((STRING,), SEMVER), ((STRING, BOOL), SEMVER)), _semver),
    "isSemver": Func((((STRING,), BOOL), ((STRING, BOOL), BOOL)), _is_semver),
    "lists.range": Func((((INT,), ("list", INT)),), _range, lambda s: 1.0),
    "sets.contains": Func((((LIST_DYN, LIST_DYN), BOOL),), _sets_contains,
                          lambda s: 1 + s[0] * s[1]),
    "sets.equivalent": Func((((LIST_DYN, LIST_DYN), BOOL),), _sets_equivalent,
                            lambda s: 1 + 2 * s[0] * s[1]),
    "sets.intersects": Func((((LIST_DYN, LIST_DYN), BOOL),), _sets_intersects,
                            lambda s: 1 + s[0] * s[1]),
    "strings.quote": Func((((STRING,), STRING),), _quote, _str_recv, lambda s: 2 * s[0] + 2),
}

MEMBERS: Final[dict[str, Func]] = {
    "size": Func((((STRING,), INT), ((BYTES,), INT), ((LIST_DYN,), INT), ((MAP_DYN,), INT)),
                 _size),
    "contains": Func((((STRING, STRING), BOOL),), _contains, _str_all),
    "startsWith": Func((((STRING, STRING), BOOL),), _starts, _str_all),
    "endsWith": Func((((STRING, STRING), BOOL),), _ends, _str_all),
    "matches": Func((((STRING, STRING), BOOL),), _matches, _regex, regex_arg=1),
    "find": Func((((STRING, STRING), STRING),), _find, _regex, _same_size, regex_arg=1),
    "findAll": Func((((STRING, STRING), LIST_STR), ((STRING, STRING, INT), LIST_STR)), _find_all,
                    _regex, lambda s: s[0] + 1, regex_arg=1, metered=True),
    "charAt": Func((((STRING, INT), STRING),), _char_at, _str_recv, _scalar),
    "indexOf": Func((((STRING, STRING), INT), ((STRING, STRING, INT), INT),
                     ((LIST_DYN, DYN), INT)), _list_index_of, _str_all),
    "lastIndexOf": Func((((STRING, STRING), INT), ((STRING, STRING, INT), INT),
                         ((LIST_DYN, DYN), INT)), _list_last_index_of, _str_all),
    "lowerAscii": Func((((STRING,), STRING),), _lower, _str_recv, _same_size),
    "upperAscii": Func((((STRING,), STRING),), _upper, _str_recv, _same_size),
    "replace": Func((((STRING, STRING, STRING), STRING),
                     ((STRING, STRING, STRING, INT), STRING)), _replace, _str_all,
                    lambda s: s[0] * max(1.0, s[2]) + s[2]),
    "split": Func((((STRING, STRING), LIST_STR), ((STRING, STRING, INT), LIST_STR)), _split,
                  _str_all, lambda s: s[0] + 1),
    "substring": Func((((STRING, INT), STRING), ((STRING, INT, INT), STRING)), _substring,
                      _str_recv, _same_size),
    "trim": Func((((STRING,), STRING),), _trim, _str_recv, _same_size),
    "join": Func((((LIST_STR,), STRING), ((LIST_STR, STRING), STRING)), _join,
                 _list_all, lambda s: s[0] * 64 + s[0] * (s[1] if len(s) > 1 else 0)),
    "isSorted": Func((((LIST_DYN,), BOOL),), _is_sorted, _list_recv),
    "sum": Func(tuple(((t,), t[1]) for t in _NUMERIC_LISTS), _sum, _list_recv),
    "min": Func(((((("list", DYN)),), _elem),), _min, _list_recv),
    "max": Func(((((("list", DYN)),), _elem),), _max, _list_recv),
    "slice": Func((((LIST_DYN, INT, INT), _first),), _slice, _list_recv, _same_size),
    "flatten": Func((((LIST_DYN,), LIST_DYN), ((LIST_DYN, INT), LIST_DYN)), _flatten,
                    _list_recv, None),
    "distinct": Func((((LIST_DYN,), _first),), _distinct, lambda s: 1 + s[0] * s[0],
                     _same_size),
    "reverse": Func((((LIST_DYN,), _first),), _reverse, _list_recv, _same_size),
    "sort": Func((((LIST_DYN,), _first),), _sort, _nlogn, _same_size),
    "isInteger": Func((((QUANTITY,), BOOL),), _is_integer),
    "asInteger": Func((((QUANTITY,), INT),), _as_integer),
    "asApproximateFloat": Func((((QUANTITY,), DOUBLE),), _as_float),
    "add": Func((((QUANTITY, QUANTITY), QUANTITY), ((QUANTITY, INT), QUANTITY)), _q_add),
    "sub": Func((((QUANTITY, QUANTITY), QUANTITY), ((QUANTITY, INT), QUANTITY)), _q_sub),
    "compareTo": Func((((QUANTITY, QUANTITY), INT), ((SEMVER, SEMVER), INT)), _compare_to),
    "isGreaterThan": Func((((QUANTITY, QUANTITY), BOOL), ((SEMVER, SEMVER), BOOL)), _greater),
    "isLessThan": Func((((QUANTITY, QUANTITY), BOOL), ((SEMVER, SEMVER), BOOL)), _less),
    "major": Func((((SEMVER,), INT),), _major),
    "minor": Func((((SEMVER,), INT),), _minor),
    "patch": Func((((SEMVER,), INT),), _patch),
}

# Namespaces whose dotted names are global functions (``lists.range(3)``), not field selections.
NAMESPACES: Final = frozenset({"lists", "sets", "strings"})

__all__ = [
    "BOOL",
    "BYTES",
    "DOUBLE",
    "DYN",
    "GLOBALS",
    "INT",
    "INT64_MAX",
    "MEMBERS",
    "NAMESPACES",
    "NULL",
    "QUANTITY",
    "SEMVER",
    "STRING",
    "UINT",
    "UINT64_MAX",
    "Func",
    "compile_regex",
    "format_double",
    "type_name",
]
