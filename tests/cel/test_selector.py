"""The DRA device-selector environment: domains, errors-as-non-matches, base library."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.cel import Match, check, evaluate, match, reset_stats

L4: dict[str, Any] = {
    "name": "gpu",
    "driver": "gpu.nvidia.com",
    "attributes": {"model": {"string": "L4"}, "cc": {"version": "8.9.0"},
                   "nvlink": {"bool": False}, "count": {"int": 2},
                   "example.com/zone": {"string": "a"}},
    "capacity": {"memory": {"value": "23034Mi"}},
}
D = 'device.attributes["gpu.nvidia.com"]'


@pytest.fixture(autouse=True)
def _fresh() -> None:
    reset_stats()


@pytest.mark.parametrize(
    ("expr", "matched"),
    [
        ('device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0', True),
        ('device.capacity["gpu.nvidia.com"].memory.isGreaterThan(quantity("24Gi"))', False),
        (f'{D}.model == "L4"', True),
        (f'{D}.cc.isGreaterThan(semver("8.0.0"))', True),
        (f"{D}.count > 1 && !{D}.nvlink", True),
        ('device.attributes["example.com"].zone == "a"', True),
        ('"example.com" in device.attributes', True),
        ('"other.com" in device.attributes', False),
        ('device.driver.endsWith("nvidia.com")', True),
        (f'{D}.model.matches("^L[0-9]+$")', True),
        (f'cel.bind(g, {D}, g.model.lowerAscii() == "l4")', True),
        ("device.allowMultipleAllocations == false", True),
        (f'{D}.exists(k, k == "model")', True),
    ],
)
def test_selector_semantics(expr: str, matched: bool) -> None:
    assert match(expr, L4).matched is matched


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        (f"{D}.missing", "no such key: missing"),
        (f"{D}.model", "CEL result of type string could not be converted to bool"),
        (f'{D}.model == "A100"', "selector evaluated to false"),
        ("1", "must evaluate to bool or the unknown type, not int"),
        ("device.", "Syntax error"),
        ("device.nope", "undefined field 'nope'"),
        ('isQuantity(1)', "found no matching overload for 'isQuantity'"),
        ('quantity("1") < quantity("2")', "found no matching overload for '_<_'"),
    ],
)
def test_failures_are_non_matches_with_a_reason(expr: str, reason: str) -> None:
    result = match(expr, L4)
    assert result == Match(False, result.reason)
    assert result.reason is not None and reason in result.reason


def test_errors_are_absorbed_by_logical_operators_like_cel() -> None:
    assert match(f"{D}.missing || true", L4).matched
    assert match(f"false && {D}.missing", L4) == Match(False, "selector evaluated to false")
    assert match(f"{D}.missing && false", L4) == Match(False, "selector evaluated to false")


@pytest.mark.parametrize(
    ("device", "field"),
    [
        ({"driver": "d", "attributes": {"a": {"version": "v1"}}}, "attributes['a'].version"),
        ({"driver": "d", "attributes": {"a": {"int": 1, "bool": True}}}, "attributes['a']"),
        ({"driver": "d", "capacity": {"m": {"value": "1 Gi"}}}, "capacity['m'].value"),
        ({"driver": 5}, "driver"),
    ],
)
def test_malformed_devices_are_non_matches_naming_the_field(device: dict[str, Any],
                                                            field: str) -> None:
    result = match("true", device)
    assert not result.matched and result.reason is not None and field in result.reason


def test_check_reports_problems_and_accepts_good_selectors() -> None:
    assert check(f'{D}.model == "L4"') is None
    assert "Syntax error" in (check("(") or "")
    assert "at most 10240 bytes" in (check("true && " * 2000 + "true") or "")


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ('"a,b".split(",")', ["a", "b"]),
        ('"abc".substring(1)', "bc"),
        ('["b", "a"].sort()', ["a", "b"]),
        ("lists.range(3)", [0, 1, 2]),
        ("[1, 2, 3].sum()", 6),
        ('"x1y22".findAll("[0-9]+")', ["1", "22"]),
        ("[[1], [2]].flatten()", [1, 2]),
        ("sets.intersects([1, 2], [2, 3])", True),
        ("-7 / 2", -3),
        ("-7 % 2", -1),
        ('quantity("1000m").isInteger()', False),
        ('semver("v1.2", true).minor()', 2),
    ],
)
def test_base_library_values(expr: str, value: Any) -> None:
    out = evaluate(expr, None, require_bool=False)
    assert out.error is None and out.value == value
