"""A CEL compiler for the DRA device-selector environment, built on cel-python's parser.

cel-python (``celpy``) supplies the grammar and parser; checking, cost estimation and evaluation
are done here because device selectors need things celpy's interpreter does not offer: cel-go's
static overload checks (so ``isQuantity([1])`` is a compile error, as in Kubernetes), a worst-case
cost estimate computed before running anything, a deterministic runtime cost meter that cannot be
outrun by nested comprehensions, and Kubernetes' error-absorbing ``&&``/``||`` semantics.

One recursive pass over the parse tree does all three jobs: for every node it returns the node's
static type, its worst-case cost, a bound on its size, and a Python closure that evaluates it.
Evaluating a compiled program is then just calling closures, which is also fast.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import lark
from celpy.celparser import CELParseError, CELParser
from celpy.evaluation import celbytes, celstr

from . import functions as F
from .cost import (
    LIST_CREATE,
    SCALAR,
    STRING_TRAVERSAL,
    UNKNOWN,
    Arg,
    Shape,
    estimate_call,
    factor,
    mul,
    sort_estimate,
)
from .cost import RUNTIME as RUNTIME_COST
from .quantity import Quantity
from .runtime import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    CELError,
    DeviceValue,
    DomainMap,
    Meter,
    UInt,
    cel_cmp,
    cel_eq,
    check_int,
    check_uint,
    domain_lookup,
    is_num,
    no_overload,
    str_cost,
    type_name,
)
from .semver import Semver

Type = Any
Act = dict[str, Any]
Fn = Callable[[Act, Meter], Any]
INF: Final = math.inf
DEVICE: Final = "kubernetes.DRADevice"
# The static type of an attribute value in Kubernetes' declarations: `any` (cel-go's AnyType).
# The checker lets it stand for anything, like dyn, but it is a distinct type: a selector may
# have type bool or any, and dyn (e.g. `-attr`, `dyn(true)`) is refused.
ANY: Final = "any"
WILD: Final = frozenset({F.DYN, ANY})

# Kubernetes resource/v1 limits that bound what a device can hold (used for the estimate).
DRIVER_MAX: Final = 63
DOMAIN_MAX: Final = 63
ID_MAX: Final = 32
VALUE_MAX: Final = 64
PER_DEVICE_MAX: Final = 32
MAX_NESTING: Final = 250


class CompileError(Exception):
    """The expression does not compile; the message reads like cel-go's."""


class InstantiationError(CompileError):
    """The expression type-checks but building the program fails (cel-go's planner evaluated a
    constant type conversion and it failed); Kubernetes' message is "program instantiation
    failed: <error>"."""


_ATTR_VALUE = Shape(VALUE_MAX)
_ID_MAP_ATTR = Shape(PER_DEVICE_MAX, Shape(ID_MAX), _ATTR_VALUE)
_ID_MAP_CAP = Shape(PER_DEVICE_MAX, Shape(ID_MAX), SCALAR)
_DOMAINS_ATTR = Shape(PER_DEVICE_MAX, Shape(DOMAIN_MAX), _ID_MAP_ATTR)
_DOMAINS_CAP = Shape(PER_DEVICE_MAX, Shape(DOMAIN_MAX), _ID_MAP_CAP)


@dataclass(slots=True)
class Built:
    type: Type
    cost: float
    shape: Shape
    fn: Fn
    const: bool = False  # a literal whose value fn returns without looking at anything
    # A constant of cel-go's planner (OptOptimize): a literal, a list or map literal of
    # constants, or a type conversion of a constant, which the planner evaluates once when the
    # program is built. `value` holds it.
    planned: bool = False
    value: Any = None
    map_literal: bool = False  # a map literal: cel-go holds it as a Go map keyed by CEL values


@dataclass(frozen=True)
class Program:
    """A compiled expression: its static result type, worst-case cost and evaluator."""

    expr: str
    type: Type
    estimated_cost: float
    fn: Fn

    def evaluate(self, device: DeviceValue, meter: Meter) -> Any:
        return self.fn({"device": device}, meter)


def fmt_type(t: Type) -> str:
    if isinstance(t, tuple):
        return f"{t[0]}({', '.join(fmt_type(x) for x in t[1:])})"
    return str(t)


def _assignable(param: Type, arg: Type) -> bool:
    if param in WILD or arg in WILD:
        return True
    if isinstance(param, tuple) and isinstance(arg, tuple):
        return param[0] == arg[0] and all(
            _assignable(p, a) for p, a in zip(param[1:], arg[1:], strict=True))
    return bool(param == arg)


def _is_concrete(t: Type) -> bool:
    if t in WILD:
        return False
    if isinstance(t, tuple):
        return all(_is_concrete(x) for x in t[1:])
    return True


_GO_NAMES: Final = {"int": "types.Int", "bool": "types.Bool", "string": "types.String",
                    "double": "types.Double", "uint": "types.Uint", "bytes": "types.Bytes",
                    "null_type": "types.Null", "kubernetes.Semver": "cel.Semver",
                    "kubernetes.Quantity": "cel.Quantity"}

_PARSER: CELParser | None = None


def _parser() -> CELParser:
    global _PARSER
    if _PARSER is None:
        _PARSER = CELParser()
    return _PARSER


