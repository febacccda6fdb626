"""ModelDeployment's `place` step: read the fleet, decide placement, write it to the context.

Requirements come in two phases so the steady reconcile stays cheap (docs/placement.md):

1. always: every InferenceClass (few, small) and, by name, the clusters this deployment's own
   replicas run on. That is enough to decide that nothing needs placing or moving: every slot
   has a qualifying replica, and the spread is provably even (at most one replica per domain,
   or the spread record the replicas carry shows no eligible domain is two emptier).
2. otherwise: every InferenceCluster, the referenced ModelCache, and the capacity ledger: from
   the clusters' published ``status.pools[].allocated`` when every cluster that could take a
   replica has it (compact), else every ModelReplica of every namespace.

Each phase is decided from the inputs of the phase before, so the requirements are the same
on every call of Crossplane's requirements loop.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from modelplane.common.fields import path
from modelplane.contract import capacity as capacity_contract
from modelplane.contract import context
from modelplane.contract.api import (
    API_VERSION,
    GROUP,
    INFERENCE_CLASS,
    INFERENCE_CLUSTER,
    MODEL_CACHE,
    MODEL_DEPLOYMENT,
    MODEL_ENDPOINT,
    MODEL_REPLICA,
)
from modelplane.contract.ownership import controller
from modelplane.placement import capacity, core
from modelplane.placement.compact_ledger import evictions_of, honoured, owner_key, summary_usages
from modelplane.placement.filter import PoolMatcher, cluster_filter
from modelplane.placement.inputs import (
    clusters_from,
    footprint_from,
    now_from,
    replicas_from,
    request_from,
    usage_from,
)
from modelplane.placement.model import (
    Blocked,
    Cluster,
    Decision,
    Fleet,
    Replica,
    Request,
    Usage,
)
from modelplane.step import Selector, StepRequest, StepResult, require, step
from modelplane.steps.modeldeployment.decision import encode, record


def _decide(res: StepResult, d: Decision, clusters: dict[str, Cluster]) -> StepResult:
    res.context[context.PLACEMENT] = encode(record(d, clusters))
    return res


def _waiting(res: StepResult, own: list[Replica], desired: int, what: str) -> StepResult:
    d = Decision(desired=desired, replicas=sorted(own, key=lambda r: (r.ordinal, r.name)),
                 blocked=Blocked("WaitingForInputs", f"waiting for required resources: {what}"))
    return _decide(res, d, {})


def _report_hosting(res: StepResult, own: list[Replica], clusters: dict[str, Cluster],
                    window: timedelta) -> None:
    """Warn about replicas whose cluster vanished or is not Ready (they are kept meanwhile).

    Placement keeps such replicas until a replacement is Ready (make-before-break), so nothing
    changes on the deployment's spec or status until then; the warning says why it may not serve.
    """
    for cluster in sorted({r.cluster for r in own if r.cluster}):
        names = ", ".join(sorted(r.name for r in own if r.cluster == cluster))
        c = clusters.get(cluster)
        if c is None:
            res.event("Warning", f"InferenceCluster {cluster!r} hosting replica(s) {names} was "
                      "not found; they are kept until a replacement elsewhere is Ready",
                      "ClusterNotFound")
        elif not c.ready:
            since = f" since {c.not_ready_since.isoformat()}" if c.not_ready_since else ""
            res.event("Warning", f"InferenceCluster {cluster!r} hosting replica(s) {names} is "
                      f"not Ready{since}; a replacement is placed elsewhere after "
                      f"spec.placement.failoverWindow ({window})", "ClusterNotReady")


def _cache_missing(req: StepRequest, own: list[Replica], desired: int, ref: str) -> Decision:
    return Decision(desired=desired, replicas=sorted(own, key=lambda r: (r.ordinal, r.name)),
                    blocked=Blocked("ModelCacheMissing",
                                    f"spec.modelCacheRef.name {ref!r}: no ModelCache of that "
                                    f"name in namespace {req.namespace}"))


def _serving_means_routed(req: StepRequest, own: list[Replica]) -> None:
    """A Ready replica serves once its composed ModelEndpoint is routable (status.ready).

    Make-before-break waits for the replacement to *serve*, not just to be Ready: until its
    endpoint reports ready, no route carries traffic to it, so removing the replica it
    replaces would leave the service without a backend. Only positive evidence counts: an
    endpoint not composed yet, or without status, does not make a replica serving. Such a
    replica is of unknown readiness when its endpoint's status is missing (lost status), which
    scale-down counts as serving (unknown is not false).
    """
    endpoints = {str(path(o, "metadata").get("name")): o for o in req.observed.values()
                 if o.get("kind") == MODEL_ENDPOINT}
    for r in own:
        if not r.ready:
            continue
        ep = endpoints.get(r.name)
        status = ep.get("status") if ep is not None else None
        routed = isinstance(status, dict) and status.get("ready") is True
        if not routed:
            r.ready = False
            r.ready_unknown = ep is not None and not (isinstance(status, dict)
                                                      and "ready" in status)


@step("place", kinds=[MODEL_DEPLOYMENT])
def place(req: StepRequest) -> StepResult:
    res = StepResult(desired=dict(req.desired))
    own = replicas_from(o for o in req.observed.values() if o.get("kind") == MODEL_REPLICA)
    _serving_means_routed(req, own)
    desired = request_from(req.composite).replicas

    # Phase 1: classes and the clusters our replicas run on.
    classes = require(req, res, "classes", Selector.labels(API_VERSION, INFERENCE_CLASS, {}))
    own_objs: list[dict[str, Any]] = []
    missing: list[str] = [] if classes is not None else ["InferenceClasses"]
    for name in sorted({r.cluster for r in own if r.cluster}):
        got = require(req, res, f"cluster.{name}",
                      Selector(API_VERSION, INFERENCE_CLUSTER, match_name=name))
        if got is None:
            missing.append(f"InferenceCluster {name}")
        else:
            own_objs.extend(got)
    # The referenced ModelCache (one object) is read in phase 1 too: a replica on a cluster
    # that left the cache's footprint must move, and its copy there is held until it has.
    cache_ref = path(req.spec, "modelCacheRef").get("name")
    cache: list[dict[str, Any]] | None = []
    if cache_ref:
        cache = require(req, res, "cache", Selector(API_VERSION, MODEL_CACHE,
                                                    match_name=str(cache_ref),
                                                    namespace=req.namespace))
        if cache is None:
            missing.append(f"ModelCache {cache_ref}")
    if missing or classes is None or cache is None:
        return _waiting(res, own, desired, ", ".join(missing))

    now = now_from(req.context)
    own_clusters = clusters_from(own_objs, classes)
    if cache_ref and not cache:
        return _decide(res, _cache_missing(req, own, desired, str(cache_ref)), own_clusters)
    request = request_from(req.composite, now, footprint_from(cache[0], own_clusters.values())
                           if cache else None)
    # Replicas of ours that an over-committed pool's cluster says lose their place.
    evicted = evictions_of(own_objs, req.namespace or "")
    request = replace(request, evicted=evicted)
    matcher = PoolMatcher()
    _report_hosting(res, own, own_clusters, request.failover_window)
    steady = core.decide_steady(request, own_clusters, own, matcher=matcher)
    if steady is not None:
        return _decide(res, steady, own_clusters)

    # Phase 2: something needs placing, or the spread may be uneven: the fleet. Every
    # InferenceCluster composes a capacity summary (contract.capacity: its labels, taints,
    # readiness, pools and compact ledger in a few hundred bytes), and those are all placement
    # reads of the clusters it does not run on. Only when no cluster publishes one yet (a
    # fleet not yet reconciled by this version) are the InferenceClusters themselves required,
    # with their ledger, or every ModelReplica (phase 3); so is a fleet where some cluster
    # declares node pools but publishes none yet (its pools come from spec and classes, and
    # its ledger from every ModelReplica, as before summaries existed). Each choice is made
    # from the inputs of the phase before, so the requirements are the same on every call.
    texts = require(req, res, "capacity",
                    Selector.labels("v1", "ConfigMap",
                                    {capacity_contract.LABEL: capacity_contract.LABEL_VALUE},
                                    namespace=capacity_contract.NAMESPACE))
    if texts is None:
        return _waiting(res, own, desired, "capacity summaries")
    summaries = capacity.read(_summary_texts(texts), classes)
    if summaries.clusters and not summaries.unpublished:
        return _place_from_summaries(req, res, request, own, own_objs, own_clusters,
                                     summaries, cache, now, matcher)
    why = (f"InferenceCluster(s) {', '.join(sorted(summaries.unpublished))} publish no pools yet"
           if summaries.unpublished else
           "no InferenceCluster publishes a capacity summary yet (ConfigMaps labelled "
           f"{capacity_contract.LABEL}={capacity_contract.LABEL_VALUE} in "
           f"{capacity_contract.NAMESPACE})")
    res.event("Warning", f"{why}: placement reads every InferenceCluster instead, which is "
              "slower at fleet scale", "CapacitySummariesMissing")
    all_clusters = require(req, res, "clusters",
                           Selector.labels(API_VERSION, INFERENCE_CLUSTER, {}))
    if all_clusters is None:
        return _waiting(res, own, desired, "InferenceClusters")
    fleet_clusters = clusters_from(all_clusters, classes)
    if cache_ref:
        request = replace(request_from(req.composite, now,
                                       footprint_from(cache[0], fleet_clusters.values())),
                          evicted=evicted)
    # The ledger only matters where a replica may go: the compact one is used when every such
    # cluster publishes it (all phase-2 inputs, so the requirement is stable across calls).
    candidates = {n for n, c in fleet_clusters.items() if cluster_filter(request, c) is None}
    summarised = summary_usages(all_clusters, owner_key(req.namespace or "", req.name),
                                relevant=candidates.__contains__)
    if summarised is None:
        replicas = require(req, res, "replicas",
                           Selector.labels(API_VERSION, MODEL_REPLICA, {}))
        if replicas is None:
            return _waiting(res, own, desired, "ModelReplicas")
        usages = [usage_from(o) for o in replicas if honoured(o) is None]
    else:
        usages = summarised
    # Our own observed replicas count too, even before the API lists them. (The compact
    # ledger left our own entries out, so nothing is counted twice; the full ledger's
    # duplicates are dropped by the Ledger, which keys usages by namespace and name.)
    usages += [usage_from(o) for o in req.observed.values() if o.get("kind") == MODEL_REPLICA]
    decision = core.place(request, Fleet(fleet_clusters, usages), own, matcher=matcher)
    return _decide(res, decision, fleet_clusters)


def _summary_texts(objs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(cluster, summary text) of every summary an InferenceCluster composed.

    Only a summary controlled by an InferenceCluster counts, and it speaks for that cluster
    alone (the controller reference names it): a ConfigMap someone else labelled is ignored.
    """
    out: list[tuple[str, str]] = []
    for o in objs:
        ref = controller(o)
        if (ref is None or ref.get("kind") != INFERENCE_CLUSTER
                or str(ref.get("apiVersion", "")).split("/")[0] != GROUP):
            continue
        text = path(o, "data").get(capacity_contract.DATA_KEY)
        if isinstance(text, str):
            out.append((str(ref.get("name", "")), text))
    return out


