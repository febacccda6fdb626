"""A small, explicit simulation of the providers and controllers behind composed objects.

Real clusters would have provider-gcp create a GKE cluster, provider-kubernetes apply an Object
and report the remote object's state, a Deployment controller make pods available, and so on.
Offline, each rule below stands in for one of those controllers, so a rendered fleet can converge.
Every simulated fact is plausible and deterministic (addresses are hashed from object names).

Fault injection: an object annotated ``render.modelplane.ai/health: Unhealthy`` -- or composed,
at any depth, by one so annotated -- is reported as failing (Ready=False, remote workloads
unavailable). Remove the annotation and the next render round heals it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable
from typing import Any

from modelplane.render.store import Obj, Store, group_of, key_of

HEALTH_ANNOTATION = "render.modelplane.ai/health"

Rule = Callable[[Obj, bool], dict[str, Any]]


def fake_ip(seed: str, first_octet: int = 10) -> str:
    d = hashlib.sha256(seed.encode()).digest()
    return f"{first_octet}.{d[0]}.{d[1]}.{max(d[2], 1)}"


def _cond(type_: str, ok: bool, reason_ok: str, reason_bad: str) -> dict[str, Any]:
    return {"type": type_, "status": "True" if ok else "False",
            "reason": reason_ok if ok else reason_bad}


def _seed(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}"


# -- remote Kubernetes objects (inside provider-kubernetes Objects, or composed directly) --------

def _deployment(m: Obj, ok: bool) -> dict[str, Any]:
    n = int((m.get("spec") or {}).get("replicas", 1))
    ready = n if ok else 0
    return {"replicas": n, "updatedReplicas": n, "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": 1,
            "conditions": [_cond("Available", ok, "MinimumReplicasAvailable",
                                 "MinimumReplicasUnavailable")]}


def _lws(m: Obj, ok: bool) -> dict[str, Any]:
    n = int((m.get("spec") or {}).get("replicas", 1))
    return {"replicas": n, "readyReplicas": n if ok else 0, "updatedReplicas": n,
            "conditions": [_cond("Available", ok, "AllGroupsReady", "GroupsNotReady")]}


def _service(m: Obj, ok: bool) -> dict[str, Any]:
    if (m.get("spec") or {}).get("type") == "LoadBalancer" and ok:
        return {"loadBalancer": {"ingress": [{"ip": fake_ip(_seed(m), 34)}]}}
    return {"loadBalancer": {}}


def _job(m: Obj, ok: bool) -> dict[str, Any]:
    if ok:
        return {"succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached"}]}
    return {"failed": 1, "conditions": [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "simulated hydration failure"}]}


def _pvc(m: Obj, ok: bool) -> dict[str, Any]:
    size = (((m.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    return {"phase": "Bound" if ok else "Pending",
            **({"capacity": {"storage": size}} if size and ok else {})}


def _gateway(m: Obj, ok: bool) -> dict[str, Any]:
    return {"addresses": [{"type": "IPAddress", "value": fake_ip(_seed(m), 34)}] if ok else [],
            "conditions": [_cond("Accepted", ok, "Accepted", "Pending"),
                           _cond("Programmed", ok, "Programmed", "AddressNotAssigned")]}


def _route(m: Obj, ok: bool) -> dict[str, Any]:
    parents = []
    for ref in (m.get("spec") or {}).get("parentRefs") or []:
        parents.append({"parentRef": ref,
                        "controllerName": "traefik.io/gateway-controller",
                        "conditions": [
                            _cond("Accepted", ok, "Accepted", "NotAllowedByListeners"),
                            _cond("ResolvedRefs", ok, "ResolvedRefs", "BackendNotFound")]})
    return {"parents": parents}


def _gateway_class(m: Obj, ok: bool) -> dict[str, Any]:
    return {"conditions": [_cond("Accepted", ok, "Accepted", "InvalidParameters")]}


REMOTE: dict[tuple[str, str], Rule] = {
    ("apps", "Deployment"): _deployment,
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): _lws,
    ("", "Service"): _service,
    ("batch", "Job"): _job,
    ("", "PersistentVolumeClaim"): _pvc,
    ("gateway.networking.k8s.io", "Gateway"): _gateway,
    ("gateway.networking.k8s.io", "GatewayClass"): _gateway_class,
    ("gateway.networking.k8s.io", "HTTPRoute"): _route,
    ("gateway.networking.k8s.io", "GRPCRoute"): _route,
}


def remote_status(manifest: Obj, ok: bool) -> Obj:
    """The manifest as its cluster's controllers would report it (with a status)."""
    out = copy.deepcopy(manifest)
    rule = REMOTE.get((group_of(str(manifest.get("apiVersion", ""))), str(manifest.get("kind"))))
    if rule is not None:
        out["status"] = rule(manifest, ok)
    return out


# -- managed resources ----------------------------------------------------------------------------

