"""The fleet scheduler, a pure library: read the fleet, filter, account, score, decide.

``inputs`` reads Kubernetes objects into the plain types of ``model``; ``filter`` decides which
clusters and pools may take a replica, ``ledger`` what is free, ``score`` what is preferred, and
``core.place`` decides. ``compact_ledger`` is the per-pool summary InferenceClusters publish.
Nothing here registers a step or sees protobuf: ModelDeployment's `place` step
(``modelplane.steps.modeldeployment.place``), the CLI and the benchmark all call this code.
"""

from __future__ import annotations

from typing import Any

from modelplane.contract.api import INFERENCE_CLASS, INFERENCE_CLUSTER, MODEL_REPLICA, is_ours
from modelplane.placement.compact_ledger import honoured
from modelplane.placement.core import place
from modelplane.placement.inputs import clusters_from, usage_from
from modelplane.placement.ledger import Ledger
from modelplane.placement.model import Fleet

__all__ = ["free_capacity", "place"]


def free_capacity(objects: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(cluster, pool) -> what is free, e.g. "3/4 gpu on 2 nodes", from a set of objects."""
    def of(kind: str) -> list[dict[str, Any]]:
        return [o for o in objects if o.get("kind") == kind and is_ours(o)]

    clusters = clusters_from(of(INFERENCE_CLUSTER), of(INFERENCE_CLASS))
    ledger = Ledger(Fleet(clusters, [usage_from(o) for o in of(MODEL_REPLICA)
                                     if honoured(o) is None]))
    out: dict[tuple[str, str], str] = {}
    for cname in sorted(clusters):
        for pool in clusters[cname].pools:
            led = ledger.pool(cname, pool.name)
            if led is None or pool.problem:
                continue
            parts = [f"{free}/{total} {dev}"
                     for dev, (free, total, _) in sorted(led.free().items())]
            text = ", ".join(parts) or "no claimable devices"
            out[(cname, pool.name)] = f"{text} on {pool.node_ceiling} nodes"
    return out
