"""Who loses their place when a pool holds less than runs on it: the eviction order, once.

Kubernetes does not preempt between our pods (they share one priority), and which nodes a
cloud removes when a pool's ceiling drops is the cloud's choice. So Modelplane decides: the
InferenceCluster ranks the ModelReplicas on an over-committed pool and publishes the ones that
lose their place (``status.pools[].evicting``); their ModelDeployments remove and re-place them,
which frees the devices for the replicas that keep theirs (docs/placement.md).

Places are given, replica by replica, in this order; a replica whose pods no longer fit in the
pool's canonical packing (the capacity ledger) loses its place:

1. the larger share of its ModelService's traffic first (a 90% stable before a 10% canary; a
   deployment no ModelService routes to has share 0; ``contract/backends.py``);
2. then the older replica (creationTimestamp): the newest go first;
3. then namespace and name.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import NamedTuple

from modelplane.placement.ledger import PoolLedger
from modelplane.placement.model import PodGroup, Pool


class Holder(NamedTuple):
    """One ModelReplica's pods on one pool, with what ranks it."""

    namespace: str
    name: str
    weight: Fraction  # its deployment's share of a ModelService's traffic (0: not routed)
    created: str  # RFC 3339 creationTimestamp; "" when unknown (ranks as oldest)
    pods: tuple[PodGroup, ...]


def keep_order(holders: Iterable[Holder]) -> list[Holder]:
    """Who keeps a place first: largest share, then oldest, then namespace and name."""
    return sorted(holders, key=lambda h: (-h.weight, h.created, h.namespace, h.name))


def losers(pool: Pool, holders: Iterable[Holder]) -> list[Holder]:
    """The replicas that lose their place on ``pool``, in eviction order (first to go first).

    Empty when everything fits the pool's ceiling. Deterministic: depends only on the pool and
    the set of holders.
    """
    ranked = keep_order(holders)
    every = PoolLedger(pool)
    for h in ranked:
        for g in h.pods:
            if g.pool == pool.name:
                every.add((h.namespace, h.name), g.demand, g.pods)
    every.used_nodes()  # replays the packing, which sets overflow
    if every.overflow == 0:
        return []
    ledger = PoolLedger(pool)
    lost: list[Holder] = []
    for h in ranked:
        demands = [(g.demand, g.pods) for g in h.pods if g.pool == pool.name and g.demand]
        if demands and not ledger.commit((h.namespace, h.name), demands):
            lost.append(h)
    return list(reversed(lost))