def _kubeconfig(server: str, name: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: {name}\n  cluster:\n    server: https://{server}\n"
        f"contexts:\n- name: {name}\n  context: {{cluster: {name}, user: {name}}}\n"
        f"current-context: {name}\nusers:\n- name: {name}\n  user: {{token: simulated}}\n"
    )


def _is_managed(obj: Obj) -> bool:
    group = group_of(str(obj.get("apiVersion", "")))
    if group.endswith(".upbound.io"):
        return True
    return group in ("kubernetes.m.crossplane.io", "helm.m.crossplane.io",
                     "kubernetes.crossplane.io", "helm.crossplane.io") and obj.get("kind") in (
        "Object", "Release")


def _at_provider(obj: Obj, ok: bool) -> dict[str, Any]:
    kind, group = obj.get("kind"), group_of(str(obj.get("apiVersion", "")))
    seed = _seed(obj)
    if kind == "Object":
        manifest = ((obj.get("spec") or {}).get("forProvider") or {}).get("manifest") or {}
        remote = remote_status(manifest, ok)
        # Every inference cluster has the same in-cluster Gateway (modelplane-system/modelplane),
        # but each cluster's load balancer has its own address: seed it with the Object, which
        # is one per cluster, instead of the manifest's name.
        mmeta = manifest.get("metadata") or {}
        if (manifest.get("kind") == "Gateway" and ok and mmeta.get("name") == "modelplane"
                and mmeta.get("namespace") == "modelplane-system"):
            remote["status"]["addresses"] = [{"type": "IPAddress", "value": fake_ip(seed, 34)}]
        return {"manifest": remote}
    if kind == "Release":
        return {"state": "deployed" if ok else "failed", "revision": 1}
    if kind == "Cluster" and group.startswith("container.gcp"):
        return {"endpoint": fake_ip(seed, 35), "id": seed.split("/")[-1]}
    if kind == "Cluster" and group.startswith("eks.aws"):
        name = seed.split("/")[-1]
        return {"endpoint": f"https://{hashlib.sha256(seed.encode()).hexdigest()[:16].upper()}"
                            f".gr7.us-east-1.eks.amazonaws.com", "status": "ACTIVE",
                "arn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}"}
    if kind == "KubernetesCluster":
        return {"fqdn": f"{seed.split('/')[-1]}.hcp.westeurope.azmk8s.io"}
    return {"id": seed.split("/")[-1]}


def simulate(store: Store) -> bool:
    """Advance every simulated controller one step; True when anything changed."""
    changed = False
    by_uid = {str((o.get("metadata") or {}).get("uid")): o for _, o in store.items()}
    for key, obj in list(store.items()):
        if not _is_managed(obj):
            rule = REMOTE.get((key[0], key[1]))
            if rule is not None:  # a Kubernetes object composed directly on the control plane
                ok = healthy(by_uid, obj)
                new = copy.deepcopy(obj)
                new["status"] = rule(obj, ok)
                changed |= store.put(new)
            continue
        ok = healthy(by_uid, obj)
        new = copy.deepcopy(obj)
        status = dict(new.get("status") or {})
        status["atProvider"] = _at_provider(obj, ok)
        status["conditions"] = [
            _cond("Ready", ok, "Available", "Unavailable"),
            _cond("Synced", True, "ReconcileSuccess", "ReconcileError"),
        ]
        new["status"] = status
        changed |= store.put(new)
        changed |= _write_connection_secret(store, new, ok)
    return changed


def _write_connection_secret(store: Store, obj: Obj, ok: bool) -> bool:
    ref = (obj.get("spec") or {}).get("writeConnectionSecretToRef")
    if not ref or not ok:
        return False
    ns = ref.get("namespace") or (obj.get("metadata") or {}).get("namespace") or "crossplane-system"
    at = (obj.get("status") or {}).get("atProvider") or {}
    server = str(at.get("endpoint") or at.get("fqdn") or fake_ip(_seed(obj), 35))
    server = server.removeprefix("https://")
    data = {"kubeconfig": base64.b64encode(
        _kubeconfig(server, obj["metadata"]["name"]).encode()).decode()}
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "connection.crossplane.io/v1alpha1",
              "metadata": {"name": ref["name"], "namespace": ns}, "data": data}
    return store.put(secret)


def healthy(by_uid: dict[str, Obj], obj: Obj) -> bool:
    """False when the object, or any controller owner above it, is marked Unhealthy."""
    seen: set[str] = set()
    cur: Obj | None = obj
    while cur is not None:
        meta = cur.get("metadata") or {}
        if (meta.get("annotations") or {}).get(HEALTH_ANNOTATION) == "Unhealthy":
            return False
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if owner is None or owner.get("uid") in seen:
            return True
        seen.add(str(owner.get("uid")))
        cur = by_uid.get(str(owner.get("uid")))
    return True


__all__ = ["HEALTH_ANNOTATION", "key_of", "remote_status", "simulate"]
