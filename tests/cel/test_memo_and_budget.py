"""Compile once, memoise per device shape, and cut runaway selectors off deterministically."""

from __future__ import annotations

from typing import Any

from modelplane.cel import check, evaluate, match, reset_stats, stats

SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'


def _device(i: int, memory: str) -> dict[str, Any]:
    return {"name": f"gpu-{i}", "driver": "gpu.nvidia.com",
            "capacity": {"memory": {"value": memory}}}


def test_one_compile_and_one_evaluation_per_distinct_shape() -> None:
    reset_stats()
    shapes = ["23034Mi", "81920Mi", "16Gi", "40Gi"]
    results = [match(SELECTOR, _device(i, shapes[i % 4])) for i in range(400)]
    s = stats()
    assert s["compiles"] == 1
    assert s["evaluations"] == 4
    assert s["memo_hits"] == 396
    assert [r.matched for r in results[:4]] == [True, True, False, True]


def test_device_name_is_not_part_of_the_shape() -> None:
    reset_stats()
    assert match(SELECTOR, _device(1, "24Gi")) == match(SELECTOR, _device(2, "24Gi"))
    assert stats()["evaluations"] == 1


NESTED = ".all(x, ".join(["lists.range(100)"] * 4) + ".all(x, true" + ")" * 4


def test_nested_generated_ranges_are_rejected_before_evaluation() -> None:
    reset_stats()
    problem = check(NESTED)
    assert problem is not None and "cost limit exceeded" in problem
    result = match(NESTED, _device(0, "1Gi"))
    assert not result.matched and "cost limit exceeded" in (result.reason or "")
    assert stats()["evaluations"] == 0


def test_runtime_meter_cuts_off_what_the_estimate_would_have_refused() -> None:
    out = evaluate(NESTED, None, enforce_estimate=False, time_limit=3600)
    assert out.error == "operation cancelled: actual cost limit exceeded"


def test_runtime_meter_charges_generated_lists_before_building_them() -> None:
    expr = 'lists.range(int("1000000000")).size() > 0'
    assert "cost limit exceeded" in (check(expr) or "")
    out = evaluate(expr, None, enforce_estimate=False, time_limit=3600)
    assert out.error == "operation cancelled: actual cost limit exceeded"


def test_small_budget_is_enforced_deterministically() -> None:
    expr = "lists.range(50).all(x, x >= 0)"
    assert evaluate(expr, None).value is True
    costs = {evaluate(expr, None, cost_limit=60, enforce_estimate=False,
                          time_limit=3600).error
             for _ in range(3)}
    assert costs == {"operation cancelled: actual cost limit exceeded"}
