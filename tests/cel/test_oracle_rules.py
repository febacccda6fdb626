"""cel-go behaviours of Kubernetes' DRA CEL that the oracle (`make cel-oracle`) found we differed
on. Each test states the rule as Kubernetes 1.35 applies it (checker, parser and planner)."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.cel import evaluate, reset_stats

GPU: dict[str, Any] = {
    "driver": "gpu.nvidia.com",
    "attributes": {"model": {"string": "L4"}, "cc": {"version": "8.9.0"},
                   "count": {"int": 2}},
    "capacity": {"memory": {"value": "24Gi"}},
}
A = 'device.attributes["gpu.nvidia.com"]'


@pytest.fixture(autouse=True)
def _fresh() -> None:
    reset_stats()


def _value(expr: str) -> Any:
    got = evaluate(expr, GPU)
    assert got.error is None, got.error
    return got.value


def _error(expr: str) -> tuple[str, str]:
    got = evaluate(expr, GPU)
    assert got.error is not None, f"{expr} evaluated to {got.value!r}"
    assert got.phase is not None
    return got.phase, got.error


# -- the planner: `x in []` and constant lists -----------------------------------------------

def test_membership_in_an_empty_list_literal_is_false_without_looking_at_the_element() -> None:
    assert _value(f"{A}.missing in []") is False
    assert _value(f"!({A}.missing in [])") is True


def test_membership_in_a_non_literal_empty_list_still_evaluates_the_element() -> None:
    assert _error(f"{A}.missing in {A}.model.split(\"x\").filter(s, false)") == (
        "evaluation", "no such key: missing")


def test_a_version_cannot_be_looked_up_in_a_constant_list_or_a_map_literal() -> None:
    for expr in (f"{A}.cc in [80, 89]", f'{A}.cc in ["8.9.0"]', f'{A}.cc in {{"8.9.0": 1}}'):
        phase, message = _error(expr)
        assert phase == "evaluation"
        assert "hash of unhashable type cel.Semver" in message


def test_a_version_in_a_list_that_is_not_constant_is_simply_not_found() -> None:
    assert _value(f"{A}.cc in [device.driver]") is False


# -- the planner: constant type conversions ---------------------------------------------------

@pytest.mark.parametrize("expr", ['bool("x.y.z")', 'int("v1.2.3") == 1', "int(1e19) == 1",
                                  'false && int("x") == 1', 'uint(-1) == 1u'])
def test_a_failing_conversion_of_a_constant_fails_when_the_program_is_built(expr: str) -> None:
    phase, message = _error(expr)
    assert phase == "compile"
    assert message.startswith("program instantiation failed: ")


def test_conversions_of_constants_fold_through_each_other_and_conversions_of_data_do_not() -> None:
    assert _value('int(string(12)) == 12') is True
    assert _error(f'int({A}.model) == 1')[0] == "evaluation"


# -- the parser: runs of ! and - --------------------------------------------------------------

def test_an_even_run_of_negations_disappears_and_an_odd_run_keeps_one() -> None:
    assert _value('!!"model" in device.attributes["gpu.nvidia.com"]') is True
    assert _value("!!!true") is False
    assert _value("--5 == 5 && ---5 == -5") is True


def test_int64_min_is_a_literal_only_with_a_single_minus() -> None:
    assert _value("-9223372036854775808 < 0") is True
    phase, message = _error("--9223372036854775808 == 0")
    assert phase == "compile" and "invalid int literal" in message


def test_a_run_of_one_operator_cannot_be_followed_by_the_other() -> None:
    assert _error("-!true")[0] == "compile"


# -- the checker: result type, equality and overloads -----------------------------------------

def test_a_selector_may_have_the_attribute_type_any_but_not_dyn() -> None:
    # A bare attribute compiles (type any); whether it is a bool is a run-time matter.
    assert evaluate(f"{A}.count", GPU).phase != "compile"
    assert _value(f'{A}["model"] == "L4" ? {A}.model == "L4" : {A}.count') is True
    for expr in (f"-{A}.count", "dyn(true)"):
        assert _error(expr) == ("compile", "must evaluate to bool or the unknown type, not dyn")


@pytest.mark.parametrize("expr", ["1 == 1u", "1.0 == 1", "2 != 2.0", 'semver("1.0.0") != ""',
                                  'device.attributes["a"] == 1', "1 in [1.0]", "1 == null",
                                  f"{A}.model == 1 == null"])
def test_equality_needs_one_type_on_both_sides(expr: str) -> None:
    phase, message = _error(expr)
    assert phase == "compile" and "found no matching overload" in message


@pytest.mark.parametrize("expr", ["[1] + [true] == []", f'{A}.cc > semver("1.2.3")',
                                  "(true ? true : {1: 2})", '(true ? 1 : "a") == 1',
                                  f"{A}.count < [1]"])
def test_operators_need_an_overload_for_the_static_types(expr: str) -> None:
    phase, message = _error(expr)
    assert phase == "compile" and "found no matching overload" in message


def test_attribute_values_compare_with_anything_that_has_the_operator() -> None:
    assert _value(f"{A}.count == 2 && {A}.count < 3.5 && {A}.model >= \"A\"") is True
    assert evaluate(f"{A}.count < null", GPU).phase == "evaluation"  # null passes as timestamp
    assert _value(f"(true ? {A}.count : 1) == 2") is True


# -- equality at run time: cel-go's types.Equal ---------------------------------------------

def test_a_version_equals_only_a_version_and_not_equal_is_never_an_error() -> None:
    assert _error(f'{A}.cc == ""')[0] == "evaluation"
    assert _value(f'{A}.cc != ""') is True
    assert _value(f'"8.9.0" == {A}.cc') is False
    assert _value(f'{A}.cc == semver("8.9.0")') is True
