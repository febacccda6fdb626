"""Rules of the placement core, one table row or test per rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from modelplane.placement.core import place
from modelplane.placement.model import Fleet, Usage

from tests.placement.fleet import (
    MEM20,
    MEM60,
    cluster,
    deployment,
    feed_back,
    fleet,
    klass,
    request,
)

L4 = klass("l4", gpus=1, memory="24Gi", cost="0.70")
H100 = klass("h100", gpus=8, memory="80Gi", cost="12.00")


def clusters_of(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.cluster for r in decision.replicas]


def test_places_on_the_pool_whose_devices_match_the_selectors() -> None:
    f = fleet([cluster("a", [("small", "l4", 2), ("big", "h100", 1)])], [L4, H100])
    d = place(request(deployment(selectors=[MEM60])), f, [])
    assert [(r.cluster, r.assignments[0].pool) for r in d.replicas] == [("a", "big")]
    assert d.replicas[0].assignments[0].devices[0].device_class_name == "gpu.nvidia.com"


@pytest.mark.parametrize(("rule", "cluster_obj", "spec", "reason", "fragment"), [
    ("label selector", cluster("a", [("p", "l4", 2)], labels={"modelplane.ai/region": "eu"}),
     {"clusterSelector": {"matchLabels": {"modelplane.ai/region": "us"}}},
     "LabelMismatch", "modelplane.ai/region='eu' does not equal 'us'"),
    ("not ready", cluster("a", [("p", "l4", 2)], ready=False), {}, "ClusterNotReady",
     "not Ready"),
    ("NoSchedule taint", cluster("a", [("p", "l4", 2)],
                                 taints=[{"key": "maint", "effect": "NoSchedule"}]), {},
     "Tainted", "maint:NoSchedule"),
    ("no pool matches", cluster("a", [("p", "l4", 2)]), {"_selectors": [MEM60]},
     "NoPoolMatches", "selector"),
    ("capacity", cluster("a", [("p", "l4", 0)]), {}, "InsufficientCapacity", "0/0 gpu free"),
])
def test_unschedulable_clusters_say_why(rule: str, cluster_obj: dict, spec: dict, reason: str,
                                        fragment: str) -> None:
    sels = spec.pop("_selectors", [MEM20])
    d = place(request(deployment(selectors=sels, **spec)), fleet([cluster_obj], [L4]), [])
    assert d.replicas == [] and d.shortfall == 1, rule
    assert d.unschedulable[0].cluster == "a"
    assert d.unschedulable[0].reason == reason
    assert fragment in d.unschedulable[0].message


def test_tolerated_taint_admits_replicas() -> None:
    c = cluster("a", [("p", "l4", 2)], taints=[{"key": "dedicated", "effect": "NoSchedule",
                                                "tolerable": True}])
    md = deployment(tolerations=[{"key": "dedicated", "operator": "Exists"}])
    assert clusters_of(place(request(md), fleet([c], [L4]), [])) == ["a"]


@pytest.mark.parametrize("toleration", [
    {"operator": "Exists"}, {"key": "maint", "operator": "Exists"},
    {"key": "maint", "operator": "Exists", "effect": "NoSchedule"}])
def test_no_toleration_overrides_a_taint_the_platform_did_not_mark_tolerable(
        toleration: dict[str, str]) -> None:
    c = cluster("a", [("p", "l4", 2)], taints=[{"key": "maint", "effect": "NoSchedule"}])
    d = place(request(deployment(tolerations=[toleration])), fleet([c], [L4]), [])
    assert clusters_of(d) == []
    assert "is not tolerable" in d.unschedulable[0].message


def test_spread_before_pack_by_cluster() -> None:
    f = fleet([cluster(n, [("p", "l4", 4)]) for n in ("a", "b", "c")], [L4])
    assert sorted(clusters_of(place(request(deployment(replicas=3)), f, []))) == ["a", "b", "c"]


def test_spread_by_topology_label() -> None:
    f = fleet([cluster("a1", [("p", "l4", 4)], labels={"zone": "a"}),
               cluster("a2", [("p", "l4", 4)], labels={"zone": "a"}),
               cluster("b1", [("p", "l4", 4)], labels={"zone": "b"})], [L4])
    d = place(request(deployment(replicas=2, placement={"spreadTopologyKey": "zone"})), f, [])
    assert sorted(clusters_of(d)) == ["a1", "b1"]


def test_cheaper_capacity_wins_when_spread_is_equal() -> None:
    pricey = klass("pricey", gpus=1, memory="24Gi", cost="2.00")
    f = fleet([cluster("a", [("p", "pricey", 4)]), cluster("b", [("p", "l4", 4)])], [L4, pricey])
    assert clusters_of(place(request(deployment()), f, [])) == ["b"]


def test_device_granular_capacity_packs_small_pods_onto_big_nodes() -> None:
    # One 8-GPU node takes eight 1-GPU replicas; the ninth does not fit.
    f = fleet([cluster("a", [("p", "h100", 1)])], [H100])
    d = place(request(deployment(replicas=9)), f, [])
    assert len(d.replicas) == 8 and d.shortfall == 1
    assert "0/8 gpu free" in d.unschedulable[0].message


def test_other_deployments_consume_capacity() -> None:
    f = fleet([cluster("a", [("p", "l4", 2)])], [L4])
    others = [Usage("other-ns", f"x-{i}", "a", (("p", (("gpu", 1),), 1),)) for i in range(2)]
    d = place(request(deployment()), Fleet(f.clusters, others), [])
    assert d.replicas == [] and d.unschedulable[0].reason == "InsufficientCapacity"


def test_gang_pods_each_need_a_node_with_enough_devices() -> None:
    md = deployment(gpus=8)
    md["spec"]["engines"][0]["members"] = [
        {"role": "Leader", "template": {"spec": {}},
         "nodeSelector": {"devices": [{"name": "gpu", "count": 8}]}},
        {"role": "Worker", "worker": {"nodes": 2}, "template": {"spec": {}},
         "nodeSelector": {"devices": [{"name": "gpu", "count": 8}]}}]
    small = fleet([cluster("a", [("p", "h100", 2)])], [H100])
    assert place(request(md), small, []).shortfall == 1
    enough = fleet([cluster("a", [("p", "h100", 3)])], [H100])
    assert clusters_of(place(request(md), enough, [])) == ["a"]


def test_existing_replicas_are_retained_and_nothing_new_is_placed() -> None:
    f = fleet([cluster(n, [("p", "l4", 4)]) for n in ("a", "b")], [L4])
    req = request(deployment(replicas=2))
    first = place(req, f, [])
    f2, own = feed_back(f, req, first.replicas)
    again = place(req, f2, own)
    assert [r.name for r in again.replicas] == [r.name for r in first.replicas]
    assert not any(r.new for r in again.replicas) and again.removed == []


def test_scale_down_removes_highest_ordinals_first() -> None:
    f = fleet([cluster(n, [("p", "l4", 4)]) for n in ("a", "b", "c")], [L4])
    three = place(request(deployment(replicas=3)), f, [])
    f2, own = feed_back(f, request(deployment(replicas=3)), three.replicas)
    one = place(request(deployment(replicas=1)), f2, own)
    assert [r.ordinal for r in one.replicas] == [0]
    assert sorted(one.removed) == sorted(r.name for r in three.replicas if r.ordinal > 0)


def test_scale_to_zero_removes_everything() -> None:
    f = fleet([cluster("a", [("p", "l4", 4)])], [L4])
    first = place(request(deployment(replicas=2)), f, [])
    f2, own = feed_back(f, request(deployment(replicas=2)), first.replicas)
    zero = place(request(deployment(replicas=0)), f2, own)
    assert zero.replicas == [] and len(zero.removed) == 2 and zero.blocked is None


@pytest.mark.parametrize(("rule", "edit"), [
    ("selector edit no longer matches", lambda c, md: md["spec"]["engines"][0]["members"][0]
     ["nodeSelector"]["devices"][0].update(selectors=[{"cel": MEM60}])),
    ("NoExecute taint drains", lambda c, md: c[0]["spec"].update(
        taints=[{"key": "drain", "effect": "NoExecute"}])),
    ("cluster selector edit", lambda c, md: md["spec"].update(
        clusterSelector={"matchLabels": {"tier": "big"}})),
    ("failover after the window", lambda c, md: c[0]["status"]["conditions"][0].update(
        status="False", lastTransitionTime="2026-01-01T11:00:00Z")),
])
def test_moves_are_make_before_break(rule: str, edit) -> None:  # type: ignore[no-untyped-def]
    classes = [L4, H100]
    objs = [cluster("a", [("p", "l4", 4)]), cluster("b", [("p", "h100", 2)],
                                                     labels={"tier": "big"})]
    md = deployment()
    req = request(md)
    first = place(req, fleet(objs, classes), [])
    assert clusters_of(first) == ["a"], rule
    f2, own = feed_back(fleet(objs, classes), req, first.replicas)
    edit(objs, md)
    req2 = request(md)
    f3 = type(f2)(fleet(objs, classes).clusters, f2.usages)
    moving = place(req2, f3, own)
    old, new = first.replicas[0].name, next(r for r in moving.replicas if r.new)
    assert new.cluster == "b", rule
    assert old in [r.name for r in moving.replicas], f"{rule}: old replica removed too early"
    # Not ready yet: both stay. Ready: the old one goes.
    f4, own4 = feed_back(f3, req2, [r for r in moving.replicas if r.new], ready=False)
    own4 += [r for r in own if r.name == old]
    assert old in [r.name for r in place(req2, f4, own4).replicas]
    f5, own5 = feed_back(f3, req2, [r for r in moving.replicas if r.new], ready=True)
    own5 += [r for r in own if r.name == old]
    done = place(req2, f5, own5)
    assert [r.name for r in done.replicas] == [new.name] and done.removed == [old]


def test_not_ready_within_the_failover_window_keeps_the_replica() -> None:
    objs = [cluster("a", [("p", "l4", 4)]), cluster("b", [("p", "l4", 4)])]
    req = request(deployment())
    first = place(req, fleet(objs, [L4]), [])
    f2, own = feed_back(fleet(objs, [L4]), req, first.replicas)
    objs[0]["status"]["conditions"][0].update(status="False",
                                              lastTransitionTime="2026-01-01T11:58:00Z")
    d = place(req, Fleet(fleet(objs, [L4]).clusters, f2.usages), own)
    assert [r.name for r in d.replicas] == [first.replicas[0].name]
    assert req.failover_window == timedelta(minutes=5)


@pytest.mark.parametrize(("rule", "fleet_objs", "spec", "reason"), [
    ("invalid CEL", [cluster("a", [("p", "l4", 4)])], {"_selectors": ["device.driver =="]},
     "InvalidSelector"),
    ("empty cluster list", [], {}, "NoClusters"),
    ("missing class", [cluster("a", [("p", "gone", 4)])], {}, "ClassMissing"),
])
def test_unsafe_inputs_keep_everything(rule: str, fleet_objs: list, spec: dict,
                                       reason: str) -> None:
    base = fleet([cluster("a", [("p", "l4", 4)])], [L4])
    req = request(deployment(replicas=1))
    first = place(req, base, [])
    _, own = feed_back(base, req, first.replicas)
    sels = spec.pop("_selectors", [MEM20])
    d = place(request(deployment(replicas=2, selectors=sels)), fleet(fleet_objs, [L4]), own)
    assert d.blocked is not None and d.blocked[0] == reason, rule
    assert [r.name for r in d.replicas] == [first.replicas[0].name]


def test_invalid_cel_names_the_field() -> None:
    d = place(request(deployment(selectors=["device.driver =="])),
              fleet([cluster("a", [("p", "l4", 1)])], [L4]), [])
    assert d.blocked is not None
    assert "spec.engines[0].members[0].nodeSelector.devices[0].selectors[0].cel" in d.blocked[1]


def test_cache_footprint_limits_clusters() -> None:
    from dataclasses import replace

    f = fleet([cluster(n, [("p", "l4", 4)]) for n in ("a", "b")], [L4])
    req = replace(request(deployment(replicas=2)), footprint=frozenset({"b"}))
    d = place(req, f, [])
    assert clusters_of(d) == ["b", "b"]


def test_synthetic_devices_match_but_are_not_claimed() -> None:
    syn = klass("syn", gpus=1, memory="24Gi", claim="Synthetic")
    d = place(request(deployment(replicas=3, selectors=[MEM20])),
              fleet([cluster("a", [("p", "syn", 1)])], [syn]), [])
    assert len(d.replicas) == 3 and d.replicas[0].assignments[0].devices == ()


def test_unschedulable_list_is_bounded_for_big_fleets() -> None:
    objs = [cluster(f"c{i:03d}", [("p", "l4", 1)], labels={"r": "x"}) for i in range(50)]
    d = place(request(deployment(clusterSelector={"matchLabels": {"r": "y"}})),
              fleet(objs, [L4]), [])
    assert len(d.unschedulable) == 20 and d.unschedulable_more == {"LabelMismatch": 30}


def test_same_name_in_other_namespace_is_someone_else() -> None:
    f = fleet([cluster("a", [("p", "l4", 1)])], [L4])
    mine = place(request(deployment(namespace="one")), f, [])
    theirs = place(request(deployment(namespace="two")), f, [])
    assert mine.replicas[0].name != theirs.replicas[0].name