def _place_from_summaries(req: StepRequest, res: StepResult, request: Request,
                          own: list[Replica], own_objs: list[dict[str, Any]],
                          own_clusters: dict[str, Cluster], summaries: capacity.Summaries,
                          cache: list[dict[str, Any]], now: datetime,
                          matcher: PoolMatcher) -> StepResult:
    """Place from the capacity summaries (phase 2's usual case)."""
    fleet_clusters = dict(summaries.clusters)
    # The clusters our replicas run on were read in full in phase 1: judge those replicas by
    # what their clusters publish now, not by a summary that may be one round older.
    fleet_clusters.update(own_clusters)
    if cache:
        request = request_from(req.composite, now,
                               footprint_from(cache[0], fleet_clusters.values()))
    skip = owner_key(req.namespace or "", req.name)
    candidates = {n for n, c in fleet_clusters.items() if cluster_filter(request, c) is None}
    # A candidate without a complete published ledger takes nothing new (its free capacity
    # is unknown, and unknown is not "free"); what runs there is kept.
    unknown = {n for n in candidates
               if (not summaries.complete(n) if n not in own_clusters
                   else summary_usages([o for o in own_objs
                                        if path(o, "metadata").get("name") == n], skip) is None)}
    for n in sorted(unknown):
        c = fleet_clusters[n]
        fleet_clusters[n] = replace(c, pools=tuple(
            replace(p, devices=(), problem=p.problem or "its capacity ledger is not published "
                    "yet (status.pools[].allocated)") for p in c.pools))
    relevant = candidates - unknown
    usages = summary_usages([o for o in own_objs
                             if path(o, "metadata").get("name") in relevant], skip) or []
    usages += [usage_from(o) for o in req.observed.values() if o.get("kind") == MODEL_REPLICA]

    def published(cluster: str) -> list[Usage]:
        # The other clusters' ledgers, replayed only for clusters a decision looks at.
        return summaries.usages(cluster, skip) if cluster not in own_clusters else []

    decision = core.place(request, Fleet(fleet_clusters, usages, published), own,
                          matcher=matcher)
    return _decide(res, decision, fleet_clusters)
