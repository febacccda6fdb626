"""ModelReplica composition (step `compose-replica`): engine workloads on the replica's cluster.

A ModelReplica is one placed replica of a ModelDeployment, pinned to an InferenceCluster and, per
engine member, to a node pool with resolved DRA device requests. This step turns it into
provider-kubernetes Objects on that cluster's ProviderConfig:

- the replica's namespace on the cluster (created, never deleted: it is shared);
- per claiming member a ResourceClaimTemplate with the member's device requests and CEL verbatim;
- per engine a Deployment (Standalone) or a LeaderWorkerSet (Leader + Worker);
- a Service, an HTTPRoute on the cluster gateway and, for PrefillDecode, an InferencePool.

Readiness comes from the remote objects through provider-kubernetes readiness policies; the
conditions WorkloadsReady and ExposureReady say which part is not ready, and Resolved says which
input is missing. See docs/workloads.md.
"""

from __future__ import annotations

from typing import Any

from modelplane.common import conditions
from modelplane.contract import modelcache, podpolicy
from modelplane.contract.api import API_VERSION, INFERENCE_CLUSTER, MODEL_CACHE, MODEL_REPLICA
from modelplane.contract.context import UNSCHEDULABLE_REASON
from modelplane.contract.metadata import (
    CACHE_LABEL,
    CLUSTER_LABEL,
    ENGINE_LABEL,
    INFERENCE_POOL_LABEL,
    REPLICA_LABEL,
    SERVING_LABEL,
)
from modelplane.contract.remote import (
    PROVIDER_CONFIG_KIND,
    SHARED_POLICIES,
    ProviderConfigRef,
    cel_readiness,
    observed_manifest,
    remote_object,
)
from modelplane.placement.compact_ledger import honoured
from modelplane.step import (
    Desired,
    Selector,
    StepRequest,
    StepResult,
    mark_ready_from_observed,
    require,
    step,
)
from modelplane.steps.modelreplica import claims, exposure, naming, objects, pods, workloads
from modelplane.steps.modelreplica.spec import Replica, SpecError, parse

REQ_CLUSTER = "cluster"
REQ_CACHE = "modelcache"

# Composition resource names (stable keys of the desired map).
RES_NAMESPACE = "namespace"
RES_SERVICE = "service"
RES_ROUTE = "route"
RES_POOL = "inference-pool"
# WorkloadsReady reason when the cluster cannot admit the pods (read by placement).


def _workload_res(engine: str) -> str:
    return f"workload-{engine}"


def _usage_res(engine: str) -> str:
    return f"uses-cache-{engine}"


_USAGE_PREFIX = "uses-cache-"


def _claims_res(engine: str, role: str) -> str:
    return f"claims-{engine}-{role.lower()}"


