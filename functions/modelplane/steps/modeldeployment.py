"""ModelDeployment composition (step `compose-deployment`).

Turns the `place` step's decision (pipeline context ``modelplane.ai/placement``) into one
ModelReplica per placed replica and one ModelEndpoint per Ready replica, and explains the
decision on the XR's status. Without a usable decision it keeps everything that exists.
"""

from __future__ import annotations

from typing import Any

from modelplane.common import conditions
from modelplane.placement.inputs import (
    CLUSTER_LABEL,
    DEPLOYMENT_LABEL,
    ORDINAL_ANNOTATION,
    SPREAD_ANNOTATION,
)
from modelplane.placement.step import API, CONTEXT_KEY
from modelplane.step import (
    Desired,
    StepRequest,
    StepResult,
    as_desired,
    mark_ready_from_observed,
    step,
)

REPLICA_PREFIX = "replica-"
ENDPOINT_PREFIX = "endpoint-"


def _replica_spec(req: StepRequest, placed: dict[str, Any]) -> dict[str, Any]:
    """The ModelReplica spec: the deployment's engines with each member's pool and devices."""
    spec = req.spec
    pinned = {(m["engine"], m["member"]): m for m in placed.get("members") or []}
    engines = []
    for e in spec.get("engines") or []:
        members = []
        for m in e.get("members") or []:
            pin = pinned.get((e.get("name"), m.get("role")), {})
            member: dict[str, Any] = {"role": m.get("role"), "pool": pin.get("pool", ""),
                                      "template": m.get("template") or {"spec": {}}}
            if m.get("worker"):
                member["worker"] = m["worker"]
            if pin.get("devices"):
                member["devices"] = pin["devices"]
            members.append(member)
        engine: dict[str, Any] = {"name": e.get("name"), "members": members}
        for k in ("copies", "phase"):
            if k in e:
                engine[k] = e[k]
        engines.append(engine)
    out: dict[str, Any] = {"deployment": req.name, "cluster": placed["cluster"],
                           "engines": engines}
    if spec.get("serving"):
        out["serving"] = spec["serving"]
    if spec.get("modelCacheRef"):
        out["modelCacheRef"] = spec["modelCacheRef"]
    if spec.get("tolerations"):
        out["tolerations"] = spec["tolerations"]
    return out


def _labels(req: StepRequest, cluster: str) -> dict[str, str]:
    own = (req.composite.get("metadata") or {}).get("labels") or {}
    labels = {k: str(v) for k, v in own.items()
              if not k.startswith(("crossplane.io/", "modelplane.ai/"))}
    labels[DEPLOYMENT_LABEL] = req.name
    labels[CLUSTER_LABEL] = cluster
    return labels


def replica_annotations(placed: dict[str, Any], decision: dict[str, Any]) -> dict[str, str]:
    """The slot, and the spread record of the last fleet read (lets a steady reconcile prove
    the spread even without reading the fleet; see modelplane.placement.core.spread_record)."""
    out = {ORDINAL_ANNOTATION: str(placed["ordinal"])}
    if decision.get("spread"):
        out[SPREAD_ANNOTATION] = str(decision["spread"])
    return out


def _url(address: str) -> str:
    return address if address.startswith(("http://", "https://")) else f"http://{address}"