class _Compiler:
    """One compilation: the DRA declarations in force and the scope of macro variables."""

    def __init__(self, allow_multiple_allocations: bool) -> None:
        self.allow_multi = allow_multiple_allocations
        self.scope: dict[str, tuple[Type, Shape]] = {}
        self.depth = 0

    # -- errors --------------------------------------------------------------------------------
    @staticmethod
    def err(msg: str, tok: Any = None) -> CompileError:
        line = getattr(tok, "line", None)
        col = getattr(tok, "column", None)
        where = f"<input>:{line}:{col}" if line is not None and col is not None else "<input>"
        return CompileError(f"ERROR: {where}: {msg}")

    # -- tree walking ----------------------------------------------------------------------------
    def build(self, t: Any) -> Built:
        self.depth += 1
        if self.depth > MAX_NESTING * 12:
            raise self.err("expression recursion limit exceeded")
        try:
            return self._build(t)
        finally:
            self.depth -= 1

    def _build(self, t: Any) -> Built:
        # Skip single-child wrapper levels (expr -> conditionalor -> ... -> primary) iteratively.
        while isinstance(t, lark.Tree) and len(t.children) == 1 and t.data in _WRAPPERS:
            t = t.children[0]
        data = t.data
        kids = [c for c in t.children if c is not None]
        if data == "expr":
            return self.conditional(*(self.build(k) for k in kids))
        if data in ("conditionalor", "conditionaland"):
            return self.logical(data == "conditionaland", self.build(kids[0]), self.build(kids[1]))
        if data in ("relation", "addition", "multiplication"):
            op_tree, right = kids
            op = op_tree.data.split("_", 1)[1]
            return self.binary(op, self.build(op_tree.children[0]), self.build(right), op_tree)
        if data == "unary":
            return self.unary_chain(t)
        if data == "member_dot":
            target, name = kids
            return self.select(target, name)
        if data == "member_dot_arg":
            target, name = kids[0], kids[1]
            args = list(kids[2].children) if len(kids) > 2 else []
            return self.member_call(target, name, args)
        if data == "member_index":
            return self.index(self.build(kids[0]), self.build(kids[1]), kids[0])
        if data in ("ident_arg", "dot_ident_arg"):
            name = kids[0]
            args = list(kids[1].children) if len(kids) > 1 else []
            return self.global_call(str(name), args, name)
        if data in ("ident", "dot_ident"):
            return self.ident(kids[0])
        if data == "paren_expr":
            return self.build(kids[0])
        if data == "list_lit":
            return self.list_lit([self.build(k) for k in (kids[0].children if kids else [])])
        if data == "map_lit":
            items = list(kids[0].children) if kids else []
            pairs = [(self.build(items[i]), self.build(items[i + 1]))
                     for i in range(0, len(items), 2)]
            return self.map_lit(pairs)
        if data == "literal":
            return self.literal(kids[0])
        if data == "member_object":
            raise self.err("message construction is not supported in device selectors")
        raise self.err(f"unsupported syntax: {data}")

    # -- leaves ----------------------------------------------------------------------------------
    def literal(self, tok: lark.Token) -> Built:
        kind = tok.type
        text = str(tok)
        value: Any
        typ: Type
        if kind == "INT_LIT":
            neg = text.startswith("-")
            body = text.lstrip("-")
            value = int(body, 16) if body[:2].lower() == "0x" else int(body, 10)
            value = -value if neg else value
            if not INT64_MIN <= value <= INT64_MAX:
                raise self.err(f"invalid int literal: {text}", tok)
            typ = F.INT
        elif kind == "UINT_LIT":
            body = text[:-1]
            value = int(body, 16) if body[:2].lower() == "0x" else int(body, 10)
            if not 0 <= value <= UINT64_MAX:
                raise self.err(f"invalid uint literal: {text}", tok)
            value, typ = UInt(value), F.UINT
        elif kind == "FLOAT_LIT":
            value, typ = float(text), F.DOUBLE
        elif kind in ("STRING_LIT", "MLSTRING_LIT"):
            value, typ = str(celstr(tok)), F.STRING
        elif kind == "BYTES_LIT":
            value, typ = bytes(celbytes(tok)), F.BYTES
        elif kind == "BOOL_LIT":
            value, typ = text == "true", F.BOOL
        else:
            value, typ = None, F.NULL
        shape = Shape(len(value)) if isinstance(value, (str, bytes)) else SCALAR

        def lit_fn(a: Act, m: Meter) -> Any:
            return value

        return Built(typ, 0, shape, lit_fn, const=True, planned=True, value=value)

    def ident(self, tok: lark.Token) -> Built:
        name = str(tok)
        if name in self.scope:
            typ, shape = self.scope[name]
        elif name == "device":
            typ, shape = DEVICE, SCALAR
        else:
            raise self.err(f"undeclared reference to '{name}' (in container '')", tok)

        def fn(a: Act, m: Meter) -> Any:
            m.cost += 1
            return a[name]

        return Built(typ, 1, shape, fn)

    # -- operators -------------------------------------------------------------------------------
    def conditional(self, c: Built, t: Built, f: Built) -> Built:
        if not _assignable(F.BOOL, c.type):
            raise self.err(f"found no matching overload for '_?_:_' applied to "
                           f"'({fmt_type(c.type)}, {fmt_type(t.type)}, {fmt_type(f.type)})'")
        # `_?_:_` is (bool, A, A) -> A: the branches must unify; A is the more general one.
        if not _unifies(t.type, f.type):
            raise self.err(f"found no matching overload for '_?_:_' applied to "
                           f"'({fmt_type(c.type)}, {fmt_type(t.type)}, {fmt_type(f.type)})'")
        typ = _most_general(f.type, t.type)
        cf, tf, ff = c.fn, t.fn, f.fn

        def fn(a: Act, m: Meter) -> Any:
            v = cf(a, m)
            if v is True:
                return tf(a, m)
            if v is False:
                return ff(a, m)
            raise no_overload("_?_:_", v)

        shape = Shape(max(t.shape.size, f.shape.size), t.shape.elem, t.shape.val)
        return Built(typ, c.cost + max(t.cost, f.cost), shape, fn)

    def logical(self, is_and: bool, left: Built, right: Built) -> Built:
        name = "_&&_" if is_and else "_||_"
        for side in (left, right):
            if not _assignable(F.BOOL, side.type):
                raise self.err(f"found no matching overload for '{name}' applied to "
                               f"'({fmt_type(left.type)}, {fmt_type(right.type)})'")
        lf, rf = left.fn, right.fn
        # The short-circuit value: false for &&, true for ||. Errors on one side are absorbed
        # when the other side decides the result (CEL's commutative logical operators).
        decisive = not is_and

        def fn(a: Act, m: Meter) -> Any:
            err: CELError | None = None
            try:
                lv = lf(a, m)
                if lv is decisive:
                    return decisive
                if type(lv) is not bool:
                    err = no_overload(name, lv)
            except CELError as exc:
                err = exc
            rv = rf(a, m)
            if rv is decisive:
                return decisive
            if err is not None:
                raise err
            if type(rv) is not bool:
                raise no_overload(name, rv)
            return rv

        return Built(F.BOOL, left.cost + right.cost, SCALAR, fn)

    def unary_chain(self, t: Any) -> Built:
        """A run of prefix operators, parsed the way cel-go's grammar does.

        cel-go reads `!!!x` / `---x` as one run of operators of one kind before a member and
        keeps one operator for an odd count, none for an even count (`!!x` is `x`). A `-` right
        before a number literal is the literal's sign only when it is the only one (`-5` is a
        negative literal, `--5` is 5 and `--9223372036854775808` the out-of-range literal
        9223372036854775808). A run of one kind cannot be followed by the other (`-!x` is a
        syntax error there).
        """
        kind = t.children[0].data
        count = 0
        node = t
        while True:
            while isinstance(node, lark.Tree) and len(node.children) == 1 and \
                    node.data in _WRAPPERS and node.data != "unary":
                node = node.children[0]
            if not (isinstance(node, lark.Tree) and node.data == "unary"
                    and len(node.children) == 2):
                break
            if node.children[0].data != kind:
                other = "!" if node.children[0].data == "unary_not" else "-"
                raise self.err(f"Syntax error: mismatched input '{other}'")
            count += 1
            node = node.children[1]
        lit = _signed_number(node) if kind == "unary_neg" else None
        if lit is not None:
            count += 1  # celpy gave the innermost `-` to the literal; cel-go's run takes it
            operand = self.literal(lark.Token(lit.type, str(lit)[1:], line=lit.line,
                                              column=lit.column))
        else:
            operand = self.build(node)
        return operand if count % 2 == 0 else self.unary(kind, operand)

    def unary(self, op: str, x: Built) -> Built:
        xf = x.fn
        if op == "unary_not":
            if not _assignable(F.BOOL, x.type):
                raise self.err(f"found no matching overload for '!_' applied to "
                               f"'({fmt_type(x.type)})'")

            def not_fn(a: Act, m: Meter) -> Any:
                v = xf(a, m)
                if type(v) is not bool:
                    raise no_overload("!_", v)
                return not v

            return Built(F.BOOL, x.cost + 1, SCALAR, not_fn)
        if x.type not in (F.INT, F.DOUBLE, F.DYN, ANY):
            raise self.err(f"found no matching overload for '-_' applied to "
                           f"'({fmt_type(x.type)})'")

        def neg_fn(a: Act, m: Meter) -> Any:
            v = xf(a, m)
            m.cost += 1
            if type(v) is int:
                return check_int(-v)
            if type(v) is float:
                return -v
            raise no_overload("-_", v)

        # -_ has an int and a double overload: on dyn/any both match, so the result is dyn.
        return Built(F.DYN if x.type in WILD else x.type, x.cost + 1, SCALAR, neg_fn)

    def binary(self, op: str, left: Built, right: Built, where: Any) -> Built:
        lt, rt = left.type, right.type
        lf, rf = left.fn, right.fn
        cost = left.cost + right.cost
        name = _OP_NAMES[op]

        def mismatch() -> CompileError:
            return self.err(f"found no matching overload for '{name}' applied to "
                            f"'({fmt_type(lt)}, {fmt_type(rt)})'")

        if op in ("eq", "ne"):
            if not _eq_compatible(lt, rt):
                raise mismatch()
            want = op == "eq"

            def eq_fn(a: Act, m: Meter) -> Any:
                x = lf(a, m)
                y = rf(a, m)
                m.cost += 1 + _cmp_cost(x, y)
                got = go_equal(x, y)
                if want:
                    if isinstance(got, CELError):
                        raise got
                    return got
                # cel-go's != is "Equal did not answer true": an error there makes it true.
                return got is not True

            return Built(F.BOOL, cost + _est_eq_cost(left, right), SCALAR, eq_fn)
        if op in ("lt", "le", "gt", "ge"):
            if not _ord_compatible(lt, rt):
                raise mismatch()
            test = _ORDER_TESTS[op]

            def cmp_fn(a: Act, m: Meter) -> Any:
                x = lf(a, m)
                y = rf(a, m)
                m.cost += 1 + _cmp_cost(x, y)
                c = cel_cmp(x, y, name)
                return c != 2 and test(c)

            return Built(F.BOOL, cost + _est_order_cost(left, right), SCALAR, cmp_fn)
        if op == "in":
            if isinstance(rt, tuple) and rt[0] in ("list", "map"):
                if not _eq_compatible(lt, rt[1]):
                    raise mismatch()
            elif rt not in WILD:
                raise mismatch()

            # Membership in a list is priced per element (cel-go), in a map at 1.
            if rt in WILD:
                per = max(right.shape.size, 1.0)
            else:
                per = right.shape.size if rt[0] == "list" else 1.0
            listed = isinstance(rt, tuple) and rt[0] == "list"
            if listed and right.planned and not right.value:
                # cel-go's planner turns `x in []` into the constant false: x is never looked at.
                def false_fn(a: Act, m: Meter) -> Any:
                    return False

                return Built(F.BOOL, cost + per, SCALAR, false_fn)
            if listed and right.planned and all(
                    type(e) in _HASHABLE_PRIMITIVES for e in right.value):
                # ... and `x in [<primitive constants>]` into a lookup in a Go map keyed by the
                # elements: x is hashed, and a Semver cannot be.
                elems = right.value

                def set_fn(a: Act, m: Meter) -> Any:
                    x = lf(a, m)
                    if type(x) is Semver:
                        raise CELError("internal error: runtime error: hash of unhashable type "
                                       "cel.Semver")
                    return any(go_equal(x, e) is True for e in elems)

                return Built(F.BOOL, cost + per, SCALAR, set_fn)
            literal_map = right.map_literal

            def in_fn(a: Act, m: Meter) -> Any:
                x = lf(a, m)
                c = rf(a, m)
                if isinstance(c, list):
                    m.charge(1 + len(c))
                    # cel-go's list Contains: an element equal to x; a comparison that errors
                    # (Semver against a string) just does not count.
                    return any(go_equal(x, e) is True for e in c)
                if isinstance(c, dict):
                    m.cost += 1
                    if literal_map and c and type(x) is Semver:
                        # A map literal is a Go map keyed by CEL values; a Semver cannot be hashed.
                        raise CELError("internal error: runtime error: hash of unhashable type "
                                       "cel.Semver")
                    if type(x) is bool:
                        return any(type(k) is bool and k is x for k in c)
                    try:
                        return x in c
                    except TypeError:
                        raise no_overload("@in", x, c) from None
                raise no_overload("@in", x, c)

            return Built(F.BOOL, cost + per, SCALAR, in_fn)
        # arithmetic
        typ = _arith_type(op, lt, rt)
        if typ is None:
            raise mismatch()
        arith = _ARITH[op]

        def arith_fn(a: Act, m: Meter) -> Any:
            x = lf(a, m)
            y = rf(a, m)
            return arith(x, y, m)

        # Numbers cost 1; concatenation keeps track of the result's size, a string traversal for
        # strings, 1 for lists (cel-go). A dyn result (arithmetic on attribute values) has no
        # known size.
        shape = SCALAR if typ not in WILD else UNKNOWN
        extra = 1.0
        if (op == "add" and typ in (F.STRING, F.BYTES, F.DYN, ANY)) or isinstance(typ, tuple):
            shape = Shape(left.shape.size + right.shape.size,
                          _join_shape(left.shape.elem, right.shape.elem))
            extra = 1.0 if isinstance(typ, tuple) else max(1.0, factor(shape.size,
                                                                        STRING_TRAVERSAL))
        return Built(typ, cost + extra, shape, arith_fn)

    # -- selection & indexing --------------------------------------------------------------------
    def select(self, target_tree: Any, name_tok: lark.Token) -> Built:
        target = self.build(target_tree)
        field = str(name_tok)
        tt = target.type
        tf = target.fn
        typ: Type
        if tt == DEVICE:
            if field == "driver":
                typ, shape, get = F.STRING, Shape(DRIVER_MAX), _get_driver
            elif field == "attributes":
                typ = ("map", F.STRING, ("map", F.STRING, ANY))
                shape, get = _DOMAINS_ATTR, _get_attributes
            elif field == "capacity":
                typ = ("map", F.STRING, ("map", F.STRING, F.QUANTITY))
                shape, get = _DOMAINS_CAP, _get_capacity
            elif field == "allowMultipleAllocations" and self.allow_multi:
                typ, shape, get = F.BOOL, SCALAR, _get_multi
            else:
                raise self.err(f"undefined field '{field}'", name_tok)

            def dev_fn(a: Act, m: Meter) -> Any:
                d = tf(a, m)
                m.cost += 1
                if type(d) is not DeviceValue:
                    raise CELError(f"no such key: {field}")
                return get(d)

            return Built(typ, target.cost + 1, shape, dev_fn)
        if isinstance(tt, tuple) and tt[0] == "map":
            typ = tt[2]
        elif tt in WILD:
            typ = F.DYN
        else:
            raise self.err(f"type '{fmt_type(tt)}' does not support field selection", name_tok)

        def sel_fn(a: Act, m: Meter) -> Any:
            return select_value(tf(a, m), field, m)

        # Selecting from a map costs 1; from a dyn value nothing (cel-go).
        return Built(typ, target.cost + (0 if tt in WILD else 1),
                     target.shape.v(), sel_fn)

    def index(self, target: Built, key: Built, where: Any) -> Built:
        tt, kt = target.type, key.type
        if isinstance(tt, tuple) and tt[0] == "list":
            if kt not in (F.INT, F.UINT, F.DOUBLE, F.DYN, ANY):
                raise self.err(f"found no matching overload for '_[_]' applied to "
                               f"'({fmt_type(tt)}, {fmt_type(kt)})'")
            typ, shape = tt[1], target.shape.e()
        elif isinstance(tt, tuple) and tt[0] == "map":
            if not _eq_compatible(kt, tt[1]):
                raise self.err(f"found no matching overload for '_[_]' applied to "
                               f"'({fmt_type(tt)}, {fmt_type(kt)})'")
            typ, shape = tt[2], target.shape.v()
        elif tt in WILD:
            typ, shape = F.DYN, UNKNOWN
        else:
            raise self.err(f"found no matching overload for '_[_]' applied to "
                           f"'({fmt_type(tt)}, {fmt_type(kt)})'")
        tf, kf = target.fn, key.fn

        def idx_fn(a: Act, m: Meter) -> Any:
            c = tf(a, m)
            k = kf(a, m)
            m.cost += 1
            return index_value(c, k)

        return Built(typ, target.cost + key.cost + 1, shape, idx_fn)

    # -- literals of aggregates ------------------------------------------------------------------
    def list_lit(self, items: list[Built]) -> Built:
        types = {fmt_type(i.type) for i in items if _is_concrete(i.type)}
        if len(types) > 1:
            first = fmt_type(items[0].type)
            other = next(fmt_type(i.type) for i in items if fmt_type(i.type) != first)
            raise self.err(f"expected type '{first}' but found '{other}'")
        elem = items[0].type if items and all(i.type == items[0].type for i in items) else F.DYN
        fns = [i.fn for i in items]
        elem_shape = Shape(max((i.shape.size for i in items), default=0),
                           _join_all([i.shape.elem for i in items]),
                           _join_all([i.shape.val for i in items]))

        def list_fn(a: Act, m: Meter) -> Any:
            m.cost += 10
            return [f(a, m) for f in fns]

        planned = all(i.planned for i in items)
        return Built(("list", elem), 10 + sum(i.cost for i in items),
                     Shape(len(items), elem_shape), list_fn, planned=planned,
                     value=[i.value for i in items] if planned else None)

    def map_lit(self, pairs: list[tuple[Built, Built]]) -> Built:
        for pos in (0, 1):
            types = {fmt_type(p[pos].type) for p in pairs if _is_concrete(p[pos].type)}
            if len(types) > 1:
                ordered = [fmt_type(p[pos].type) for p in pairs]
                other = next(t for t in ordered if t != ordered[0])
                raise self.err(f"expected type '{ordered[0]}' but found '{other}'")
        for k, _ in pairs:
            if k.type not in (F.STRING, F.INT, F.UINT, F.BOOL, F.DYN, ANY):
                raise self.err(f"unsupported map key type: {fmt_type(k.type)}")
        kt = pairs[0][0].type if pairs and all(p[0].type == pairs[0][0].type for p in pairs) \
            else F.DYN
        vt = pairs[0][1].type if pairs and all(p[1].type == pairs[0][1].type for p in pairs) \
            else F.DYN
        fns = [(k.fn, v.fn) for k, v in pairs]

        def map_fn(a: Act, m: Meter) -> Any:
            m.cost += 30
            out: dict[Any, Any] = {}
            for kf, vf in fns:
                k = kf(a, m)
                if type(k) not in (str, int, UInt, bool):
                    raise CELError(f"unsupported key type: {type_name(k)}")
                if k in out:
                    raise CELError(f"Failed with repeated key: {k}")
                out[k] = vf(a, m)
            return out

        shape = Shape(len(pairs), Shape(max((k.shape.size for k, _ in pairs), default=0)),
                      Shape(max((v.shape.size for _, v in pairs), default=0)))
        planned = all(k.planned and v.planned for k, v in pairs)
        value = None
        if planned:
            try:
                value = map_fn({}, Meter())
            except CELError:
                planned = False  # a repeated key: an evaluation error, left to run time
        return Built(("map", kt, vt), 30 + sum(k.cost + v.cost for k, v in pairs), shape, map_fn,
                     planned=planned, value=value, map_literal=True)

    # -- calls and macros ------------------------------------------------------------------------
    def global_call(self, name: str, arg_trees: list[Any], tok: Any) -> Built:
        if name == "has" and len(arg_trees) == 1:
            return self.has(arg_trees[0], tok)
        func = F.GLOBALS.get(name)
        if func is None:
            raise self.err(f"undeclared reference to '{name}' (in container '')", tok)
        return self.call(name, func, None, [self.build(t) for t in arg_trees], arg_trees, tok)

    def member_call(self, target_tree: Any, name_tok: lark.Token, arg_trees: list[Any]) -> Built:
        name = str(name_tok)
        target_ident = _as_ident(target_tree)
        if target_ident == "cel" and name == "bind" and "cel" not in self.scope:
            if len(arg_trees) != 3 or _as_ident(arg_trees[0]) is None:
                raise self.err("cel.bind() variable name must be a simple identifier", name_tok)
            return self.bind(str(_as_ident(arg_trees[0])), arg_trees[1], arg_trees[2])
        if target_ident in F.NAMESPACES and target_ident not in self.scope:
            qualified = f"{target_ident}.{name}"
            func = F.GLOBALS.get(qualified)
            if func is None:
                raise self.err(f"undeclared reference to '{qualified}' (in container '')",
                               name_tok)
            return self.call(qualified, func, None, [self.build(t) for t in arg_trees],
                             arg_trees, name_tok)
        if name in _MACROS and _macro_arity_ok(name, arg_trees):
            return self.comprehension(name, target_tree, arg_trees, name_tok)
        func = F.MEMBERS.get(name)
        if func is None:
            raise self.err(f"undeclared reference to '{name}' (in container '')", name_tok)
        target = self.build(target_tree)
        return self.call(name, func, target, [self.build(t) for t in arg_trees], arg_trees,
                         name_tok)

    def call(self, name: str, func: F.Func, target: Built | None, args: list[Built],
             arg_trees: list[Any], tok: Any) -> Built:
        all_args = ([target] if target is not None else []) + args
        arg_types = [b.type for b in all_args]
        results: list[Type] = []
        for params, result in func.sigs:
            if len(params) == len(arg_types) and all(
                    _assignable(p, t) for p, t in zip(params, arg_types, strict=True)):
                results.append(result(arg_types) if callable(result) else result)
        if not results:
            if target is not None:
                shown = (f"{fmt_type(target.type)}.("
                         f"{', '.join(fmt_type(b.type) for b in args)})")
            else:
                shown = f"({', '.join(fmt_type(t) for t in arg_types)})"
            raise self.err(f"found no matching overload for '{name}' applied to '{shown}'", tok)
        typ = results[0] if all(r == results[0] for r in results) else F.DYN
        if func.regex_arg is not None:
            pos = func.regex_arg
            if pos < len(all_args) and all_args[pos].const:
                pattern = all_args[pos].fn({}, Meter())
                if isinstance(pattern, str):
                    try:
                        F.compile_regex(pattern)
                    except CELError as exc:
                        raise self.err(str(exc), tok) from None
        est_args = [Arg(b.shape, b.type, b.fn({}, Meter()), True) if b.const
                    else Arg(b.shape, b.type) for b in all_args]
        call_cost, est_shape = estimate_call(name, est_args)
        cost = sum(b.cost for b in all_args) + call_cost
        if name == "dyn":
            shape = all_args[0].shape
        elif est_shape is not None:
            shape = est_shape
        else:
            shape = _shape_of_type(typ)
        impl = func.impl
        fns = [b.fn for b in all_args]
        rt_cost = RUNTIME_COST.get(name)
        metered = func.metered
        if target is None and name in _CONVERSIONS and len(args) == 1 and args[0].planned \
                and not metered:
            # cel-go's planner (OptOptimize, as Kubernetes builds programs) evaluates a type
            # conversion of a constant once, when the program is built; if that fails, so does
            # building the program: bool("x.y.z") never reaches a device.
            try:
                folded = impl(args[0].value)
            except CELError as exc:
                raise InstantiationError(f"program instantiation failed: {exc}") from None

            def folded_fn(a: Act, m: Meter) -> Any:
                return folded

            return Built(typ, cost, shape, folded_fn, planned=True, value=folded)

        if rt_cost is None and not metered and len(fns) == 1:
            f0 = fns[0]

            def call1(a: Act, m: Meter) -> Any:
                v = f0(a, m)
                m.cost += 1
                return impl(v)

            return Built(typ, cost, shape, call1)

        def call_fn(a: Act, m: Meter) -> Any:
            vals = [f(a, m) for f in fns]
            m.charge(1 if rt_cost is None else rt_cost(vals))
            if metered:
                return impl(m, *vals)
            return impl(*vals)

        return Built(typ, cost, shape, call_fn)

    def has(self, arg_tree: Any, tok: Any) -> Built:
        inner = arg_tree
        while isinstance(inner, lark.Tree) and len(inner.children) == 1 and \
                inner.data in _WRAPPERS:
            inner = inner.children[0]
        if not (isinstance(inner, lark.Tree) and inner.data == "member_dot"):
            raise self.err("invalid argument to has() macro", tok)
        target = self.build(inner.children[0])
        field = str(inner.children[1])
        if target.type == DEVICE:
            if field not in ("driver", "attributes", "capacity") and not (
                    field == "allowMultipleAllocations" and self.allow_multi):
                raise self.err(f"undefined field '{field}'", inner.children[1])
        elif not (target.type in WILD or (isinstance(target.type, tuple)
                  and target.type[0] == "map")):
            raise self.err(f"type '{fmt_type(target.type)}' does not support field selection",
                           inner.children[1])
        tf = target.fn

        def has_fn(a: Act, m: Meter) -> Any:
            v = tf(a, m)
            m.cost += 1
            if isinstance(v, dict):
                return field in v
            if type(v) is DeviceValue:
                # Kubernetes builds the device as a map with every field set, so a presence
                # test on one of its fields is always true (even an empty driver or false flag).
                return True
            raise no_overload("has", v)

        # A presence test costs its operand only (Kubernetes' estimator).
        return Built(F.BOOL, target.cost, SCALAR, has_fn)

    def bind(self, var: str, init_tree: Any, body_tree: Any) -> Built:
        init = self.build(init_tree)
        saved = self.scope.get(var)
        self.scope[var] = (init.type, init.shape)
        try:
            body = self.build(body_tree)
        finally:
            if saved is None:
                del self.scope[var]
            else:
                self.scope[var] = saved
        inf_, bf = init.fn, body.fn

        def bind_fn(a: Act, m: Meter) -> Any:
            v = inf_(a, m)
            old = a.get(var, _MISSING)
            a[var] = v
            try:
                return bf(a, m)
            finally:
                if old is _MISSING:
                    del a[var]
                else:
                    a[var] = old

        # cel-go prices a bind as its expansion: an empty range list, the init and the body.
        return Built(body.type, LIST_CREATE + init.cost + body.cost, body.shape, bind_fn)

    def comprehension(self, name: str, target_tree: Any, arg_trees: list[Any],
                      tok: Any) -> Built:
        rng = self.build(target_tree)
        rt = rng.type
        two_var = name in ("transformList", "transformMap") or (
            name in ("all", "exists", "exists_one", "existsOne") and len(arg_trees) == 3)
        vars_ = [str(_as_ident(t)) for t in arg_trees[: 2 if two_var else 1]]
        bodies = arg_trees[len(vars_):]
        if isinstance(rt, tuple) and rt[0] == "list":
            types = [F.INT, rt[1]] if two_var else [rt[1]]
            shapes = [SCALAR, rng.shape.e()] if two_var else [rng.shape.e()]
        elif isinstance(rt, tuple) and rt[0] == "map":
            types = [rt[1], rt[2]] if two_var else [rt[1]]
            shapes = [rng.shape.e(), rng.shape.v()] if two_var else [rng.shape.e()]
        elif rt in WILD:
            types = [F.DYN] * len(vars_)
            shapes = [UNKNOWN] * len(vars_)
        else:
            raise self.err(f"expression of type '{fmt_type(rt)}' cannot be range of a "
                           "comprehension (must be list, map, or dynamic)", tok)
        saved = {v: self.scope.get(v) for v in vars_}
        for v, t, s in zip(vars_, types, shapes, strict=True):
            self.scope[v] = (t, s)
        try:
            built = [self.build(b) for b in bodies]
        finally:
            for v, old in saved.items():
                if old is None:
                    self.scope.pop(v, None)
                else:
                    self.scope[v] = old
        return _make_comprehension(self, name, rng, vars_, built, tok)


