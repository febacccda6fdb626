"""Builders for ModelCache step tests: caches, clusters, and what providers report."""

from __future__ import annotations

import base64
import copy
from typing import Any

from modelplane.render.providers import remote_status
from modelplane.step import Desired, Resource, StepRequest, StepResult
from modelplane.steps import modelcache

NS = "team-a"
TOKEN_VALUE = "hf_thisIsTheSecretTokenValue42"


def cache(name: str = "qwen", *, selector: dict[str, Any] | None = None,
          storage_class: str | None = None, token: bool = False,
          revision: str = "main") -> Resource:
    hf: dict[str, Any] = {"repo": "Qwen/Qwen2.5-0.5B-Instruct", "revision": revision}
    if token:
        hf["authSecret"] = {"name": "hf-token", "key": "token"}
    hf["sizeGiB"] = 20
    spec: dict[str, Any] = {"source": "HuggingFace", "huggingFace": hf}
    if selector is not None:
        spec["clusterSelector"] = selector
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelCache",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def cluster(name: str, *, labels: dict[str, str] | None = None, ready: bool = True,
            storage_class: str | None = "standard-rwx", provider: bool = True) -> Resource:
    status: dict[str, Any] = {"conditions": [
        {"type": "Ready", "status": "True" if ready else "False",
         "reason": "Available" if ready else "Unavailable"}]}
    if provider:
        status["providerConfigRef"] = {
            "kubernetes": {"kind": "ClusterProviderConfig", "name": f"{name}-kubernetes"},
            "helm": {"kind": "ClusterProviderConfig", "name": f"{name}-helm"}}
    if storage_class:
        status["storageClassName"] = storage_class
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
            "metadata": {"name": name, "labels": dict(labels or {})}, "status": status}


def secret(value: str = TOKEN_VALUE, key: str = "token") -> Resource:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "hf-token", "namespace": NS},
            "data": {key: base64.b64encode(value.encode()).decode()}}


def request(xr: Resource, clusters: list[Resource] | None, *,
            secrets: list[Resource] | None = None,
            observed: dict[str, Resource] | None = None,
            readers: list[Resource] | None = None, readers_known: bool = True) -> StepRequest:
    required: dict[str, list[Resource]] = {}
    if clusters is not None:
        required["clusters"] = clusters
    if readers_known:
        required["readers"] = list(readers or [])
    if secrets is not None:
        required["token-secret"] = secrets
    return StepRequest(step="compose-cache", input={}, composite=xr,
                       observed=copy.deepcopy(observed or {}), required=required)


def run(xr: Resource, clusters: list[Resource] | None, **kw: Any) -> StepResult:
    return modelcache.compose(request(xr, clusters, **kw))


def reader(name: str, cluster: str, cache: str = "qwen") -> Resource:
    """A ModelReplica of the cache's namespace that mounts ``cache`` on ``cluster``."""
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"cluster": cluster, "modelCacheRef": {"name": cache}}}


def observe(desired: dict[str, Desired], *, healthy: bool = True,
            unhealthy: set[str] | None = None) -> dict[str, Resource]:
    """What provider-kubernetes reports after applying ``desired`` (the render simulation)."""
    out: dict[str, Resource] = {}
    for name, d in desired.items():
        obj = copy.deepcopy(d.resource)
        ok = healthy and name not in (unhealthy or set())
        manifest = obj["spec"]["forProvider"]["manifest"]
        obj["metadata"]["uid"] = f"uid-{name}"
        obj["status"] = {
            "atProvider": {"manifest": remote_status(manifest, ok)},
            "conditions": [{"type": "Ready", "status": "True" if ok else "False",
                            "reason": "Available" if ok else "Unavailable"},
                           {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"}]}
        out[name] = obj
    return out


def converge(xr: Resource, clusters: list[Resource], rounds: int = 3,
             **kw: Any) -> tuple[StepResult, dict[str, Resource]]:
    """Run the step and the simulated providers until the desired state settles."""
    observed: dict[str, Resource] = {}
    res = run(xr, clusters, observed=observed, **kw)
    for _ in range(rounds):
        observed = observe(res.desired)
        res = run(xr, clusters, observed=observed, **kw)
    return res, observed


def manifest(res: StepResult, rname: str) -> dict[str, Any]:
    m: dict[str, Any] = res.desired[rname].resource["spec"]["forProvider"]["manifest"]
    return m


def of_cluster(res: StepResult, cluster_name: str) -> dict[str, str]:
    """Manifest kind -> resource name of one cluster's composed Objects."""
    out: dict[str, str] = {}
    for rname, d in res.desired.items():
        if d.resource["metadata"]["labels"].get("modelplane.ai/cluster") == cluster_name:
            out[d.resource["spec"]["forProvider"]["manifest"]["kind"]] = rname
    return out
