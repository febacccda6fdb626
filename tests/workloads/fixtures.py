"""Plain-data builders for compose-replica tests: a ModelReplica and its InferenceCluster."""

from __future__ import annotations

import copy
from typing import Any

from modelplane.step import StepRequest

SEED_CEL = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'


def engine_container(**extra: Any) -> dict[str, Any]:
    return {"name": "engine", "image": "vllm/vllm-openai:v0.7.3",
            "args": ["--model=Qwen/Qwen2.5-0.5B-Instruct"], **extra}


def standalone(pool: str = "gpu-l4", devices: list[dict[str, Any]] | None = None,
               container: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "role": "Standalone", "pool": pool,
        "devices": devices if devices is not None else [
            {"name": "gpu", "deviceClassName": "gpu.nvidia.com", "count": 1,
             "selectors": [{"cel": SEED_CEL}]}],
        "template": {"spec": {"containers": [container or engine_container()]}},
    }


def leader_worker(pool: str = "gpu-h100", nodes: int = 1) -> list[dict[str, Any]]:
    gpus = [{"name": "gpu", "deviceClassName": "gpu.nvidia.com", "count": 8}]
    script = ("ray start --head --port=6379 && vllm serve meta-llama/Llama-3.1-405B "
              "--tensor-parallel-size 8 --pipeline-parallel-size $LWS_GROUP_SIZE")
    worker = "ray start --address=$LWS_LEADER_ADDRESS:6379 --block"
    return [
        {"role": "Leader", "pool": pool, "devices": gpus, "template": {"spec": {"containers": [
            {"name": "engine", "image": "vllm/vllm-openai:v0.10.0",
             "command": ["sh", "-c", script]}]}}},
        {"role": "Worker", "pool": pool, "worker": {"nodes": nodes}, "devices": gpus,
         "template": {"spec": {"containers": [
             {"name": "engine", "image": "vllm/vllm-openai:v0.10.0",
              "command": ["sh", "-c", worker]}]}}},
    ]


def replica(name: str = "qwen-demo-0", namespace: str = "ml-team",
            deployment: str = "qwen-demo", cluster: str = "starter",
            engines: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"modelplane.ai/deployment": deployment,
                                "modelplane.ai/cluster": cluster,
                                "crossplane.io/composite": deployment},
                     # As Crossplane composes it: controlled by its ModelDeployment.
                     "ownerReferences": [{"apiVersion": "modelplane.ai/v1alpha1",
                                          "kind": "ModelDeployment", "name": deployment,
                                          "uid": f"uid-{deployment}", "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {"deployment": deployment, "cluster": cluster,
                 "serving": {"mode": "Unified"},
                 "engines": engines if engines is not None else [
                     {"name": "qwen", "copies": 1, "members": [standalone()]}],
                 **spec},
    }


def cluster(name: str = "starter", address: str | None = "34.1.2.3",
            pc: dict[str, str] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "providerConfigRef": {"kubernetes": pc if pc is not None else
                              {"kind": "ClusterProviderConfig", "name": f"{name}-kubernetes"}}}
    if address:
        status["gateway"] = {"address": address}
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
            "metadata": {"name": name}, "spec": {}, "status": status}


def modelcache(name: str = "qwen-weights", namespace: str = "ml-team",
               repo: str = "Qwen/Qwen2.5-0.5B-Instruct") -> dict[str, Any]:
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelCache",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": "HuggingFace", "huggingFace": {"repo": repo, "sizeGiB": 10}}}


def request(xr: dict[str, Any], clusters: list[dict[str, Any]] | None = None,
            caches: list[dict[str, Any]] | None = None,
            observed: dict[str, Any] | None = None,
            resolved: bool = True) -> StepRequest:
    """A compose-replica request; ``resolved=False`` is the loop's first call (nothing yet)."""
    required: dict[str, list[dict[str, Any]]] = {}
    if resolved:
        required["cluster"] = copy.deepcopy(clusters if clusters is not None else [cluster()])
        if (xr["spec"].get("modelCacheRef") or {}).get("name"):
            required["modelcache"] = copy.deepcopy(caches or [])
    return StepRequest(step="compose-replica", input={}, composite=copy.deepcopy(xr),
                       observed=copy.deepcopy(observed or {}), required=required)


def manifests(desired: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Composition resource name -> the remote manifest inside the Object (Objects only: a
    replica also composes Usages of its ModelCache on the control plane)."""
    return {n: d.resource["spec"]["forProvider"]["manifest"] for n, d in desired.items()
            if d.resource.get("kind") == "Object"}


def observed_from(desired: dict[str, Any], ready: bool = True) -> dict[str, dict[str, Any]]:
    """What the control plane would observe after provider-kubernetes applied everything."""
    from modelplane.render.providers import remote_status

    out: dict[str, dict[str, Any]] = {}
    for n, d in desired.items():
        obj = copy.deepcopy(d.resource)
        obj["status"] = {
            "atProvider": {"manifest": remote_status(obj["spec"]["forProvider"]["manifest"],
                                                     ready)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "reason": "Available" if ready else "Unavailable"}]}
        out[n] = obj
    return out