_MISSING: Final = object()
# cel-go's standard type conversions (overloads.IsTypeConversionFunction) that we provide.
_CONVERSIONS: Final = frozenset({"bool", "bytes", "double", "dyn", "int", "string", "uint"})
# The element types cel-go's set-membership optimisation accepts (primitives except bytes).
_HASHABLE_PRIMITIVES: Final = frozenset({bool, int, UInt, float, str})
# (fixed, per-element) cost of each macro's expansion besides its bodies, as cel-go estimates it.
_MACRO_COST: Final[dict[str, tuple[float, float]]] = {
    "all": (1, 3), "exists": (1, 4), "exists_one": (2, 2), "existsOne": (2, 2),
    "map": (11, 12), "transformList": (11, 12), "filter": (11, 13), "sortBy": (11, 12),
    "transformMap": (31, 3)}
_WRAPPERS: Final = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition",
                              "multiplication", "unary", "member", "primary"})
_DEVICE_FIELDS: Final = {"driver": "driver", "attributes": "attributes", "capacity": "capacity",
                         "allowMultipleAllocations": "allow_multiple_allocations"}
_MACROS: Final = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter",
                            "sortBy", "transformList", "transformMap"})
_OP_NAMES: Final = {"eq": "_==_", "ne": "_!=_", "lt": "_<_", "le": "_<=_", "gt": "_>_",
                    "ge": "_>=_", "in": "@in", "add": "_+_", "sub": "_-_", "mul": "_*_",
                    "div": "_/_", "mod": "_%_"}
