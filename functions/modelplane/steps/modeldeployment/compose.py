"""ModelDeployment composition (step `compose-deployment`).

Turns the `place` step's decision (see :mod:`.decision`) into one ModelReplica per placed
replica and one ModelEndpoint per Ready replica, and explains the decision on the XR's status.
Without a usable decision it keeps everything that exists.
"""

from __future__ import annotations

import copy
from typing import Any

from modelplane.common import conditions
from modelplane.contract import context, podpolicy
from modelplane.contract.api import API_VERSION, MODEL_DEPLOYMENT, MODEL_ENDPOINT, MODEL_REPLICA
from modelplane.contract.boundary import endpoint_labels
from modelplane.contract.metadata import (
    CLUSTER_LABEL,
    DEPLOYMENT_LABEL,
    ORDINAL_ANNOTATION,
    PREFIX,
    SPREAD_ANNOTATION,
)
from modelplane.placement.inputs import readiness_unknown
from modelplane.step import (
    Desired,
    StepRequest,
    StepResult,
    as_desired,
    mark_ready_from_observed,
    step,
)
from modelplane.steps.modeldeployment.decision import (
    DecodeError,
    PlacedReplica,
    PlacementRecord,
    decode,
    device_spec,
)

REPLICA_PREFIX = "replica-"
ENDPOINT_PREFIX = "endpoint-"


def _replica_spec(req: StepRequest, placed: PlacedReplica) -> dict[str, Any]:
    """The ModelReplica spec: the deployment's engines with each member's pool and devices."""
    spec = req.spec
    pinned = {(m.engine, m.member): m for m in placed.members}
    engines = []
    for e in spec.get("engines") or []:
        members = []
        for m in e.get("members") or []:
            pin = pinned.get((e.get("name"), m.get("role")))
            member: dict[str, Any] = {"role": m.get("role"), "pool": pin.pool if pin else "",
                                      "template": m.get("template") or {"spec": {}}}
            if m.get("worker"):
                member["worker"] = m["worker"]
            if pin is not None and pin.devices:
                member["devices"] = [device_spec(d) for d in pin.devices]
            members.append(member)
        engine: dict[str, Any] = {"name": e.get("name"), "members": members}
        for k in ("copies", "phase"):
            if k in e:
                engine[k] = e[k]
        engines.append(engine)
    out: dict[str, Any] = {"deployment": req.name, "cluster": placed.cluster,
                           "engines": engines}
    if spec.get("serving"):
        out["serving"] = spec["serving"]
    if spec.get("modelCacheRef"):
        out["modelCacheRef"] = spec["modelCacheRef"]
    if spec.get("tolerations"):
        out["tolerations"] = spec["tolerations"]
    return out


def policy_violations(spec: dict[str, Any]) -> list[podpolicy.Violation]:
    """What the pod policy's floor refuses in any member template (the hosting cluster's own
    settings are checked again by the ModelReplica when it composes the workloads)."""
    out: list[podpolicy.Violation] = []
    for i, e in enumerate(spec.get("engines") or []):
        for j, m in enumerate((e or {}).get("members") or [] if isinstance(e, dict) else []):
            if isinstance(m, dict):
                out += podpolicy.floor(m.get("template"),
                                       f"spec.engines[{i}].members[{j}].template")
    return out


def _labels(req: StepRequest, cluster: str) -> dict[str, str]:
    own = (req.composite.get("metadata") or {}).get("labels") or {}
    labels = {k: str(v) for k, v in own.items()
              if not k.startswith(("crossplane.io/", PREFIX))}
    labels[DEPLOYMENT_LABEL] = req.name
    labels[CLUSTER_LABEL] = cluster
    return labels


def replica_annotations(placed: PlacedReplica, decision: PlacementRecord) -> dict[str, str]:
    """The slot, and the spread record of the last fleet read (lets a steady reconcile prove
    the spread even without reading the fleet; see modelplane.placement.core.spread_record)."""
    out = {ORDINAL_ANNOTATION: str(placed.ordinal)}
    if decision.spread:
        out[SPREAD_ANNOTATION] = decision.spread
    return out


