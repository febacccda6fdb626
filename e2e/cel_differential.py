"""Differential check: Modelplane's CEL engine against Kubernetes' own DRA CEL (the oracle).

The oracle (e2e/cel-oracle, Go, built from k8s.io/dynamic-resource-allocation v0.35.4) compiles
and evaluates selectors exactly as the API server and the scheduler do. This script runs the
same inputs through ``modelplane.cel.evaluate`` and through the oracle and compares outcome
*classes* (error message text is allowed to differ):

    too_long | compile_error | too_complex | device_error | runtime_error | match(true/false)
    | value (library expressions of any type, compared by type and value)

Inputs: (a) every case of ../shared/conformance/cel-cases.yaml (read in place, never copied),
and (b) a seeded random generator over the selector grammar that matters (attribute and
capacity lookups across domains, missing domains and ids, comparisons, quantity/semver,
strings, ``in``, ``has``, macros, bindings, type errors, non-bool results).

Every difference is printed with the expression, the device and both answers. A difference
that matches an entry of e2e/cel-known-differences.yaml is counted as known; any other makes
the exit status 1. Conformance cases newer than the oracle (``k8s_min`` > 1.35) are a version
difference by definition: reported and counted apart, never failing.

Usage: python e2e/cel_differential.py --oracle PATH [--seed N] [--expressions N] [--devices N]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from modelplane.cel import evaluate
from modelplane.cel.cli import to_json
from modelplane.cel.engine import CompileError, compile_expr
from modelplane.cel.quantity import Quantity, QuantityError, parse_quantity
from modelplane.cel.runtime import UInt
from modelplane.cel.semver import Semver

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CASES_FILE = REPO / ".." / "shared" / "conformance" / "cel-cases.yaml"
KNOWN_FILE = HERE / "cel-known-differences.yaml"
ORACLE_K8S = (1, 35)  # k8s.io/dynamic-resource-allocation v0.35.4
T = TypeVar("T")

# --------------------------------------------------------------------------------- inputs


@dataclass
class Case:
    """One input: an expression, a device, and how to evaluate it."""

    origin: str  # "conformance" | "generated"
    name: str
    expr: str
    device: dict[str, Any] | None = None
    mode: str = "match"  # "match" (a selector) | "value" (any result type, empty device)
    env: str = "StoredExpressions"
    features: dict[str, bool] = field(default_factory=dict)
    k8s_min: str | None = None
    upstream: dict[str, Any] | None = None  # the table's expectation (conformance only)

    def request(self, ident: int) -> dict[str, Any]:
        return {"id": ident, "expr": self.expr, "mode": self.mode, "env": self.env,
                "features": self.features, "device": self.device}


def _version(s: str) -> tuple[int, int]:
    major, minor = s.split("-")[0].split(".")[:2]
    return int(major), int(minor)


def _conformance_device(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The table's device in ResourceSlice spelling, generated inputs expanded."""
    spec = dict(spec or {})
    dev: dict[str, Any] = {"driver": spec.get("driver", "")}
    if "allowMultipleAllocations" in spec:
        dev["allowMultipleAllocations"] = spec["allowMultipleAllocations"]
    attrs: dict[str, Any] = {}
    for name, value in (spec.get("attributes") or {}).items():
        value = dict(value)
        gen = value.pop("strings_generated", None)
        if gen:
            value["strings"] = [gen["format"] % i for i in range(gen["count"])]
        attrs[name] = value
    gen = spec.get("attributes_generated")
    if gen:
        for i in range(gen["count"]):
            suffix = gen["suffix_format"] % i
            ident = gen["id_fill"] * (gen["id_length"] - len(suffix)) + suffix
            attrs[f"{gen['domain']}/{ident}"] = dict(gen["value"])
    if attrs:
        dev["attributes"] = attrs
    if spec.get("capacity"):
        dev["capacity"] = spec["capacity"]
    return dev


def conformance_cases(path: Path) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for raw in data["cases"]:
        is_dra = raw["source"].startswith("compile_test.go")
        out.append(Case(
            origin="conformance",
            name=f"{raw['source']}/{raw['name']}",
            expr=raw["expr"],
            device=_conformance_device(raw.get("device")) if is_dra else None,
            mode="match" if is_dra else "value",
            env=raw.get("env", "StoredExpressions"),
            features=dict(raw.get("features") or {}),
            k8s_min=raw["k8s_min"],
            upstream=raw,
        ))
    return out


# ------------------------------------------------------------------------------- generator

DOMAINS = ["gpu.nvidia.com", "dra.example.com", "example.com", "resource.kubernetes.io"]
MISSING_DOMAINS = ["missing.example.org", "", "GPU.NVIDIA.COM"]
ATTR_IDS = ["model", "memory", "index", "cc", "uuid", "healthy", "zone", "driverVersion",
            "count", "name"]
