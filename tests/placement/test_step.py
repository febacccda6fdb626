"""The `place` and `compose-deployment` steps over StepRequest (no gRPC)."""

from __future__ import annotations

from typing import Any

from modelplane.contract.context import PLACEMENT as CONTEXT_KEY
from modelplane.step import StepRequest, StepResult
from modelplane.steps.modeldeployment.compose import compose
from modelplane.steps.modeldeployment.place import place

from tests.placement.fleet import MEM20, cluster, deployment, klass

L4 = klass("l4", gpus=1, memory="24Gi", cost="0.70")
CONTEXT = {"modelplane.ai/now": "2026-01-01T12:00:00Z"}


def run_place(md: dict[str, Any], observed: dict[str, Any], store: dict[str, list[Any]]
              ) -> tuple[StepResult, list[dict[str, str]]]:
    """Run `place` through the requirements loop, answering from ``store`` like Crossplane."""
    required: dict[str, list[Any]] = {}
    seen: list[dict[str, str]] = []
    for _ in range(6):
        res = place(StepRequest("place", {}, md, observed=observed, context=dict(CONTEXT),
                                required=required))
        reqs = {n: s.match_name or s.kind for n, s in res.requirements.items()}
        seen.append(reqs)
        if len(seen) > 1 and seen[-1] == seen[-2]:
            return res, seen
        required = {}
        for n, s in res.requirements.items():
            objs = store.get(s.kind, [])
            required[n] = [o for o in objs if s.match_name in (None, o["metadata"]["name"])]
    raise AssertionError(f"requirements never stabilised: {seen}")


def run(md: dict[str, Any], observed: dict[str, Any], store: dict[str, list[Any]]
        ) -> tuple[StepResult, StepResult, list[dict[str, str]]]:
    placed, seen = run_place(md, observed, store)
    composed = compose(StepRequest("compose-deployment", {}, md, observed=observed,
                                   context=placed.context))
    return placed, composed, seen


def fleet_store(extra_replicas: list[Any] | None = None) -> dict[str, list[Any]]:
    return {"InferenceClass": [L4],
            "InferenceCluster": [cluster("a", [("p", "l4", 2)],
                                         labels={"modelplane.ai/region": "us"}),
                                 cluster("b", [("p", "l4", 2)])],
            "ModelReplica": list(extra_replicas or [])}


def composed_metadata(meta: dict[str, Any], deployment: str) -> dict[str, Any]:
    """The metadata Crossplane adds to what a ModelDeployment composes."""
    return {**meta, "labels": {**(meta.get("labels") or {}),
                               "crossplane.io/composite": deployment},
            "ownerReferences": [{"apiVersion": "modelplane.ai/v1alpha1",
                                 "kind": "ModelDeployment", "name": deployment,
                                 "uid": f"uid-{deployment}", "controller": True}]}