def _url(address: str) -> str:
    return address if address.startswith(("http://", "https://")) else f"http://{address}"


_CARRIED_STATUS = ("replicas", "desiredReplicas", "scheduledReplicas", "readyReplicas",
                   "placements", "unschedulable")


def _missing(req: StepRequest, res: StepResult, selector: str, why: str) -> StepResult:
    res.desired = req.keep_observed()
    # Status is applied as the pipeline's full intent (what is not written is dropped): the
    # replicas are kept, so the counts and placements describing them are written again.
    res.status.update({k: copy.deepcopy(v) for k, v in req.status.items()
                       if k in _CARRIED_STATUS})
    res.status.update({"labelSelector": selector})
    res.condition("ReplicasScheduled", "Unknown", "PlacementMissing",
                  f"{why}; keeping what exists")
    res.composite_ready = "False"  # unknown is not ready
    return res


@step("compose-deployment", kinds=[MODEL_DEPLOYMENT])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    selector = f"{DEPLOYMENT_LABEL}={req.name}"
    raw = req.context.get(context.PLACEMENT)
    if raw is None:
        return _missing(req, res, selector, f"no placement decision in context "
                        f"{context.PLACEMENT}")
    try:
        decision = decode(raw)
    except DecodeError as err:
        return _missing(req, res, selector, f"unreadable placement decision in context "
                        f"{context.PLACEMENT} ({err})")
    observed_replicas = {n: o for n, o in req.observed.items()
                         if o.get("kind") == MODEL_REPLICA}
    violations = policy_violations(req.spec)
    if violations:
        # No replica is composed from a template the pod policy refuses; the replicas that run
        # (from an earlier template) are kept as they are until the template is fixed.
        res.desired = req.keep_observed()
        mark_ready_from_observed(req, res.desired)
        res.status.update({"labelSelector": selector, "desiredReplicas": decision.desired})
        msg = (f"pod policy: {podpolicy.describe(violations)}; keeping the "
               f"{len(observed_replicas)} existing replica(s) unchanged and composing nothing")
        res.condition("ReplicasScheduled", "False", "PodPolicyViolation", msg)
        res.event("Warning", msg, "PodPolicyViolation")
        return res
    if decision.blocked:
        res.desired = req.keep_observed()
        mark_ready_from_observed(req, res.desired)
        ready = sum(1 for o in observed_replicas.values() if conditions.is_true(o))
        res.status.update({"replicas": len(observed_replicas), "labelSelector": selector,
                           "desiredReplicas": decision.desired,
                           "scheduledReplicas": len(observed_replicas), "readyReplicas": ready})
        res.condition("ReplicasScheduled", "False", decision.blocked.reason,
                      f"{decision.blocked.message}; keeping the {len(observed_replicas)} "
                      f"existing replica(s) and placing nothing new")
        # Blocked (bad selector, missing cache, inputs not resolved): whatever still runs, the
        # deployment is not what its spec asks for, so it is not Ready, even at full count.
        res.composite_ready = "False"
        return res

    by_name = {str((o.get("metadata") or {}).get("name")): (n, o)
               for n, o in observed_replicas.items()}
    placements: list[dict[str, Any]] = []
    ready_count = 0
    for placed in decision.replicas:
        rname = REPLICA_PREFIX + placed.name
        seen = by_name.get(placed.name)
        if placed.invalid and seen is not None:
            kept = as_desired(seen[1])  # keep as is until replaced, in its (maybe new) slot
            meta: dict[str, Any] = dict(kept.get("metadata") or {})
            ann: dict[str, Any] = dict(meta.get("annotations") or {})
            kept["metadata"] = {**meta, "annotations": {**ann, ORDINAL_ANNOTATION:
                                                        str(placed.ordinal)}}
            res.desired[rname] = Desired(kept)
        else:
            res.desired[rname] = Desired({
                "apiVersion": API_VERSION, "kind": MODEL_REPLICA,
                "metadata": {"name": placed.name, "namespace": req.namespace,
                             "labels": _labels(req, placed.cluster),
                             "annotations": replica_annotations(placed, decision)},
                "spec": _replica_spec(req, placed),
            })
        obs = seen[1] if seen else None
        is_ready = conditions.is_true(obs)
        address = ((obs or {}).get("status") or {}).get("address")
        if not placed.invalid:
            ready_count += int(is_ready)
            placements.append({"replica": placed.name, "cluster": placed.cluster,
                               "pools": [{"engine": m.engine, "member": m.member,
                                          "pool": m.pool} for m in placed.members]})
        endpoint_name = ENDPOINT_PREFIX + placed.name
        if not is_ready and readiness_unknown(obs) and endpoint_name in req.observed:
            # Unknown is not false: a replica whose status is missing (a restore, a
            # migration) may well be serving; its endpoint stays until there is evidence.
            res.desired[endpoint_name] = Desired(as_desired(req.observed[endpoint_name]))
        elif is_ready and address:
            labels = endpoint_labels(req.name, placed.cluster,
                                     decision.cluster_labels.get(placed.cluster) or {})
            res.desired[ENDPOINT_PREFIX + placed.name] = Desired({
                "apiVersion": API_VERSION, "kind": MODEL_ENDPOINT,
                "metadata": {"name": placed.name, "namespace": req.namespace,
                             "labels": labels},
                "spec": {"url": _url(str(address))},
            })
    mark_ready_from_observed(req, res.desired)

    desired, scheduled = decision.desired, decision.scheduled
    unschedulable = [{"cluster": u.cluster, "reason": u.reason, "message": u.message}
                     for u in decision.unschedulable]
    more = decision.unschedulable_more
    if more:
        counts = ", ".join(f"{r}: {n}" for r, n in sorted(more.items()))
        unschedulable.append({"cluster": "*", "reason": "MoreClusters",
                              "message": f"{sum(more.values())} more clusters ({counts})"})
    res.status.update({
        "replicas": scheduled, "labelSelector": selector, "desiredReplicas": desired,
        "scheduledReplicas": scheduled, "readyReplicas": ready_count,
        "placements": placements, "unschedulable": unschedulable,
    })
    moving = [p for p in decision.replicas if p.invalid]
    move_note = ""
    if moving:
        move_note = (f"; moving {len(moving)} replica(s) make-before-break: "
                     f"{moving[0].name}: {moving[0].invalid}")
    if decision.shortfall:
        first = unschedulable[0] if unschedulable else {}
        res.condition("ReplicasScheduled", "False", "Unschedulable",
                      f"{scheduled}/{desired} replicas scheduled; {decision.shortfall} could "
                      f"not be placed on any cluster (e.g. {first.get('cluster')}: "
                      f"{first.get('reason')}: {first.get('message')}); see "
                      f"status.unschedulable{move_note}")
    else:
        res.condition("ReplicasScheduled", "True", "AllScheduled",
                      f"{scheduled}/{desired} replicas scheduled{move_note}")
    for e in decision.evicted:
        res.event("Warning", f"replica {e.name} removed: cluster {e.cluster} cannot admit its "
                  f"pods ({e.message}); re-placed where there is room", "ReplicaUnschedulable")
    waiting = [p for p in decision.replicas if p.waiting]
    if desired == 0:
        res.condition("ReplicasReady", "True", "ScaledToZero", "spec.replicas is 0")
    elif waiting and ready_count < desired:
        first_w = waiting[0]
        res.condition("ReplicasReady", "False", "WaitingForAdmission",
                      f"{ready_count}/{desired} replicas Ready; {len(waiting)} placed but not "
                      f"admitted by their cluster, kept because no other cluster has room (e.g. "
                      f"{first_w.name} on {first_w.cluster}: {first_w.waiting})")
    elif ready_count >= desired:
        res.condition("ReplicasReady", "True", "AllReady",
                      f"{ready_count}/{desired} replicas Ready")
    else:
        res.condition("ReplicasReady", "False", "NotReady",
                      f"{ready_count}/{desired} replicas Ready")
    # Ready means serving at the asked scale. Crossplane would derive it from the composed
    # ModelReplicas, which calls 0 of 1 placed (nothing composed) or 3 of 10 (all 3 Ready) ready.
    res.composite_ready = "True" if (desired == 0 or ready_count >= desired) and not (
        decision.shortfall) else "False"
    return res
