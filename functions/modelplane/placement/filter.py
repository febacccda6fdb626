"""Filters: which clusters may take a replica at all, and which pools fit each engine.

Cluster filters are cheap label/taint/readiness checks. Pool filters evaluate the deployment's
CEL device selectors against the devices a pool's class offers; the result depends only on the
engine's requests and the pool's device shapes, so it is memoised on that pair and CEL work stays
independent of how many clusters share a class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from modelplane.common import selectors
from modelplane.contract.fabric import is_efa_device
from modelplane.placement.model import (
    Cluster,
    DeviceRequest,
    DeviceShape,
    Engine,
    Pool,
    Request,
    ResolvedDevice,
)


class _MatchResult(Protocol):
    matched: bool
    reason: str | None


MatchFn = Callable[[str, Mapping[str, Any]], _MatchResult]
Resolved = dict[str, tuple[ResolvedDevice, ...]]  # member role -> claimed devices


def _default_match() -> MatchFn:
    from modelplane.cel import match

    fn: MatchFn = match  # type: ignore[assignment]  # Match satisfies _MatchResult
    return fn


class PoolMatcher:
    """Memoised "does this engine fit this pool's devices" answers, with the reason when not."""

    def __init__(self, match: MatchFn | None = None) -> None:
        self._match = match or _default_match()
        self._memo: dict[tuple[Any, ...], tuple[str | None, Resolved]] = {}
        self._by_id: dict[tuple[int, int], tuple[Engine, Pool, tuple[str | None, Resolved]]] = {}
        self.evaluations = 0  # pool-level misses (each may run several CEL matches)

    def engine_fits(self, engine: Engine, pool: Pool) -> str | None:
        """None when every member's device requests are satisfied by one node of the pool."""
        return self._lookup(engine, pool)[0]

    def resolve(self, engine: Engine, pool: Pool) -> Resolved:
        """Per member role, the devices a pod claims on this pool (Synthetic ones left out)."""
        return self._lookup(engine, pool)[1]

    def _lookup(self, engine: Engine, pool: Pool) -> tuple[str | None, Resolved]:
        # Fast path by identity: clusters share Pool objects (inputs.clusters_from interns
        # them), so a 1000-cluster fleet hits here almost always. The objects are kept in the
        # value so their ids cannot be reused while the memo lives.
        fast = self._by_id.get((id(engine), id(pool)))
        if fast is not None:
            return fast[2]
        got = self._lookup_slow(engine, pool)
        self._by_id[(id(engine), id(pool))] = (engine, pool, got)
        return got

    def _lookup_slow(self, engine: Engine, pool: Pool) -> tuple[str | None, Resolved]:
        if pool.problem:
            return pool.problem, {}
        key = (engine.requests, pool.shape, pool.class_name)
        got = self._memo.get(key)
        if got is not None:
            return got
        self.evaluations += 1
        resolved: dict[str, tuple[ResolvedDevice, ...]] = {}
        why: str | None = None
        multi_node = any(m.role == "Leader" for m in engine.members)
        for member in engine.members:
            claims: list[ResolvedDevice] = []
            for dev in member.devices:
                entry, problem = self._request_fits(dev, pool)
                if entry is None:
                    why = f"engine {engine.name} member {member.role} device {dev.name}: {problem}"
                    break
                if entry.claim != "Synthetic":
                    claims.append(ResolvedDevice(dev.name, entry.device_class_name, dev.count,
                                                 dev.selectors))
            if why:
                break
            if multi_node:
                claims.extend(_fabric_claims(member.devices, pool))
            resolved[member.role] = tuple(claims)
        result: tuple[str | None, Resolved] = (why, {} if why else resolved)
        self._memo[key] = result
        return result

    def _request_fits(self, req: DeviceRequest,
                      pool: Pool) -> tuple[DeviceShape | None, str | None]:
        entries = [d for d in pool.devices if d.name == req.name]
        if not entries:
            have = ", ".join(sorted(d.name for d in pool.devices)) or "none"
            return None, (f"class {pool.class_name} has no device named {req.name!r} "
                          f"(it offers: {have})")
        reasons: list[str] = []
        for d in entries:
            if req.count > d.count:
                reasons.append(f"needs {req.count} per pod but a node of class "
                               f"{pool.class_name} has {d.count}")
                continue
            failed = None
            for expr in req.selectors:
                m = self._match(expr, d.raw)
                if not m.matched:
                    failed = (f"selector {expr!r} does not match class {pool.class_name}: "
                              f"{m.reason or 'no match'}")
                    break
            if failed is None:
                return d, None
            reasons.append(failed)
        return None, reasons[0]


