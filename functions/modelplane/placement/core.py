"""The placement core: ``place(request, fleet, own) -> Decision``, pure and deterministic.

Replicas live in *slots* (ordinals 0..replicas-1). A slot keeps its replica while the replica's
cluster and pools exist and still match; a slot whose replicas all became invalid (spec edit,
drained cluster, failover) gets a new replica first and loses the old ones only once the new one
is Ready (make-before-break). On scale-down, serving replicas of slots at or above
``spec.replicas`` move into free or non-serving lower slots; only the newest go, and only once
every remaining slot serves (``scale_down``).
New replicas go where the filters allow, spreading before packing, then by cost, then by name.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from modelplane.common import selectors
from modelplane.common.names import dns_label, short_hash
from modelplane.placement.filter import (
    MatchFn,
    PoolMatcher,
    matching_pools,
    static_filter,
    tolerated,
)
from modelplane.placement.ledger import Ledger
from modelplane.placement.model import (
    Assignment,
    Blocked,
    Cluster,
    Decision,
    Eviction,
    Fleet,
    PodGroup,
    Pool,
    Replica,
    Request,
    Unschedulable,
    Usage,
    Vector,
)
from modelplane.placement.score import domain, pool_cost, pool_order

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
    if request.footprint is not None and c.name not in request.footprint:
        return (f"cluster {c.name} no longer holds a copy of spec.modelCacheRef (the copy "
                f"there is held until this replica has moved)"), None, replica
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
        if pool.draining:
            return (f"pool {pool.name} on cluster {c.name} is draining (removed from its "
                    f"spec.nodePools; kept until no replica runs on it)"), None, replica
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
    """Classify own replicas into slots: keep, remove, and which ordinals need a new replica.

    A slot with one valid replica keeps it (and drops invalid ones once it is Ready). A slot
    with several valid replicas is a spread move in flight: the one in the emptier domain
    (counting the other slots) is preferred, and the others go only once it is Ready.
    """
    out = Plan()
    slots: dict[int, list[Replica]] = {}
    for r in own:
        slots.setdefault(r.ordinal, []).append(r)
    out.removed.extend(scale_down(slots, request.replicas))
    judged_slots: dict[int, list[Replica]] = {}
    for ordinal in sorted(slots):
        reps = sorted(slots[ordinal], key=lambda r: r.name)
        judged: list[Replica] = []
        for r in reps:
            why, unknown, fixed = validity(request, r, clusters, matcher)
            if unknown and out.unknown is None:
                out.unknown = unknown
            if r.not_admitted and not r.ready:
                # Its cluster cannot admit its pods: DRA admission is authoritative, whatever
                # the ledger said when it was placed. It serves nothing, so it is re-placed.
                fixed.may_wait = why is None
                why = why or (f"its pods cannot be admitted on cluster {r.cluster}: "
                              f"{r.not_admitted}")
            fixed.invalid = why
            fixed.spread = r.spread
            fixed.not_admitted = r.not_admitted
            judged.append(fixed)
        judged_slots[ordinal] = judged
    # Domain counts of the settled slots (exactly one valid replica): what a move improves.
    settled: dict[str, int] = {}
    for judged in judged_slots.values():
        valid = [r for r in judged if r.invalid is None and r.name not in request.evicted]
        if len(valid) == 1:
            d = domain(request, clusters[valid[0].cluster])
            settled[d] = settled.get(d, 0) + 1
    for ordinal, judged in judged_slots.items():
        # Evicted from an over-committed pool: it goes now, serving or not (it holds devices a
        # replica that keeps its place there needs); its slot is placed again.
        out.removed.extend(r.name for r in judged if r.name in request.evicted)
        judged = [r for r in judged if r.name not in request.evicted]
        valid = [r for r in judged if r.invalid is None]
        if not valid:
            out.keep.extend(judged)
            out.needed.append(ordinal)
            continue
        # A replica its cluster did not admit serves nothing: gone once the slot has another.
        out.removed.extend(r.name for r in judged
                           if r.invalid is not None and _not_admitted(r))
        judged = [r for r in judged if r.invalid is None or not _not_admitted(r)]
        preferred = min(valid, key=lambda r: (
            settled.get(domain(request, clusters[r.cluster]), 0), r.name))
        if preferred.ready:
            out.keep.append(preferred)
            out.removed.extend(r.name for r in judged if r is not preferred)
            continue
        for r in valid:
            if r is not preferred:
                r.invalid = (f"replaced by {preferred.name} on cluster {preferred.cluster} "
                             f"for an even spread; removed once that replica is Ready")
        out.keep.extend(judged)
    out.needed.extend(o for o in range(request.replicas) if o not in slots)
    out.needed.sort()
    return out


def serving(r: Replica) -> bool:
    """Ready, or of unknown readiness (lost status is not evidence that it stopped serving)."""
    return r.ready or r.ready_unknown


def scale_down(slots: dict[int, list[Replica]], target: int) -> list[str]:
    """Fold the slots at or above ``target`` into ``0..target-1``; the names removed.

    Serving capacity never drops below the new target because of a scale-down: the slots
    given up are, in order, unscheduled slots (no replica), then slots whose replicas are not
    Ready, then the newest serving slots (highest ordinal: slots are filled lowest first).
    A serving slot above the target *moves* (its replicas are re-slotted, same names) into the
    lowest free slot below it, or into the lowest one whose replicas do not serve (those are
    removed), so a Ready replica is removed only while every slot below the target serves.
    Replicas of unknown readiness count as serving. ``slots`` is updated in place.
    """
    removed: list[str] = []
    high = sorted((o for o in slots if o >= target), reverse=True)
    if not high:
        return removed
    moving = sorted(o for o in high if any(serving(r) for r in slots[o]))
    for o in high:
        if o not in moving:
            removed.extend(r.name for r in slots.pop(o))
    holes = [o for o in range(target) if o not in slots]
    holes += [o for o in range(target) if o in slots
              and not any(serving(r) for r in slots[o])]
    for o in moving:  # oldest first: they keep serving; the newest go when no hole is left
        reps = slots.pop(o)
        if not holes:
            removed.extend(r.name for r in reps)
            continue
        hole = holes.pop(0)
        removed.extend(r.name for r in slots.pop(hole, []))
        slots[hole] = [replace(r, ordinal=hole) for r in reps]
    return removed


def _not_admitted(r: Replica) -> bool:
    """Not Ready, and its cluster reports that it cannot admit the replica's pods."""
    return bool(r.not_admitted) and not r.ready


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
    domain: str
    floor: Decimal  # the cost if every engine got its cheapest matching pool (a lower bound)


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
    if p.needed and not fleet.clusters:
        return _blocked(request, own, (
            "NoClusters", "no InferenceCluster exists; nothing can be placed"))
    # Replicas whose pods the cluster did not admit hold no devices, and the pools that did not
    # get nothing more of ours in this decision (the ledger disagreed with admission there).
    not_admitted = [r for r in decision.replicas if r.invalid is not None and _not_admitted(r)]
    avoid: dict[tuple[str, str], str] = {}
    for r in not_admitted:
        for a in r.assignments:
            avoid.setdefault((r.cluster, a.pool), f"replica {r.name}: {r.not_admitted}")
    evicted = [r for r in own if r.name in request.evicted]
    for r in evicted:
        for a in r.assignments:
            avoid.setdefault((r.cluster, a.pool), f"replica {r.name}: {request.evicted[r.name]}")
    placer = Placer(request, fleet, decision, matcher,
                    skip=[(request.namespace, r.name) for r in not_admitted + evicted],
                    avoid=avoid)
    decision.spread = spread_record(request, len(placer.eligible))
    if p.needed:
        for ordinal in p.needed:
            if placer.place_one(ordinal) is None:
                decision.shortfall += 1
        short = decision.shortfall
        _settle_not_admitted(request, placer, decision, not_admitted)
        if short:
            _explain(decision, placer.rejected)
    elif not p.removed and _settled(decision):
        rebalance(request, placer, decision)
    decision.replicas.sort(key=lambda r: (r.ordinal, r.name))
    decision.removed.sort()
    _note_evicted(decision, own, request.evicted)
    return decision


