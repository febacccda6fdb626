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
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelplane.contract.api import GROUP, INFERENCE_CLUSTER
from modelplane.contract.metadata import GATEWAY_LABEL, POOL_LABEL
from modelplane.render.store import Key, Obj, Store, group_of, key_of

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


def _wants_metallb(store: Store, gateway: str) -> bool:
    """True when a MetalLB Release is composed for the gateway labelled ``gateway``."""
    for _, obj in store.items():
        labels = (obj.get("metadata") or {}).get("labels") or {}
        chart = (((obj.get("spec") or {}).get("forProvider") or {}).get("chart") or {})
        if (obj.get("kind") == "Release" and labels.get(GATEWAY_LABEL) == gateway
                and chart.get("name") == "metallb"):
            return True
    return False


def _is_managed(obj: Obj) -> bool:
    group = group_of(str(obj.get("apiVersion", "")))
    if group.endswith(".upbound.io"):
        return True
    return group in ("kubernetes.m.crossplane.io", "helm.m.crossplane.io",
                     "kubernetes.crossplane.io", "helm.crossplane.io") and obj.get("kind") in (
        "Object", "Release")


def _at_provider(obj: Obj, ok: bool, admitted: _Workload | None = None) -> dict[str, Any]:
    kind, group = obj.get("kind"), group_of(str(obj.get("apiVersion", "")))
    seed = _seed(obj)
    if kind == "Object":
        manifest = ((obj.get("spec") or {}).get("forProvider") or {}).get("manifest") or {}
        remote = remote_status(manifest, ok)
        if admitted is not None:
            _admitted_status(remote, admitted, ok)
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
                "arn": f"arn:aws:eks:us-east-1:123456789012:cluster/{name}",
                # The security group EKS creates for the cluster (EFA launch templates name it).
                "vpcConfig": {"clusterSecurityGroupId":
                              f"sg-{hashlib.sha256(seed.encode()).hexdigest()[:17]}"}}
    if kind == "SecurityGroup":
        return {"id": f"sg-{hashlib.sha256(seed.encode()).hexdigest()[:17]}"}
    if kind == "LaunchTemplate":  # provider-aws reports the version a node group can name
        return {"id": f"lt-{hashlib.sha256(seed.encode()).hexdigest()[:17]}", "latestVersion": 1}
    if kind == "KubernetesCluster":
        return {"fqdn": f"{seed.split('/')[-1]}.hcp.westeurope.azmk8s.io"}
    return {"id": seed.split("/")[-1]}


def _first_address(pool: str) -> str | None:
    """The address MetalLB allocates first from a pool entry (``start-end`` or a CIDR)."""
    try:
        if "-" in pool:
            return str(ipaddress.ip_address(pool.split("-", 1)[0].strip()))
        return str(ipaddress.ip_network(pool.strip(), strict=False).network_address)
    except ValueError:
        return None


def _metallb_addresses(store: Store, by_uid: dict[str, Obj]) -> dict[str, str]:
    """Gateway label -> the address MetalLB gives that gateway's Traefik Service.

    Stands in for MetalLB: an IPAddressPool that exists (its Object is healthy) and is labelled
    for a gateway hands that gateway's Service the pool's first address.
    """
    out: dict[str, str] = {}
    for _, obj in sorted(store.items()):
        m = _manifest(obj)
        gw = ((obj.get("metadata") or {}).get("labels") or {}).get(GATEWAY_LABEL)
        if obj.get("kind") != "Object" or m.get("kind") != "IPAddressPool" or not gw:
            continue
        pools = (m.get("spec") or {}).get("addresses") or []
        first = _first_address(str(pools[0])) if pools else None
        if first and healthy(by_uid, obj):
            out.setdefault(str(gw), first)
    return out


