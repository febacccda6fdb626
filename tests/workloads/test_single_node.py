"""A Standalone engine becomes a Deployment whose pods claim the placed devices through DRA."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.step import StepResult
from modelplane.steps.modelreplica.compose import compose

from tests.conformance import problems
from tests.workloads.fixtures import SEED_CEL, cluster, manifests, replica, request, standalone


def _compose(xr: dict[str, Any] | None = None) -> StepResult:
    return compose(request(xr or replica()))


def test_standalone_engine_becomes_a_deployment_with_copies_as_replicas() -> None:
    xr = replica(engines=[{"name": "qwen", "copies": 3, "members": [standalone()]}])
    m = manifests(_compose(xr).desired)["workload-qwen"]
    assert (m["apiVersion"], m["kind"]) == ("apps/v1", "Deployment")
    assert m["spec"]["replicas"] == 3
    assert m["metadata"]["namespace"] == "ml-team"


def test_claim_template_carries_the_seed_cel_verbatim() -> None:
    m = manifests(_compose().desired)["claims-qwen-standalone"]
    assert (m["apiVersion"], m["kind"]) == ("resource.k8s.io/v1", "ResourceClaimTemplate")
    assert m["spec"]["spec"]["devices"]["requests"] == [{
        "name": "gpu",
        "exactly": {"deviceClassName": "gpu.nvidia.com", "allocationMode": "ExactCount",
                    "count": 1, "selectors": [{"cel": {"expression": SEED_CEL}}]},
    }]


def test_pods_reference_the_claim_template_from_every_container() -> None:
    out = manifests(_compose().desired)
    pod = out["workload-qwen"]["spec"]["template"]["spec"]
    rct = out["claims-qwen-standalone"]["metadata"]["name"]
    assert pod["resourceClaims"] == [{"name": "modelplane-devices",
                                      "resourceClaimTemplateName": rct}]
    assert all(c["resources"]["claims"] == [{"name": "modelplane-devices"}]
               for c in pod["containers"])


def test_pods_are_pinned_to_the_placed_pool_and_tolerate_the_gpu_taint() -> None:
    pod = manifests(_compose().desired)["workload-qwen"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"modelplane.ai/pool": "gpu-l4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        pod["tolerations"])


def _tainted(tolerable: bool) -> dict[str, Any]:
    c = cluster()
    c["spec"]["taints"] = [{"key": "example.com/spot", "effect": "NoExecute",
                            "tolerable": tolerable}]
    return c


def test_replica_tolerations_of_tolerable_taints_reach_the_pods() -> None:
    tol = {"key": "example.com/spot", "operator": "Exists", "effect": "NoExecute"}
    out = compose(request(replica(tolerations=[tol]), clusters=[_tainted(True)]))
    pod = manifests(out.desired)["workload-qwen"]
    assert tol in pod["spec"]["template"]["spec"]["tolerations"]


@pytest.mark.parametrize("tol", [
    {"operator": "Exists"},
    {"key": "example.com/spot", "operator": "Exists"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}])
def test_replica_tolerations_of_other_taints_never_reach_the_pods(tol: dict[str, str]) -> None:
    out = compose(request(replica(tolerations=[tol]), clusters=[_tainted(False)]))
    pod = manifests(out.desired)["workload-qwen"]
    assert pod["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_member_without_devices_claims_nothing() -> None:
    xr = replica(engines=[{"name": "cpu", "members": [standalone(devices=[])]}])
    out = _compose(xr).desired
    assert not any(n.startswith("claims-") for n in out)
    pod = manifests(out)["workload-cpu"]["spec"]["template"]["spec"]
    assert "resourceClaims" not in pod
    assert all("claims" not in c.get("resources", {}) for c in pod["containers"])


def test_synthetic_devices_are_never_claimed() -> None:
    devices = [{"name": "gpu", "deviceClassName": "gpu.nvidia.com", "count": 1},
               {"name": "fpga", "claim": "Synthetic", "count": 1}]
    xr = replica(engines=[{"name": "qwen", "members": [standalone(devices=devices)]}])
    rct = manifests(_compose(xr).desired)["claims-qwen-standalone"]
    assert [r["name"] for r in rct["spec"]["spec"]["devices"]["requests"]] == ["gpu"]


def test_one_request_per_device_request() -> None:
    devices = [{"name": "gpu", "deviceClassName": "gpu.nvidia.com", "count": 2},
               {"name": "nic", "deviceClassName": "rdma.example.com", "count": 1,
                "selectors": [{"cel": 'device.attributes["rdma.example.com"].speed >= 400'}]}]
    xr = replica(engines=[{"name": "qwen", "members": [standalone(devices=devices)]}])
    reqs = manifests(_compose(xr).desired)["claims-qwen-standalone"]["spec"]["spec"]["devices"]
    assert [(r["name"], r["exactly"]["count"]) for r in reqs["requests"]] == [
        ("gpu", 2), ("nic", 1)]


def test_objects_use_the_clusters_provider_config_in_the_replicas_namespace() -> None:
    for name, d in _compose().desired.items():
        obj = d.resource
        assert obj["apiVersion"] == "kubernetes.m.crossplane.io/v1alpha1", name
        assert obj["metadata"]["namespace"] == "ml-team", name
        assert obj["spec"]["providerConfigRef"] == {"kind": "ClusterProviderConfig",
                                                    "name": "starter-kubernetes"}, name
        assert obj["spec"]["forProvider"]["manifest"]["metadata"]["namespace" if (
            obj["spec"]["forProvider"]["manifest"]["kind"] != "Namespace") else "name"] == (
            "ml-team"), name


def test_remote_namespace_is_never_deleted() -> None:
    ns = _compose().desired["namespace"].resource
    assert ns["spec"]["forProvider"]["manifest"]["kind"] == "Namespace"
    assert "Delete" not in ns["spec"]["managementPolicies"]
    assert "*" not in ns["spec"]["managementPolicies"]


def test_output_is_deterministic() -> None:
    a = {n: d.resource for n, d in _compose().desired.items()}
    b = {n: d.resource for n, d in _compose().desired.items()}
    assert a == b


@pytest.mark.parametrize("name", ["namespace", "claims-qwen-standalone", "workload-qwen",
                                  "service", "route"])
def test_every_composed_object_conforms(name: str) -> None:
    assert problems(_compose().desired[name].resource) == []


def test_namespace_object_follows_the_shared_remote_namespace_convention() -> None:
    ns = _compose().desired["namespace"].resource
    assert ns["metadata"]["name"] == "modelreplica-qwen-demo-0-starter-namespace"
    ps = "pod-security.kubernetes.io/"
    assert ns["spec"]["forProvider"]["manifest"] == {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml-team", "labels": {
            f"{ps}enforce": "baseline", f"{ps}enforce-version": "latest",
            f"{ps}warn": "baseline", f"{ps}warn-version": "latest",
            f"{ps}audit": "baseline", f"{ps}audit-version": "latest"}}}