def _note_evicted(decision: Decision, own: list[Replica],
                  evicted: Mapping[str, str] | None = None) -> None:
    """Which removed replicas went because their cluster did not admit them, or were evicted
    from an over-committed pool (status/events)."""
    evicted = evicted or {}
    gone = set(decision.removed)
    decision.evicted = sorted(Eviction(r.name, r.cluster, evicted.get(r.name) or r.not_admitted)
                              for r in own if r.name in gone
                              and (_not_admitted(r) or r.name in evicted))


def decide_steady(request: Request, clusters: dict[str, Cluster], own: Iterable[Replica],
                  matcher: PoolMatcher | None = None) -> Decision | None:
    """The decision when the fleet need not be read, or None when it must be.

    The fleet is needed when a slot needs a replica, or when the spread may be uneven: some
    domain holds two or more replicas and the spread record the replicas carry (eligible
    domains as of the last fleet read, for this spec) does not prove the spread even.
    """
    own = list(own)
    matcher = matcher or PoolMatcher()
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
    records = {r.spread for r in own}
    d.spread = records.pop() if len(records) == 1 else ""
    if not p.removed and _settled(d) and not _evenly_spread(request, clusters, d):
        return None
    _note_evicted(d, own, request.evicted)
    return d


def _settle_not_admitted(request: Request, placer: Placer, decision: Decision,
                         not_admitted: list[Replica]) -> None:
    """Remove the replicas the cluster did not admit, unless waiting in place is the only option.

    Such a replica goes right away (it serves nothing) when its slot has another valid
    replica (the replacement just placed, or an earlier one), or when the ledger replay -- with
    every other pod first and the unadmitted pods last -- agrees that it does not fit: then
    waiting cannot help and the slot is reported short. Only when nowhere else has room AND
    the ledger says its pool should (stale, or packed differently from first-come admission)
    does it stay, Pending, reported as waiting: removing it would only place it there again.
    A Ready replica is never touched here.
    """
    waiting: set[int] = set()
    for r in not_admitted:
        others = any(x is not r and x.ordinal == r.ordinal and x.invalid is None
                     for x in decision.replicas)
        if (not others and r.may_wait and r.ordinal not in waiting
                and _fits_last(request, placer, r)):
            r.invalid, r.waiting = None, r.not_admitted
            waiting.add(r.ordinal)
            decision.shortfall = max(decision.shortfall - 1, 0)
            continue
        decision.replicas.remove(r)
        decision.removed.append(r.name)


