"""The placement core: ``place(request, fleet, own) -> Decision``, pure and deterministic.

Replicas live in *slots* (ordinals 0..replicas-1). A slot keeps its replica while the replica's
cluster and pools exist and still match; a slot whose replicas all became invalid (spec edit,
drained cluster, failover) gets a new replica first and loses the old ones only once the new one
is Ready (make-before-break). Slots at or above ``spec.replicas`` are removed, highest first.
New replicas go where the filters allow, spreading before packing, then by cost, then by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from modelplane.common import selectors
from modelplane.common.names import dns_label, short_hash
from modelplane.placement.filter import (
    MatchFn,
    PoolMatcher,
    cluster_filter,
    matching_pools,
    tolerated,
)
from modelplane.placement.ledger import Ledger
from modelplane.placement.model import (
    Assignment,
    Cluster,
    Decision,
    Fleet,
    Pool,
    Replica,
    Request,
    Unschedulable,
    Usage,
    Vector,
)
from modelplane.placement.score import Score, domain, pool_order, score

MAX_UNSCHEDULABLE = 20
# Reasons ordered by how much they tell an operator: capacity first (everything else matched).
_REASON_ORDER = {"InsufficientCapacity": 0, "NoPoolMatches": 1, "Tainted": 2,
                 "ClusterNotReady": 3, "OutsideCacheFootprint": 4, "LabelMismatch": 5}


def check_selectors(request: Request) -> tuple[str, str] | None:
    """An invalid CEL selector in the spec, as (reason, message naming the field), or None."""
    from modelplane.cel import check

    for ei, engine in enumerate(request.engines):
        for mi, member in enumerate(engine.members):
            for di, dev in enumerate(member.devices):
                for si, expr in enumerate(dev.selectors):
                    problem = check(expr)
                    if problem:
                        field_path = (f"spec.engines[{ei}].members[{mi}].nodeSelector."
                                      f"devices[{di}].selectors[{si}].cel")
                        return ("InvalidSelector", f"{field_path} {expr!r} is invalid: {problem}")
    return None


@dataclass
class Plan:
    """The slot analysis of this deployment's own replicas (no fleet-wide data needed)."""

    keep: list[Replica] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    needed: list[int] = field(default_factory=list)  # ordinals that need a new replica
    # Problems that make placing anything new unsafe: (reason, message).
    unknown: tuple[str, str] | None = None


def validity(request: Request, replica: Replica, clusters: dict[str, Cluster],
             matcher: PoolMatcher) -> tuple[str | None, tuple[str, str] | None, Replica]:
    """(why the replica must move or None, an unsafe-to-judge problem, replica with devices)."""
    c = clusters.get(replica.cluster)
    if c is None:
        return f"cluster {replica.cluster} no longer exists", None, replica
    if (not c.ready and c.not_ready_since is not None and request.now is not None
            and request.now - c.not_ready_since > request.failover_window):
        return (f"cluster {c.name} has not been Ready since "
                f"{c.not_ready_since.strftime('%Y-%m-%dT%H:%M:%SZ')}, longer than "
                f"spec.placement.failoverWindow"), None, replica
    why = tolerated(request, c, ("NoExecute",))
    if why:
        return f"cluster {c.name} is draining: {why}", None, replica
    why = selectors.explain_mismatch(request.cluster_selector, c.labels)
    if why:
        return f"cluster {c.name} no longer matches spec.clusterSelector: {why}", None, replica
    by_engine: dict[str, dict[str, str]] = {}
    for a in replica.assignments:
        by_engine.setdefault(a.engine, {})[a.member] = a.pool
    wanted = {e.name: {m.role for m in e.members} for e in request.engines}
    if {e: set(m) for e, m in by_engine.items()} != wanted:
        return "the engines or members of the spec changed", None, replica
    assignments: list[Assignment] = []
    for engine in request.engines:
        pools = set(by_engine[engine.name].values())
        if len(pools) != 1:
            return f"engine {engine.name} is split across pools {sorted(pools)}", None, replica
        pool = c.pool(pools.pop())
        if pool is None:
            return (f"pool {next(iter(by_engine[engine.name].values()))} no longer exists on "
                    f"cluster {c.name}"), None, replica
        if pool.problem:
            # Cannot judge the replica (e.g. its class vanished): keep it and place nothing new.
            return None, ("ClassMissing", f"cluster {c.name} pool {pool.name}: "
                                          f"{pool.problem}"), replica
        why = matcher.engine_fits(engine, pool)
        if why:
            return f"pool {pool.name} on cluster {c.name} no longer matches: {why}", None, replica
        resolved = matcher.resolve(engine, pool)
        for m in engine.members:
            assignments.append(Assignment(engine.name, m.role, pool.name, resolved[m.role]))
    fixed = Replica(replica.name, replica.ordinal, replica.cluster, tuple(assignments),
                    replica.ready, replica.new)
    return None, None, fixed