@step("compose-replica", kinds=[MODEL_REPLICA])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    # Requirements depend only on the spec, so they are the same on every call of the loop.
    cluster_name = req.spec.get("cluster")
    clusters = (require(req, res, REQ_CLUSTER, Selector(API_VERSION, INFERENCE_CLUSTER,
                                                       match_name=str(cluster_name)))
                if isinstance(cluster_name, str) and cluster_name else None)
    cache_ref = req.spec.get("modelCacheRef")
    cache_name = cache_ref.get("name") if isinstance(cache_ref, dict) else None
    caches = (require(req, res, REQ_CACHE, Selector(API_VERSION, MODEL_CACHE,
                                                   match_name=str(cache_name),
                                                   namespace=req.namespace))
              if isinstance(cache_name, str) and cache_name else None)

    why = honoured(req.composite)
    if why is not None:
        # Only a ModelDeployment's replicas went through placement (capacity, taints, pools):
        # a hand-made one gets no workloads (what exists is kept, never updated).
        return _hold(req, res, "NotComposed",
                     f"ModelReplica {req.name!r} is not composed by a ModelDeployment of "
                     f"namespace {req.namespace!r}: {why}; nothing is composed for it")
    try:
        replica = parse(req.composite)
    except SpecError as exc:
        return _hold(req, res, "InvalidSpec", f"{exc.path}: {exc.message}")

    if clusters is None:
        return _hold(req, res, "ClusterPending",
                     f"waiting for InferenceCluster {replica.cluster!r} (spec.cluster)",
                     warn=False)
    if not clusters:
        return _hold(req, res, "ClusterNotFound",
                     f"InferenceCluster {replica.cluster!r} (spec.cluster) does not exist")
    cluster = clusters[0]
    cstatus = cluster.get("status") or {}
    pc_raw = (cstatus.get("providerConfigRef") or {}).get("kubernetes") or {}
    if not pc_raw.get("name"):
        return _hold(req, res, "ProviderConfigUnresolved",
                     f"InferenceCluster {replica.cluster!r} has no "
                     "status.providerConfigRef.kubernetes yet")
    pc = ProviderConfigRef(kind=str(pc_raw.get("kind") or PROVIDER_CONFIG_KIND),
                                   name=str(pc_raw["name"]))
    unknown = _unknown_pools(replica, cstatus)
    if unknown:
        # Composing would re-point running pods at a node pool that does not exist (they
        # would go Pending): keep the workloads as they are until the spec or cluster is fixed.
        held = _hold(req, res, "PoolNotFound", "; ".join(unknown))
        held.composite_ready = "False"  # its nodes are gone or going: it is not serving
        return held
    policy = podpolicy.policy_from(cluster)
    violations = [v for e in replica.engines for m in e.members
                  for v in podpolicy.check(m.template, f"{m.path}.template", policy,
                                           replica.namespace)]
    if violations:
        # Nothing is composed from a template the cluster's pod policy refuses; what already
        # runs (from an earlier, admitted template) is kept.
        return _hold(req, res, "PodPolicyViolation",
                     f"InferenceCluster {replica.cluster!r} pod policy "
                     f"({policy.level}): {podpolicy.describe(violations)}")
    ready = conditions.get(cluster, "Ready")
    if ready is not None and ready.get("status") != "True":
        # Workloads are kept and still composed (a NotReady control plane does not stop pods
        # that run); say why they may be unreachable or not progressing.
        why = ready.get("message") or ready.get("reason") or "no reason given"
        res.event("Warning", f"InferenceCluster {replica.cluster!r} (spec.cluster) is not "
                  f"Ready: {why}", "ClusterNotReady")

    cached_repo: str | None = None
    if any(pods.wants_cached_model(replica, m) for e in replica.engines for m in e.members):
        # vLLM needs the cached repository's path in its flags, so the cache must be read.
        if caches is None:
            return _hold(req, res, "ModelCachePending",
                         f"waiting for ModelCache {replica.cache!r} (spec.modelCacheRef.name)",
                         warn=False)
        if not caches:
            return _hold(req, res, "ModelCacheNotFound",
                         f"ModelCache {replica.cache!r} (spec.modelCacheRef.name) does not exist "
                         f"in namespace {replica.namespace!r}")
        repo = modelcache.cached_repo(caches[0])
        if not repo:
            return _hold(req, res, "ModelCacheInvalid",
                         f"ModelCache {replica.cache!r} has no spec.huggingFace.repo")
        cached_repo = str(repo)

    elif caches == []:
        # Not needed to compose, but the pods mount its volume: say it is gone.
        res.event("Warning", f"ModelCache {replica.cache!r} (spec.modelCacheRef.name) does not "
                  f"exist in namespace {replica.namespace!r}", "ModelCacheNotFound")

    gateway_address = (cstatus.get("gateway") or {}).get("address")
    res.desired = build(replica, pc, cached_repo, policy, _tolerable_keys(cluster),
                        guard_cache=bool(caches))
    if not caches and replica.cache:
        # The cache is unknown or answered missing: a guard already composed stays as it is
        # (it blocks nothing if the cache is really gone; dropping it on a transient gap would
        # let a deletion through under the running workload).
        res.desired.update(req.keep_observed([r for r in req.observed
                                              if r.startswith(_USAGE_PREFIX)]))
    mark_ready_from_observed(req, res.desired)
    for rname, d in res.desired.items():
        if rname.startswith(_USAGE_PREFIX):
            # A Usage only guards; it never says whether the replica serves.
            d.ready = "True" if rname in req.observed else "False"
    res.condition("Resolved", "True", "Resolved",
                  f"InferenceCluster {replica.cluster!r} via {pc.kind} {pc.name!r}")
    # No address because the cluster's status says nothing yet (its gateway unobserved, e.g.
    # after a restore) is unknown, not evidence that the replica cannot be reached.
    address_unknown = not gateway_address and "gateway" not in cstatus and not (
        conditions.is_true(cluster, "Ready"))
    _report(req, res, tuple(e.name for e in replica.engines),
            pd=replica.mode == "PrefillDecode", gateway_address=gateway_address,
            address_unknown=address_unknown)

    res.status["cluster"] = replica.cluster
    addr = exposure.address(str(gateway_address) if gateway_address else None,
                            replica.namespace, replica.name)
    if addr is not None:
        res.status["address"] = addr
    _set_ready(res)
    return res


