"""InferenceCluster composition (step `compose-cluster`).

One cluster of the fleet: its infrastructure (per source: ``gke``, ``eks``, ``aks``,
``existing``), one node pool per spec pool shaped by the pool's InferenceClass, the serving
stack, deletion ordering, and the status the scheduler reads (docs/architecture.md, "Status
contracts between kinds").

Safety: a pool whose class is missing, unresolved, invalid or made for another cloud keeps its
observed node pool and its last published status entry, and a condition names both the pool
and the class. Any composed resource this step would otherwise stop returning is kept unless
the spec asks for its removal (a pool deleted from spec.nodePools, credentials removed, no
replicas left to protect).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

from modelplane.common.conditions import get as get_condition
from modelplane.common.conditions import is_true, some
from modelplane.common.fields import path, sequence
from modelplane.common.names import dns_label
from modelplane.contract import capacity as capacity_contract
from modelplane.contract import fabric
from modelplane.contract.api import (
    API_VERSION,
    INFERENCE_CLASS,
    INFERENCE_CLUSTER,
    MODEL_REPLICA,
    MODEL_SERVICE,
)
from modelplane.contract.backends import weight_of
from modelplane.contract.inferenceclass import problems as class_problems
from modelplane.contract.inferenceclass import resolve_devices
from modelplane.placement import capacity
from modelplane.placement.compact_ledger import allocation_summary, honoured
from modelplane.placement.eviction import Holder, losers
from modelplane.placement.inputs import cluster_from, usage_from
from modelplane.placement.ledger import PoolLedger
from modelplane.placement.model import Pool as Pool_
from modelplane.step import (
    Desired,
    Resource,
    Selector,
    StepRequest,
    StepResult,
    mark_ready_from_observed,
    require,
    step,
)
from modelplane.steps.inferencecluster import aks, charts, eks, existing, gke
from modelplane.steps.inferencecluster import servingstack as serving
from modelplane.steps.inferencecluster.common import (
    CLUSTER_LABEL,
    DEFAULT_PROVIDER_CONFIG,
    Ctx,
    Infra,
    Pool,
    pool_resource_name,
)

Composer = Callable[[Ctx, list[Pool], Mapping[str, Resource]], Infra]
SOURCES: dict[str, Composer] = {
    "GKE": gke.compose, "EKS": eks.compose, "AKS": aks.compose, "Existing": existing.compose}
#: The cloud providers' ClusterProviderConfig API, composed when spec.credentials is set.
CLOUD_PROVIDER_CONFIG = {"GKE": "gcp.m.upbound.io/v1beta1", "EKS": "aws.m.upbound.io/v1beta1",
                         "AKS": "azure.m.upbound.io/v1beta1"}
CLOUD_PC = "cloud-provider-config"
PROTECT = "protect-hosted-replicas"
CAPACITY = "capacity-summary"
# Resources that are ready once they exist: they have no Ready condition of their own.
_READY_WHEN_OBSERVED = {"ClusterProviderConfig", "ProviderConfig", "Usage", "ClusterUsage",
                        "ConfigMap"}


def class_requirement(class_name: str) -> str:
    return f"class-{class_name}"


def _int(v: Any, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


@step("compose-cluster", kinds=[INFERENCE_CLUSTER])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    name, spec = req.name, req.spec
    raw_pools = [p for p in sequence(spec.get("nodePools")) if isinstance(p, Mapping)]

    # Requirements first, identical on every call so Crossplane's loop stabilises.
    class_names = sorted({str(p.get("className", "")) for p in raw_pools if p.get("className")})
    classes = {cn: require(req, res, class_requirement(cn), Selector(API_VERSION, INFERENCE_CLASS,
                                                                   match_name=cn))
               for cn in class_names}
    replicas = require(req, res, "replicas",
                       Selector.labels(API_VERSION, MODEL_REPLICA, {CLUSTER_LABEL: name}))

    source = str(path(spec, "cluster").get("source", ""))
    credentials = spec.get("credentials") if isinstance(spec.get("credentials"), Mapping) else None
    provider_config = {"kind": "ClusterProviderConfig", "name": DEFAULT_PROVIDER_CONFIG}
    desired: dict[str, Desired] = {}
    if credentials and source in CLOUD_PROVIDER_CONFIG:
        pc = cloud_provider_config(name, source, spec, credentials)
        desired[CLOUD_PC] = Desired(pc)
        provider_config = {"kind": "ClusterProviderConfig", "name": pc["metadata"]["name"]}
    ctx = Ctx(name=name, spec=spec, provider_config=provider_config)

    composer = SOURCES.get(source)
    block = path(spec, "cluster").get(source.lower()) if source else None
    if composer is None or not isinstance(block, Mapping):
        problem = (f"spec.cluster.source {source!r} is not one of {', '.join(SOURCES)}"
                   if composer is None else
                   f"spec.cluster.{source.lower()} is required when source is {source}")
        return _halt(req, res, desired, problem, spec_pools={str(p.get("name")) for p in raw_pools})

    pools, pool_problems, pending = resolve_pools(name, source, raw_pools, classes)
    infra = composer(ctx, pools, req.observed)
    # From the spec, not the resolved pools: a class still loading must not toggle the driver.
    infra.efa = source == "EKS" and any(p.get("fabric") == "EFA" for p in raw_pools)
    pool_problems.update(infra.pool_problems)
    if infra.problems:
        return _halt(req, res, desired, "; ".join(infra.problems),
                     spec_pools={str(p.get("name")) for p in raw_pools})

    for rname, obj in {**infra.resources, **infra.pools}.items():
        desired[rname] = Desired(obj)

    stack_names: list[str] = []
    if infra.kubeconfig is not None:
        stack_res = serving.compose(ctx, infra, infra.resources)
        reachable = infra.kubeconfig_from is None or is_true(
            req.observed.get(infra.kubeconfig_from))
        if reachable or any(n in req.observed for n in stack_res):
            stack_names = sorted(stack_res)
            for rname, obj in stack_res.items():
                desired[rname] = Desired(obj)

    if replicas:
        desired[PROTECT] = Desired(protection(name, replicas))

    spec_pools = {str(p.get("name")) for p in raw_pools}
    drains = draining_pools(req, spec_pools, replicas)
    _keep_unless_asked(req, desired, spec_pools | set(drains), bool(credentials), replicas,
                       infra.efa)
    _mark_ready(req, desired)

    # -- status ------------------------------------------------------------------------------
    stack_ready = bool(stack_names) and all(
        desired[n].ready == "True" for n in stack_names if n in desired)
    address = gateway_address(req.observed.get("gateway"))
    if stack_names:
        res.status["providerConfigRef"] = serving.provider_config_refs(ctx)
    if address:
        res.status["gateway"] = {"address": address}
    storage = infra.storage_class
    if storage and "storage-class" in infra.cluster_objects and not is_true(
            req.observed.get("storage-class")):
        storage = None  # a composed StorageClass counts once it exists on the cluster
    if storage:
        res.status["storageClassName"] = storage
    res.status["pools"] = pool_status(req, raw_pools, pools, infra, desired, stack_ready,
                                      source == "Existing", replicas)
    res.status["pools"] += draining_status(req, drains, desired, stack_ready,
                                           source == "Existing", replicas)

    # -- conditions --------------------------------------------------------------------------
    infra_ready = _report(res, "ClusterReady", desired, sorted(infra.resources),
                          "Existing" if source == "Existing" else "Available")
    pool_names = sorted(n for n in desired if n.startswith("nodepool-"))
    pools_ready = _report(res, "NodePoolsReady", desired, pool_names,
                          "Existing" if source == "Existing" else "Available",
                          note=drain_note(drains))
    report_drains(res, drains)
    report_capacity(res, name, res.status["pools"], replicas, req=req)
    if not stack_names:
        res.condition("StackReady", "False", "WaitingForCluster",
                      "the serving stack is installed once the cluster's kubeconfig exists")
    elif not stack_ready:
        _report(res, "StackReady", desired, stack_names, "Available")
    elif not address:
        res.condition("StackReady", "False", "WaitingForGatewayAddress",
                      f"Gateway {charts.CLUSTER_GATEWAY_NAMESPACE}/{charts.GATEWAY_NAME} "
                      "has no address yet")
    else:
        res.condition("StackReady", "True", "Available",
                      f"serving stack installed; gateway at {address}")
    if pool_problems:
        res.condition("ClassesResolved", "False", "ClassMismatch",
                      "; ".join(pool_problems[p] for p in sorted(pool_problems)))
    elif pending:
        res.condition("ClassesResolved", "Unknown", "WaitingForClasses",
                      f"waiting for InferenceClass(es) {', '.join(sorted(pending))}")
    else:
        res.condition("ClassesResolved", "True", "Resolved",
                      f"{len(pools)} pool(s) resolved to their InferenceClasses")
    if replicas:
        res.condition("DeletionProtected", "True", "HostsReplicas",
                      f"{len(replicas)} ModelReplica(s) run here; deleting this cluster is "
                      "blocked until they are moved or deleted")
    elif replicas is not None:
        res.condition("DeletionProtected", "False", "NoReplicas", "no ModelReplica runs here")

    everything = all(d.ready == "True" for d in desired.values())
    res.composite_ready = "True" if (infra_ready and pools_ready and stack_ready and address
                                     and everything) else "False"
    desired[CAPACITY] = capacity_summary(req, res.status["pools"], res.composite_ready == "True")
    res.desired = dict(sorted(desired.items()))
    return res


def capacity_summary(req: StepRequest, pools: Sequence[Mapping[str, Any]], ready: bool) -> Desired:
    """The small object placement requires instead of this whole cluster (contract.capacity).

    It is written from the status this reconcile publishes, and Crossplane applies both
    together, so it is exactly as fresh as ``status.pools[].allocated``. ``ready`` is the
    Ready this reconcile reports; when the cluster is not Ready, the summary carries since
    when it has not been (the observed Ready condition's transition time), which placement's
    failover window counts from; on the reconcile that turns it NotReady that time is not
    known yet and the summary says only "not Ready" (placement then waits, it never fails over
    early).
    """
    observed_ready = get_condition(req.composite, "Ready") or {}
    since = (str(observed_ready.get("lastTransitionTime") or "") or None
             if observed_ready.get("status") == "False" else None)
    labels = {str(k): str(v) for k, v in
              (path(req.composite, "metadata").get("labels") or {}).items()}
    text = capacity.summary(req.name, labels,
                            [t for t in sequence(req.spec.get("taints")) if isinstance(t, Mapping)],
                            ready, since, pools,
                            declares_pools=bool(sequence(req.spec.get("nodePools"))))
    obj: Resource = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": capacity_contract.object_name(req.name),
                     "namespace": capacity_contract.NAMESPACE,
                     "labels": {capacity_contract.LABEL: capacity_contract.LABEL_VALUE,
                                CLUSTER_LABEL: req.name}},
        "data": {capacity_contract.DATA_KEY: text}}
    return Desired(obj, ready="True" if CAPACITY in req.observed else "False")


# -- pools --------------------------------------------------------------------------------------

def resolve_pools(cluster: str, source: str, raw_pools: list[Mapping[str, Any]],
                  classes: Mapping[str, list[Resource] | None],
                  ) -> tuple[list[Pool], dict[str, str], set[str]]:
    """Join each spec pool with its class; problems (by pool) and pending classes otherwise."""
    pools: list[Pool] = []
    problems: dict[str, str] = {}
    pending: set[str] = set()
    seen: set[str] = set()
    for raw in raw_pools:
        pname, cname = str(raw.get("name", "")), str(raw.get("className", ""))
        where = f"spec.nodePools[{pname}]"
        if pname in seen:
            problems[pname] = f"{where}.name {pname!r} is not unique"
            continue
        seen.add(pname)
        sizes = pool_sizes(raw)
        if isinstance(sizes, str):
            problems[pname] = f"{where}: {sizes}"
            continue
        lo, hi, count, autoscaling = sizes
        got = classes.get(cname)
        if got is None:
            pending.add(cname)
            continue
        if not got:
            problems[pname] = (f"{where}.className {cname!r}: InferenceClass {cname!r} does not "
                               f"exist (InferenceCluster {cluster!r} keeps the pool as it is)")
            continue
        cls_spec = got[0].get("spec") or {}
        bad = class_problems(cls_spec)
        if bad:
            problems[pname] = (f"{where}.className {cname!r}: InferenceClass {cname!r} is "
                               f"invalid: {'; '.join(bad)}")
            continue
        provider = path(cls_spec, "provisioning").get("provider")
        if source != "Existing" and provider != source:
            what = f"provisions {provider} nodes" if provider else "has no provisioning block"
            problems[pname] = (f"{where}.className {cname!r}: InferenceCluster {cluster!r} is "
                               f"{source} but InferenceClass {cname!r} {what}")
            continue
        spot = raw.get("spot")
        block = raw.get("capacityBlock")
        reservation = block.get("capacityReservationId") if isinstance(block, Mapping) else None
        pools.append(Pool(
            name=pname, class_name=cname, min_nodes=lo, max_nodes=hi, node_count=count,
            zones=tuple(str(z) for z in raw.get("zones") or []),
            spot=spot if isinstance(spot, bool) else None, class_spec=cls_spec,
            devices=tuple(resolve_devices(cls_spec)), autoscaling=autoscaling,
            fabric=str(raw.get("fabric") or "None"),
            capacity_reservation=str(reservation) if reservation else None))
    return pools, problems, pending


def pool_sizes(raw: Mapping[str, Any]) -> tuple[int, int, int, bool] | str:
    """(min, max, initial count, autoscaling) of a spec pool, or why its counts are unusable.

    Without maxNodeCount the pool is fixed-size: nodeCount (default 1) nodes, which is also its
    ceiling. With maxNodeCount it autoscales between minNodeCount (default 0) and maxNodeCount,
    starting at nodeCount kept within those bounds (nodeCount's API default of 1 cannot be told
    from a written 1, so it is clamped rather than rejected).
    """
    count = _int(raw.get("nodeCount"), 1)
    if "maxNodeCount" not in raw or raw.get("maxNodeCount") is None:
        if count < 0:
            return f"nodeCount {raw.get('nodeCount')!r} must not be negative"
        return count, count, count, False
    lo, hi = _int(raw.get("minNodeCount"), 0), _int(raw.get("maxNodeCount"), -1)
    if hi < 0 or lo < 0 or lo > hi:
        return (f"minNodeCount {raw.get('minNodeCount')!r} and maxNodeCount "
                f"{raw.get('maxNodeCount')!r} must satisfy 0 <= min <= max")
    return lo, hi, min(max(count, lo), hi), True


def pool_status(req: StepRequest, raw_pools: list[Mapping[str, Any]], pools: list[Pool],
                infra: Infra, desired: Mapping[str, Desired], stack_ready: bool,
                is_existing: bool, replicas: list[Resource] | None = None,
                ) -> list[dict[str, Any]]:
    """status.pools: resolved pools afresh; unresolved ones keep their last published entry.

    Every entry carries ``allocated``: the devices the ModelReplicas hosted here claim, one
    entry per (deployment, pod shape), so placement can read the whole fleet's ledger from
    the clusters (the compact ledger) instead of every ModelReplica. It comes from the same
    ModelReplicas the deletion protection requires; while they are unresolved, the last
    published ``allocated`` stays.
    """
    resolved = {p.name: p for p in pools}
    summary = allocation_summary(replicas) if replicas is not None else None
    previous = {str(p.get("name")): p for p in req.status.get("pools") or []
                if isinstance(p, Mapping)}
    out: list[dict[str, Any]] = []
    for raw in raw_pools:
        pname = str(raw.get("name", ""))
        pool = resolved.get(pname)
        if pool is None or pname in infra.pool_problems:
            if pname in previous:
                kept = dict(previous[pname])
                if summary is not None:
                    kept["allocated"] = summary.get(pname, [])
                out.append(kept)
            continue
        rname = infra.pool_resource.get(pname, "")
        ready = stack_ready if is_existing else (
            rname in desired and desired[rname].ready == "True")
        entry: dict[str, Any] = {
            "name": pname, "className": pool.class_name, "nodeCeiling": pool.max_nodes,
            "minNodeCount": pool.min_nodes, "devices": published_devices(pool, infra),
            "ready": ready}
        cost = pool.class_spec.get("costPerNodeHour")
        if cost:
            entry["costPerNodeHour"] = str(cost)
        if summary is not None:
            entry["allocated"] = summary.get(pname, [])
        elif isinstance(previous.get(pname, {}).get("allocated"), list):
            entry["allocated"] = previous[pname]["allocated"]
        out.append(entry)
    return out


def published_devices(pool: Pool, infra: Infra) -> list[dict[str, Any]]:
    """What one node of the pool offers placement: its class's devices, with EFA as the pool
    provides it.

    A provisioned EKS node has EFA interfaces only in a ``fabric: EFA`` pool, so elsewhere the
    class's EFA devices are left out (pods claiming them would never be scheduled). An EFA
    pool whose class declares no EFA device publishes the interfaces its launch template
    attaches, as the EFA DRA driver will (``contract/fabric.py``).
    """
    devices = [dict(d) for d in pool.devices]
    if infra.efa_interfaces is None:
        return devices  # the source does not provision nodes' interfaces (Existing, GKE, AKS)
    count = infra.efa_interfaces.get(pool.name)
    if count is None:
        return [d for d in devices if not fabric.is_efa_device(d)]
    if not fabric.declared_count(devices) and not any(
            d.get("name") == fabric.DEFAULT_DEVICE_NAME for d in devices):
        devices.append(fabric.default_device(count))
    return devices


# -- drain: pools removed from spec.nodePools ---------------------------------------------------
#
# A pool removed (or renamed: the list is keyed by name) is drained make-before-break, like a
# tainted cluster: while any of our ModelReplicas runs on it, its cloud node pool stays in the
# desired state (that is the guard: Crossplane deletes only what a function stops returning),
# and its status.pools entry stays with ``draining: true``, which placement reads as "takes
# nothing new, and the replicas on it must move". Once none runs there (the ModelReplicas that
# the ClusterUsage already requires say so), the pool is let go and deleted.

#: Hosts of a draining pool ("namespace/name" of each ModelReplica), or None when the
#: ModelReplicas are not known yet (the pool is held: unknown is not "empty").
Drains = dict[str, list[str] | None]


def _replica_pools(obj: Mapping[str, Any]) -> set[str]:
    """The pools a ModelReplica's members are pinned to (spec.engines[].members[].pool)."""
    out: set[str] = set()
    for e in sequence(path(obj, "spec").get("engines")):
        for m in sequence(e.get("members") if isinstance(e, Mapping) else None):
            if isinstance(m, Mapping) and m.get("pool"):
                out.add(str(m["pool"]))
    return out


def draining_pools(req: StepRequest, spec_pools: set[str],
                   replicas: list[Resource] | None) -> Drains:
    """Pools gone from spec.nodePools (observed node pool, or last published) still in use."""
    gone = {n.removeprefix("nodepool-") for n in req.observed if n.startswith("nodepool-")}
    gone |= {str(p.get("name")) for p in sequence(req.status.get("pools"))
             if isinstance(p, Mapping) and p.get("name")}
    gone -= spec_pools
    out: Drains = {}
    for pool in sorted(gone):
        if replicas is None:
            out[pool] = None
            continue
        hosts = sorted(f"{path(r, 'metadata').get('namespace')}/{path(r, 'metadata').get('name')}"
                       for r in replicas if pool in _replica_pools(r))
        if hosts:
            out[pool] = hosts
    return out


def draining_status(req: StepRequest, drains: Drains, desired: Mapping[str, Desired],
                    stack_ready: bool, is_existing: bool,
                    replicas: list[Resource] | None) -> list[dict[str, Any]]:
    """status.pools entries of draining pools: the last published one, marked draining."""
    previous = {str(p.get("name")): p for p in sequence(req.status.get("pools"))
                if isinstance(p, Mapping)}
    summary = allocation_summary(replicas) if replicas is not None else None
    out: list[dict[str, Any]] = []
    for pool in sorted(drains):
        entry = dict(previous.get(pool) or {"name": pool, "nodeCeiling": 0, "devices": []})
        entry["draining"] = True
        rname = pool_resource_name(pool)
        entry["ready"] = stack_ready if is_existing else (
            rname in desired and desired[rname].ready == "True")
        if summary is not None:
            entry["allocated"] = summary.get(pool, [])
        out.append(entry)
    return out


def drain_note(drains: Drains) -> str:
    return (f"; draining pool(s) removed from spec.nodePools: {', '.join(sorted(drains))}"
            if drains else "")


def report_drains(res: StepResult, drains: Drains) -> None:
    """Condition NodePoolsDrained: which removed pools are held, and by which replicas."""
    if not drains:
        res.condition("NodePoolsDrained", "True", "NothingToDrain",
                      "no pool removed from spec.nodePools hosts a ModelReplica")
        return
    parts = []
    for pool, hosts in sorted(drains.items()):
        if hosts is None:
            parts.append(f"pool {pool}: held until the ModelReplicas on this cluster are known")
        else:
            shown = some(hosts)
            parts.append(f"pool {pool}: held by {len(hosts)} ModelReplica(s) ({shown})")
    res.condition("NodePoolsDrained", "False", "HostsReplicas",
                  "removed from spec.nodePools but kept until its replicas have moved "
                  "(make-before-break): " + "; ".join(parts))


# -- capacity below what runs -------------------------------------------------------------------

def _meta_ns(obj: Mapping[str, Any]) -> str:
    return str(path(obj, "metadata").get("namespace") or "")


def _meta_name(obj: Mapping[str, Any]) -> str:
    return str(path(obj, "metadata").get("name") or "")


def _percent(share: Fraction) -> str:
    return f"{float(share) * 100:.4g}%"


def report_capacity(res: StepResult, cluster: str, pools: list[dict[str, Any]],
                    replicas: list[Resource] | None, req: StepRequest | None = None) -> None:
    """Condition PoolCapacity and ``status.pools[].evicting``: a pool whose nodeCeiling is below
    what its replicas need, and which of them lose their place.

    The need is the placement ledger's replay of the pods the hosted ModelReplicas claim
    (first-fit decreasing, whole pods per node). Which replicas lose their place is decided
    here, by :mod:`modelplane.placement.eviction` (smallest ModelService traffic share first,
    then newest, then name), not left to which nodes the cloud removes: their ModelDeployments
    remove and re-place them, and the devices go to the replicas that keep their place
    (docs/placement.md, *Capacity below what runs*). The ModelServices are read only while a
    pool is short; until they are known the last published ``evicting`` stays.
    """
    if replicas is None:
        return  # unknown: say nothing rather than "fits"
    model = cluster_from({"metadata": {"name": cluster}, "status": {"pools": pools}}, {})
    usages = {(_meta_ns(r), _meta_name(r)): (r, usage_from(r)) for r in replicas}
    short: list[tuple[Pool_, list[tuple[str, str]], int, int]] = []
    for pool in model.pools:
        within, unbounded = PoolLedger(pool), PoolLedger(replace(pool, node_ceiling=10**6))
        hosts: list[tuple[str, str]] = []
        for owner, (_obj, u) in sorted(usages.items()):
            groups = [g for g in u.pods if g.pool == pool.name]
            for group in groups:
                within.add(owner, group.demand, group.pods)
                unbounded.add(owner, group.demand, group.pods)
            if groups:
                hosts.append(owner)
        within.used_nodes()  # replays the packing, which sets overflow
        if within.overflow:
            short.append((pool, hosts, unbounded.used_nodes(), within.overflow))
    services = (require(req, res, "services", Selector.labels(API_VERSION, MODEL_SERVICE, {}))
                if short and req is not None else None)
    previous = {str(p.get("name")): p for p in sequence(req.status.get("pools") if req else None)
                if isinstance(p, Mapping)}
    by_name = {str(p.get("name")): p for p in pools}
    lines: list[str] = []
    for pool, hosts, need, overflow in short:
        line = (f"pool {pool.name}: nodeCeiling {pool.node_ceiling} but its replicas need "
                f"{need} node(s); {overflow} pod(s) do not fit")
        entry = by_name.get(pool.name)
        if services is None:
            kept = (previous.get(pool.name) or {}).get("evicting")
            if entry is not None and isinstance(kept, list):
                entry["evicting"] = list(kept)
            lines.append(line + f" (replicas there: {some([f'{n}/{m}' for n, m in hosts])}; "
                         "which lose their place is decided once the ModelServices are read)")
            continue
        holders = []
        for ns, rname in hosts:
            obj, u = usages[(ns, rname)]
            if honoured(obj) is not None:
                continue  # a hand-made replica holds no place to rank (docs/security.md)
            deployment = str(path(obj, "spec").get("deployment") or "")
            holders.append(Holder(ns, rname, weight_of(services, ns, deployment),
                                  str(path(obj, "metadata").get("creationTimestamp") or ""),
                                  u.pods))
        lost = losers(pool, holders)
        if entry is not None:
            entry["evicting"] = [f"{h.namespace}/{h.name}" for h in lost]
        lines.append(line + "; losing their place (smallest traffic share first, then newest): "
                     + (some([f"{h.namespace}/{h.name} ({_percent(h.weight)} of its traffic)"
                              for h in lost])
                        or "none"))
    if lines:
        res.condition("PoolCapacity", "False", "CeilingBelowAllocation",
                      "; ".join(lines) + "; their ModelDeployments re-place them where there "
                      "is room")
    else:
        res.condition("PoolCapacity", "True", "WithinCeiling",
                      "every pool's nodeCeiling holds the replicas placed on it")


# -- pieces -------------------------------------------------------------------------------------

def cloud_provider_config(name: str, source: str, spec: Mapping[str, Any],
                          credentials: Mapping[str, Any]) -> Resource:
    """The cloud provider's ClusterProviderConfig reading spec.credentials' Secret."""
    ref = path(credentials, "secretRef")
    body: dict[str, Any] = {"credentials": {"source": "Secret", "secretRef": {
        "name": str(ref.get("name", "")), "namespace": str(ref.get("namespace", "")),
        "key": str(ref.get("key") or "credentials")}}}
    if source == "GKE":
        body["projectID"] = str(path(spec, "cluster", "gke").get("project", ""))
    return {"apiVersion": CLOUD_PROVIDER_CONFIG[source], "kind": "ClusterProviderConfig",
            # Reserved prefix: never the name of a ProviderConfig the platform team owns.
            "metadata": {"name": dns_label("modelplane-cluster", name, source.lower()),
                         "labels": {CLUSTER_LABEL: name}},
            "spec": body}


def protection(name: str, replicas: list[Resource]) -> Resource:
    """A ClusterUsage that blocks deleting this InferenceCluster while replicas run on it."""
    return {"apiVersion": "protection.crossplane.io/v1beta1", "kind": "ClusterUsage",
            "metadata": {"name": dns_label(name, "hosts-replicas"),
                         "labels": {CLUSTER_LABEL: name}},
            "spec": {"of": {"apiVersion": API_VERSION, "kind": INFERENCE_CLUSTER,
                            "resourceRef": {"name": name}},
                     "reason": "ModelReplicas run on this InferenceCluster; move or delete "
                               "them first"}}


def gateway_address(observed: Resource | None) -> str | None:
    """The in-cluster Gateway's first address, as provider-kubernetes observed it."""
    manifest = (((observed or {}).get("status") or {}).get("atProvider") or {}).get("manifest")
    for a in ((manifest or {}).get("status") or {}).get("addresses") or []:
        if isinstance(a, Mapping) and a.get("value"):
            return str(a["value"])
    return None


def _keep_unless_asked(req: StepRequest, desired: dict[str, Desired], spec_pools: set[str],
                       has_credentials: bool, replicas: list[Resource] | None,
                       wants_efa: bool = True) -> None:
    """Keep every observed resource not desired now, unless the spec asked for its removal."""
    for rname in sorted(set(req.observed) - set(desired)):
        if rname.startswith("nodepool-") and rname.removeprefix("nodepool-") not in spec_pools:
            continue  # the pool was removed from spec.nodePools
        if rname == f"release-{charts.EFA_DRIVER.component}" and not wants_efa:
            continue  # no pool of the spec uses EFA any more
        if rname == CLOUD_PC and not has_credentials:
            continue  # spec.credentials was removed: MRs fall back to the default config
        if rname == PROTECT and replicas is not None and not replicas:
            continue  # no replica is hosted any more
        desired.update(req.keep_observed([rname]))


def _mark_ready(req: StepRequest, desired: dict[str, Desired]) -> None:
    for rname, d in desired.items():
        if d.resource.get("kind") in _READY_WHEN_OBSERVED:
            d.ready = "True" if rname in req.observed else "False"
    mark_ready_from_observed(req, desired)
    for d in desired.values():
        if d.ready == "Unspecified":
            d.ready = "False"


def _report(res: StepResult, type_: str, desired: Mapping[str, Desired], names: list[str],
            reason: str, note: str = "") -> bool:
    """Set a readiness condition over the named resources; True when all are ready."""
    waiting = [n for n in names if n in desired and desired[n].ready != "True"]
    if waiting:
        res.condition(type_, "False", "Creating", f"not ready yet: {', '.join(waiting)}{note}")
        return False
    res.condition(type_, "True", reason, (f"{len(names)} resource(s) ready" if names else
                                          "nothing to provision" if not note else
                                          "nothing provisioned from spec.nodePools") + note)
    return True


_CARRIED_STATUS = ("providerConfigRef", "gateway", "storageClassName", "pools")


def _halt(req: StepRequest, res: StepResult, desired: dict[str, Desired], problem: str,
          spec_pools: set[str]) -> StepResult:
    """Unusable spec: compose nothing new, keep everything observed, say why."""
    # Which replicas run on a removed pool is not looked at here: every node pool is held.
    held = {n.removeprefix("nodepool-") for n in req.observed if n.startswith("nodepool-")}
    _keep_unless_asked(req, desired, spec_pools | held, CLOUD_PC in desired, None)
    _mark_ready(req, desired)
    # Crossplane applies the pipeline's status as its full intent: what is not written now is
    # dropped. The kept cluster still serves, so what consumers read from status (replicas
    # reach it through providerConfigRef and gateway, placement reads pools) is written again.
    for field in _CARRIED_STATUS:
        if field in req.status:
            res.status[field] = copy.deepcopy(req.status[field])
    # The summary says what status says: the last published pools, and not Ready.
    desired[CAPACITY] = capacity_summary(
        req, [p for p in sequence(req.status.get("pools")) if isinstance(p, Mapping)], False)
    res.desired = dict(sorted(desired.items()))
    res.condition("ClusterReady", "False", "InvalidSpec", problem)
    res.composite_ready = "False"
    return res


__all__ = ["compose", "pool_resource_name"]