CAP_IDS = ["memory", "cores", "bandwidth", "slots"]
INTS = [0, 1, -1, 2, 7, 42, 80, 1024, 2**31, 2**53 + 1, 2**63 - 1, -(2**63)]
STRINGS = ["", "L4", "H100", "a100", "gpu-0", "fish", "x.y.z", "1.2.3", "v1.2.3", "10Gi",
           " spaced ", "Ünïcödé", "a\\b", "nvidia.com"]
VERSIONS = ["1.0.0", "0.0.1", "8.9.0", "12.4.1-rc.1", "1.2.3+build.5", "2.0.0-alpha",
            "1.10.0", "2.0.0-alpha.1", "0.0.0"]
QUANTITIES = ["80Gi", "40G", "1", "0", "1000m", "0.5", "1.5Ti", "100k", "2e3", "1E6", "12Mi",
              "5n", "-1", "999999999999999999999", "0.1", "3.3333", "1Ki", "1M",
              "9223372036854775807", "1Ei", "0.000000001", "7"]
BAD_QUANTITIES = ["10Mo", "1.5.5", "", "Gi", "1 Gi", "10Mm", "+", "0x10"]
BAD_VERSIONS = ["v1.0", "1.0", "01.2.3", "1.2.3.4", "", "latest"]
REGEXES = ["^H", "100$", "[0-9]+", "^(a|b).*", "fish", ".*", "^$", "(?i)l4", "[", "a{2,}"]


