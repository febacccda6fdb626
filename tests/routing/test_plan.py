"""The routing decision: tenancy, data boundary, fallback and weights (pure, no gRPC)."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.steps.routing import plan_routes, selector_problem

from tests.routing.fixtures import (
    NS,
    US_ONLY,
    by_deployment,
    canary_spec,
    deployment_endpoint,
    endpoint,
    provider_endpoint,
    providers,
    select,
)


def weights(spec: dict[str, Any], pool: list[dict[str, Any]]) -> dict[str, int]:
    plan = plan_routes(spec, NS, select(spec, pool))
    return {b.endpoint: b.weight for b in plan.backends if b.weight}


FLEET = [deployment_endpoint("stable-0", "qwen-stable"),
         deployment_endpoint("stable-1", "qwen-stable"),
         deployment_endpoint("canary-0", "qwen-canary"),
         provider_endpoint("together")]

CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, int]]] = [
    ("canary_90_10_split_across_two_deployments", canary_spec(), FLEET,
     {"stable-0": 45, "stable-1": 45, "canary-0": 10}),
    ("an_unready_primary_endpoint_gets_no_traffic_and_the_ratio_holds", canary_spec(),
     [deployment_endpoint("stable-0", "qwen-stable"),
      deployment_endpoint("stable-1", "qwen-stable", ready=False),
      deployment_endpoint("canary-0", "qwen-canary"), provider_endpoint("together")],
     {"stable-0": 90, "canary-0": 10}),
    ("fallback_gets_nothing_while_any_primary_is_ready", canary_spec(),
     [deployment_endpoint("stable-0", "qwen-stable", ready=False),
      deployment_endpoint("canary-0", "qwen-canary"), provider_endpoint("together")],
     {"canary-0": 10}),
    ("fallback_takes_everything_when_no_primary_is_ready", canary_spec(),
     [deployment_endpoint("stable-0", "qwen-stable", ready=False),
      deployment_endpoint("canary-0", "qwen-canary", ready=False),
      provider_endpoint("together")],
     {"together": 1}),
    ("fallback_takes_everything_when_primaries_are_gone", canary_spec(),
     [provider_endpoint("together")], {"together": 1}),
    ("a_drained_primary_does_not_hold_fallback_back",
     {"endpoints": [by_deployment("qwen-stable", 0), by_deployment("qwen-canary", 10),
                    providers()]},
     [deployment_endpoint("stable-0", "qwen-stable"), provider_endpoint("together")],
     {"together": 1}),
    ("an_endpoint_outside_the_boundary_is_never_a_fallback", canary_spec(boundary=True),
     [provider_endpoint("together", jurisdiction="eu")], {}),
    ("an_endpoint_outside_the_boundary_is_never_a_primary", canary_spec(boundary=True),
     [deployment_endpoint("stable-0", "qwen-stable", jurisdiction="eu"),
      deployment_endpoint("canary-0", "qwen-canary")], {"canary-0": 10}),
    ("fallback_inside_the_boundary_is_used_and_the_one_outside_is_not",
     canary_spec(boundary=True),
     [provider_endpoint("together"), provider_endpoint("groq", jurisdiction="global")],
     {"together": 1}),
    ("an_endpoint_in_another_namespace_is_never_selected", canary_spec(),
     [deployment_endpoint("stable-0", "qwen-stable", ns="other-team"),
      deployment_endpoint("canary-0", "qwen-canary")], {"canary-0": 10}),
    ("match_expressions_are_applied_even_though_crossplane_only_filters_labels",
     {"endpoints": [{"selector": {
         "matchLabels": {"modelplane.ai/deployment": "qwen-stable"},
         "matchExpressions": [{"key": "modelplane.ai/jurisdiction", "operator": "In",
                               "values": ["us"]}]}}]},
     [deployment_endpoint("stable-0", "qwen-stable"),
      deployment_endpoint("stable-1", "qwen-stable", jurisdiction="eu")], {"stable-0": 1}),
]


@pytest.mark.parametrize(("spec", "pool", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_routing_rules(spec: dict[str, Any], pool: list[dict[str, Any]],
                       expected: dict[str, int]) -> None:
    # Crossplane's selector is namespaced; pass everything to prove the plan's own guard too.
    assert weights(spec, pool) == expected


def test_other_namespace_endpoints_are_not_even_named_in_status() -> None:
    spec = canary_spec()
    pool = [deployment_endpoint("secret-project", "qwen-stable", ns="other-team")]
    plan = plan_routes(spec, NS, select(spec, pool))
    assert plan.backends == [] and plan.excluded == []


def test_status_says_which_endpoints_the_boundary_excluded_and_why() -> None:
    spec = canary_spec(boundary=True)
    pool = [deployment_endpoint("stable-0", "qwen-stable"),
            provider_endpoint("groq", jurisdiction="global")]
    plan = plan_routes(spec, NS, select(spec, pool))
    assert [x.status() for x in plan.excluded] == [{
        "endpoint": "groq",
        "reason": "outside the data boundary: label modelplane.ai/jurisdiction='global' "
                  "does not equal 'us'"}]


def test_standby_fallbacks_are_listed_with_weight_zero() -> None:
    spec = canary_spec()
    plan = plan_routes(spec, NS, select(spec, FLEET))
    assert plan.mode == "Primary"
    assert {"endpoint": "together", "weight": 0, "ready": True, "role": "Fallback"} in [
        b.status() for b in plan.backends]


@pytest.mark.parametrize(("pool", "mode"), [
    (FLEET, "Primary"),
    ([provider_endpoint("together")], "Fallback"),
    ([provider_endpoint("together", ready=False)], "None"),
    ([], "None"),
])
def test_mode_reports_where_traffic_comes_from(pool: list[dict[str, Any]], mode: str) -> None:
    spec = canary_spec()
    assert plan_routes(spec, NS, select(spec, pool)).mode == mode


def test_an_endpoint_selected_twice_is_routed_once_by_its_first_group() -> None:
    spec = {"endpoints": [by_deployment("qwen-stable", 3),
                          {"selector": {"matchLabels": {"modelplane.ai/jurisdiction": "us"}},
                           "weight": 1}]}
    pool = [deployment_endpoint("stable-0", "qwen-stable")]
    plan = plan_routes(spec, NS, select(spec, pool))
    assert [(b.endpoint, b.group, b.weight) for b in plan.backends] == [("stable-0", 0, 3)]
    assert "routed once, as part of spec.endpoints[0]" in plan.excluded[0].reason


def test_an_unroutable_url_is_excluded_with_the_field() -> None:
    spec = {"endpoints": [by_deployment("qwen-stable")]}
    pool = [endpoint("bad", {"modelplane.ai/deployment": "qwen-stable"}, url="ftp://x")]
    plan = plan_routes(spec, NS, select(spec, pool))
    assert plan.excluded[0].endpoint == "bad"
    assert "spec.url 'ftp://x'" in plan.excluded[0].reason


def test_no_more_than_sixteen_backends_and_the_rest_say_why() -> None:
    spec = {"endpoints": [by_deployment("big")]}
    pool = [deployment_endpoint(f"r{i:02d}", "big") for i in range(18)]
    plan = plan_routes(spec, NS, select(spec, pool))
    assert len(plan.serving) == 16
    assert sorted(x.endpoint for x in plan.excluded) == ["r16", "r17"]
    assert all("16 backends" in x.reason for x in plan.excluded)


@pytest.mark.parametrize(("selector", "needle"), [
    ({}, "is empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Near"}]}, "operator 'Near'"),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "values must not be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     "values must be empty"),
    ("app=x", "must be a label selector"),
])
def test_bad_selectors_are_named_with_field_and_value(selector: Any, needle: str) -> None:
    problem = selector_problem(selector, "spec.dataBoundary.selector")
    assert problem is not None and needle in problem
    assert problem.startswith("spec.dataBoundary.selector")


def test_good_selector_has_no_problem() -> None:
    assert selector_problem(US_ONLY["selector"], "x") is None


# -- unknown is not false (docs/routing.md, *Evidence*) -----------------------------------------


def _unknown(ep: dict[str, Any]) -> dict[str, Any]:
    out = dict(ep)
    out.pop("status", None)
    return out


def test_lost_status_keeps_the_last_route_and_never_engages_fallback() -> None:
    spec = canary_spec()
    pool = [_unknown(e) for e in FLEET]
    routed = {"mep-stable-0", "mep-stable-1", "mep-canary-0"}
    plan = plan_routes(spec, NS, select(spec, pool), last_routed=routed)
    assert plan.mode == "Primary"
    assert {b.endpoint: b.weight for b in plan.backends if b.weight} == {
        "stable-0": 45, "stable-1": 45, "canary-0": 10}


def test_without_a_route_an_unknown_primary_holds_fallback_back() -> None:
    spec = canary_spec()
    pool = [_unknown(e) for e in FLEET[:3]] + [FLEET[3]]
    plan = plan_routes(spec, NS, select(spec, pool), last_routed=None)
    assert plan.mode == "Primary"
    assert all(b.weight == 0 for b in plan.backends if b.role == "Fallback")


def test_an_unknown_endpoint_the_last_route_did_not_use_stays_out() -> None:
    spec = canary_spec()
    pool = [FLEET[0], _unknown(FLEET[1]), FLEET[2], FLEET[3]]
    plan = plan_routes(spec, NS, select(spec, pool), last_routed={"mep-stable-0",
                                                                  "mep-canary-0"})
    assert {b.endpoint: b.weight for b in plan.backends if b.weight} == {
        "stable-0": 90, "canary-0": 10}


def test_fallback_engages_on_evidence_that_no_primary_can_serve() -> None:
    spec = canary_spec()
    pool = [deployment_endpoint("stable-0", "qwen-stable", ready=False),
            deployment_endpoint("canary-0", "qwen-canary", ready=False), FLEET[3]]
    plan = plan_routes(spec, NS, select(spec, pool), last_routed={"mep-stable-0",
                                                                  "mep-canary-0"})
    assert plan.mode == "Fallback"
