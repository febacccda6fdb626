"""Builders for compose-cluster / compose-class requests over plain data."""

from __future__ import annotations

import copy
from typing import Any

from modelplane.step import Resource, StepRequest, StepResult
from modelplane.steps.inferencecluster import compose as inferencecluster

API = "modelplane.ai/v1alpha1"

GKE_L4: dict[str, Any] = {
    "provisioning": {"provider": "GKE", "gke": {
        "machineType": "g2-standard-8", "accelerator": {"type": "nvidia-l4", "count": 1}}},
    "devices": [{"name": "gpu", "claim": "DRA", "driver": "gpu.nvidia.com", "count": 1,
                 "capacity": {"memory": {"value": "23034Mi"}}}],
}
EKS_H100: dict[str, Any] = {
    "provisioning": {"provider": "EKS", "eks": {"instanceType": "p5.48xlarge",
                                                "diskSizeGb": 1000}},
    "devices": [{"name": "gpu", "driver": "gpu.nvidia.com", "count": 8}],
    "costPerNodeHour": "55.04",
}
AKS_A100: dict[str, Any] = {
    "provisioning": {"provider": "AKS", "aks": {"vmSize": "Standard_NC24ads_A100_v4",
                                                "priority": "Spot"}},
    "devices": [{"name": "gpu", "driver": "gpu.nvidia.com"}],
}
BARE: dict[str, Any] = {"devices": [{"name": "gpu", "driver": "gpu.nvidia.com", "count": 4}]}

CLUSTER_BLOCKS: dict[str, dict[str, Any]] = {
    "GKE": {"source": "GKE", "gke": {"project": "my-gcp-project", "region": "us-central1"}},
    "EKS": {"source": "EKS", "eks": {"region": "us-east-1", "vpcCidr": "10.0.0.0/16"}},
    "AKS": {"source": "AKS", "aks": {"location": "westeurope"}},
    "Existing": {"source": "Existing", "existing": {"secretRef": {"name": "byo"}}},
}
CLASS_FOR = {"GKE": ("gke-l4-1x", GKE_L4), "EKS": ("eks-h100-8x", EKS_H100),
             "AKS": ("aks-a100", AKS_A100), "Existing": ("bare-4x", BARE)}


def klass(name: str, spec: dict[str, Any]) -> Resource:
    return {"apiVersion": API, "kind": "InferenceClass", "metadata": {"name": name},
            "spec": copy.deepcopy(spec)}


def cluster(source: str, pools: list[dict[str, Any]] | None = None, name: str = "c1",
            **spec: Any) -> Resource:
    cname = CLASS_FOR[source][0]
    if pools is None:
        pools = [{"name": "gpu", "className": cname, "minNodeCount": 1, "maxNodeCount": 2}]
    return {"apiVersion": API, "kind": "InferenceCluster", "metadata": {"name": name},
            "spec": {"cluster": copy.deepcopy(CLUSTER_BLOCKS[source]), "nodePools": pools,
                     **spec}}


def request(xr: Resource, classes: list[Resource] | None = None,
            replicas: list[Resource] | None = None, observed: dict[str, Resource] | None = None,
            resolve: bool = True) -> StepRequest:
    """A request as Crossplane sends it once requirements are resolved (resolve=False: first)."""
    required: dict[str, list[Resource]] = {}
    if resolve:
        by_name = {c["metadata"]["name"]: c for c in classes or []}
        for p in xr["spec"].get("nodePools") or []:
            cn = p["className"]
            required[inferencecluster.class_requirement(cn)] = (
                [by_name[cn]] if cn in by_name else [])
        required["replicas"] = list(replicas or [])
    return StepRequest(step="compose-cluster", input={}, composite=xr,
                       observed=observed or {}, required=required)


def observe(res: StepResult, ready: bool = True, address: str = "34.1.2.3",
            fs_id: str = "fs-0123") -> dict[str, Resource]:
    """What the providers would report after applying ``res.desired`` (all Ready)."""
    out: dict[str, Resource] = {}
    for rname, d in res.desired.items():
        obj = copy.deepcopy(d.resource)
        status: dict[str, Any] = {"conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "reason": "x"}]}
        if rname == "gateway":
            manifest = copy.deepcopy(obj["spec"]["forProvider"]["manifest"])
            manifest["status"] = {"addresses": [{"type": "IPAddress", "value": address}]}
            status["atProvider"] = {"manifest": manifest}
        if rname == "efs":
            status["atProvider"] = {"id": fs_id}
        if obj["kind"] in ("ClusterProviderConfig", "Usage", "ClusterUsage"):
            status = {}
        obj["status"] = status
        out[rname] = obj
    return out


def converge(xr: Resource, classes: list[Resource], replicas: list[Resource] | None = None,
             rounds: int = 4) -> tuple[StepResult, dict[str, Resource]]:
    """Run the step repeatedly, feeding back a healthy observation, like render does."""
    observed: dict[str, Resource] = {}
    res = StepResult()
    for _ in range(rounds):
        res = inferencecluster.compose(request(xr, classes, replicas, observed))
        observed = observe(res)
        xr = {**xr, "status": res.status}
    return res, observed