class Gen:
    """Seeded generator of devices and selector expressions (a small typed grammar)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def pick(self, xs: Sequence[T]) -> T:
        return self.r.choice(xs)

    # -- devices
    def device(self) -> dict[str, Any]:
        r = self.r
        driver = self.pick(["gpu.nvidia.com", "gpu.nvidia.com", "dra.example.com", ""])
        dev: dict[str, Any] = {"driver": driver}
        if r.random() < 0.5:
            dev["allowMultipleAllocations"] = r.random() < 0.5
        attrs: dict[str, Any] = {}
        seen: set[tuple[str, str]] = set()  # "id" and "<driver>/id" name the same attribute

        def fresh(name: str) -> bool:
            domain, _, ident = name.rpartition("/")
            key = (domain if "/" in name else driver, ident)
            if key in seen:
                return False
            seen.add(key)
            return True

        for _ in range(r.randint(0, 9)):
            ident = self.pick(ATTR_IDS)
            name = ident if r.random() < 0.5 else f"{self.pick(DOMAINS)}/{ident}"
            if not fresh(name):
                continue
            kind = self.pick(["int", "int", "bool", "string", "string", "version"])
            value: Any = {"int": lambda: self.int_value(), "bool": lambda: r.random() < 0.5,
                          "string": lambda: self.pick(STRINGS),
                          "version": lambda: self.pick(VERSIONS)}[kind]()
            attrs[name] = {kind: value}
        if attrs:
            dev["attributes"] = attrs
        cap: dict[str, Any] = {}
        seen.clear()
        for _ in range(r.randint(0, 4)):
            ident = self.pick(CAP_IDS)
            name = ident if r.random() < 0.6 else f"{self.pick(DOMAINS)}/{ident}"
            if not fresh(name):
                continue
            cap[name] = {"value": self.pick(QUANTITIES)}
        if cap:
            dev["capacity"] = cap
        return dev

    def int_value(self) -> int:
        return int(self.pick(INTS) if self.r.random() < 0.7 else self.r.randint(-100, 100))

    # -- leaves
    def domain(self) -> str:
        return str(self.pick(DOMAINS * 4 + MISSING_DOMAINS))

    def attr(self) -> str:
        d, i = self.domain(), self.pick([*ATTR_IDS, "missing"])
        if self.r.random() < 0.7:
            return f'device.attributes["{d}"].{i}'
        return f'device.attributes["{d}"]["{i}"]'

    def cap(self) -> str:
        d, i = self.domain(), self.pick([*CAP_IDS, "missing"])
        if self.r.random() < 0.7:
            return f'device.capacity["{d}"].{i}'
        return f'device.capacity["{d}"]["{i}"]'

    def str_lit(self) -> str:
        return json.dumps(self.pick(STRINGS), ensure_ascii=False)

    def literal(self) -> str:
        r = self.r.random()
        if r < 0.35:
            return str(self.int_value())
        if r < 0.65:
            return self.str_lit()
        if r < 0.75:
            return self.pick(["true", "false"])
        if r < 0.85:
            return self.pick(["1.5", "0.0", "-2.5", "1e3", "80.0"])
        if r < 0.9:
            return self.pick(["1u", "0u", "42u"])
        if r < 0.95:
            return self.semver_lit()
        return "null"

    def quantity_lit(self) -> str:
        pool = QUANTITIES if self.r.random() < 0.9 else BAD_QUANTITIES
        return f'quantity("{self.pick(pool)}")'

    def semver_lit(self) -> str:
        if self.r.random() < 0.15:
            return f'semver("{self.pick(BAD_VERSIONS + VERSIONS)}", true)'
        pool = VERSIONS if self.r.random() < 0.9 else BAD_VERSIONS
        return f'semver("{self.pick(pool)}")'

    # -- typed expressions
    def q(self, depth: int) -> str:
        r = self.r.random()
        if depth <= 0 or r < 0.45:
            return self.cap()
        if r < 0.7:
            return self.quantity_lit()
        op = self.pick(["add", "sub"])
        arg = self.q(depth - 1) if self.r.random() < 0.5 else str(self.int_value())
        return f"{self.q(depth - 1)}.{op}({arg})"

    def v(self, depth: int) -> str:
        return self.attr() if self.r.random() < 0.5 else self.semver_lit()

    def s(self, depth: int) -> str:
        r = self.r.random()
        if depth <= 0 or r < 0.3:
            return self.pick(["device.driver", self.attr(), self.str_lit()])
        if r < 0.45:
            return self.attr()
        if r < 0.55:
            return f"{self.s(depth - 1)} + {self.s(depth - 1)}"
        if r < 0.65:
            return f"string({self.pick([self.attr(), self.i(depth - 1)])})"
        if r < 0.75:
            return f"{self.s(depth - 1)}.{self.pick(['lowerAscii()', 'upperAscii()', 'trim()'])}"
        if r < 0.85:
            return f'{self.s(depth - 1)}.replace("{self.pick(["a", ".", "-"])}", "_")'
        return f"{self.s(depth - 1)}.substring({self.r.randint(0, 3)})"

    def i(self, depth: int) -> str:
        r = self.r.random()
        if depth <= 0 or r < 0.3:
            return self.pick([self.attr(), str(self.int_value())])
        if r < 0.55:
            op = self.pick(["+", "-", "*", "/", "%"])
            return f"({self.i(depth - 1)} {op} {self.i(depth - 1)})"
        if r < 0.65:
            return f"size({self.s(depth - 1)})"
        if r < 0.72:
            return f"{self.q(depth - 1)}.asInteger()"
        if r < 0.78:
            return f"{self.q(depth - 1)}.compareTo({self.q(depth - 1)})"
        if r < 0.84:
            return f"{self.v(depth - 1)}.{self.pick(['major()', 'minor()', 'patch()'])}"
        if r < 0.9:
            return f"sign({self.q(depth - 1)})" if self.r.random() < 0.5 else \
                f"{self.q(depth - 1)}.sign()"
        if r < 0.95:
            return f"int({self.pick([self.attr(), self.str_lit(), '1.9', '-1.9', '1e19'])})"
        return f"-{self.i(depth - 1)}"

    def list_lit(self) -> str:
        n = self.r.randint(0, 4)
        if self.r.random() < 0.8:  # homogeneous
            make = self.pick([lambda: str(self.int_value()), self.str_lit,
                              lambda: self.pick(["true", "false"])])
            return "[" + ", ".join(make() for _ in range(n)) + "]"
        return "[" + ", ".join(self.literal() for _ in range(n)) + "]"

    def cmp(self) -> str:
        return str(self.pick(["==", "!=", "<", "<=", ">", ">="]))

    def b(self, depth: int) -> str:
        r = self.r
        if depth <= 0:
            return self.pick([
                lambda: f"{self.attr()} {self.cmp()} {self.literal()}",
                lambda: f'"{self.domain()}" in device.attributes',
                lambda: f'"{self.pick(ATTR_IDS)}" in device.attributes["{self.domain()}"]',
                lambda: f"has({self.attr().split('[')[0]}[\"{self.domain()}\"]."
                        f"{self.pick(ATTR_IDS)})",
                lambda: self.attr(),
                lambda: self.pick(["true", "false", "device.allowMultipleAllocations"]),
                lambda: f"device.driver == {self.str_lit()}",
            ])()
        k = r.randrange(30)
        d = depth - 1
        if k == 0:
            return f"!{self.b(d)}" if r.random() < 0.5 else f"!({self.b(d)})"
        if k in (1, 2):
            return f"{self.b(d)} && {self.b(d)}"
        if k in (3, 4):
            return f"({self.b(d)} || {self.b(d)})"
        if k == 5:
            return f"({self.b(d)} ? {self.b(d)} : {self.b(d)})"
        if k == 6:
            return f"{self.attr()} {self.cmp()} {self.literal()}"
        if k == 7:
            return f"{self.attr()} {self.cmp()} {self.attr()}"
        if k == 8:
            m = self.pick(["isGreaterThan", "isLessThan"])
            return f"{self.q(d)}.{m}({self.q(d)})"
        if k == 9:
            return self.pick([
                lambda: f"{self.q(d)} == {self.q(d)}",
                lambda: f"{self.q(d)}.isInteger()",
                lambda: f"{self.q(d)}.asApproximateFloat() {self.cmp()} "
                        f"{self.pick(['1.0', '8.0e10', '0.5', '-1.0'])}",
                lambda: f"isQuantity({self.s(d)})",
                lambda: f"{self.q(d)} {self.pick(['<', '>'])} {self.q(d)}",  # no such overload
            ])()
        if k == 10:
            m = self.pick(["isGreaterThan", "isLessThan"])
            return f"{self.v(d)}.{m}({self.v(d)})"
        if k == 11:
            return self.pick([
                lambda: f"{self.v(d)} == {self.v(d)}",
                lambda: f"{self.v(d)}.compareTo({self.v(d)}) {self.cmp()} {r.randint(-1, 1)}",
                lambda: f"isSemver({self.s(d)})",
                lambda: f"isSemver({self.s(d)}, {self.pick(['true', 'false'])})",
            ])()
        if k == 12:
            return f"{self.i(d)} {self.cmp()} {self.i(d)}"
        if k == 13:
            return f"{self.s(d)} {self.cmp()} {self.s(d)}"
        if k == 14:
            m = self.pick(["startsWith", "endsWith", "contains"])
            return f"{self.s(d)}.{m}({self.str_lit()})"
        if k == 15:
            return f'{self.s(d)}.matches("{self.pick(REGEXES)}")'
        if k == 16:
            return self.pick([
                lambda: f"{self.s(d)}.split(\".\").size() {self.cmp()} {r.randint(0, 3)}",
                lambda: f"{self.s(d)}.indexOf({self.str_lit()}) {self.cmp()} {r.randint(-1, 2)}",
                lambda: f"{self.s(d)}.lowerAscii() == {self.str_lit()}",
                lambda: f"size({self.s(d)}) {self.cmp()} {r.randint(0, 8)}",
            ])()
        if k == 17:
            return f"{self.attr()} in {self.list_lit()}"
        if k == 18:
            return self.pick([
                lambda: f'{self.attr()} in {{"L4": 1, "H100": 2}}',
                lambda: f"{self.str_lit()} in {self.list_lit()}",
                lambda: f"{self.i(d)} in [1, 2, 3]",
            ])()
        if k == 19:
            dom = self.domain()
            return self.pick([
                lambda: f'device.attributes.exists(d, d.endsWith("{self.pick([".com", ".io"])}"))',
                lambda: f'device.attributes["{dom}"].all(k, k.size() < {r.randint(3, 8)})',
                lambda: f'device.attributes["{dom}"].exists(k, device.attributes["{dom}"][k] '
                        f"== {self.literal()})",
                lambda: f'device.capacity["{dom}"].all(k, device.capacity["{dom}"][k]'
                        f'.isGreaterThan({self.quantity_lit()}))',
                lambda: f'device.attributes["{dom}"].exists_one(k, k.startsWith("'
                        f'{self.pick(["m", "c", "i"])}"))',
                lambda: f'device.attributes["{dom}"].filter(k, k != "model").size() '
                        f"{self.cmp()} {r.randint(0, 3)}",
            ])()
        if k == 20:
            return self.pick([
                lambda: f"{self.list_lit()}.exists(x, x == {self.attr()})",
                lambda: f"{self.list_lit()}.all(x, {self.attr()} != x)",
                lambda: f"[1, 2, 3].map(x, x * {self.i(0)}).exists(y, y > 4)",
                lambda: f"{self.list_lit()}.size() {self.cmp()} {r.randint(0, 3)}",
            ])()
        if k == 21:
            dom = self.domain()
            return (f'cel.bind(a, device.attributes["{dom}"], a.{self.pick(ATTR_IDS)} '
                    f"{self.cmp()} {self.literal()})")
        if k == 22:  # compile-time type errors and non-bool results
            return self.pick([
                "device.driver > 1", "device.driver + 1 == 2", "1 + 2", "device.driver",
                "[1, 2]", 'quantity("1")', 'semver("1.0.0")', "foo(1)", "x == 1",
                "device.nofield == 1", 'device.attributes["a"] == 1', "1 == 1u",
                "device.capacity.x == 1", "{1: 2}", "1.0 == 1", '["a", 1].size() == 2',
                'device.attributes["x"].y == device.capacity["x"].y',
                'device.capacity["x"].y.isGreaterThan(1)', "null",
                f"{self.q(d)}.add({self.s(0)}) == {self.q(d)}",
                f"{self.i(d)}", f"{self.s(d)}", f"{self.q(d)}",
            ])
        if k == 23:  # runtime type errors through dyn
            return self.pick([
                lambda: f"{self.attr()} + 1 {self.cmp()} {self.i(0)}",
                lambda: f"size({self.attr()}) > 0",
                lambda: f"{self.attr()}.startsWith(\"a\")",
                lambda: f"{self.attr()}.isGreaterThan({self.semver_lit()})",
                lambda: f"{self.attr()}.isGreaterThan({self.quantity_lit()})",
                lambda: f"!{self.attr()}",
                lambda: f"{self.attr()} && {self.b(0)}",
                lambda: f"{self.attr()} || {self.b(0)}",
            ])()
        if k == 24:  # arithmetic edge cases
            return self.pick([
                lambda: f"{self.attr()} * 9223372036854775807 > 0",
                lambda: f"{self.attr()} / 0 == 1",
                lambda: f"{self.attr()} % {self.pick(['0', '-1', '3'])} == 0",
                lambda: f"{self.attr()} - 1 < {self.attr()}",
                lambda: f"double({self.attr()}) {self.cmp()} {self.pick(['1.5', '80.0'])}",
                lambda: f"uint({self.attr()}) {self.cmp()} 1u",
                lambda: f"-9223372036854775807 - {self.i(0)} < 0",
            ])()
        if k == 25:
            return self.pick([
                lambda: f'{self.s(d)}.matches("{self.pick(REGEXES)}") == '
                        f'{self.s(d)}.contains("a")',
                lambda: f"string({self.q(d)}) == \"1\"",
                lambda: f"bool({self.s(d)})",
                lambda: f"type({self.attr()}) == int",
            ])()
        if k == 26:
            return self.pick([
                lambda: f'"{self.domain()}" in device.capacity',
                lambda: f'"{self.pick(CAP_IDS)}" in device.capacity["{self.domain()}"]',
                lambda: f'has(device.capacity["{self.domain()}"].{self.pick(CAP_IDS)})',
                lambda: "has(device.driver)", lambda: "has(device.allowMultipleAllocations)",
            ])()
        if k == 27:
            return f"device.allowMultipleAllocations {self.pick(['==', '!='])} {self.b(0)}"
        if k == 28:
            return f"{self.i(d)} {self.cmp()} {self.pick(['1.5', '1u', '2.0'])}"
        return self.b(0)

    def value_expr(self, depth: int) -> str:
        """A device-free library expression of any type (quantity, semver, strings, lists)."""
        k = self.r.randrange(8)
        if k == 0:
            return self.quantity_lit()
        if k == 1:
            arg = self.quantity_lit() if self.r.random() < 0.5 else str(self.int_value())
            return f"{self.quantity_lit()}.{self.pick(['add', 'sub'])}({arg})"
        if k == 2:
            m = self.pick(["asInteger()", "isInteger()", "asApproximateFloat()", "sign()"])
            if self.r.random() < 0.2:
                return f"sign({self.quantity_lit()})"
            return f"{self.quantity_lit()}.{m}"
        if k == 3:
            return f"{self.semver_lit()}.{self.pick(['major()', 'minor()', 'patch()'])}"
        if k == 4:
            return f"{self.semver_lit()}.compareTo({self.semver_lit()})"
        if k == 5:
            s = self.str_lit()
            return self.pick([f"{s}.split(\".\")", f"{s}.lowerAscii()", f"size({s})",
                              f"{s}.indexOf(\"a\")", f"{s} + {self.str_lit()}"])
        if k == 6:
            return self.pick([f"{self.list_lit()}", f"{self.list_lit()}.size()",
                              f"lists.range({self.r.randint(0, 4)})",
                              f"{self.list_lit()} + {self.list_lit()}"])
        return self.pick([f"{self.int_value()} + {self.int_value()}",
                          f"{self.int_value()} * {self.int_value()}",
                          f"{self.int_value()} / {self.pick(INTS)}",
                          f"string({self.int_value()})", "1.5 * 2.0", "int(\"12\")"])


def generated_cases(seed: int, n_expr: int, n_dev: int, n_value: int) -> list[Case]:
    g = Gen(seed)
    devices = [g.device() for _ in range(max(n_dev * 8, 1))]
    out: list[Case] = []
    for n in range(n_expr):
        expr = g.b(g.r.randint(0, 3))
        for m in range(n_dev):
            out.append(Case("generated", f"g{n}.d{m}", expr, g.pick(devices)))
    for n in range(n_value):
        out.append(Case("generated", f"v{n}", g.value_expr(1), None, mode="value"))
    return out


# ---------------------------------------------------------------------------------- answers


@dataclass
class Answer:
    """One side's outcome. ``key`` is what is compared; ``detail`` is for humans."""

    cls: str
    result: bool | None = None
    eval_cls: str | None = None
    value_type: str | None = None
    value: Any = None
    message: str | None = None
    cost: Any = None

    def key(self) -> str:
        if self.cls == "match":
            return f"match:{str(self.result).lower()}"
        if self.cls == "too_complex":
            tail = f"match:{str(self.result).lower()}" if self.eval_cls == "match" else \
                str(self.eval_cls)
            return f"too_complex/{tail}"
        if self.cls == "value":
            return f"value:{self.value_type}"
        return self.cls

    def show(self) -> str:
        parts = [self.key()]
        if self.cls == "value":
            parts.append(json.dumps(to_json(self.value), ensure_ascii=False))
        if self.message:
            parts.append(repr(self.message[:300]))
        if self.cost is not None:
            parts.append(f"cost={self.cost}")
        return " ".join(parts)


