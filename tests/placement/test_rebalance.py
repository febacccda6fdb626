"""Rebalancing toward an even spread: one make-before-break move per reconcile, then stable."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from modelplane.placement.core import decide_steady, place, usage
from modelplane.placement.model import Decision, Fleet, Replica, Request

from tests.placement.fleet import MEM20, cluster, deployment, feed_back, fleet, klass, request
from tests.placement.test_properties import fits_after_replay

L4 = klass("l4", gpus=1, memory="24Gi", cost="0.70")


def settle(f: Fleet, req: Request, d: Decision, steps: int = 20
           ) -> tuple[Fleet, list[Replica], list[Decision]]:
    """Reconcile repeatedly, every replica becoming Ready in between; the decisions seen."""
    seen = [d]
    f2, own = feed_back(f, req, d.replicas)
    for _ in range(steps):
        d = place(req, f2, own)
        seen.append(d)
        f2, own = feed_back(f2, req, d.replicas)
        if not any(r.new or r.invalid for r in d.replicas) and not d.removed:
            break
    return f2, own, seen


def per_cluster(reps: list[Replica]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reps:
        out[r.cluster] = out.get(r.cluster, 0) + 1
    return out


def test_replicas_packed_early_spread_once_other_clusters_are_ready() -> None:
    objs = [cluster(n, [("p", "l4", 4)], ready=(n == "a")) for n in ("a", "b", "c")]
    req = request(deployment(replicas=3, selectors=[MEM20]))
    first = place(req, fleet(objs, [L4]), [])
    assert per_cluster(first.replicas) == {"a": 3}
    ready = fleet([cluster(n, [("p", "l4", 4)]) for n in ("a", "b", "c")], [L4])
    _, own, seen = settle(Fleet(ready.clusters), req, first)
    assert per_cluster(own) == {"a": 1, "b": 1, "c": 1}
    # One move per reconcile, make-before-break: the mover stays until its replacement is Ready.
    for d in seen[1:]:
        assert sum(1 for r in d.replicas if r.new) <= 1
        moving = [r for r in d.replicas if r.invalid]
        assert len(moving) <= 1
        if moving:
            assert "even spread" in str(moving[0].invalid)


def test_an_even_spread_never_moves() -> None:
    f = fleet([cluster(n, [("p", "l4", 4)]) for n in ("a", "b")], [L4])
    req = request(deployment(replicas=3, selectors=[MEM20]))
    d = place(req, f, [])
    f2, own = feed_back(f, req, d.replicas)
    again = place(req, f2, own)
    assert not any(r.new or r.invalid for r in again.replicas) and again.removed == []


def test_no_move_without_capacity_in_the_emptier_domain() -> None:
    objs = [cluster("a", [("p", "l4", 4)]), cluster("b", [("p", "l4", 0)])]
    req = request(deployment(replicas=3, selectors=[MEM20]))
    d = place(req, fleet(objs, [L4]), [])
    f2, own = feed_back(fleet(objs, [L4]), req, d.replicas)
    again = place(req, f2, own)
    assert per_cluster(again.replicas) == {"a": 3}
    assert not any(r.new or r.invalid for r in again.replicas)


def test_spread_record_lets_the_steady_reconcile_skip_the_fleet() -> None:
    objs = [cluster(n, [("p", "l4", 4)], labels={"zone": z})
            for n, z in (("a", "x"), ("b", "x"), ("c", "y"))]
    f = fleet(objs, [L4])
    req = request(deployment(replicas=4, selectors=[MEM20], placement={"spreadTopologyKey":
                                                                       "zone"}))
    d = place(req, f, [])
    assert d.spread.startswith("2/")
    _, own = feed_back(f, req, d.replicas)
    for r in own:
        r.spread = d.spread
    own_clusters = {r.cluster: f.clusters[r.cluster] for r in own}
    assert decide_steady(req, own_clusters, own) is not None  # 2 + 2: provably even
    for r in own:
        r.spread = ""
    assert decide_steady(req, own_clusters, own) is None  # no record: read the fleet once


def test_which_replica_moves_is_deterministic() -> None:
    objs = [cluster(n, [("p", "l4", 4)], ready=(n == "a")) for n in ("a", "b")]
    req = request(deployment(replicas=4, selectors=[MEM20]))
    first = place(req, fleet(objs, [L4]), [])
    ready = fleet([cluster(n, [("p", "l4", 4)]) for n in ("a", "b")], [L4])
    f2, own = feed_back(Fleet(ready.clusters), req, first.replicas)
    one, two = place(req, f2, own), place(req, f2, list(reversed(own)))
    assert one == two
    assert [r.ordinal for r in one.replicas if r.invalid] == [3]  # highest slot moves


CLASSES = [klass("one", 1, "24Gi", "0.7"), klass("four", 4, "48Gi", "3.1")]


@st.composite
def scenarios(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    n = draw(st.integers(2, 5))
    ready0 = draw(st.integers(1, n))
    pools = [[(f"p{j}", c, k) for j, (c, k) in enumerate(draw(st.lists(
        st.tuples(st.sampled_from(["one", "four"]), st.integers(0, 3)), min_size=1,
        max_size=2)))] for _ in range(n)]
    labels = [{"region": draw(st.sampled_from(["us", "eu", "ap"]))} for _ in range(n)]
    before = [cluster(f"c{i}", pools[i], labels=labels[i], ready=i < ready0) for i in range(n)]
    after = [cluster(f"c{i}", pools[i], labels=labels[i]) for i in range(n)]
    md = deployment(replicas=draw(st.integers(1, 6)), gpus=draw(st.sampled_from([1, 2])),
                    selectors=[MEM20],
                    placement={"spreadTopologyKey": draw(st.sampled_from(["", "region"]))})
    return before, after, md


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_rebalancing_converges_without_overcommit_or_flapping(
        sc: tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]) -> None:
    before, after, md = sc
    req = request(md)
    first = place(req, fleet(before, CLASSES), [])
    f_after = fleet(after, CLASSES)
    f2, own, seen = settle(Fleet(f_after.clusters), req, first, steps=30)
    assert not any(r.new or r.invalid for r in seen[-1].replicas), "did not converge"
    for d in seen:
        assert fits_after_replay(Fleet(f_after.clusters, [usage(req, r) for r in d.replicas]))
    # Stable: feeding the converged state back changes nothing, twice over.
    for _ in range(2):
        again = place(req, f2, own)
        assert not any(r.new or r.invalid for r in again.replicas) and again.removed == []
        f2, own = feed_back(f2, req, again.replicas)
    assert len({r.ordinal for r in own}) == len(own)  # one replica per slot once settled
