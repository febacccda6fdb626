"""compose-ticket over plain dicts: bad tickets name the field and value, rows open and close,
and a deployed ticket that stops being runnable keeps what it composed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelplane.step import StepRequest
from modelplane.steps.inferenceticket.compose import compose

from tests.results import condition

NOW = "2026-07-01T00:00:00Z"
CLASS = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceClass",
         "metadata": {"name": "l40s-1x"},
         "spec": {"devices": [{"name": "gpu", "driver": "gpu.nvidia.com", "count": 1,
                               "capacity": {"memory": {"value": "48Gi"}}}]}}
CLUSTER = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
           "metadata": {"name": "eu-west", "labels": {"modelplane.ai/region": "eu-west",
                                                      "modelplane.ai/jurisdiction": "eu"}},
           "spec": {"nodePools": [{"name": "l40s", "className": "l40s-1x",
                                   "maxNodeCount": 2}]},
           "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
ENDPOINT = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelEndpoint",
            "metadata": {"name": "mistral-eu", "namespace": "tools",
                         "labels": {"modelplane.ai/jurisdiction": "eu"}},
            "spec": {"url": "https://api.mistral.ai"}}
TICKET: dict[str, Any] = {
    "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceTicket",
    "metadata": {"name": "coder", "namespace": "tools"},
    "spec": {
        "model": {"name": "Qwen/Qwen3-Coder-30B-A3B-Instruct", "job": "PR review"},
        "engine": {"image": "vllm/vllm-openai:v0.11.0"},
        "hardware": {"gpus": 1, "memory": "40Gi"},
        "fleet": {"clusterSelector": {"matchLabels": {"modelplane.ai/region": "eu-west"}}},
        "sovereignty": {"dataBoundary": {"matchLabels": {"modelplane.ai/jurisdiction": "eu"}}},
        "scaling": {"replicas": 1, "maxReplicas": 2},
        "endpoint": {"service": "coder", "owner": "oncall@example.com"},
        "overflow": {"endpointRef": {"name": "mistral-eu"}},
        "cache": {"none": True},
        "lifecycle": {"rollback": "canary", "retireAfter": "2027-06-30"},
    }}


def run(edit: dict[str, Any] | None = None, endpoints: list[dict[str, Any]] | None = None,
        observed: dict[str, Any] | None = None) -> Any:
    ticket = copy.deepcopy(TICKET)
    for key, value in (edit or {}).items():
        if value is None:
            ticket["spec"].pop(key, None)
        else:
            ticket["spec"][key] = value
    req = StepRequest(step="compose-ticket", input={}, composite=ticket,
                      observed=observed or {}, context={"modelplane.ai/now": NOW},
                      required={"classes": [CLASS], "clusters": [CLUSTER], "replicas": [],
                                "overflow": [ENDPOINT] if endpoints is None else endpoints})
    return compose(req)


def test_a_filled_ticket_that_fits_is_decided_runnable_and_within_the_boundary() -> None:
    res = run()
    assert [condition(res, t).status for t in ("Decided", "Runnable", "WithinBoundary")] == [
        "True", "True", "True"]
    assert res.status["lanes"] == ["l40s-1x"] and res.status["clusters"] == ["eu-west"]
    assert res.composite_ready == "True"
    assert res.desired == {}  # deploy is false: nothing is composed


BAD = [
    # (edit, field named, value named)
    ({"hardware": {"classNames": ["a100-8x"]}}, "spec.hardware.classNames[0]", "'a100-8x'"),
    ({"hardware": {"memory": "lots"}}, "spec.hardware.memory", "'lots'"),
    ({"hardware": {"selectors": [{"cel": "device.driver =="}]}},
     "spec.hardware.selectors[0].cel", "'device.driver =='"),
    ({"overflow": {"endpointRef": {"name": "nowhere"}}}, "spec.overflow.endpointRef.name",
     "'nowhere'"),
]


@pytest.mark.parametrize(("edit", "field", "value"), BAD, ids=[b[1] for b in BAD])
def test_a_bad_ticket_gets_a_condition_naming_the_field_and_value(
        edit: dict[str, Any], field: str, value: str) -> None:
    res = run(edit, endpoints=[] if "nowhere" in str(edit) else None)
    decided = condition(res, "Decided")
    assert (decided.status, decided.reason) == ("False", "InvalidTicket")
    assert field in decided.message and value in decided.message
    assert condition(res, "Runnable").status == "Unknown"


@pytest.mark.parametrize(("edit", "row"), [
    ({"overflow": None}, "overflow"),
    ({"endpoint": {"service": "coder"}}, "endpoint"),
    ({"lifecycle": {"retireAfter": "2026-01-31"}}, "lifecycle"),
], ids=["absent", "no-owner", "retired"])
def test_an_absent_row_an_ownerless_endpoint_and_a_passed_retirement_are_open(
        edit: dict[str, Any], row: str) -> None:
    res = run(edit)
    assert res.status["open"] == [row]
    assert condition(res, "Decided").reason == "RowsOpen"
    assert res.composite_ready == "False"


def test_a_declined_row_is_decided() -> None:
    res = run({"overflow": {"none": True}})
    assert "overflow" in res.status["decided"]
    assert condition(res, "Decided").status == "True"


def test_an_overflow_outside_the_boundary_is_a_false_condition_quoting_the_warning() -> None:
    us = copy.deepcopy(ENDPOINT)
    us["metadata"]["labels"] = {"modelplane.ai/jurisdiction": "us"}
    res = run(endpoints=[us])
    within = condition(res, "WithinBoundary")
    assert (within.status, within.reason) == ("False", "OverflowOutsideBoundary")
    assert "the data boundary you did not mean to cross" in within.message
    assert res.status["runnable"] is False


def test_a_boundary_on_a_label_endpoints_never_carry_leaves_no_cluster_inside() -> None:
    res = run({"sovereignty": {"dataBoundary": {"matchLabels": {"example.com/eu": "yes"}}},
               "overflow": {"none": True}})
    assert res.status["clusters"] == []
    assert any("eu-west: outside the data boundary: label example.com/eu is missing" in r
               for r in res.status["reasons"])
    assert condition(res, "Runnable").status == "False"


def test_peak_beyond_free_capacity_is_not_runnable_with_the_cluster_named() -> None:
    res = run({"scaling": {"replicas": 2, "maxReplicas": 3}})
    assert (res.status["fitsNow"], res.status["fitsAtPeak"]) == (True, False)
    assert any(r.startswith("at peak: eu-west: InsufficientCapacity") for r in
               res.status["reasons"])


def test_deploy_composes_the_deployment_and_the_service_with_overflow_as_fallback() -> None:
    res = run({"deploy": True})
    md, ms = res.desired["deployment"].resource, res.desired["service"].resource
    assert md["spec"]["clusterSelector"] == {"matchLabels": {
        "modelplane.ai/jurisdiction": "eu", "modelplane.ai/region": "eu-west"}}
    assert ms["spec"]["owner"] == {"contact": "oncall@example.com"}
    assert ms["spec"]["dataBoundary"] == {"selector": TICKET["spec"]["sovereignty"][
        "dataBoundary"]}
    assert [g["role"] for g in ms["spec"]["endpoints"]] == ["Primary", "Fallback"]


def test_a_deployed_ticket_that_stops_being_runnable_keeps_what_it_composed() -> None:
    composed = run({"deploy": True}).desired
    observed = {n: d.resource for n, d in composed.items()}
    res = run({"deploy": True, "scaling": {"replicas": 5}}, observed=observed)
    assert sorted(res.desired) == ["deployment", "service"]
    assert res.desired["deployment"].resource["spec"]["replicas"] == 1  # as it was
    assert condition(res, "Deployed").reason == "KeptAsIs"