_TYPE_NAMES: list[tuple[type, str]] = [
    (bool, "bool"), (UInt, "uint"), (int, "int"), (float, "double"), (str, "string"),
    (bytes, "bytes"), (Quantity, "quantity"), (Semver, "semver"), (list, "list"), (dict, "map"),
]


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    for t, name in _TYPE_NAMES:
        if isinstance(v, t):
            return name
    return type(v).__name__


def ours(case: Case) -> Answer:
    """Our engine, as placement uses it (``evaluate`` is what ``match`` runs underneath)."""
    allow_multi = case.env != "NewExpressions" or bool(case.features.get("DRAConsumableCapacity"))
    if case.mode == "value":
        out = evaluate(case.expr, None, require_bool=False, allow_multiple_allocations=allow_multi,
                       enforce_estimate=False)
        if out.error is not None:
            cls = "compile_error" if out.phase == "compile" else "runtime_error"
            return Answer(cls, message=out.error)
        return Answer("value", value_type=_type_name(out.value), value=out.value)
    out = evaluate(case.expr, case.device, allow_multiple_allocations=allow_multi)
    if out.phase == "compile":
        assert out.error is not None
        cls = "too_long" if out.error.startswith("expression too long") else "compile_error"
        return Answer(cls, message=out.error)
    if out.phase == "device":
        return Answer("device_error", message=out.error)
    if out.error is not None and out.error.startswith("cost limit exceeded: estimated"):
        # Over our estimate: Kubernetes' API server would refuse it too if its estimate
        # agrees. Also say what evaluation (with the runtime meter only) gives.
        then = _eval_answer(evaluate(case.expr, case.device,
                                     allow_multiple_allocations=allow_multi,
                                     enforce_estimate=False))
        return Answer("too_complex", result=then.result, eval_cls=then.cls,
                      message=out.error)
    return _eval_answer(out)