def simulate(store: Store) -> bool:
    """Advance every simulated controller one step; True when anything changed."""
    changed = False
    admitted = admit(store)  # DRA admission, from the state before this step
    by_uid = {str((o.get("metadata") or {}).get("uid")): o for _, o in store.items()}
    metallb = _metallb_addresses(store, by_uid)
    for key, obj in list(store.items()):
        if not _is_managed(obj):
            rule = REMOTE.get((key[0], key[1]))
            if rule is not None:  # a Kubernetes object composed directly on the control plane
                ok = healthy(by_uid, obj)
                new = copy.deepcopy(obj)
                new["status"] = rule(obj, ok)
                gw = ((obj.get("metadata") or {}).get("labels") or {}).get(GATEWAY_LABEL)
                if key[1] == "Gateway" and ok and gw:
                    # With MetalLB, the gateway's Service has an address only once its pool
                    # exists, and then from that pool.
                    if metallb.get(str(gw)):
                        new["status"]["addresses"] = [
                            {"type": "IPAddress", "value": metallb[str(gw)]}]
                    elif _wants_metallb(store, str(gw)):
                        new["status"] = {"addresses": [], "conditions": [
                            _cond("Accepted", True, "Accepted", "Pending"),
                            _cond("Programmed", False, "Programmed", "AddressNotAssigned")]}
                changed |= store.put(new)
            continue
        ok = healthy(by_uid, obj)
        new = copy.deepcopy(obj)
        status = dict(new.get("status") or {})
        status["atProvider"] = _at_provider(obj, ok, admitted.get(key))
        wl = admitted.get(key)
        # provider-kubernetes derives an Object's readiness from its remote workload (the
        # Available=True CEL query): a workload with Pending pods is not ready.
        ready = ok and not (wl is not None and any(p.why for p in wl.pods))
        status["conditions"] = [
            _cond("Ready", ready, "Available", "Unavailable"),
            _cond("Synced", True, "ReconcileSuccess", "ReconcileError"),
        ]
        new["status"] = status
        changed |= store.put(new)
        changed |= _write_connection_secret(store, new, ok)
    return changed


# -- DRA admission on inference clusters ----------------------------------------------------------
#
# The one rule that can make a workload wait: every pod's ResourceClaim must be allocated whole on
# ONE node of the pool its nodeSelector (modelplane.ai/pool) pins it to. Per remote cluster (the
# Object's providerConfigRef, matched to the InferenceCluster that publishes it) and pool, pods are
# admitted first-come (Object creationTimestamp, then name; pods in workload order) onto the
# pool's nodes (status.pools[]: nodeCeiling nodes of `devices`), first fit. An admitted pod keeps
# its node (recorded on the observed remote workload, ADMISSION_ANNOTATION) while its pool and
# claim still fit there: no preemption. A pod that fits nowhere is Pending, and its workload is
# not Available (reason Unschedulable, message with the numbers). Pods without claims, workloads
# without a known cluster or pool list, and other kinds are admitted without accounting.

ADMISSION_ANNOTATION = "render.modelplane.ai/nodes"
UNSCHEDULABLE = "Unschedulable"
_WORKLOADS = {("apps", "Deployment"), ("leaderworkerset.x-k8s.io", "LeaderWorkerSet")}

Demand = dict[str, int]  # DeviceClass name -> devices one pod claims


@dataclass
class _Pod:
    pool: str
    demand: Demand
    node: str = ""  # "" while Pending
    why: str = ""


@dataclass
class _Workload:
    key: Key
    pods: list[_Pod] = field(default_factory=list)
    # Pods per group: Deployment 1, LeaderWorkerSet 1 + workers (a group is ready when whole).
    group: int = 1


def _manifest(obj: Obj) -> Obj:
    m = ((obj.get("spec") or {}).get("forProvider") or {}).get("manifest")
    return m if isinstance(m, dict) else {}


def _cluster_of(obj: Obj) -> str:
    ref = (obj.get("spec") or {}).get("providerConfigRef") or {}
    return str(ref.get("name") or "")


