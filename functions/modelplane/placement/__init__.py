"""The fleet scheduler: a pure core (filter clusters and pools, score, assign) and its step.

``place`` (core.py) is what the `place` pipeline step, the CLI and the benchmark call;
``free_capacity`` reports the ledger per pool for `modelplane render`'s summary.
"""

from __future__ import annotations

from typing import Any

from modelplane.placement.core import place
from modelplane.placement.inputs import clusters_from, usage_from
from modelplane.placement.ledger import Ledger
from modelplane.placement.model import Fleet

__all__ = ["free_capacity", "place"]


def free_capacity(objects: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(cluster, pool) -> what is free, e.g. "3/4 gpu on 2 nodes", from a set of objects."""
    def of(kind: str) -> list[dict[str, Any]]:
        return [o for o in objects if o.get("kind") == kind
                and str(o.get("apiVersion", "")).startswith("modelplane.ai/")]

    clusters = clusters_from(of("InferenceCluster"), of("InferenceClass"))
    ledger = Ledger(Fleet(clusters, [usage_from(o) for o in of("ModelReplica")]))
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
