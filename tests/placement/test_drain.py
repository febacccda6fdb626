"""A draining pool (removed from its cluster's spec.nodePools, still published with
``draining: true`` while replicas run on it) takes nothing new, and its replicas move
make-before-break (docs/placement.md, *Policy*)."""

from __future__ import annotations

from dataclasses import replace

from modelplane.placement.core import place
from modelplane.placement.inputs import cluster_from, request_from
from modelplane.placement.model import Fleet

from tests.placement.fleet import NOW, cluster, deployment, feed_back, fleet, klass, request

L4 = klass("l4", gpus=1)


def drain(f: Fleet, cluster_name: str, pool: str) -> Fleet:
    c = f.clusters[cluster_name]
    pools = tuple(replace(p, draining=True) if p.name == pool else p for p in c.pools)
    return Fleet({**f.clusters, cluster_name: replace(c, pools=pools)}, f.usages)


def test_published_draining_marker_is_read() -> None:
    obj = cluster("a", [])
    obj["status"]["pools"] = [{"name": "old", "className": "l4", "nodeCeiling": 1,
                               "devices": [], "draining": True}]
    assert cluster_from(obj, {}).pools[0].draining is True


def test_a_draining_pool_takes_no_new_replica() -> None:
    f = drain(fleet([cluster("a", [("old", "l4", 4), ("new", "l4", 4)])], [L4]), "a", "old")
    d = place(request(deployment(replicas=2)), f, [])
    assert {r.assignments[0].pool for r in d.replicas} == {"new"}


def test_replicas_on_a_draining_pool_move_make_before_break() -> None:
    req = request(deployment(replicas=1))
    f = fleet([cluster("a", [("old", "l4", 4), ("new", "l4", 4)])], [L4])
    first = place(req, Fleet(f.clusters, []), [])
    first.replicas[0] = replace(first.replicas[0],
                                assignments=tuple(replace(a, pool="old")
                                                  for a in first.replicas[0].assignments))
    f, own = feed_back(f, req, first.replicas)
    f = drain(f, "a", "old")
    d = place(req, f, own)
    old = next(r for r in d.replicas if not r.new)
    new = next(r for r in d.replicas if r.new)
    assert "pool old on cluster a is draining" in (old.invalid or "")
    assert new.assignments[0].pool == "new" and d.removed == []
    # Once the replacement is Ready, the drained replica goes.
    f2, own2 = feed_back(f, req, d.replicas)
    after = place(req, drain(f2, "a", "old"), own2)
    assert after.removed == [old.name]
    assert [r.assignments[0].pool for r in after.replicas] == ["new"]


def test_a_drained_pool_with_nowhere_else_to_go_keeps_its_replica() -> None:
    req = request(deployment(replicas=1))
    f = fleet([cluster("a", [("old", "l4", 4)])], [L4])
    first = place(req, Fleet(f.clusters, []), [])
    f, own = feed_back(f, req, first.replicas)
    d = place(req, drain(f, "a", "old"), own)
    assert d.removed == [] and [r.name for r in d.replicas] == [own[0].name]
    assert d.shortfall == 1


def test_a_replica_outside_its_cache_footprint_moves_make_before_break() -> None:
    # The cache's copy on "a" is no longer selected (held for this replica): it moves to "b".
    f = fleet([cluster("a", [("p", "l4", 4)]), cluster("b", [("p", "l4", 4)])], [L4])
    md = deployment(replicas=1)
    first = place(request_from(md, NOW, frozenset({"a"})), Fleet(f.clusters, []), [])
    assert [r.cluster for r in first.replicas] == ["a"]
    req = request_from(md, NOW, frozenset({"b"}))
    f, own = feed_back(f, req, first.replicas)
    d = place(req, f, own)
    old = next(r for r in d.replicas if not r.new)
    assert "no longer holds a copy of spec.modelCacheRef" in (old.invalid or "")
    assert [r.cluster for r in d.replicas if r.new] == ["b"] and d.removed == []