def _node_shapes(store: Store) -> dict[str, dict[str, tuple[int, Demand]]]:
    """ProviderConfig name -> pool -> (nodes, devices per node by DeviceClass)."""
    out: dict[str, dict[str, tuple[int, Demand]]] = {}
    for (group, kind, _, _), obj in store.items():
        if group != GROUP or kind != INFERENCE_CLUSTER:
            continue
        status = obj.get("status") or {}
        pc = str(((status.get("providerConfigRef") or {}).get("kubernetes") or {}).get("name")
                 or "")
        pools = [p for p in status.get("pools") or [] if isinstance(p, dict)]
        if not pc or not pools:
            continue
        shapes: dict[str, tuple[int, Demand]] = {}
        for p in pools:
            per_node: Demand = {}
            for d in p.get("devices") or []:
                if not isinstance(d, dict) or (d.get("claim") or "DRA") == "Synthetic":
                    continue
                dc = str(d.get("deviceClassName") or d.get("driver") or "")
                per_node[dc] = per_node.get(dc, 0) + _count(d.get("count"), 1)
            shapes[str(p.get("name", ""))] = (_count(p.get("nodeCeiling"), 0), per_node)
        out[pc] = shapes
    return out


def _count(v: Any, default: int) -> int:
    try:
        return max(int(v), 0)
    except (TypeError, ValueError):
        return default


def _claim_demands(store: Store) -> dict[tuple[str, str, str], Demand]:
    """(ProviderConfig, namespace, ResourceClaimTemplate name) -> devices one claim asks for."""
    out: dict[tuple[str, str, str], Demand] = {}
    for _, obj in store.items():
        m = _manifest(obj)
        if obj.get("kind") != "Object" or m.get("kind") != "ResourceClaimTemplate":
            continue
        demand: Demand = {}
        devices = (((m.get("spec") or {}).get("spec") or {}).get("devices") or {})
        for r in devices.get("requests") or []:
            exactly = (r or {}).get("exactly") or {}
            dc = str(exactly.get("deviceClassName") or "")
            if dc:
                demand[dc] = demand.get(dc, 0) + _count(exactly.get("count"), 1)
        meta = m.get("metadata") or {}
        out[(_cluster_of(obj), str(meta.get("namespace") or ""), str(meta.get("name")))] = demand
    return out


def _pod_demand(template: Obj, pc: str, ns: str,
                claims: dict[tuple[str, str, str], Demand]) -> Demand | str:
    """What one pod of the template claims, or why it cannot be scheduled at all."""
    demand: Demand = {}
    for rc in (template.get("spec") or {}).get("resourceClaims") or []:
        name = (rc or {}).get("resourceClaimTemplateName")
        if not name:
            continue
        got = claims.get((pc, ns, str(name)))
        if got is None:
            return f"ResourceClaimTemplate {ns}/{name} not found"
        for dc, n in got.items():
            demand[dc] = demand.get(dc, 0) + n
    return demand


def _pods(m: Obj) -> tuple[list[Obj], int]:
    """The pod templates of a workload, one per pod in creation order, and the group size."""
    spec = m.get("spec") or {}
    replicas = _count(spec.get("replicas", 1), 1)
    if m.get("kind") == "Deployment":
        return [spec.get("template") or {}] * replicas, 1
    lwt = spec.get("leaderWorkerTemplate") or {}
    size = max(_count(lwt.get("size", 1), 1), 1)
    leader = lwt.get("leaderTemplate") or lwt.get("workerTemplate") or {}
    worker = lwt.get("workerTemplate") or {}
    return ([leader] + [worker] * (size - 1)) * replicas, size


def _created(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""),
            str(meta.get("name") or ""))


