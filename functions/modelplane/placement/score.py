"""Scoring: spread before pack, then cheaper capacity, then name (deterministic ties)."""

from __future__ import annotations

from decimal import Decimal

from modelplane.placement.model import INFINITE_COST, Cluster, Pool, Request


def domain(request: Request, cluster: Cluster) -> str:
    """The spread domain of a cluster: its name, or its spreadTopologyKey label value."""
    if not request.spread_key:
        return cluster.name
    return "label:" + str(cluster.labels.get(request.spread_key, ""))


def pool_cost(pool: Pool) -> Decimal:
    """Declared cost per node-hour; undeclared sorts after any declared cost."""
    return pool.cost if pool.cost is not None else INFINITE_COST


def pool_order(pool: Pool) -> tuple[Decimal, str]:
    """Order pools of one cluster: cheaper first, then by name."""
    return (pool_cost(pool), pool.name)
