"""Weight splitting: group ratios are exact, nobody ready is rounded to zero."""

from __future__ import annotations

import pytest
from modelplane.steps.routing import split_weights

CASES = [
    # (rule, groups, expected weights)
    ("canary_90_10_across_two_deployments_keeps_the_ratio",
     [(90, ["stable-a"]), (10, ["canary-a"])], {"stable-a": 90, "canary-a": 10}),
    ("a_group_weight_is_shared_equally_by_its_endpoints",
     [(90, ["stable-a", "stable-b"]), (10, ["canary-a"])],
     {"stable-a": 45, "stable-b": 45, "canary-a": 10}),
    ("a_small_weight_over_many_endpoints_is_scaled_not_rounded_to_zero",
     [(1, ["a", "b", "c"]), (1, ["d"])], {"a": 1, "b": 1, "c": 1, "d": 3}),
    ("uneven_splits_use_largest_remainder_and_keep_the_group_total",
     [(90, ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]), (10, ["c1"])],
     {"s1": 13, "s2": 13, "s3": 13, "s4": 13, "s5": 13, "s6": 13, "s7": 12, "c1": 10}),
    ("a_drained_group_gets_nothing", [(0, ["old"]), (5, ["new"])], {"new": 5}),
    ("a_group_without_endpoints_gets_nothing", [(90, []), (10, ["canary"])], {"canary": 10}),
    ("nothing_to_split", [], {}),
]


@pytest.mark.parametrize(("groups", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_weight_splitting(groups: list[tuple[int, list[str]]], expected: dict[str, int]) -> None:
    assert split_weights(groups) == expected


@pytest.mark.parametrize("n", range(1, 17))
@pytest.mark.parametrize("canary", [1, 3, 10])
def test_group_totals_stay_proportional_for_any_endpoint_count(n: int, canary: int) -> None:
    stable = [f"s{i:02d}" for i in range(n)]
    weights = split_weights([(100 - canary, stable), (canary, ["c"])])
    assert min(weights.values()) >= 1
    total_stable = sum(weights[s] for s in stable)
    assert total_stable * canary == weights["c"] * (100 - canary)
    assert max(weights[s] for s in stable) - min(weights[s] for s in stable) <= 1