def _fits_last(request: Request, placer: Placer, r: Replica) -> bool:
    """Whether ``r``'s pods fit its pools after every other pod the ledger knows."""
    by_pool: dict[str, list[Vector]] = {}
    for pool, demand, count in usage(request, r).pods:
        by_pool.setdefault(pool, []).extend([demand] * count)
    for pool, demands in sorted(by_pool.items()):
        led = placer.ledger.pool(r.cluster, pool)
        if led is None or not led.fits(demands):
            return False
    return True


def _settled(decision: Decision) -> bool:
    """One valid, Ready replica per slot: nothing in flight, so a spread move may start."""
    return all(r.invalid is None and r.ready and not r.new for r in decision.replicas)


def spread_record(request: Request, domains: int) -> str:
    """``<eligible domains>/<hash of the spec fields that decide eligibility>``."""
    spec = json.dumps([
        selectors.to_string(request.cluster_selector), request.spread_key,
        [(t.key, t.operator, t.value, t.effect) for t in request.tolerations],
        [(e.name, [(m.role, [(d.name, d.count, list(d.selectors)) for d in m.devices])
                   for m in e.members]) for e in request.engines],
        sorted(request.footprint) if request.footprint is not None else None,
    ], sort_keys=True)
    return f"{domains}/{short_hash(spec, length=8)}"


def _evenly_spread(request: Request, clusters: dict[str, Cluster], decision: Decision) -> bool:
    """Whether the settled replicas are provably evenly spread without reading the fleet."""
    counts: dict[str, int] = {}
    for r in decision.replicas:
        d = domain(request, clusters[r.cluster])
        counts[d] = counts.get(d, 0) + 1
    if not counts or max(counts.values()) <= 1:
        return True  # at most one per domain: no move can make it more even
    recorded, _, sig = decision.spread.partition("/")
    if not recorded.isdigit() or f"{recorded}/{sig}" != spread_record(request, int(recorded)):
        return False  # no record, or one for another spec: read the fleet once
    if len(counts) < int(recorded):
        return False  # an eligible domain is empty while another holds two or more
    return max(counts.values()) - min(counts.values()) <= 1