def _set_ready(res: StepResult) -> None:
    """Ready when the workloads are available and reachable at an address; never derived.

    Crossplane would call a replica with nothing composed yet (an unresolved cluster) ready.
    """
    ok = {c.type: c.status == "True" for c in res.conditions}
    res.composite_ready = "True" if (ok.get("WorkloadsReady") and ok.get("ExposureReady")
                                     and res.status.get("address")) else "False"


def build(replica: Replica, pc: ProviderConfigRef, cached_repo: str | None,
          policy: podpolicy.PodPolicy = podpolicy.DEFAULT,
          tolerable: frozenset[str] = frozenset(),
          guard_cache: bool = False) -> dict[str, Desired]:
    """Every Object of the replica, keyed by composition resource name.

    With ``guard_cache`` (the replica mounts a ModelCache that exists), a Usage per engine
    workload holds the ModelCache while that workload's Object exists (docs/caching.md).
    """
    ns = replica.namespace
    base = naming.replica_labels(replica.deployment, replica.name)
    obj_labels = {**base, CLUSTER_LABEL: naming.label_value(replica.cluster)}
    desired: dict[str, Desired] = {}

    def put(res_name: str, what: tuple[str, ...], manifest: dict[str, Any],
            ready_query: str | None = None) -> None:
        name = naming.object_name(replica.name, *what)
        readiness = cel_readiness(ready_query) if ready_query else None
        desired[res_name] = Desired(remote_object(name, ns, obj_labels, pc, manifest,
                                                  readiness=readiness))

    # The remote namespace convention shared with ModelCache (docs/caching.md): the manifest is
    # just the Namespace with its Pod Security labels, identical for every composite ensuring
    # it, and never deleted.
    desired[RES_NAMESPACE] = Desired(remote_object(
        modelcache.namespace_object_name(MODEL_REPLICA, replica.name, replica.cluster), ns,
        obj_labels, pc, podpolicy.namespace_manifest(ns, policy),
        management_policies=SHARED_POLICIES))

    pd = replica.mode == "PrefillDecode"
    pool_name = naming.inference_pool(replica.name) if pd else None
    for engine in replica.engines:
        labels = {**base, ENGINE_LABEL: engine.name}
        templates: dict[str, dict[str, Any]] = {}
        for member in engine.members:
            rct_name = naming.claim_template(replica.name, engine.name, member.role)
            rct = claims.claim_template(rct_name, ns, labels, member)
            if rct is not None:
                put(_claims_res(engine.name, member.role),
                    ("claims", engine.name, member.role.lower()), rct)
            templates[member.role] = pods.pod_template(
                replica, engine, member, claim_template=rct_name if rct is not None else None,
                inference_pool=pool_name, cached_repo=cached_repo,
                service_account=policy.service_account, tolerable=tolerable)
        wname = naming.workload(replica.name, engine.name)
        selector = pods.selector_labels(replica, engine)
        if engine.multi_node:
            manifest = workloads.leader_worker_set(wname, ns, labels, engine,
                                                   templates["Leader"], templates["Worker"])
        else:
            manifest = workloads.deployment(wname, ns, labels, engine, selector,
                                            templates["Standalone"])
        put(_workload_res(engine.name), ("workload", engine.name), manifest,
            ready_query=objects.available_query())
        if guard_cache and replica.cache:
            # Every pod of the workload mounts the cache volume (pods.pod_template): deleting
            # the ModelCache would take the PVC from under it, so the API server refuses that
            # until the workload's Object is gone (moved, scaled away, or the deployment gone).
            wl = desired[_workload_res(engine.name)].resource
            desired[_usage_res(engine.name)] = Desired(modelcache.reader_usage(
                naming.object_name(replica.name, "uses-cache", engine.name), ns,
                {**obj_labels, CACHE_LABEL: naming.label_value(replica.cache)}, replica.cache,
                str(wl["apiVersion"]), str(wl["kind"]), str(wl["metadata"]["name"]),
                f"ModelReplica {replica.name} (engine {engine.name}) on cluster "
                f"{replica.cluster} mounts this cache's volume"))

    first = replica.engines[0]
    serving = next(m for m in first.members if m.serves)
    port = pods.member_port(serving)
    svc_name = naming.service(replica.name)
    svc_selector = {REPLICA_LABEL: naming.label_value(replica.name),
                    SERVING_LABEL: "true"}
    if pd:
        # Direct access without the picker goes to decode pods, which serve whole requests.
        svc_selector["llm-d.ai/role"] = "decode"
    put(RES_SERVICE, ("service",), exposure.service(svc_name, ns, base, svc_selector, port))
    backend = exposure.service_backend(svc_name, port)
    if pd and pool_name is not None:
        put(RES_POOL, ("inferencepool",), exposure.inference_pool(
            pool_name, ns, base, {INFERENCE_POOL_LABEL: pool_name}, port,
            naming.endpoint_picker(replica.name)))
        backend = exposure.pool_backend(pool_name)
    put(RES_ROUTE, ("route",), exposure.http_route(
        naming.route(replica.name), ns, base,
        exposure.path_prefix(replica.namespace, replica.name), backend),
        ready_query=objects.route_accepted_query())
    return desired