@step("compose-deployment", kinds=["ModelDeployment"])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    decision = req.context.get(CONTEXT_KEY)
    selector = f"{DEPLOYMENT_LABEL}={req.name}"
    if not isinstance(decision, dict):
        res.desired = req.keep_observed()
        res.status.update({"labelSelector": selector})
        res.condition("ReplicasScheduled", "Unknown", "PlacementMissing",
                      f"no placement decision in context {CONTEXT_KEY}; keeping what exists")
        return res
    blocked = decision.get("blocked")
    observed_replicas = {n: o for n, o in req.observed.items() if o.get("kind") == "ModelReplica"}
    if blocked:
        res.desired = req.keep_observed()
        mark_ready_from_observed(req, res.desired)
        ready = sum(1 for o in observed_replicas.values() if conditions.is_true(o))
        res.status.update({"replicas": len(observed_replicas), "labelSelector": selector,
                           "desiredReplicas": int(decision.get("desired", 0)),
                           "scheduledReplicas": len(observed_replicas), "readyReplicas": ready})
        res.condition("ReplicasScheduled", "False", str(blocked.get("reason")),
                      f"{blocked.get('message')}; keeping the {len(observed_replicas)} existing "
                      f"replica(s) and placing nothing new")
        return res

    by_name = {str((o.get("metadata") or {}).get("name")): (n, o)
               for n, o in observed_replicas.items()}
    cluster_labels = decision.get("clusterLabels") or {}
    placements: list[dict[str, Any]] = []
    ready_count = 0
    for placed in decision.get("replicas") or []:
        name = str(placed["name"])
        rname = REPLICA_PREFIX + name
        seen = by_name.get(name)
        if placed.get("invalid") and seen is not None:
            res.desired[rname] = Desired(as_desired(seen[1]))  # keep as is until replaced
        else:
            res.desired[rname] = Desired({
                "apiVersion": API, "kind": "ModelReplica",
                "metadata": {"name": name, "namespace": req.namespace,
                             "labels": _labels(req, placed["cluster"]),
                             "annotations": replica_annotations(placed, decision)},
                "spec": _replica_spec(req, placed),
            })
        obs = seen[1] if seen else None
        is_ready = conditions.is_true(obs)
        address = ((obs or {}).get("status") or {}).get("address")
        if not placed.get("invalid"):
            ready_count += int(is_ready)
            placements.append({"replica": name, "cluster": placed["cluster"],
                               "pools": [{"engine": m["engine"], "member": m["member"],
                                          "pool": m["pool"]}
                                         for m in placed.get("members") or []]})
        if is_ready and address:
            labels = {DEPLOYMENT_LABEL: req.name, CLUSTER_LABEL: str(placed["cluster"]),
                      **(cluster_labels.get(placed["cluster"]) or {})}
            res.desired[ENDPOINT_PREFIX + name] = Desired({
                "apiVersion": API, "kind": "ModelEndpoint",
                "metadata": {"name": name, "namespace": req.namespace, "labels": labels},
                "spec": {"url": _url(str(address))},
            })
    mark_ready_from_observed(req, res.desired)

    desired = int(decision.get("desired", 0))
    scheduled = int(decision.get("scheduled", 0))
    unschedulable = list(decision.get("unschedulable") or [])
    more = decision.get("unschedulableMore") or {}
    if more:
        counts = ", ".join(f"{r}: {n}" for r, n in sorted(more.items()))
        unschedulable.append({"cluster": "*", "reason": "MoreClusters",
                              "message": f"{sum(more.values())} more clusters ({counts})"})
    res.status.update({
        "replicas": scheduled, "labelSelector": selector, "desiredReplicas": desired,
        "scheduledReplicas": scheduled, "readyReplicas": ready_count,
        "placements": placements, "unschedulable": unschedulable,
    })
    moving = [p for p in decision.get("replicas") or [] if p.get("invalid")]
    move_note = ""
    if moving:
        move_note = (f"; moving {len(moving)} replica(s) make-before-break: "
                     f"{moving[0]['name']}: {moving[0]['invalid']}")
    shortfall = int(decision.get("shortfall", 0))
    if shortfall:
        first = unschedulable[0] if unschedulable else {}
        res.condition("ReplicasScheduled", "False", "Unschedulable",
                      f"{scheduled}/{desired} replicas scheduled; {shortfall} could not be "
                      f"placed on any cluster (e.g. {first.get('cluster')}: "
                      f"{first.get('reason')}: {first.get('message')}); see "
                      f"status.unschedulable{move_note}")
    else:
        res.condition("ReplicasScheduled", "True", "AllScheduled",
                      f"{scheduled}/{desired} replicas scheduled{move_note}")
    for r in decision.get("refused") or []:
        res.event("Warning", f"replica {r.get('name')} removed: cluster {r.get('cluster')} "
                  f"cannot admit its pods ({r.get('message')}); re-placed where there is room",
                  "ReplicaUnschedulable")
    waiting = [p for p in decision.get("replicas") or [] if p.get("waiting")]
    if desired == 0:
        res.condition("ReplicasReady", "True", "ScaledToZero", "spec.replicas is 0")
    elif waiting and ready_count < desired:
        first = waiting[0]
        res.condition("ReplicasReady", "False", "WaitingForAdmission",
                      f"{ready_count}/{desired} replicas Ready; {len(waiting)} placed but not "
                      f"admitted by their cluster, kept because no other cluster has room (e.g. "
                      f"{first['name']} on {first['cluster']}: {first['waiting']})")
    elif ready_count >= desired:
        res.condition("ReplicasReady", "True", "AllReady",
                      f"{ready_count}/{desired} replicas Ready")
    else:
        res.condition("ReplicasReady", "False", "NotReady",
                      f"{ready_count}/{desired} replicas Ready")
    return res