def _eval_answer(out: Any) -> Answer:
    if out.error is not None:
        return Answer("device_error" if out.phase == "device" else "runtime_error",
                      message=out.error)
    if isinstance(out.value, bool):
        return Answer("match", result=out.value)
    return Answer("runtime_error",
                  message=f"CEL result of type {_type_name(out.value)} is not a bool")


def run_oracle(oracle: Path, cases: list[Case]) -> list[Answer]:
    payload = "".join(json.dumps(c.request(i), ensure_ascii=False) + "\n"
                      for i, c in enumerate(cases))
    proc = subprocess.run([str(oracle)], input=payload.encode("utf-8"), capture_output=True,
                          check=False, timeout=600)
    if proc.returncode != 0:
        sys.exit(f"cel-oracle failed (exit {proc.returncode}): "
                 f"{proc.stderr.decode(errors='replace')[:2000]}")
    answers: list[Answer | None] = [None] * len(cases)
    for line in proc.stdout.decode("utf-8").splitlines():
        got = json.loads(line)
        if got["class"] == "bad_input":
            sys.exit(f"cel-oracle did not understand a request: {got}")
        answers[int(got["id"])] = Answer(
            got["class"], result=got.get("result"), eval_cls=got.get("eval_class"),
            value_type=got.get("value_type"), value=got.get("value"),
            message=got.get("message"),
            cost=(got.get("estimated_cost"), got.get("actual_cost")))
    missing = [i for i, a in enumerate(answers) if a is None]
    if missing:
        sys.exit(f"cel-oracle returned no answer for {len(missing)} requests (first {missing[0]})")
    return [a for a in answers if a is not None]