def _tolerable_keys(cluster: dict[str, Any]) -> frozenset[str]:
    """Keys of the cluster taints the platform lets tenants tolerate (``tolerable: true``)."""
    taints = (cluster.get("spec") or {}).get("taints")
    return frozenset(str(t.get("key")) for t in (taints if isinstance(taints, list) else [])
                     if isinstance(t, dict) and t.get("tolerable") is True and t.get("key"))


def _unknown_pools(replica: Replica, cstatus: dict[str, Any]) -> list[str]:
    """Members pinned to a pool the cluster does not publish (only once it publishes pools)."""
    published = cstatus.get("pools")
    if not isinstance(published, list) or not published:
        return []
    names = {str(p.get("name")) for p in published if isinstance(p, dict)}
    return [f"{m.path}.pool {m.pool!r}: InferenceCluster {replica.cluster!r} has no such "
            f"node pool (it has {', '.join(sorted(names))})"
            for e in replica.engines for m in e.members if m.pool not in names]


def _hold(req: StepRequest, res: StepResult, reason: str, message: str,
          warn: bool = True) -> StepResult:
    """Keep what exists, say which input is missing, compose nothing new."""
    res.desired = req.keep_observed()
    mark_ready_from_observed(req, res.desired)
    kept = len(res.desired)
    res.condition("Resolved", "False", reason,
                  message + (f"; keeping {kept} existing object(s) unchanged" if kept else ""))
    if warn:
        res.event("Warning", message, reason)
    _report(req, res, tuple(_engine_names(req)), pd=RES_POOL in res.desired)
    res.status["cluster"] = str(req.spec.get("cluster", ""))
    if req.status.get("address"):
        res.status["address"] = req.status["address"]
    _set_ready(res)
    return res


def _engine_names(req: StepRequest) -> list[str]:
    engines = req.spec.get("engines")
    return sorted(str(e.get("name")) for e in (engines if isinstance(engines, list) else [])
                  if isinstance(e, dict) and e.get("name"))