_ORDER_TESTS: Final[dict[str, Callable[[int], bool]]] = {
    "lt": lambda c: c < 0, "le": lambda c: c <= 0, "gt": lambda c: c > 0, "ge": lambda c: c >= 0}


def _signed_number(t: Any) -> lark.Token | None:
    """The token of a number literal written with a leading `-` (celpy's signed literal)."""
    while isinstance(t, lark.Tree) and len(t.children) == 1 and t.data in _WRAPPERS:
        t = t.children[0]
    if isinstance(t, lark.Tree) and t.data == "literal":
        tok = t.children[0]
        if isinstance(tok, lark.Token) and tok.type in ("INT_LIT", "UINT_LIT", "FLOAT_LIT") \
                and str(tok).startswith("-"):
            return tok
    return None


def _as_ident(t: Any) -> str | None:
    while isinstance(t, lark.Tree) and len(t.children) == 1 and t.data in _WRAPPERS:
        t = t.children[0]
    if isinstance(t, lark.Tree) and t.data == "ident":
        return str(t.children[0])
    return None


def _macro_arity_ok(name: str, args: list[Any]) -> bool:
    n = len(args)
    if name in ("all", "exists", "exists_one", "existsOne"):
        return (n == 2 and _as_ident(args[0]) is not None) or (
            n == 3 and _as_ident(args[0]) is not None and _as_ident(args[1]) is not None)
    if name == "map":
        return n in (2, 3) and _as_ident(args[0]) is not None
    if name in ("filter", "sortBy"):
        return n == 2 and _as_ident(args[0]) is not None
    if name in ("transformList", "transformMap"):
        return n in (3, 4) and _as_ident(args[0]) is not None and _as_ident(args[1]) is not None
    return False