def _same_value(mine: Answer, theirs: Answer) -> bool:
    if mine.value_type != theirs.value_type:
        return False
    v, w = mine.value, theirs.value
    if mine.value_type == "quantity":
        try:
            return bool(v == parse_quantity(str(w)))
        except QuantityError:
            return False
    if mine.value_type == "semver":
        return bool(str(v) == w)
    if mine.value_type == "double":
        if isinstance(w, str):  # NaN / ±Inf, spelled by Go's fmt
            tests: dict[str, Callable[[float], bool]] = {
                "NaN": math.isnan, "+Inf": lambda x: x == math.inf,
                "-Inf": lambda x: x == -math.inf}
            return w in tests and tests[w](float(v))
        return math.isclose(float(v), float(w), rel_tol=1e-12, abs_tol=0.0)
    return bool(to_json(v) == w)


def agree(mine: Answer, theirs: Answer) -> bool:
    if mine.key() != theirs.key():
        return False
    return mine.cls != "value" or _same_value(mine, theirs)


# --------------------------------------------------------------------- known differences


@dataclass
class Known:
    ident: str
    kind: str  # bug | version | oracle-protocol | engine-limit
    reason: str
    case: str | None = None
    expr: str | None = None
    expr_regex: re.Pattern[str] | None = None
    ours: str | None = None
    kubernetes: str | None = None
    ours_message: re.Pattern[str] | None = None
    kubernetes_message: re.Pattern[str] | None = None
    same_evaluation: bool = False  # Kubernetes too_complex/<x> with ours exactly <x>
    uses: int = 0

    def matches(self, case: Case, mine: Answer, theirs: Answer) -> bool:
        if self.case is not None and self.case != case.name:
            return False
        if self.expr is not None and self.expr != case.expr:
            return False
        if self.expr_regex is not None and not self.expr_regex.search(case.expr):
            return False
        if self.ours is not None and not re.fullmatch(self.ours, mine.key()):
            return False
        if self.kubernetes is not None and not re.fullmatch(self.kubernetes, theirs.key()):
            return False
        if self.same_evaluation and theirs.key().partition("/")[2] != mine.key():
            return False
        if self.ours_message is not None and not self.ours_message.search(mine.message or ""):
            return False
        return self.kubernetes_message is None or \
            bool(self.kubernetes_message.search(theirs.message or ""))