def _describe(req: StepRequest, res_name: str, desired: Desired | None) -> str | None:
    """Why one composed Object is not ready, or None when it is."""
    if desired is None:
        return "not composed"
    if desired.ready == "True":
        return None
    obs = req.observed.get(res_name)
    manifest = (desired.resource.get("spec") or {}).get("forProvider", {}).get("manifest", {})
    what = f"{manifest.get('kind')} {manifest.get('metadata', {}).get('name')}"
    if obs is None:
        return f"{what} is not created yet"
    remote = observed_manifest(obs)
    rstatus = remote.get("status") or {}
    avail = next((c for c in rstatus.get("conditions") or []
                  if isinstance(c, dict) and c.get("type") == "Available"), None)
    if avail is not None and avail.get("status") != "True":
        ready = rstatus.get("readyReplicas", 0)
        want = rstatus.get("replicas", (manifest.get("spec") or {}).get("replicas", 1))
        return (f"{what} is not Available ({avail.get('reason', 'unknown')}, "
                f"{ready}/{want} ready)")
    cond = conditions.get(obs, "Ready")
    reason = (cond or {}).get("reason") or "no Ready condition yet"
    return f"{what} is not ready ({reason})"


def _status_unknown(req: StepRequest, res_name: str) -> bool:
    """An observed Object with no status at all (neither its own nor the remote manifest's)."""
    obs = req.observed.get(res_name)
    return obs is not None and not obs.get("status")


def _unschedulable(req: StepRequest, res_name: str) -> str | None:
    """The remote workload's message when its pods cannot be scheduled, else None.

    A workload whose pods stay Pending for lack of devices reports Available=False with reason
    ``Unschedulable`` and a message with the numbers (see docs/render.md, *DRA admission*).
    """
    remote = observed_manifest(req.observed.get(res_name))
    for c in (remote.get("status") or {}).get("conditions") or []:
        if (isinstance(c, dict) and c.get("type") == "Available" and c.get("status") != "True"
                and c.get("reason") == UNSCHEDULABLE_REASON):
            what = f"{remote.get('kind')} {(remote.get('metadata') or {}).get('name')}"
            return f"{what}: {c.get('message') or 'pods cannot be scheduled'}"
    return None


def _report(req: StepRequest, res: StepResult, engines: tuple[str, ...], *, pd: bool,
            gateway_address: Any = ..., address_unknown: bool = False) -> None:
    """WorkloadsReady and ExposureReady from the (desired or kept) Objects.

    ``gateway_address`` is checked only when given (not while an input is missing).
    """
    d = res.desired
    bad = [f"engine {e}: {why}" for e in sorted(engines)
           if (why := _describe(req, _workload_res(e), d.get(_workload_res(e)))) is not None]
    refused = [f"engine {e}: {why}" for e in sorted(engines)
               if (why := _unschedulable(req, _workload_res(e))) is not None]
    if refused:
        # The cluster cannot admit the pods (DRA could not allocate their devices): the
        # ModelDeployment re-places this replica (docs/placement.md).
        res.condition("WorkloadsReady", "False", UNSCHEDULABLE_REASON, "; ".join(refused))
    elif bad and all(_status_unknown(req, _workload_res(e)) for e in sorted(engines)
                     if _describe(req, _workload_res(e), d.get(_workload_res(e)))):
        # The workloads exist but report no status (lost, or not observed yet since a
        # restore): unknown is not false, so nothing downstream acts on "not ready".
        res.condition("WorkloadsReady", "Unknown", "StatusUnknown", "; ".join(bad))
    elif bad:
        res.condition("WorkloadsReady", "False", "Unavailable", "; ".join(bad))
    else:
        res.condition("WorkloadsReady", "True", "Available",
                      f"{len(engines)} engine workload(s) available")
    parts = [RES_SERVICE, RES_ROUTE] + ([RES_POOL] if pd else [])
    bad = [why for p in parts if (why := _describe(req, p, d.get(p))) is not None]
    if gateway_address is not ... and not gateway_address:
        bad.append("the cluster's gateway has no address yet (status.gateway.address)")
    no_address = gateway_address is not ... and not gateway_address and not address_unknown
    unknown = bool(bad) and not no_address and all(
        _status_unknown(req, p) for p in parts if _describe(req, p, d.get(p)) is not None)
    if bad and unknown:
        # The Service/route exist but report no status (lost, or not observed yet).
        res.condition("ExposureReady", "Unknown", "StatusUnknown", "; ".join(bad))
    elif bad:
        res.condition("ExposureReady", "False", "Unavailable", "; ".join(bad))
    else:
        res.condition("ExposureReady", "True", "Routed", "route accepted by the cluster gateway")