def plan(request: Request, clusters: dict[str, Cluster], own: Iterable[Replica],
         matcher: PoolMatcher) -> Plan:
    """Classify own replicas into slots: keep, remove, and which ordinals need a new replica."""
    out = Plan()
    slots: dict[int, list[Replica]] = {}
    for r in own:
        slots.setdefault(r.ordinal, []).append(r)
    for ordinal in sorted(slots):
        reps = sorted(slots[ordinal], key=lambda r: r.name)
        if ordinal >= request.replicas:
            out.removed.extend(r.name for r in reps)
            continue
        judged: list[Replica] = []
        for r in reps:
            why, unknown, fixed = validity(request, r, clusters, matcher)
            if unknown and out.unknown is None:
                out.unknown = unknown
            fixed.invalid = why
            judged.append(fixed)
        winners = [r for r in judged if r.invalid is None and r.ready]
        if winners:
            out.keep.append(winners[0])
            out.removed.extend(r.name for r in judged if r is not winners[0])
            continue
        out.keep.extend(judged)
        if not any(r.invalid is None for r in judged):
            out.needed.append(ordinal)
    out.needed.extend(o for o in range(request.replicas) if o not in slots)
    out.needed.sort()
    return out


def replica_name(request: Request, ordinal: int, cluster: str,
                 assignments: tuple[Assignment, ...], salt: int = 0) -> str:
    """A stable DNS-label name, unique per deployment: <deployment>-<hash of slot+placement>."""
    pools = ",".join(f"{a.engine}/{a.member}={a.pool}" for a in assignments)
    h = short_hash(request.namespace, request.name, str(ordinal), cluster, pools, str(salt))
    return dns_label(request.name, h)


@dataclass
class _Candidate:
    cluster: Cluster
    engine_pools: list[list[Pool]]


def place(request: Request, fleet: Fleet, own: Iterable[Replica],
          match: MatchFn | None = None, matcher: PoolMatcher | None = None) -> Decision:
    """Decide where every replica of ``request`` runs. Pure: same inputs, same decision."""
    own = list(own)
    matcher = matcher or PoolMatcher(match)
    blocked = check_selectors(request)
    if blocked:
        return _blocked(request, own, blocked)
    p = plan(request, fleet.clusters, own, matcher)
    if p.unknown:
        return _blocked(request, own, p.unknown)
    decision = Decision(desired=request.replicas, replicas=list(p.keep), removed=p.removed)
    if p.needed:
        if not fleet.clusters:
            return _blocked(request, own, (
                "NoClusters", "no InferenceCluster exists; nothing can be placed"))
        fill(request, fleet, p.needed, decision, matcher)
    decision.replicas.sort(key=lambda r: (r.ordinal, r.name))
    decision.removed.sort()
    return decision