def admit(store: Store) -> dict[Key, _Workload]:
    """Allocate every claiming pod of every remote workload; the workloads that claim devices."""
    shapes = _node_shapes(store)
    claims = _claim_demands(store)
    workloads: list[tuple[tuple[str, str, str], str, _Workload, list[str]]] = []
    for key, obj in store.items():
        m = _manifest(obj)
        pc = _cluster_of(obj)
        if (obj.get("kind") != "Object" or pc not in shapes
                or (group_of(str(m.get("apiVersion", ""))), m.get("kind")) not in _WORKLOADS):
            continue
        ns = str((m.get("metadata") or {}).get("namespace") or "")
        templates, size = _pods(m)
        wl = _Workload(key, group=size)
        for t in templates:
            pool = str(((t.get("spec") or {}).get("nodeSelector") or {}).get(POOL_LABEL) or "")
            demand = _pod_demand(t, pc, ns, claims)
            if isinstance(demand, str):
                wl.pods.append(_Pod(pool, {}, why=demand))
            else:
                wl.pods.append(_Pod(pool, {k: v for k, v in demand.items() if v}))
        if not any(p.demand or p.why for p in wl.pods):
            continue  # claims nothing: admitted without accounting
        record = str((((obj.get("status") or {}).get("atProvider") or {}).get("manifest") or {})
                       .get("metadata", {}).get("annotations", {}).get(ADMISSION_ANNOTATION) or "")
        workloads.append((_created(obj), pc, wl, record.split(",") if record else []))
    workloads.sort(key=lambda w: w[0])

    # Free devices per node: (cluster, pool) -> node index -> DeviceClass -> free.
    free: dict[tuple[str, str], list[Demand]] = {}
    for pc, pools in shapes.items():
        for pool, (nodes, per_node) in pools.items():
            free[(pc, pool)] = [dict(per_node) for _ in range(nodes)]

    def take(pc: str, pod: _Pod, node: int) -> bool:
        nodes = free.get((pc, pod.pool), [])
        if not 0 <= node < len(nodes) or any(nodes[node].get(dc, 0) < n
                                              for dc, n in pod.demand.items()):
            return False
        for dc, n in pod.demand.items():
            nodes[node][dc] -= n
        pod.node = f"{pod.pool}/{node}"
        return True

    # Pass 1: admitted pods keep their node (no preemption). Pass 2: the rest, first-come.
    for entry in workloads:
        pc, wl, recorded = entry[1], entry[2], entry[3]
        for pod, was in zip(wl.pods, recorded, strict=False):
            was_pool, idx = was.rpartition("/")[::2]
            if pod.demand and not pod.why and was_pool == pod.pool and idx.isdigit():
                take(pc, pod, int(idx))
    for entry in workloads:
        pc, wl = entry[1], entry[2]
        for pod in wl.pods:
            if pod.node or not pod.demand or pod.why:
                continue
            room = free.get((pc, pod.pool))
            if room is None:
                pod.why = (f"no node of the cluster matches nodeSelector {POOL_LABEL}="
                           f"{pod.pool or '(unset)'}")
                continue
            if not any(take(pc, pod, i) for i in range(len(room))):
                pod.why = _shortage(pod, room)
    return {entry[2].key: entry[2] for entry in workloads}


def _shortage(pod: _Pod, nodes: list[Demand]) -> str:
    for dc, n in sorted(pod.demand.items()):
        best = max((node.get(dc, 0) for node in nodes), default=0)
        if best < n:
            return (f"insufficient {dc} devices in pool {pod.pool} (needs {n} on one node, at "
                    f"most {best} free)")
    return f"insufficient devices in pool {pod.pool} (no node has all of them free at once)"


def _admitted_status(remote: Obj, wl: _Workload, ok: bool) -> None:
    """Rewrite a simulated workload status for pods that are Pending (in place)."""
    pending = [p for p in wl.pods if p.why]
    meta = remote.setdefault("metadata", {})
    meta.setdefault("annotations", {})[ADMISSION_ANNOTATION] = ",".join(
        p.node or "-" for p in wl.pods)
    if not pending:
        return
    status = remote.setdefault("status", {})
    groups = len(wl.pods) // max(wl.group, 1)
    whole = sum(1 for g in range(groups)
                if not any(p.why for p in wl.pods[g * wl.group:(g + 1) * wl.group]))
    status["readyReplicas"] = whole if ok else 0
    if "availableReplicas" in status:
        status["availableReplicas"] = status["readyReplicas"]
    scheduled = len(wl.pods) - len(pending)
    status["conditions"] = [{
        "type": "Available", "status": "False", "reason": UNSCHEDULABLE,
        "message": f"{scheduled}/{len(wl.pods)} pods scheduled: {pending[0].why}"}]


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


__all__ = ["ADMISSION_ANNOTATION", "HEALTH_ANNOTATION", "admit", "key_of", "remote_status",
           "simulate"]