def rebalance(request: Request, placer: Placer, decision: Decision) -> None:
    """Move ONE replica from the fullest domain toward an emptier one, make-before-break.

    Only when max - min > 1 over the eligible domains (empty ones count as 0). The replica
    that moves is the fullest domain's (ties: domain name) replica on its most loaded
    cluster, highest ordinal first; the target is where a new replica of that slot would go
    among domains at least two emptier. Once max - min <= 1 nothing moves, so it converges.
    """
    counts = dict.fromkeys(placer.eligible, 0)
    counts.update(placer.spread)
    if len(counts) < 2:
        return
    high, low = max(counts.values()), min(counts.values())
    if high - low <= 1:
        return
    source = min(d for d, n in counts.items() if n == high)
    targets = {d for d, n in counts.items() if n <= high - 2 and d in placer.eligible}
    clusters = placer.fleet.clusters
    in_source = [r for r in decision.replicas if r.cluster in clusters
                 and domain(request, clusters[r.cluster]) == source]
    per_cluster: dict[str, int] = {}
    for r in in_source:
        per_cluster[r.cluster] = per_cluster.get(r.cluster, 0) + 1
    if not in_source:
        return
    moving = min(in_source, key=lambda r: (-per_cluster[r.cluster], r.cluster, -r.ordinal,
                                           r.name))
    new = placer.place_one(moving.ordinal, only=targets)
    if new is None:
        return  # no emptier domain has room (or is Ready) yet; retried next reconcile
    target = domain(request, clusters[new.cluster])
    moving.invalid = (f"moving to cluster {new.cluster} for an even spread: "
                      f"{_domain_text(source)} has {high} replicas, "
                      f"{_domain_text(target)} had {counts[target]}; removed once "
                      f"{new.name} is Ready")


def _domain_text(d: str) -> str:
    return d.removeprefix("label:") if d.startswith("label:") else f"cluster {d}"


def _blocked(request: Request, own: list[Replica], why: tuple[str, str]) -> Decision:
    return Decision(desired=request.replicas,
                    replicas=sorted(own, key=lambda r: (r.ordinal, r.name)),
                    blocked=Blocked(*why))


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


Assigned = tuple[list[Pool], dict[str, list[tuple[Vector, int]]], Decimal]