def decide_steady(request: Request, clusters: dict[str, Cluster], own: Iterable[Replica],
                  match: MatchFn | None = None,
                  matcher: PoolMatcher | None = None) -> Decision | None:
    """The decision when nothing needs placing (own clusters suffice), or None if it does."""
    own = list(own)
    matcher = matcher or PoolMatcher(match)
    blocked = check_selectors(request)
    if blocked:
        return _blocked(request, own, blocked)
    p = plan(request, clusters, own, matcher)
    if p.unknown:
        return _blocked(request, own, p.unknown)
    if p.needed:
        return None
    d = Decision(desired=request.replicas, replicas=sorted(p.keep, key=lambda r: (r.ordinal,
                                                                                  r.name)),
                 removed=sorted(p.removed))
    return d


def _blocked(request: Request, own: list[Replica], why: tuple[str, str]) -> Decision:
    return Decision(desired=request.replicas,
                    replicas=sorted(own, key=lambda r: (r.ordinal, r.name)), blocked=why)


def _demands(matcher: PoolMatcher, request: Request, engine_index: int,
             pool: Pool) -> list[tuple[Vector, int]]:
    """The pods one engine puts on ``pool``: (one pod's demand, how many such pods)."""
    engine = request.engines[engine_index]
    resolved = matcher.resolve(engine, pool)
    out: list[tuple[Vector, int]] = []
    for m in engine.members:
        vec: dict[str, int] = {}
        for d in resolved.get(m.role, ()):
            vec[d.name] = vec.get(d.name, 0) + d.count
        out.append((tuple(sorted(vec.items())), m.pods * engine.copies))
    return out


def fill(request: Request, fleet: Fleet, needed: list[int], decision: Decision,
         matcher: PoolMatcher) -> None:
    """Place a new replica for each needed slot, spreading before packing."""
    ledger = Ledger(fleet)
    rejected: dict[str, tuple[str, str]] = {}
    candidates: list[_Candidate] = []
    for name in sorted(fleet.clusters):
        c = fleet.clusters[name]
        why = cluster_filter(request, c)
        if why:
            rejected[name] = why
            continue
        engine_pools: list[list[Pool]] = []
        for engine in request.engines:
            fits, reasons = matching_pools(matcher, engine, c)
            if not fits:
                shown = "; ".join(reasons[:3]) or f"cluster {name} has no node pools"
                more = f" (and {len(reasons) - 3} more pools)" if len(reasons) > 3 else ""
                rejected[name] = ("NoPoolMatches", shown + more)
                break
            engine_pools.append(sorted(fits, key=pool_order))
        else:
            candidates.append(_Candidate(c, engine_pools))

    spread: dict[str, int] = {}
    taken = {r.name for r in decision.replicas} | set(decision.removed)
    for r in decision.replicas:
        if r.invalid is None and r.cluster in fleet.clusters:
            d = domain(request, fleet.clusters[r.cluster])
            spread[d] = spread.get(d, 0) + 1

    # Per-cluster best assignment, recomputed only for the cluster that changed.
    cache: dict[str, tuple[list[Pool], dict[str, list[tuple[Vector, int]]]] | None] = {}

    def assign(cand: _Candidate) -> tuple[list[Pool], dict[str, list[tuple[Vector, int]]]] | None:
        name = cand.cluster.name
        if name in cache:
            return cache[name]
        chosen: list[Pool] = []
        tentative: dict[str, list[tuple[Vector, int]]] = {}
        shortage = ""
        for ei, pools in enumerate(cand.engine_pools):
            for pool in pools:
                led = ledger.pool(name, pool.name)
                if led is None:
                    continue
                want = tentative.get(pool.name, []) + _demands(matcher, request, ei, pool)
                flat = [d for d, n in want for _ in range(n)]
                if led.fits(flat):
                    chosen.append(pool)
                    tentative[pool.name] = want
                    break
                if not shortage:
                    shortage = f"engine {request.engines[ei].name}: pool {pool.name} " \
                               f"{led.describe_shortage([d for d in flat if d])}"
            else:
                rejected[name] = ("InsufficientCapacity", shortage or
                                  f"engine {request.engines[ei].name}: no pool has room")
                cache[name] = None
                return None
        cache[name] = (chosen, tentative)
        return cache[name]

    # Per cluster: its spread domain and the cost part of its score (reset when it changes).
    static: dict[str, tuple[str, Score]] = {}
    for ordinal in needed:
        placed = False
        while not placed:
            best: tuple[Score, _Candidate, list[Pool], dict[str, list[tuple[Vector, int]]]] | None
            best = None
            for cand in candidates:
                got = assign(cand)
                if got is None:
                    continue
                base = static.get(cand.cluster.name)
                if base is None:
                    base = static[cand.cluster.name] = (domain(request, cand.cluster),
                                                        score(0, got[0], cand.cluster))
                s = (spread.get(base[0], 0), base[1][1], base[1][2])
                if best is None or s < best[0]:
                    best = (s, cand, got[0], got[1])
            if best is None:
                break
            _, cand, pools, tentative = best
            assignments = _assignments(matcher, request, cand, pools)
            salt = 0
            name = replica_name(request, ordinal, cand.cluster.name, assignments)
            while name in taken:
                salt += 1
                name = replica_name(request, ordinal, cand.cluster.name, assignments, salt)
            owner = (request.namespace, name)
            committed: list[str] = []
            for pool_name, demands in sorted(tentative.items()):
                led = ledger.pool(cand.cluster.name, pool_name)
                assert led is not None
                if led.commit(owner, demands):
                    committed.append(pool_name)
                    continue
                for undo in committed:  # canonical replay disagreed: roll back, try elsewhere
                    back = ledger.pool(cand.cluster.name, undo)
                    assert back is not None
                    back.remove(owner)
                rejected[cand.cluster.name] = (
                    "InsufficientCapacity",
                    f"pool {pool_name}: {led.describe_shortage([d for d, _ in demands if d])}")
                candidates.remove(cand)
                cache.pop(cand.cluster.name, None)
                break
            else:
                placed = True
                taken.add(name)
                cache.pop(cand.cluster.name, None)
                static.pop(cand.cluster.name, None)
                d = domain(request, cand.cluster)
                spread[d] = spread.get(d, 0) + 1
                decision.replicas.append(Replica(name, ordinal, cand.cluster.name, assignments,
                                                 ready=False, new=True))
        if not placed:
            decision.shortfall += 1
    if decision.shortfall:
        _explain(decision, rejected)


