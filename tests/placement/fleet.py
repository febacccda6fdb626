"""Builders for placement tests: small fleets as the objects Crossplane would send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelplane.placement.inputs import clusters_from, request_from
from modelplane.placement.model import Fleet, Replica, Request

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
API = "modelplane.ai/v1alpha1"
MEM20 = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'
MEM60 = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("60Gi")) >= 0'


def klass(name: str, gpus: int = 1, memory: str = "24Gi", cost: str | None = None,
          claim: str = "DRA") -> dict[str, Any]:
    spec: dict[str, Any] = {"devices": [{"name": "gpu", "driver": "gpu.nvidia.com", "claim": claim,
                                         "count": gpus, "capacity": {"memory": {"value": memory}}}]}
    if cost:
        spec["costPerNodeHour"] = cost
    return {"apiVersion": API, "kind": "InferenceClass", "metadata": {"name": name}, "spec": spec}


def cluster(name: str, pools: list[tuple[str, str, int]], labels: dict[str, str] | None = None,
            ready: bool = True, since: str = "2026-01-01T11:59:00Z",
            taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodePools": [{"name": p, "className": c, "maxNodeCount": n}
                                          for p, c, n in pools]}
    if taints:
        spec["taints"] = taints
    return {"apiVersion": API, "kind": "InferenceCluster",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "reason": "x", "lastTransitionTime": since}]}}


def deployment(name: str = "m", replicas: int = 1, gpus: int = 1,
               selectors: list[str] | None = None, namespace: str = "team",
               **spec: Any) -> dict[str, Any]:
    member: dict[str, Any] = {"role": "Standalone", "template": {"spec": {"containers": []}},
                              "nodeSelector": {"devices": [{"name": "gpu", "count": gpus,
                                                            "selectors": [{"cel": s} for s in
                                                                          (selectors or [])]}]}}
    return {"apiVersion": API, "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "engines": [{"name": "e", "members": [member]}],
                     **spec}}


def fleet(clusters: list[dict[str, Any]], classes: list[dict[str, Any]]) -> Fleet:
    return Fleet(clusters_from(clusters, classes))


def request(md: dict[str, Any]) -> Request:
    return request_from(md, NOW)


def as_observed(reps: list[Replica], ready: bool = True) -> list[Replica]:
    """The decision fed back as observed state (new replicas now exist)."""
    return [Replica(r.name, r.ordinal, r.cluster, r.assignments, ready=ready) for r in reps]


def feed_back(f: Fleet, req: Request, reps: list[Replica], ready: bool = True) -> tuple[Fleet,
                                                                                       list[Replica]]:
    """Fleet and own replicas after the decision's replicas exist (their usage in the ledger)."""
    from modelplane.placement.core import usage

    own = as_observed(reps, ready)
    others = [u for u in f.usages
              if not (u.namespace == req.namespace and u.name.startswith(req.name + "-"))]
    return Fleet(f.clusters, others + [usage(req, r) for r in reps]), own