class Placer:
    """Places this deployment's new replicas one at a time over the fleet.

    Built once per decision: filters every cluster (cheap, memoised pool matching), indexes
    the ledger by (cluster, pool), and keeps candidates in a heap keyed by
    (replicas of ours in the domain, cost, name). The key of a cluster only grows while we
    place (its domain fills, its cheap pools fill), so a lazy heap finds the best cluster
    without re-scoring the fleet per replica, and a cluster's ledger is replayed only when
    it reaches the top: placing 10 replicas on 1000 clusters touches a handful of ledgers.
    """

    def __init__(self, request: Request, fleet: Fleet, decision: Decision,
                 matcher: PoolMatcher, skip: Iterable[tuple[str, str]] = (),
                 avoid: dict[tuple[str, str], str] | None = None) -> None:
        self.request, self.fleet, self.decision, self.matcher = request, fleet, decision, matcher
        self.ledger = Ledger(fleet, skip)
        # (cluster, pool) -> why nothing new of ours goes there in this decision.
        self.avoid = avoid or {}
        self.rejected: dict[str, tuple[str, str]] = {}
        self.candidates: dict[str, _Candidate] = {}
        self.eligible: set[str] = set()  # domains of matching clusters, Ready or not
        self.spread: dict[str, int] = {}
        self._assigned: dict[str, Assigned | None] = {}
        self._version: dict[str, int] = {}
        self._taken = {r.name for r in decision.replicas} | set(decision.removed)
        self._pools_memo: dict[tuple[int, ...], tuple[
            tuple[Pool, ...], tuple[list[list[Pool]] | None, list[str], Decimal]]] = {}
        for name in sorted(fleet.clusters):
            self._admit(fleet.clusters[name])
        for r in decision.replicas:
            if r.invalid is None and r.cluster in fleet.clusters:
                d = domain(request, fleet.clusters[r.cluster])
                self.spread[d] = self.spread.get(d, 0) + 1
        self._heap = [self._entry(c, c.floor, False) for c in self.candidates.values()]
        heapq.heapify(self._heap)

    def _admit(self, c: Cluster) -> None:
        why = static_filter(self.request, c)
        if why:
            self.rejected[c.name] = why
            return
        engine_pools, reasons, floor = self._engine_pools(c)
        if engine_pools is None:
            shown = "; ".join(reasons[:3]) or f"cluster {c.name} has no node pools"
            more = f" (and {len(reasons) - 3} more pools)" if len(reasons) > 3 else ""
            self.rejected[c.name] = ("NoPoolMatches", shown + more)
            return
        d = domain(self.request, c)
        self.eligible.add(d)
        if not c.ready:
            self.rejected[c.name] = ("ClusterNotReady", f"cluster {c.name} is not Ready")
            return
        self.candidates[c.name] = _Candidate(c, engine_pools, d, floor)

    def _engine_pools(self, c: Cluster) -> tuple[list[list[Pool]] | None, list[str], Decimal]:
        """Per engine, the cluster's pools that fit it, cheapest first (None with the reasons
        when an engine fits none), and the cheapest cost. It depends only on the pools, and
        clusters of a fleet share Pool objects (they are interned when read), so it is
        worked out once per distinct set of pools; the lists are never mutated."""
        key = tuple(map(id, c.pools))
        got = self._pools_memo.get(key)
        if got is not None:
            return got[1]
        engine_pools: list[list[Pool]] = []
        result: tuple[list[list[Pool]] | None, list[str], Decimal] | None = None
        for engine in self.request.engines:
            fits, reasons = matching_pools(self.matcher, engine, c)
            if not fits:
                result = (None, reasons, Decimal(0))
                break
            engine_pools.append(sorted(fits, key=pool_order) if len(fits) > 1 else fits)
        if result is None:
            result = (engine_pools, [],
                      sum((pool_cost(pools[0]) for pools in engine_pools), Decimal(0)))
        # The pools are kept in the value so their ids cannot be reused while the memo lives.
        self._pools_memo[key] = (c.pools, result)
        return result

    def _entry(self, cand: _Candidate, cost: Decimal,
               exact: bool) -> tuple[int, Decimal, str, int, bool]:
        name = cand.cluster.name
        return (self.spread.get(cand.domain, 0), cost, name, self._version.get(name, 0), exact)

    def _assign(self, cand: _Candidate) -> Assigned | None:
        """The cheapest pools of ``cand`` that fit one more replica, or None (and why)."""
        name = cand.cluster.name
        if name in self._assigned:
            return self._assigned[name]
        request = self.request
        chosen: list[Pool] = []
        tentative: dict[str, list[tuple[Vector, int]]] = {}
        shortage = ""
        for ei, pools in enumerate(cand.engine_pools):
            for pool in pools:
                rejected_by = self.avoid.get((name, pool.name))
                if rejected_by is not None:
                    shortage = shortage or (f"engine {request.engines[ei].name}: pool "
                                            f"{pool.name} refused to admit {rejected_by}")
                    continue
                led = self.ledger.pool(name, pool.name)
                if led is None:
                    continue
                want = tentative.get(pool.name, []) + _demands(self.matcher, request, ei, pool)
                flat = [d for d, n in want for _ in range(n)]
                if led.fits(flat):
                    chosen.append(pool)
                    tentative[pool.name] = want
                    break
                if not shortage:
                    shortage = (f"engine {request.engines[ei].name}: pool {pool.name} "
                                f"{led.describe_shortage([d for d in flat if d])}")
            else:
                self.rejected[name] = ("InsufficientCapacity", shortage or
                                       f"engine {request.engines[ei].name}: no pool has room")
                self._assigned[name] = None
                return None
        cost = sum((pool_cost(p) for p in chosen), Decimal(0))
        got: Assigned = (chosen, tentative, cost)
        self._assigned[name] = got
        return got

    def _best(self, heap: list[tuple[int, Decimal, str, int, bool]]
              ) -> tuple[_Candidate, Assigned] | None:
        """Pop until the top entry is current and exact: that cluster is the best one."""
        while heap:
            spread, cost, name, version, exact = heapq.heappop(heap)
            cand = self.candidates.get(name)
            if cand is None or version != self._version.get(name, 0):
                continue  # dropped, or superseded by a newer entry
            current = self.spread.get(cand.domain, 0)
            if current != spread:  # its domain filled up since: re-key, no ledger work yet
                heapq.heappush(heap, (current, cost, name, version, exact))
                continue
            if not exact:
                got = self._assign(cand)
                if got is None:
                    del self.candidates[name]
                    continue
                heapq.heappush(heap, self._entry(cand, got[2], True))
                continue
            got = self._assign(cand)
            assert got is not None  # exact entries are pushed only for assignable clusters
            heapq.heappush(heap, (spread, cost, name, version, True))  # still a candidate
            return cand, got
        return None

    def place_one(self, ordinal: int, only: set[str] | None = None) -> Replica | None:
        """A new replica for slot ``ordinal`` (in the ``only`` domains if given), or None."""
        if only is None:
            heap = self._heap
        else:
            heap = [self._entry(c, c.floor, False) for c in self.candidates.values()
                    if c.domain in only]
            heapq.heapify(heap)
        request = self.request
        while True:
            best = self._best(heap)
            if best is None:
                return None
            cand, (pools, tentative, _) = best
            cname = cand.cluster.name
            assignments = _assignments(self.matcher, request, cand, pools)
            salt = 0
            name = replica_name(request, ordinal, cname, assignments)
            while name in self._taken:
                salt += 1
                name = replica_name(request, ordinal, cname, assignments, salt)
            owner = (request.namespace, name)
            committed: list[str] = []
            failed = None
            for pool_name, demands in sorted(tentative.items()):
                led = self.ledger.pool(cname, pool_name)
                assert led is not None
                if led.commit(owner, demands):
                    committed.append(pool_name)
                    continue
                failed = (pool_name, led, demands)
                break
            self._assigned.pop(cname, None)
            self._version[cname] = self._version.get(cname, 0) + 1
            if failed is not None:
                for undo in committed:  # canonical replay disagreed: roll back, try elsewhere
                    back = self.ledger.pool(cname, undo)
                    assert back is not None
                    back.remove(owner)
                pool_name, led, demands = failed
                self.rejected[cname] = (
                    "InsufficientCapacity",
                    f"pool {pool_name}: {led.describe_shortage([d for d, _ in demands if d])}")
                del self.candidates[cname]
                continue
            self._taken.add(name)
            self.spread[cand.domain] = self.spread.get(cand.domain, 0) + 1
            replica = Replica(name, ordinal, cname, assignments, ready=False, new=True)
            self.decision.replicas.append(replica)
            # The cluster's key changed (its domain and maybe its pools): re-enter it lazily.
            entry = self._entry(cand, cand.floor, False)
            heapq.heappush(self._heap, entry)
            if heap is not self._heap:
                heapq.heappush(heap, entry)
            return replica


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
    pods: list[PodGroup] = []
    members = {(e.name, m.role): (e, m) for e in request.engines for m in e.members}
    for a in replica.assignments:
        found = members.get((a.engine, a.member))
        if found is None:
            continue
        engine, member = found
        vec: dict[str, int] = {}
        for d in a.devices:
            vec[d.name] = vec.get(d.name, 0) + d.count
        pods.append(PodGroup(a.pool, tuple(sorted(vec.items())), member.pods * engine.copies))
    return Usage(request.namespace, replica.name, replica.cluster, tuple(pods))


def _explain(decision: Decision, rejected: dict[str, tuple[str, str]]) -> None:
    """Per cluster why not, bounded: the most telling reasons first, the rest counted."""
    ordered = sorted(rejected.items(),
                     key=lambda kv: (_REASON_ORDER.get(kv[1][0], 9), kv[0]))
    for cluster, (reason, message) in ordered[:MAX_UNSCHEDULABLE]:
        decision.unschedulable.append(Unschedulable(cluster, reason, message))
    for _, (reason, _) in ordered[MAX_UNSCHEDULABLE:]:
        decision.unschedulable_more[reason] = decision.unschedulable_more.get(reason, 0) + 1