def go_equal(a: Any, b: Any) -> bool | CELError:
    """cel-go's ``types.Equal(a, b)``: the answer, or the error it returns (not raised).

    Null equals only null. Otherwise the left value decides: a Semver or Quantity answers
    "no such overload" for anything but its own type, while every other type answers false
    for a different type (numbers compare across int/uint/double). Lists and maps compare
    element-wise and only a false element makes them unequal (an error element does not).
    """
    if a is None or b is None:
        return a is None and b is None
    ta = type(a)
    if ta is Semver or ta is Quantity:
        if type(b) is not ta:
            return no_overload("_==_", a, b)
        return bool(a == b)
    if ta is list:
        if type(b) is not list or len(a) != len(b):
            return False
        return all(go_equal(x, y) is not False for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        for k, v in a.items():
            other = b.get(k, _MISSING) if type(k) is not bool else next(
                (val for key, val in b.items() if type(key) is bool and key is k), _MISSING)
            if other is _MISSING or go_equal(v, other) is False:
                return False
        return True
    if type(b) is Semver or type(b) is Quantity:
        return False
    return cel_eq(a, b)


def _get_driver(d: DeviceValue) -> Any:
    return d.driver


def _get_attributes(d: DeviceValue) -> Any:
    return d.attributes


def _get_capacity(d: DeviceValue) -> Any:
    return d.capacity


def _get_multi(d: DeviceValue) -> Any:
    return d.allow_multiple_allocations


def select_value(v: Any, field: str, m: Meter) -> Any:
    m.cost += 1
    if type(v) is DomainMap:
        return domain_lookup(v, field)
    if isinstance(v, dict):
        if field in v:
            return v[field]
        raise CELError(f"no such key: {field}")
    if type(v) is DeviceValue and field in _DEVICE_FIELDS:
        return getattr(v, _DEVICE_FIELDS[field])
    raise CELError(f"type '{type_name(v)}' does not support field selection")


def index_value(c: Any, k: Any) -> Any:
    if isinstance(c, list):
        if type(k) is float:
            if not k.is_integer():
                raise CELError("unsupported index value")
            k = int(k)
        if type(k) not in (int, UInt):
            raise no_overload("_[_]", c, k)
        if k < 0 or k >= len(c):
            raise CELError(f"index out of range: {int(k)}")
        return c[int(k)]
    if type(c) is DomainMap:
        return domain_lookup(c, k)
    if isinstance(c, dict):
        if type(k) is bool:
            for key, val in c.items():
                if type(key) is bool and key is k:
                    return val
        elif type(k) in (str, int, UInt, float):
            got = c.get(k, _MISSING)
            if got is not _MISSING:
                return got
        raise CELError(f"no such key: {k}")
    raise no_overload("_[_]", c, k)


def _shape_of_type(t: Type) -> Shape:
    """Without a library estimate, only scalars have a known size (cel-go's isScalar)."""
    return SCALAR if t in (F.BOOL, F.INT, F.UINT, F.DOUBLE, F.NULL) else UNKNOWN


def _unifies(a: Type, b: Type) -> bool:
    """Whether one type parameter can stand for both: equal, up to dyn/any anywhere inside."""
    if a in WILD or b in WILD:
        return True
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[0] == b[0] and len(a) == len(b) and all(
            _unifies(x, y) for x, y in zip(a[1:], b[1:], strict=True))
    return bool(a == b)


def _less_specific(a: Type, b: Type) -> bool:
    """cel-go's isEqualOrLessSpecific: a is dyn/any, or a and b agree with a no more precise."""
    if a in WILD:
        return True
    if b in WILD:
        return False
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[0] == b[0] and len(a) == len(b) and all(
            _less_specific(x, y) for x, y in zip(a[1:], b[1:], strict=True))
    return bool(a == b)


def _most_general(new: Type, bound: Type) -> Type:
    """The type a type parameter keeps when `new` meets its binding `bound` (mostGeneral)."""
    return new if _less_specific(new, bound) else bound


def _eq_compatible(a: Type, b: Type) -> bool:
    """Whether `_==_`/`_!=_`/`@in`/a map key, all (A, A), accept these two types.

    There are no cross-type overloads (1 == 1u does not check); dyn and any match anything;
    null only what cel-go's checker lets be null (itself, dyn/any and opaque types).
    """
    if a == F.NULL or b == F.NULL:
        other = b if a == F.NULL else a
        return other in (F.NULL, *WILD, F.QUANTITY, F.SEMVER, DEVICE)
    return _unifies(a, b)


def _ord_compatible(a: Type, b: Type) -> bool:
    # Kubernetes adds cross-type numeric overloads for < <= > >= (not ==). With dyn/any on one
    # side, some overload must still take the other side's type.
    numeric = (F.INT, F.UINT, F.DOUBLE)
    orderable = (*numeric, F.STRING, F.BYTES, F.BOOL)
    if a in WILD or b in WILD:
        # null passes as a timestamp or duration (legacy nullable types), which have `<` too.
        return (b if a in WILD else a) in (*orderable, F.DYN, ANY, F.NULL)
    if a == b == F.NULL:
        return True
    if a in numeric and b in numeric:
        return True
    return a == b and a in (F.STRING, F.BYTES, F.BOOL)


def _est_eq_cost(left: Built, right: Built) -> float:
    """``==``/``!=``: 0.1 per character of the smaller operand; Quantity and Semver at 1."""
    if left.type == right.type and left.type in (F.QUANTITY, F.SEMVER):
        return 1.0
    return factor(min(left.shape.size, right.shape.size), STRING_TRAVERSAL)


def _est_order_cost(left: Built, right: Built) -> float:
    """``<``-family: strings and bytes like ``==``, everything else 1."""
    textual = (F.STRING, F.BYTES, F.DYN, ANY)
    if left.type in textual and right.type in textual:
        return max(1.0, factor(min(left.shape.size, right.shape.size), STRING_TRAVERSAL))
    return 1.0


def _cmp_cost(x: Any, y: Any) -> int:
    tx = type(x)
    if tx is str or tx is bytes:
        return str_cost(min(len(x), len(y) if isinstance(y, (str, bytes)) else len(x)))
    if tx is list or tx is dict:
        return min(len(x), len(y) if isinstance(y, (str, bytes, list, dict)) else 1)
    return 0


def _join_shape(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None:
        return a if b is None else b
    return Shape(max(a.size, b.size), _join_shape(a.elem, b.elem), _join_shape(a.val, b.val))


def _join_all(shapes: list[Shape | None]) -> Shape | None:
    out: Shape | None = None
    for s in shapes:
        out = _join_shape(out, s)
    return out


def _arith_type(op: str, lt: Type, rt: Type) -> Type | None:
    numeric = (F.INT, F.UINT, F.DOUBLE)
    if lt in WILD or rt in WILD:
        known = rt if lt in WILD else lt
        if known in WILD:
            return F.DYN
        if known in numeric or (op == "add" and (known in (F.STRING, F.BYTES)
                                                or (isinstance(known, tuple)
                                                and known[0] == "list"))):
            return known
        return None
    if lt in numeric and lt == rt:
        return None if op == "mod" and lt == F.DOUBLE else lt
    if op == "add" and lt == rt and lt in (F.STRING, F.BYTES):
        return lt
    if op == "add" and isinstance(lt, tuple) and isinstance(rt, tuple) and lt[0] == rt[0] \
            == "list":
        # (list(A), list(A)) -> list(A): the element types must unify.
        return ("list", _most_general(rt[1], lt[1])) if _unifies(lt[1], rt[1]) else None
    return None


def _go_div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _arith_add(x: Any, y: Any, m: Meter) -> Any:
    tx, ty = type(x), type(y)
    if tx is ty:
        if tx is int:
            m.cost += 1
            return check_int(x + y)
        if tx is UInt:
            m.cost += 1
            return check_uint(x + y)
        if tx is float:
            m.cost += 1
            return x + y
        if tx is str or tx is bytes:
            m.charge(1 + str_cost(len(x) + len(y)))
            return x + y
        if tx is list:
            m.charge(1 + len(x) + len(y))
            return x + y
    raise no_overload("_+_", x, y)


def _arith_num(op: str) -> Callable[[Any, Any, Meter], Any]:
    def fn(x: Any, y: Any, m: Meter) -> Any:
        m.cost += 1
        tx, ty = type(x), type(y)
        if tx is not ty or tx not in (int, UInt, float):
            raise no_overload(_OP_NAMES[op], x, y)
        if tx is float:
            if op == "sub":
                return x - y
            if op == "mul":
                return x * y
            if op == "div":
                if y == 0:
                    return math.copysign(math.inf, x) * math.copysign(1, y) if x else math.nan
                return x / y
            raise no_overload(_OP_NAMES[op], x, y)
        check = check_int if tx is int else check_uint
        if op == "sub":
            return check(x - y)
        if op == "mul":
            return check(x * y)
        if y == 0:
            raise CELError("division by zero" if op == "div" else "modulus by zero")
        q = _go_div(int(x), int(y))
        if op == "div":
            return check(q)
        if tx is int and x == INT64_MIN and y == -1:
            raise CELError("integer overflow")  # Go's math/overflow check, as cel-go does
        return check(int(x) - int(y) * q)

    return fn


_ARITH: Final[dict[str, Callable[[Any, Any, Meter], Any]]] = {
    "add": _arith_add, "sub": _arith_num("sub"), "mul": _arith_num("mul"),
    "div": _arith_num("div"), "mod": _arith_num("mod")}


def _make_comprehension(comp: _Compiler, name: str, rng: Built, vars_: list[str],
                        bodies: list[Built], tok: Any) -> Built:
    """Build a macro: all/exists/exists_one/map/filter/sortBy and the two-variable forms."""
    rf = rng.fn
    n = rng.shape.size
    body_cost = sum(b.cost for b in bodies)
    # cel-go prices the macro's expansion: accumulator init and result once, loop condition and
    # step per element (e.g. all: `@not_strictly_false(@r)` 2 + `@r && p` 1 + p).
    fixed, per = _MACRO_COST[name]
    est = rng.cost + fixed + mul(n, per + body_cost)
    bfs = [b.fn for b in bodies]
    two = len(vars_) == 2
    v1 = vars_[0]
    v2 = vars_[1] if two else ""

    if name in ("all", "exists", "exists_one", "existsOne", "filter") or (
            name == "map" and len(bodies) == 2) or (
            name in ("transformList", "transformMap") and len(bodies) == 2):
        pred = bodies[0]
        if not _assignable(F.BOOL, pred.type):
            raise comp.err(f"found no matching overload for '{name}' predicate of type "
                           f"'{fmt_type(pred.type)}'", tok)

    def pairs(c: Any) -> list[tuple[Any, Any]]:
        if isinstance(c, list):
            return list(enumerate(c)) if two else [(e, None) for e in c]
        if isinstance(c, dict):
            return list(c.items()) if two else [(k, None) for k in c]
        go = _GO_NAMES.get(type_name(c), type_name(c))
        raise CELError(f"got '{go}', expected iterable type")

    def run(a: Act, m: Meter, step: Callable[[Act, Meter, list[tuple[Any, Any]]], Any]) -> Any:
        items = pairs(rf(a, m))
        saved = (a.get(v1, _MISSING), a.get(v2, _MISSING) if two else _MISSING)
        try:
            return step(a, m, items)
        finally:
            for var, old in ((v1, saved[0]), (v2, saved[1])):
                if not var:
                    continue
                if old is _MISSING:
                    a.pop(var, None)
                else:
                    a[var] = old

    f0 = bfs[0]
    f1 = bfs[1] if len(bfs) > 1 else None

    def bind_vars(a: Act, item: tuple[Any, Any]) -> None:
        a[v1] = item[0]
        if two:
            a[v2] = item[1]

    if name in ("all", "exists"):
        decisive = name == "exists"

        def quant_step(a: Act, m: Meter, items: list[tuple[Any, Any]]) -> Any:
            err: CELError | None = None
            for item in items:
                m.charge(1)
                bind_vars(a, item)
                try:
                    v = f0(a, m)
                except CELError as exc:
                    err = err or exc
                    continue
                if v is decisive:
                    return decisive
                if type(v) is not bool:
                    err = err or no_overload(name, v)
            if err is not None:
                raise err
            return not decisive

        return Built(F.BOOL, est, SCALAR, lambda a, m: run(a, m, quant_step))
    if name in ("exists_one", "existsOne"):

        def one_step(a: Act, m: Meter, items: list[tuple[Any, Any]]) -> Any:
            count = 0
            for item in items:
                m.charge(1)
                bind_vars(a, item)
                v = f0(a, m)
                if v is True:
                    count += 1
                elif v is not False:
                    raise no_overload(name, v)
            return count == 1

        return Built(F.BOOL, est, SCALAR, lambda a, m: run(a, m, one_step))
    if name == "filter":

        def filter_step(a: Act, m: Meter, items: list[tuple[Any, Any]]) -> Any:
            out = []
            for item in items:
                m.charge(1)
                bind_vars(a, item)
                v = f0(a, m)
                if type(v) is not bool:
                    raise no_overload("filter", v)
                if v:
                    out.append(item[0])
            return out

        elem_t = rng.type[1] if isinstance(rng.type, tuple) else F.DYN
        return Built(("list", elem_t), est, Shape(n, rng.shape.e()),
                     lambda a, m: run(a, m, filter_step))
    if name in ("map", "transformList"):
        transform = bodies[-1]

        def map_step(a: Act, m: Meter, items: list[tuple[Any, Any]]) -> Any:
            out = []
            for item in items:
                m.charge(1)
                bind_vars(a, item)
                if f1 is not None:
                    keep = f0(a, m)
                    if type(keep) is not bool:
                        raise no_overload(name, keep)
                    if not keep:
                        continue
                out.append(bfs[-1](a, m))
            return out

        return Built(("list", transform.type), est, Shape(n, transform.shape),
                     lambda a, m: run(a, m, map_step))
    if name == "transformMap":
        transform = bodies[-1]

        def tmap_step(a: Act, m: Meter, items: list[tuple[Any, Any]]) -> Any:
            out: dict[Any, Any] = {}
            for item in items:
                m.charge(1)
                bind_vars(a, item)
                if f1 is not None:
                    keep = f0(a, m)
                    if type(keep) is not bool:
                        raise no_overload(name, keep)
                    if not keep:
                        continue
                out[item[0]] = bfs[-1](a, m)
            return out

        kt = rng.type[1] if isinstance(rng.type, tuple) and rng.type[0] == "map" else F.INT
        return Built(("map", kt, transform.type), est, Shape(n, rng.shape.e(), transform.shape),
                     lambda a, m: run(a, m, tmap_step))
    # sortBy: order the range by a key expression (ext.Lists).

    def sort_step(a: Act, m: Meter, items: list[tuple[Any, Any]]) -> Any:
        keyed: list[tuple[Any, Any]] = []
        for item in items:
            m.charge(1)
            bind_vars(a, item)
            keyed.append((f0(a, m), item[0]))
        kinds = {type(k) for k, _ in keyed}
        if len(kinds) > 1 or (kinds and next(iter(kinds)) not in (int, UInt, float, str, bool,
                                                                   bytes)):
            raise CELError("sortBy keys must have the same comparable type")
        m.charge(len(keyed) * max(1, math.ceil(math.log2(len(keyed) or 1))))
        def by_key(p: tuple[Any, Any], q: tuple[Any, Any]) -> int:
            return cel_cmp(p[0], q[0], "sortBy")

        keyed.sort(key=functools.cmp_to_key(by_key))
        return [v for _, v in keyed]

    keys_t = bodies[0].type
    sort_cost, _ = sort_estimate(rng.shape, keys_t)
    return Built(rng.type, est + sort_cost, rng.shape, lambda a, m: run(a, m, sort_step))


def compile_expr(expr: str, *, allow_multiple_allocations: bool = True) -> Program:
    """Parse and check ``expr`` in the DRA environment; raise CompileError on any problem."""
    try:
        tree = _parser().parse(expr)
    except CELParseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid syntax"
        line = getattr(exc, "line", None)
        col = getattr(exc, "column", None)
        where = f"<input>:{line}:{col}" if line is not None and col is not None else "<input>"
        raise CompileError(f"ERROR: {where}: Syntax error: {first}") from None
    except (lark.exceptions.LarkError, RecursionError, ValueError) as exc:
        raise CompileError(f"ERROR: <input>: Syntax error: {type(exc).__name__}") from None
    comp = _Compiler(allow_multiple_allocations)
    try:
        built = comp.build(tree)
    except RecursionError:
        raise CompileError("ERROR: <input>: expression recursion limit exceeded") from None
    return Program(expr, built.type, built.cost, built.fn)


__all__ = [
    "CompileError",
    "InstantiationError",
    "Program",
    "compile_expr",
    "fmt_type",
    "index_value",
    "select_value",
]

# Referenced for type checkers: values the evaluator can produce.
_VALUE_TYPES: Final[tuple[Any, ...]] = (bool, int, UInt, float, str, bytes, list, dict,
                                         Quantity, Semver, DeviceValue, type(None), is_num)
