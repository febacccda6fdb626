"""The capacity ledger: devices per node of every pool, consumed by every existing replica.

A pool has ``node_ceiling`` nodes, each offering its class's devices. Every pod of every
ModelReplica (every deployment, every namespace) consumes its device requests on ONE node. Pods
are packed first-fit-decreasing in a canonical order (largest demand first, then by owner), so
the packing of a pool depends only on the set of pods in it: replaying the ledger from observed
state gives the same answer as the reconcile that placed them, and a placement is accepted only
if the canonical replay of the pool with the new pods still fits. Nothing is overcommitted.

Synthetic devices (no DRA driver publishes them) are matched but not accounted: no ResourceClaim
allocates them, so their capacity is the device plugin's business on the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelplane.placement.model import Fleet, Pool, Vector

Owner = tuple[str, str]  # (namespace, replica name)


class PoolLedger:
    """Node-level device accounting for one pool."""

    __slots__ = ("_demands", "_nodes", "cap", "ceiling", "names", "overflow")

    def __init__(self, pool: Pool) -> None:
        capacity = pool.capacity
        self.names: tuple[str, ...] = tuple(n for n, _ in capacity)
        self.cap: tuple[int, ...] = tuple(c for _, c in capacity)
        self.ceiling = pool.node_ceiling
        self._demands: list[tuple[tuple[int, Vector, Owner, int], tuple[int, ...] | None]] = []
        self._nodes: list[list[int]] | None = []
        self.overflow = 0

    # -- demands ------------------------------------------------------------------------------
    def _aligned(self, demand: Vector) -> tuple[int, ...] | None:
        """The demand as a vector over this pool's devices; None if it names a missing device."""
        want = dict(demand)
        if any(n not in self.names for n in want):
            return None
        return tuple(want.get(n, 0) for n in self.names)

    def add(self, owner: Owner, demand: Vector, count: int) -> None:
        """Record ``count`` pods of ``owner`` each needing ``demand`` (replayed lazily)."""
        if not demand:
            return  # a pod that claims nothing consumes nothing the ledger tracks
        aligned = self._aligned(demand)
        size = sum(c for _, c in demand)
        base = len(self._demands)
        for i in range(count):
            self._demands.append(((-size, demand, owner, base + i), aligned))
        self._nodes = None

    # -- packing ------------------------------------------------------------------------------
    def _replay(self) -> list[list[int]]:
        if self._nodes is not None:
            return self._nodes
        nodes: list[list[int]] = []
        overflow = 0
        for _, vec in sorted(self._demands, key=lambda d: d[0]):
            if vec is None or not _place(nodes, vec, self.cap, self.ceiling):
                overflow += 1
        self._nodes, self.overflow = nodes, overflow
        return nodes

    def fits(self, demands: Iterable[Vector]) -> bool:
        """Would these extra pods fit on the current packing (first-fit, largest first)?"""
        nodes = [list(n) for n in self._replay()]
        pending = sorted((d for d in demands if d), key=lambda d: -sum(c for _, c in d))
        for d in pending:
            vec = self._aligned(d)
            if vec is None or not _place(nodes, vec, self.cap, self.ceiling):
                return False
        return True

    def commit(self, owner: Owner, demands: list[tuple[Vector, int]]) -> bool:
        """Add the pods if the canonical replay still fits them all; otherwise change nothing."""
        self._replay()
        before, size = self.overflow, len(self._demands)
        for demand, count in demands:
            self.add(owner, demand, count)
        self._replay()
        if self.overflow > before:
            del self._demands[size:]
            self._nodes = None
            self._replay()
            return False
        return True

    def remove(self, owner: Owner) -> None:
        """Forget every pod of ``owner`` (rolls back a partial multi-pool commit)."""
        self._demands = [d for d in self._demands if d[0][2] != owner]
        self._nodes = None

    # -- reporting ----------------------------------------------------------------------------
    def used_nodes(self) -> int:
        return len(self._replay())

    def free(self) -> dict[str, tuple[int, int, int]]:
        """Per device: (free devices, total devices, most free on any one node)."""
        nodes = self._replay()
        out: dict[str, tuple[int, int, int]] = {}
        fresh = self.ceiling - len(nodes)
        for i, name in enumerate(self.names):
            total = self.cap[i] * self.ceiling
            free = sum(n[i] for n in nodes) + self.cap[i] * fresh
            best = max([n[i] for n in nodes] + ([self.cap[i]] if fresh > 0 else []), default=0)
            out[name] = (free, total, best)
        return out

    def describe_shortage(self, demands: list[Vector]) -> str:
        """What the pool has against what the pods need, with the numbers."""
        need: dict[Vector, int] = {}
        for d in demands:
            need[d] = need.get(d, 0) + 1
        wants = ", ".join(f"{n} pod(s) x {_fmt(d)}" for d, n in sorted(need.items()))
        parts = []
        for name, (free, total, best) in sorted(self.free().items()):
            parts.append(f"{free}/{total} {name} free on {self.ceiling} node(s), at most "
                         f"{best} free on one node")
        if self.overflow:
            parts.append(f"{self.overflow} existing pod(s) already do not fit")
        have = "; ".join(parts) or f"{self.ceiling} node(s) offering no claimable devices"
        return f"needs {wants}; has {have}"


def _place(nodes: list[list[int]], vec: tuple[int, ...], cap: tuple[int, ...],
           ceiling: int) -> bool:
    for node in nodes:
        if all(f >= v for f, v in zip(node, vec, strict=True)):
            for i, v in enumerate(vec):
                node[i] -= v
            return True
    if len(nodes) < ceiling and all(c >= v for c, v in zip(cap, vec, strict=True)):
        nodes.append([c - v for c, v in zip(cap, vec, strict=True)])
        return True
    return False


def _fmt(d: Vector) -> str:
    return "{" + ", ".join(f"{n}: {c}" for n, c in d) + "}"


class Ledger:
    """Every pool's ledger, built lazily from the fleet's usages (indexed by cluster and pool)."""

    def __init__(self, fleet: Fleet, skip: Iterable[Owner] = ()) -> None:
        self._fleet = fleet
        self._pools: dict[tuple[str, str], PoolLedger] = {}
        self._usage: dict[tuple[str, str], list[tuple[Owner, Vector, int]]] = {}
        skipped = self._skipped = set(skip)
        seen = self._seen = set[Owner]()
        for u in fleet.usages:
            owner = (u.namespace, u.name)
            if owner in skipped or owner in seen:
                continue
            seen.add(owner)
            for pool, demand, count in u.pods:
                self._usage.setdefault((u.cluster, pool), []).append((owner, demand, count))

    def pool(self, cluster: str, pool: str) -> PoolLedger | None:
        key = (cluster, pool)
        got = self._pools.get(key)
        if got is not None:
            return got
        c = self._fleet.clusters.get(cluster)
        p = c.pool(pool) if c else None
        if p is None:
            return None
        led = PoolLedger(p)
        for owner, demand, count in self._usage.get(key, ()):
            led.add(owner, demand, count)
        if self._fleet.published is not None:
            for u in self._fleet.published(cluster):
                owner = (u.namespace, u.name)
                if owner in self._skipped or owner in self._seen:
                    continue
                for group_pool, demand, count in u.pods:
                    if group_pool == pool:
                        led.add(owner, demand, count)
        self._pools[key] = led
        return led