def load_known(path: Path) -> list[Known]:
    if not path.exists():
        return []
    out = []
    for raw in yaml.safe_load(path.read_text(encoding="utf-8")).get("differences") or []:
        m = raw.get("match") or {}
        if not raw.get("reason") or not raw.get("kind"):
            sys.exit(f"{path}: entry {raw.get('id')!r} needs a kind and a reason")
        if not m:
            sys.exit(f"{path}: entry {raw.get('id')!r} needs a match")
        out.append(Known(
            ident=raw["id"], kind=raw["kind"], reason=raw["reason"], case=m.get("case"),
            expr=m.get("expr"),
            expr_regex=re.compile(m["expr_regex"]) if "expr_regex" in m else None,
            ours=m.get("ours"), kubernetes=m.get("kubernetes"),
            ours_message=re.compile(m["ours_message"]) if "ours_message" in m else None,
            kubernetes_message=re.compile(m["kubernetes_message"])
            if "kubernetes_message" in m else None,
            same_evaluation=bool(m.get("same_evaluation", False))))
    return out


# ------------------------------------------------------------------------------------ main


def _fmt_device(device: dict[str, Any] | None) -> str:
    return "(none)" if device is None else json.dumps(device, sort_keys=True, ensure_ascii=False)


def _upstream_ok(case: Case, theirs: Answer) -> bool | None:
    """Does the oracle reproduce the table's expectation? None when not comparable."""
    up = case.upstream
    if up is None or case.mode != "match":
        return None
    if "error" in up:
        phase = up["error"]["phase"]
        want = {"compile": {"compile_error"}, "evaluation": {"runtime_error", "device_error"}}
        cls = theirs.eval_cls if theirs.cls == "too_complex" else theirs.cls
        return cls in want.get(phase, set()) and \
            up["error"].get("contains", "") in (theirs.message or "")
    if theirs.cls == "too_complex":
        return theirs.eval_cls == "match" and theirs.result is up["expect"]
    return theirs.cls == "match" and theirs.result is up["expect"]


