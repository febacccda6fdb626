"""The steps hold up under Crossplane v2's semantics that render once hid.

Status is applied as the pipeline's full intent (a field not written is dropped), desired state
is our server-side-apply intent (a field echoed is a field taken over), and composed names are
objects we own and delete.
"""

from __future__ import annotations

import copy
from typing import Any

from modelplane.step import StepRequest, as_desired
from modelplane.steps.inferencecluster import compose as inferencecluster
from modelplane.steps.modeldeployment import compose as modeldeployment

from tests.provisioning.helpers import CLASS_FOR, cluster, converge, klass, request

NESTED_XR = {
    "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
    "metadata": {
        "name": "qwen-0", "namespace": "ml", "uid": "u", "resourceVersion": "7",
        "finalizers": ["composite.apiextensions.crossplane.io"],
        "labels": {"crossplane.io/composite": "qwen", "modelplane.ai/deployment": "qwen",
                   "app.kubernetes.io/managed-by": "modelplane", "team.example.com/x": "1"},
        "annotations": {"crossplane.io/composition-resource-name": "replica-0",
                        "crossplane.io/external-name": "qwen-0",
                        "kubectl.kubernetes.io/last-applied-configuration": "{}",
                        "render.modelplane.ai/health": "Unhealthy",
                        "modelplane.ai/ordinal": "0"}},
    "spec": {"cluster": "c1", "crossplane": {
        "compositionRef": {"name": "modelreplicas"},
        "resourceRefs": [{"apiVersion": "v1", "kind": "Service", "name": "s"}]}},
    "status": {"address": "http://x"},
}


def test_keep_paths_carry_only_the_fields_we_own() -> None:
    kept = as_desired(NESTED_XR)
    assert "status" not in kept
    assert kept["spec"] == {"cluster": "c1"}  # the nested XR's spec.crossplane is its own
    meta = kept["metadata"]
    assert "finalizers" not in meta and "uid" not in meta and "resourceVersion" not in meta
    assert meta["annotations"] == {"crossplane.io/external-name": "qwen-0",
                                   "modelplane.ai/ordinal": "0"}
    # Labels we set (ours and the Kubernetes recommended ones we compose) stay; Crossplane's
    # own are re-added by Crossplane. A label another party set cannot be told apart without
    # managedFields, so it is kept (see the managedFields case below).
    assert "crossplane.io/composite" not in meta["labels"]
    assert meta["labels"]["modelplane.ai/deployment"] == "qwen"


def test_with_managed_fields_keep_paths_carry_only_what_crossplane_applied_for_us() -> None:
    obj = copy.deepcopy(NESTED_XR)
    obj["metadata"]["managedFields"] = [
        {"manager": "apiextensions.crossplane.io/composed/abc", "operation": "Apply",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:modelplane.ai/deployment": {}},
                                     "f:annotations": {"f:modelplane.ai/ordinal": {}}}}},
        {"manager": "kubectl", "operation": "Update",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:team.example.com/x": {}}}}},
    ]
    meta = as_desired(obj)["metadata"]
    assert meta["labels"] == {"modelplane.ai/deployment": "qwen"}
    assert meta["annotations"] == {"modelplane.ai/ordinal": "0"}
    assert "managedFields" not in meta


def _invalid_source(xr: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(xr)
    broken["spec"]["cluster"]["source"] = "Mainframe"
    return broken


def test_an_invalid_cluster_spec_still_writes_what_replicas_and_placement_read() -> None:
    name, spec = CLASS_FOR["GKE"]
    healthy, observed = converge(cluster("GKE"), [klass(name, spec)])
    before = healthy.status
    assert before["providerConfigRef"] and before["pools"] and before["gateway"]
    xr = {**_invalid_source(cluster("GKE")), "status": before}
    res = inferencecluster.compose(request(xr, [klass(name, spec)], [], observed))
    # Status is Crossplane's full intent: without these the running replicas lose their way to
    # the cluster (providerConfigRef, gateway) and placement its ledger (pools).
    for field in ("providerConfigRef", "gateway", "pools"):
        assert res.status[field] == before[field], field
    assert set(res.desired) == set(observed)  # and nothing that runs is dropped


def test_a_deployment_without_a_placement_decision_still_writes_its_counts() -> None:
    status = {"replicas": 3, "desiredReplicas": 3, "scheduledReplicas": 3, "readyReplicas": 3,
              "placements": [{"name": "qwen-0", "cluster": "c1"}], "unschedulable": []}
    md = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelDeployment",
          "metadata": {"name": "qwen", "namespace": "ml"}, "spec": {"replicas": 3},
          "status": status}
    res = modeldeployment.compose(StepRequest("compose-deployment", {}, md))
    for field, value in status.items():
        assert res.status[field] == value, field
    assert res.status["labelSelector"] == "modelplane.ai/deployment=qwen"


def test_a_cluster_named_default_composes_no_object_a_platform_team_owns() -> None:
    name, spec = CLASS_FOR["GKE"]
    xr = cluster("GKE", name="default", credentials={"secretRef": {
        "name": "creds", "namespace": "crossplane-system"}})
    res, _ = converge(xr, [klass(name, spec)])
    configs = {d.resource["metadata"]["name"] for d in res.desired.values()
               if d.resource["kind"] == "ClusterProviderConfig"}
    assert configs and "default" not in configs
    assert all(n.startswith("modelplane-cluster-") for n in configs)
    assert res.status["providerConfigRef"]["kubernetes"]["name"] == "modelplane-cluster-default"


def test_an_invalid_gateway_spec_keeps_publishing_the_address_it_still_serves() -> None:
    from modelplane.steps import inferencegateway

    gw = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceGateway",
          "metadata": {"name": "default"}, "spec": {"backend": "Envoy"},
          "status": {"address": "http://34.1.2.3"}}
    res = inferencegateway.compose(StepRequest("compose-gateway", {}, gw))
    assert res.status["address"] == "http://34.1.2.3"
