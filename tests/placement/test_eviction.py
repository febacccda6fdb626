"""The eviction order: who loses their place on a pool whose ceiling holds less than runs.

One rule, in ``placement/eviction.py``: places are given by the share of its ModelService's
traffic a replica's deployment carries (largest first), then age (oldest first), then namespace
and name; a replica whose pods no longer fit loses its place. The InferenceCluster publishes the
losers (status.pools[].evicting) and their ModelDeployments remove and re-place them
(docs/placement.md).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from modelplane.contract.backends import weight_of
from modelplane.placement.compact_ledger import evictions_of
from modelplane.placement.core import place
from modelplane.placement.eviction import Holder, keep_order, losers
from modelplane.placement.model import DeviceShape, PodGroup, Pool

from tests.placement.fleet import cluster, deployment, feed_back, fleet, klass, request

GPU = (("gpu", 1),)


def pool(ceiling: int, gpus_per_node: int = 1) -> Pool:
    return Pool("l4", "l4-1x", ceiling, (DeviceShape("gpu", "gpu.nvidia.com", "DRA", "gpu",
                                                     gpus_per_node, {}),))


def holder(name: str, percent: int, created: str = "2026-01-01T00:00:00Z", pods: int = 1,
           namespace: str = "ml") -> Holder:
    """A replica whose deployment carries ``percent`` of its ModelService's traffic."""
    return Holder(namespace, name, Fraction(percent, 100), created,
                  (PodGroup("l4", GPU, pods),))


T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"

# (case, ceiling, holders, the replicas that lose their place, first to go first)
CASES = [
    ("everything fits: nobody loses", 3,
     [holder("stable-a", 90), holder("stable-b", 90), holder("canary", 10)], []),
    ("the 10% canary goes before the 90% stable, though it is the oldest", 2,
     [holder("stable-a", 90, T1), holder("stable-b", 90, T2), holder("canary", 10, T0)],
     ["canary"]),
    ("then the stable's newest", 1,
     [holder("stable-a", 90, T1), holder("stable-b", 90, T2), holder("canary", 10, T0)],
     ["canary", "stable-b"]),
    ("equal shares: the newest goes first", 1,
     [holder("old", 50, T0), holder("new", 50, T2), holder("mid", 50, T1)], ["new", "mid"]),
    ("equal shares and age: by name, the last first", 1,
     [holder("b", 50), holder("a", 50), holder("c", 50)], ["c", "b"]),
    ("no ModelService routes to it (share 0): it goes before any routed backend", 2,
     [holder("batch", 0, T0), holder("canary", 10, T2), holder("stable", 90, T2)], ["batch"]),
    ("deployments without ModelServices: newest, then name", 1,
     [holder("x", 0, T1), holder("y", 0, T0)], ["x"]),
    ("a big replica that does not fit does not take the place of a small one that does", 2,
     [holder("big", 50, pods=2), holder("small", 90)], ["big"]),
]


@pytest.mark.parametrize(("case", "ceiling", "holders", "lost"), CASES,
                         ids=[c[0] for c in CASES])
def test_who_loses_their_place(case: str, ceiling: int, holders: list[Holder],
                               lost: list[str]) -> None:
    assert [h.name for h in losers(pool(ceiling), holders)] == lost


def test_the_order_does_not_depend_on_the_order_the_replicas_are_read() -> None:
    holders = [holder("stable-a", 90, T1), holder("stable-b", 90, T2), holder("canary", 10, T0),
               holder("batch", 0, T0)]
    assert [h.name for h in keep_order(holders)] == [
        h.name for h in keep_order(list(reversed(holders)))] == [
        "stable-a", "stable-b", "canary", "batch"]


def service(namespace: str, *entries: dict[str, object]) -> dict[str, object]:
    return {"metadata": {"name": "svc", "namespace": namespace},
            "spec": {"endpoints": list(entries)}}


def routes(deployment: str, weight: int | None = None, role: str | None = None
           ) -> dict[str, object]:
    e: dict[str, object] = {"selector": {"matchLabels": {"modelplane.ai/deployment": deployment}}}
    if weight is not None:
        e["weight"] = weight
    if role is not None:
        e["role"] = role
    return e


WEIGHTS = [
    ("the share of the entry that selects it",
     [service("ml", routes("s", 90), routes("c", 10))], "c", Fraction(1, 10)),
    ("no ModelService: 0", [], "s", 0),
    ("a weight left out is routing's default, 1",
     [service("ml", routes("s"), routes("c", 3))], "s", Fraction(1, 4)),
    ("a Fallback entry gives no share", [service("ml", routes("s", 50, "Fallback"))], "s", 0),
    ("a Fallback entry does not dilute the Primaries",
     [service("ml", routes("s", 5), routes("f", 95, "Fallback"))], "s", 1),
    ("another namespace's service does not count", [service("other", routes("s", 90))], "s", 0),
    ("two services: the larger share",
     [service("ml", routes("s", 20), routes("c", 80)), service("ml", routes("s", 70))], "s", 1),
    # Tenants share pools: a weight only means something within its service, so writing a
    # large one buys nothing over another tenant's sole backend.
    ("an inflated weight is still one service's whole traffic",
     [service("ml", routes("s", 1000))], "s", 1),
    ("all weights 0: no share", [service("ml", routes("s", 0))], "s", 0),
]


@pytest.mark.parametrize(("case", "services", "deployment", "weight"), WEIGHTS,
                         ids=[w[0] for w in WEIGHTS])
def test_a_deployments_backend_weight(case: str, services: list[dict[str, object]],
                                      deployment: str, weight: Fraction) -> None:
    assert weight_of(services, "ml", deployment) == weight


def test_a_deployment_reads_its_evicted_replicas_from_its_clusters() -> None:
    clusters = [{"metadata": {"name": "c1"}, "status": {"pools": [
        {"name": "l4", "nodeCeiling": 2, "evicting": ["ml/canary-1", "other/x"]}]}}]
    got = evictions_of(clusters, "ml")
    assert list(got) == ["canary-1"] and "pool l4 on cluster c1" in got["canary-1"]


def test_an_evicted_replica_goes_at_once_and_its_slot_is_placed_again() -> None:
    # Ready and serving, but evicted: removed now (kept until a replacement is Ready it would
    # hold the devices a replica that keeps its place needs), and its slot placed elsewhere.
    f = fleet([cluster("a", [("l4", "l4-1x", 1)]), cluster("b", [("l4", "l4-1x", 1)])],
              [klass("l4-1x")])
    req = request(deployment(replicas=1))
    first = place(req, f, [])
    f, own = feed_back(f, req, first.replicas)
    home = own[0]
    assert place(req, f, own).removed == []
    evicted = place(replace(req, evicted={home.name: "pool l4 is short"}), f, own)
    assert evicted.removed == [home.name]
    assert [(r.cluster, r.new) for r in evicted.replicas] == [
        ("b" if home.cluster == "a" else "a", True)]
    assert [(e.name, e.message) for e in evicted.evicted] == [(home.name, "pool l4 is short")]