def estimate_comparison(cases: list[Case], theirs: list[Answer]) -> Counter[str]:
    """How our worst-case estimate compares with Kubernetes' where both compiled the selector.

    The class (over or under the 1,000,000 limit) is already compared above; this shows how
    close the numbers are, and prints the largest under-estimates (the dangerous direction).
    """
    out: Counter[str] = Counter()
    under: list[tuple[float, str, float, int]] = []
    seen: set[str] = set()
    for case, b in zip(cases, theirs, strict=True):
        if case.mode == "value" or case.expr in seen or not b.cost or b.cost[0] is None:
            continue
        seen.add(case.expr)
        try:
            mine = compile_expr(case.expr).estimated_cost
        except CompileError:
            continue
        k8s = int(b.cost[0])
        if k8s >= 2**63 and mine == float("inf"):
            out["both unbounded"] += 1
        elif mine == k8s:
            out["equal"] += 1
        elif mine > k8s:
            out["ours higher"] += 1
        else:
            out["ours lower"] += 1
            under.append((k8s / max(mine, 1), case.expr, mine, k8s))
    for ratio, expr, mine, k8s in sorted(under, reverse=True)[:5]:
        print(f"UNDER-ESTIMATE x{ratio:.2f}  ours {mine:g}, kubernetes {k8s}: {expr[:160]}")
    return out


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--oracle", type=Path, required=True, help="the built cel-oracle binary")
    ap.add_argument("--cases", type=Path, default=CASES_FILE)
    ap.add_argument("--known", type=Path, default=KNOWN_FILE)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--expressions", type=int, default=5000, help="generated selectors")
    ap.add_argument("--devices", type=int, default=3, help="devices per generated selector")
    ap.add_argument("--values", type=int, default=1500, help="generated library expressions")
    ap.add_argument("--show", type=int, default=200, help="print at most this many differences")
    args = ap.parse_args(list(argv) if argv is not None else None)

    cases: list[Case] = []
    if args.cases.exists():
        cases += conformance_cases(args.cases)
    else:
        print(f"note: conformance table not found at {args.cases}; generated cases only")
    n_conf = len(cases)
    cases += generated_cases(args.seed, args.expressions, args.devices, args.values)
    known = load_known(args.known)

    t0 = time.monotonic()
    theirs = run_oracle(args.oracle, cases)
    t_oracle = time.monotonic() - t0
    t0 = time.monotonic()
    mine = [ours(c) for c in cases]
    t_ours = time.monotonic() - t0

    counts: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    shown = 0
    oracle_vs_table: Counter[str] = Counter()
    for case, a, b in zip(cases, mine, theirs, strict=True):
        counts["run"] += 1
        classes[b.key()] += 1
        if case.upstream is not None and case.k8s_min and _version(case.k8s_min) <= ORACLE_K8S:
            ok = _upstream_ok(case, b)
            if ok is not None:
                oracle_vs_table["ok" if ok else "not ok"] += 1
                if not ok:
                    print(f"ORACLE vs TABLE  {case.name}: oracle {b.show()}; table {case.upstream}")
        if agree(a, b):
            counts["agree"] += 1
            continue
        newer = case.k8s_min is not None and _version(case.k8s_min) > ORACLE_K8S
        entry = next((k for k in known if k.matches(case, a, b)), None)
        if newer:
            label, counts["version (k8s_min > 1.35)"] = "VERSION", counts[
                "version (k8s_min > 1.35)"] + 1
        elif entry is not None:
            entry.uses += 1
            counts["known"] += 1
            label = f"KNOWN[{entry.ident}]"
        else:
            counts["unexplained"] += 1
            label = "DIFFERENCE"
        if shown < args.show or label == "DIFFERENCE":
            shown += 1
            print(f"{label}  {case.origin} {case.name}\n"
                  f"  expr:       {case.expr}\n"
                  f"  device:     {_fmt_device(case.device)}\n"
                  f"  ours:       {a.show()}\n"
                  f"  kubernetes: {b.show()}")

    print()
    print(f"cel-oracle: k8s.io/dynamic-resource-allocation v0.35.4; seed {args.seed}")
    print(f"cases run: {counts['run']} ({n_conf} conformance, {counts['run'] - n_conf} generated)")
    print(f"agree: {counts['agree']}")
    print(f"version differences (conformance k8s_min > 1.35): {counts['version (k8s_min > 1.35)']}")
    print(f"known differences: {counts['known']}")
    for k in known:
        print(f"  {k.ident} ({k.kind}): {k.uses}")
    print(f"unexplained: {counts['unexplained']}")
    print(f"oracle vs upstream table expectations (k8s_min <= 1.35, DRA cases): "
          f"{oracle_vs_table['ok']} ok, {oracle_vs_table['not ok']} not ok")
    print("outcome classes (Kubernetes): " +
          ", ".join(f"{k} {v}" for k, v in sorted(classes.items())))
    print("estimated cost vs Kubernetes' (compiled selectors): " +
          ", ".join(f"{k} {v}" for k, v in sorted(estimate_comparison(cases, theirs).items())))
    print(f"time: oracle {t_oracle:.1f}s, ours {t_ours:.1f}s")
    stale = [k.ident for k in known if k.uses == 0]
    if stale:
        print(f"note: known-difference entries not seen in this run: {', '.join(stale)}")
    return 1 if counts["unexplained"] or oracle_vs_table["not ok"] else 0


if __name__ == "__main__":
    sys.exit(main())

