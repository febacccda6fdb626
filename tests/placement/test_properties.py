"""Invariants over random fleets and deployments: no overcommit, determinism, stability."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from modelplane.placement.core import place, usage
from modelplane.placement.ledger import Ledger
from modelplane.placement.model import Fleet, Usage

from tests.placement.fleet import MEM20, cluster, deployment, feed_back, fleet, klass, request

CLASSES = [klass("one", 1, "24Gi", "0.7"), klass("four", 4, "48Gi", "3.1"),
           klass("eight", 8, "80Gi")]
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def fleets(draw: Any) -> tuple[Fleet, list[Usage]]:
    n = draw(st.integers(1, 5))
    objs = []
    for i in range(n):
        pools = draw(st.lists(st.tuples(st.sampled_from(["one", "four", "eight"]),
                                        st.integers(0, 3)), min_size=1, max_size=3))
        objs.append(cluster(f"c{i}", [(f"p{j}", c, k) for j, (c, k) in enumerate(pools)],
                            labels={"region": draw(st.sampled_from(["us", "eu"]))},
                            ready=draw(st.booleans()) or i == 0))
    f = fleet(objs, CLASSES)
    others = []
    for k in range(draw(st.integers(0, 6))):
        c = f.clusters[f"c{draw(st.integers(0, n - 1))}"]
        p = draw(st.sampled_from(c.pools))
        others.append(Usage("other", f"o-{k}", c.name,
                            ((p.name, (("gpu", draw(st.integers(1, 4))),), 1),)))
    return Fleet(f.clusters, []), others


def deployments(draw: Any) -> dict[str, Any]:
    md = deployment(replicas=draw(st.integers(0, 6)), gpus=draw(st.sampled_from([1, 2, 4, 8])),
                    selectors=[MEM20],
                    placement={"spreadTopologyKey": draw(st.sampled_from(["", "region"]))})
    return md


def fits_after_replay(f: Fleet) -> bool:
    """Replaying the ledger from the usages packs every pod: no node overcommitted."""
    ledger = Ledger(f)
    for c in f.clusters.values():
        for p in c.pools:
            led = ledger.pool(c.name, p.name)
            assert led is not None
            led.free()
            if led.overflow:
                return False
    return True


@SETTINGS
@given(fleets(), st.data())
def test_no_node_is_ever_overcommitted(fl: tuple[Fleet, list[Usage]], data: st.DataObject) -> None:
    f, others = fl
    base = Fleet(f.clusters, others)
    if not fits_after_replay(base):
        return  # the random ledger itself overflows; nothing to assert about our placements
    req = request(deployments(data.draw))
    d = place(req, base, [])
    after = Fleet(f.clusters, others + [usage(req, r) for r in d.replicas])
    assert fits_after_replay(after)


@SETTINGS
@given(fleets(), st.data())
def test_placement_is_deterministic(fl: tuple[Fleet, list[Usage]], data: st.DataObject) -> None:
    f, others = fl
    req = request(deployments(data.draw))
    a = place(req, Fleet(f.clusters, others), [])
    b = place(req, Fleet(f.clusters, list(others)), [])
    assert a == b


@SETTINGS
@given(fleets(), st.data())
def test_feeding_the_result_back_changes_nothing(fl: tuple[Fleet, list[Usage]],
                                                 data: st.DataObject) -> None:
    f, others = fl
    req = request(deployments(data.draw))
    first = place(req, Fleet(f.clusters, others), [])
    f2, own = feed_back(Fleet(f.clusters, others), req, first.replicas)
    again = place(req, f2, own)
    assert [(r.name, r.cluster, r.assignments) for r in again.replicas] == \
        [(r.name, r.cluster, r.assignments) for r in first.replicas]
    assert not any(r.new for r in again.replicas) and again.removed == []


@SETTINGS
@given(fleets(), st.data(), st.integers(1, 4))
def test_scale_up_then_down_returns_the_original_replicas(
        fl: tuple[Fleet, list[Usage]], data: st.DataObject, extra: int) -> None:
    f, others = fl
    md = deployments(data.draw)
    req = request(md)
    first = place(req, Fleet(f.clusters, others), [])
    f2, own = feed_back(Fleet(f.clusters, others), req, first.replicas)
    md["spec"]["replicas"] += extra
    up = place(request(md), f2, own)
    f3, own3 = feed_back(f2, request(md), up.replicas)
    md["spec"]["replicas"] -= extra
    down = place(request(md), f3, own3)
    assert sorted(r.name for r in down.replicas) == sorted(r.name for r in first.replicas)