def observe(composed: StepResult, ready: bool = True) -> dict[str, Any]:
    out = {}
    for n, d in composed.desired.items():
        obj = dict(d.resource)
        if obj["kind"] == "ModelReplica":
            obj["metadata"] = composed_metadata(obj["metadata"], obj["spec"]["deployment"])
            obj["status"] = {"address": f"10.0.0.1/{obj['metadata']['name']}", "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "x"}]}
        out[n] = obj
    return out


def test_first_reconcile_places_and_composes_replicas() -> None:
    md = deployment("m", replicas=2, selectors=[MEM20])
    _, composed, seen = run(md, {}, fleet_store())
    assert set(seen[-1].values()) >= {"InferenceCluster", "ModelReplica", "InferenceClass"}
    reps = [d.resource for d in composed.desired.values() if d.resource["kind"] == "ModelReplica"]
    assert sorted(r["spec"]["cluster"] for r in reps) == ["a", "b"]
    member = reps[0]["spec"]["engines"][0]["members"][0]
    assert member["pool"] == "p"
    assert member["devices"] == [{"name": "gpu", "deviceClassName": "gpu.nvidia.com", "count": 1,
                                  "selectors": [{"cel": MEM20}]}]
    assert reps[0]["metadata"]["labels"]["modelplane.ai/deployment"] == "m"
    assert composed.status["replicas"] == 2
    assert composed.status["labelSelector"] == "modelplane.ai/deployment=m"
    cond = {c.type: c for c in composed.conditions}
    assert cond["ReplicasScheduled"].status == "True"
    assert cond["ReplicasReady"].status == "False"


def test_steady_reconcile_requires_only_own_clusters() -> None:
    md = deployment("m", replicas=2, selectors=[MEM20])
    _, composed, _ = run(md, {}, fleet_store())
    observed = observe(composed)
    _, again, seen = run(md, observed, fleet_store())
    assert sorted(seen[-1]) == ["classes", "cluster.a", "cluster.b"]
    assert {n: d.resource for n, d in again.desired.items() if n.startswith("replica-")} == \
        {n: d.resource for n, d in composed.desired.items()}


def test_one_endpoint_per_ready_replica_with_region_label() -> None:
    md = deployment("m", replicas=2, selectors=[MEM20])
    _, composed, _ = run(md, {}, fleet_store())
    _, again, _ = run(md, observe(composed), fleet_store())
    eps = [d.resource for d in again.desired.values() if d.resource["kind"] == "ModelEndpoint"]
    assert len(eps) == 2
    on_a = next(e for e in eps if e["metadata"]["labels"]["modelplane.ai/cluster"] == "a")
    assert on_a["metadata"]["labels"]["modelplane.ai/region"] == "us"
    assert on_a["spec"]["url"].startswith("http://10.0.0.1/")
    assert {c.type: c.status for c in again.conditions}["ReplicasReady"] == "True"


def test_invalid_cel_keeps_every_composed_resource() -> None:
    md = deployment("m", replicas=2, selectors=[MEM20])
    _, composed, _ = run(md, {}, fleet_store())
    observed = observe(composed)
    bad = deployment("m", replicas=3, selectors=["device.capacity["])
    _, kept, _ = run(bad, observed, fleet_store())
    assert set(kept.desired) == set(observed)
    cond = {c.type: c for c in kept.conditions}["ReplicasScheduled"]
    assert cond.status == "False" and cond.reason == "InvalidSelector"
    assert "selectors[0].cel" in cond.message


def test_unresolved_requirements_keep_everything() -> None:
    md = deployment("m", replicas=1, selectors=[MEM20])
    _, composed, _ = run(md, {}, fleet_store())
    observed = observe(composed)
    first_call = place(StepRequest("place", {}, md, observed=observed, context=dict(CONTEXT)))
    kept = compose(StepRequest("compose-deployment", {}, md, observed=observed,
                               context=first_call.context))
    assert set(kept.desired) == set(observed)
    assert {c.type: c.reason for c in kept.conditions}["ReplicasScheduled"] == "WaitingForInputs"


def test_missing_context_keeps_everything() -> None:
    md = deployment("m")
    obs = {"replica-x": {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
                         "metadata": {"name": "x"}, "spec": {}}}
    kept = compose(StepRequest("compose-deployment", {}, md, observed=obs))
    assert set(kept.desired) == {"replica-x"}


def test_unschedulable_status_explains_per_cluster() -> None:
    md = deployment("m", replicas=5, selectors=[MEM20])
    _, composed, _ = run(md, {}, fleet_store())
    assert composed.status["scheduledReplicas"] == 4
    why = {u["cluster"]: u["reason"] for u in composed.status["unschedulable"]}
    assert why == {"a": "InsufficientCapacity", "b": "InsufficientCapacity"}
    cond = {c.type: c for c in composed.conditions}["ReplicasScheduled"]
    assert cond.status == "False" and cond.reason == "Unschedulable"


def test_other_deployments_replicas_fill_the_ledger() -> None:
    md = deployment("m", replicas=4, selectors=[MEM20])
    _, composed, _ = run(md, {}, fleet_store([other_replica("z-1"), other_replica("z-2")]))
    assert composed.status["scheduledReplicas"] == 2
    assert {p["cluster"] for p in composed.status["placements"]} == {"b"}


def other_replica(name: str, composed: bool = True, gpus: int = 1) -> dict[str, Any]:
    """Another namespace's replica on cluster a, pool p (as its ModelDeployment composed it,
    or hand-made)."""
    meta: dict[str, Any] = {"name": name, "namespace": "else"}
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
            "metadata": composed_metadata(meta, "z") if composed else meta,
            "spec": {"deployment": "z", "cluster": "a", "engines": [{"name": "e", "members": [
                {"role": "Standalone", "pool": "p", "template": {"spec": {}},
                 "devices": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com",
                              "count": gpus}]}]}]}}


def test_context_decision_is_plain_json() -> None:
    import json

    placed, _ = run_place(deployment("m", selectors=[MEM20]), {}, fleet_store())
    json.dumps(placed.context[CONTEXT_KEY])