def _fabric_claims(requested: tuple[DeviceRequest, ...], pool: Pool) -> list[ResolvedDevice]:
    """The EFA devices a pod of a multi-node engine claims beside what it asked for.

    Each Leader and Worker pod of a group runs on its own node and talks to the others over
    the node's fabric, so it claims every EFA device the node offers; the ledger then counts
    them like any device. A member that requests the EFA device by name gets what it asked
    for instead.
    """
    asked = {d.name for d in requested}
    return [ResolvedDevice(d.name, d.device_class_name, d.count)
            for d in pool.devices
            if d.claim != "Synthetic" and d.name not in asked
            and is_efa_device({"driver": d.driver, "deviceClassName": d.device_class_name})]


def tolerated(request: Request, cluster: Cluster, effects: tuple[str, ...]) -> str | None:
    """The first taint with one of ``effects`` the deployment does not tolerate, described."""
    for t in cluster.taints:
        if t.effect not in effects:
            continue
        if not any(tol.tolerates(t) for tol in request.tolerations):
            value = f"={t.value}" if t.value else ""
            if not t.tolerable:
                return (f"taint {t.key}{value}:{t.effect} is not tolerable (the platform "
                        "cordons or drains the cluster; spec.tolerations cannot override it)")
            return f"taint {t.key}{value}:{t.effect} is not tolerated by spec.tolerations"
    return None


def cluster_filter(request: Request, cluster: Cluster) -> tuple[str, str] | None:
    """Why no new replica may go to ``cluster`` at all: (reason, message), or None."""
    if not cluster.ready:
        return ("ClusterNotReady", f"cluster {cluster.name} is not Ready")
    return static_filter(request, cluster)


def static_filter(request: Request, cluster: Cluster) -> tuple[str, str] | None:
    """The filters that do not change as a cluster comes and goes: labels, taints, footprint.

    A cluster passing them (and offering a matching pool) is an *eligible* spread domain even
    while it is not Ready: an uneven spread toward it is worth fixing once it is.
    """
    if request.cluster_selector:
        why = selectors.explain_mismatch(request.cluster_selector, cluster.labels)
    else:
        why = None
    if why:
        return ("LabelMismatch", f"spec.clusterSelector: {why}")
    why = tolerated(request, cluster, ("NoSchedule", "NoExecute")) if cluster.taints else None
    if why:
        return ("Tainted", why)
    if request.footprint is not None and cluster.name not in request.footprint:
        return ("OutsideCacheFootprint",
                f"the ModelCache does not stage weights on cluster {cluster.name}")
    return None


def matching_pools(matcher: PoolMatcher, engine: Engine,
                   cluster: Cluster) -> tuple[list[Pool], list[str]]:
    """Pools of ``cluster`` that fit ``engine``, and why each other pool does not."""
    fits: list[Pool] = []
    why: list[str] = []
    for pool in cluster.pools:
        if pool.draining:
            why.append(f"pool {pool.name}: draining (removed from spec.nodePools)")
            continue
        problem = matcher.engine_fits(engine, pool)
        if problem is None:
            fits.append(pool)
        else:
            why.append(f"pool {pool.name}: {problem}")
    return fits, why
