"""The compact capacity ledger: ``InferenceCluster.status.pools[].allocated``.

Each InferenceCluster publishes, per pool, the pods its ModelReplicas claim grouped by owning
deployment (a few entries per cluster); placement reads the whole fleet's ledger from the
clusters alone instead of every ModelReplica in full. The writer (:func:`allocation_summary`,
used by the InferenceCluster step) and the reader (:func:`summary_usages`, used by `place`)
live together so the format has one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from modelplane.common.fields import mapping as _d
from modelplane.common.fields import sequence as _l
from modelplane.contract.api import MODEL_DEPLOYMENT
from modelplane.contract.ownership import not_composed_by
from modelplane.placement.inputs import usage_from
from modelplane.placement.model import PodGroup, Usage, Vector


def _count(v: Any, default: int) -> int:
    try:
        return max(int(v), 0)
    except (TypeError, ValueError):
        return max(default, 0)


def owner_key(namespace: str, deployment: str) -> str:
    """How an ``allocated`` entry names its deployment: ``namespace/name``."""
    return f"{namespace}/{deployment}"


def honoured(obj: Mapping[str, Any]) -> str | None:
    """Why a ModelReplica does not count (None when it does): only a replica controlled by the
    ModelDeployment of its own namespace that its ``spec.deployment`` names is placement's; a
    hand-made one never enters a capacity ledger (docs/security.md)."""
    why = not_composed_by(obj, MODEL_DEPLOYMENT)
    if why is not None:
        return why
    owner = (_d(obj.get("metadata")).get("ownerReferences") or [{}])
    name = next((r.get("name") for r in owner if isinstance(r, dict) and r.get("controller")),
                None)
    deployment = _d(obj.get("spec")).get("deployment")
    if deployment != name:
        return f"spec.deployment {deployment!r} is not its controller ModelDeployment {name!r}"
    return None


def allocation_summary(replicas: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per pool, the pods a cluster's ModelReplicas claim, grouped by owning deployment (only
    replicas a ModelDeployment composed: see :func:`honoured`)."""
    groups: dict[tuple[str, str, Vector], int] = {}
    for obj in replicas:
        if honoured(obj) is not None:
            continue
        meta, spec = _d(obj.get("metadata")), _d(obj.get("spec"))
        owner = owner_key(str(meta.get("namespace") or ""), str(spec.get("deployment") or ""))
        for group in usage_from(obj).pods:
            if group.demand:
                key = (group.pool, owner, group.demand)
                groups[key] = groups.get(key, 0) + group.pods
    out: dict[str, list[dict[str, Any]]] = {}
    for (pool, owner, demand), pods in sorted(groups.items()):
        out.setdefault(pool, []).append({
            "owner": owner, "pods": pods,
            "devices": [{"name": n, "count": c} for n, c in demand]})
    return out


def summary_usages(clusters: Iterable[Mapping[str, Any]], skip_owner: str,
                   relevant: Callable[[str], bool] | None = None) -> list[Usage] | None:
    """The ledger from published ``status.pools[].allocated``; None unless it is complete.

    Complete means: every pool of every *relevant* cluster (one that could take a new replica;
    all clusters when ``relevant`` is None) publishes ``allocated``. Other clusters are left
    out: no replica is placed there, so their allocations do not matter to this decision.

    Entries of ``skip_owner`` (see :func:`owner_key`) are left out too: the deployment's own
    replicas are in the summary as well, and the caller adds them from its observed state,
    which is fresher. Counting both would count each own replica twice.
    """
    out: list[Usage] = []
    for obj in clusters:
        name = str(_d(obj.get("metadata")).get("name", ""))
        if relevant is not None and not relevant(name):
            continue
        pools = [p for p in _l(_d(obj.get("status")).get("pools")) if isinstance(p, dict)]
        if not pools and _l(_d(obj.get("spec")).get("nodePools")):
            return None
        published: list[tuple[str, list[Any]]] = []
        for p in pools:
            allocated = p.get("allocated")
            if not isinstance(allocated, list):
                return None
            published.append((str(p.get("name", "")), allocated))
        out += ledger_usages(name, published, skip_owner)
    return out


def ledger_usages(cluster: str, pools: Iterable[tuple[str, list[Any]]],
                  skip_owner: str) -> list[Usage]:
    """The usages one cluster's published ``(pool, allocated)`` entries stand for (entries of
    ``skip_owner`` left out, see :func:`summary_usages`)."""
    out: list[Usage] = []
    for pool, allocated in pools:
        for i, a in enumerate(allocated):
            if not isinstance(a, dict) or a.get("owner") == skip_owner:
                continue
            devices = a.get("devices")
            demand = tuple(sorted((str(d.get("name")), _count(d.get("count"), 1))
                                  for d in devices if isinstance(d, dict))
                           ) if isinstance(devices, list) else ()
            pods = a.get("pods")
            n = pods if type(pods) is int and pods >= 0 else _count(pods, 0)
            out.append(Usage(str(a.get("owner", "")), f"{cluster}/{pool}#{i}", cluster,
                             (PodGroup(pool, demand, n),)))
    return out


def evictions_of(clusters: Iterable[Mapping[str, Any]], namespace: str) -> dict[str, str]:
    """The replicas of ``namespace`` that lose their place, from ``status.pools[].evicting``
    (written by the InferenceCluster step, ordered by ``placement/eviction.py``): name -> why."""
    out: dict[str, str] = {}
    for obj in clusters:
        cluster = str(_d(obj.get("metadata")).get("name", ""))
        for p in _l(_d(obj.get("status")).get("pools")):
            if not isinstance(p, dict):
                continue
            for entry in _l(p.get("evicting")):
                ns, _, name = str(entry).partition("/")
                if ns == namespace and name and name not in out:
                    out[name] = (f"pool {p.get('name')} on cluster {cluster} holds fewer "
                                 f"replicas than run there (nodeCeiling {p.get('nodeCeiling')}); "
                                 "it lost its place to a backend with a larger share of its "
                                 "ModelService's traffic, or to an older replica")
    return out
