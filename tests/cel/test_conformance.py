"""Kubernetes' own CEL test tables (quantity, semver, DRA device selectors) run against our engine.

The cases live in ../shared/conformance/cel-cases.yaml (a transcription of upstream Go tests).
Every case that applies to Kubernetes 1.34 runs; cases first shipped later (k8s_min > 1.34) are
skipped with that reason. Feature-gate and environment variants that exist in 1.34 (the
DRAConsumableCapacity gate with NewExpressions vs StoredExpressions) are modelled, not skipped.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.cel import COST_LIMIT, evaluate
from modelplane.cel.engine import compile_expr
from modelplane.cel.quantity import Quantity, parse_quantity
from modelplane.cel.semver import Semver, parse_semver

REPO = Path(__file__).resolve().parents[2]
CASES_FILE = REPO / ".." / "shared" / "conformance" / "cel-cases.yaml"
TARGET = (1, 34)


def _load() -> list[dict[str, Any]]:
    if not CASES_FILE.exists():
        return []
    return list(yaml.safe_load(CASES_FILE.read_text())["cases"])


CASES = _load()


def _version(s: str) -> tuple[int, int]:
    major, minor = s.split("-")[0].split(".")[:2]
    return int(major), int(minor)


def _skip_reason(case: dict[str, Any]) -> str | None:
    if _version(case["k8s_min"]) > TARGET:
        return (f"first in Kubernetes {case['k8s_min']} (target is 1.34): "
                "list-typed attributes / includes() / later bug fixes are not in 1.34")
    return None


def _params() -> list[Any]:
    out = []
    for i, case in enumerate(CASES):
        ident = f"{i:03d}-{case['source'].split('#')[0]}-{case['name']}"
        reason = _skip_reason(case)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        out.append(pytest.param(case, id=ident, marks=marks))
    return out


def _device(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The case's device in the InferenceClass entry shape (generated inputs expanded)."""
    spec = dict(spec or {})
    dev: dict[str, Any] = {"name": "conformance", "driver": spec.get("driver", "")}
    if "allowMultipleAllocations" in spec:
        dev["allowMultipleAllocations"] = spec["allowMultipleAllocations"]
    attrs = dict(spec.get("attributes") or {})
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


def _assert_value(case: dict[str, Any], value: Any) -> None:
    expect = case["expect"]
    kind = case.get("expect_type", "bool")
    if kind == "bool":
        assert value is expect
    elif kind == "int":
        assert type(value) is int and value == expect
    elif kind == "double":
        assert type(value) is float
        assert math.isclose(value, expect, abs_tol=case.get("tolerance", 0.0))
    elif kind == "quantity":
        assert type(value) is Quantity and value == parse_quantity(expect)
    elif kind == "semver":
        assert type(value) is Semver and value == parse_semver(expect)
    else:  # pragma: no cover - the table only uses the kinds above
        pytest.fail(f"unknown expect_type {kind}")


def _assert_error(case: dict[str, Any], phase: str | None, message: str | None) -> None:
    want = case["error"]
    assert message is not None, "expected an error"
    want_phase = "compile" if want["phase"] == "compile" else "evaluation"
    assert phase == want_phase, message
    if "regex" in want:
        assert re.search(want["regex"], message), message
    if "contains" in want:
        assert want["contains"] in message, message


@pytest.mark.skipif(not CASES, reason=f"conformance data not found at {CASES_FILE}")
@pytest.mark.parametrize("case", _params())
def test_upstream_case(case: dict[str, Any]) -> None:
    is_dra = case["source"].startswith("compile_test.go")
    env = case.get("env", "StoredExpressions")
    gates = case.get("features") or {}
    # StoredExpressions always declare the newest device type; NewExpressions honour the gate.
    allow_multi = env != "NewExpressions" or bool(gates.get("DRAConsumableCapacity", False))
    device = _device(case.get("device")) if is_dra else None
    expected_cost = case.get("cost")
    if expected_cost is not None and expected_cost > COST_LIMIT:
        # Kubernetes' estimate exceeds the budget: we refuse before evaluating (our estimate
        # agrees), and the runtime meter alone also cuts it off with Kubernetes' message.
        early = evaluate(case["expr"], device, allow_multiple_allocations=allow_multi)
        assert early.phase == "evaluation" and early.error is not None
        assert "cost limit exceeded" in early.error
        # The cost units, not this machine's speed, must be what stops it: a wall-clock budget
        # far beyond what 1,000,000 units take.
        out = evaluate(case["expr"], device, allow_multiple_allocations=allow_multi,
                       enforce_estimate=False, time_limit=3600)
    else:
        out = evaluate(case["expr"], device, require_bool=is_dra,
                       allow_multiple_allocations=allow_multi)
    if "error" in case:
        _assert_error(case, out.phase, out.error)
    else:
        assert out.error is None, out.error
        _assert_value(case, out.value)
    if expected_cost is not None and expected_cost <= COST_LIMIT and out.phase != "compile":
        # Our worst-case estimate must not refuse what Kubernetes admits.
        assert compile_expr(case["expr"]).estimated_cost <= COST_LIMIT


def test_conformance_data_present_or_reported() -> None:
    """The table is found where the project layout puts it (or the suite says so above)."""
    if not CASES:
        pytest.skip(f"conformance data not found at {CASES_FILE}")
    assert len(CASES) >= 100