def _assignments(matcher: PoolMatcher, request: Request, cand: _Candidate,
                 pools: list[Pool]) -> tuple[Assignment, ...]:
    out: list[Assignment] = []
    for engine, pool in zip(request.engines, pools, strict=True):
        resolved = matcher.resolve(engine, pool)
        for m in engine.members:
            out.append(Assignment(engine.name, m.role, pool.name, resolved.get(m.role, ())))
    return tuple(out)


def usage(request: Request, replica: Replica) -> Usage:
    """What a replica of ``request`` consumes (the ledger entry its ModelReplica will produce)."""
    pods: list[tuple[str, Vector, int]] = []
    members = {(e.name, m.role): (e, m) for e in request.engines for m in e.members}
    for a in replica.assignments:
        found = members.get((a.engine, a.member))
        if found is None:
            continue
        engine, member = found
        vec: dict[str, int] = {}
        for d in a.devices:
            vec[d.name] = vec.get(d.name, 0) + d.count
        pods.append((a.pool, tuple(sorted(vec.items())), member.pods * engine.copies))
    return Usage(request.namespace, replica.name, replica.cluster, tuple(pods))


def _explain(decision: Decision, rejected: dict[str, tuple[str, str]]) -> None:
    """Per cluster why not, bounded: the most telling reasons first, the rest counted."""
    ordered = sorted(rejected.items(),
                     key=lambda kv: (_REASON_ORDER.get(kv[1][0], 9), kv[0]))
    for cluster, (reason, message) in ordered[:MAX_UNSCHEDULABLE]:
        decision.unschedulable.append(Unschedulable(cluster, reason, message))
    for _, (reason, _) in ordered[MAX_UNSCHEDULABLE:]:
        decision.unschedulable_more[reason] = decision.unschedulable_more.get(reason, 0) + 1
