"""The placement invariants at the sizes issue 20 prices (5,000 clusters x 4 pools, 20,000
replicas already placed), sampled: no node overcommitted, the same decision twice, and the
decision fed back changes nothing. The small random fleets of test_properties.py cover the
shapes; these cover the size (a cache keyed wrongly, a ledger built lazily for the wrong
cluster, a tie broken by dictionary order only show at scale)."""

from __future__ import annotations

import random

import pytest
from modelplane.placement.core import place, usage
from modelplane.placement.model import Fleet, PodGroup, Usage

from tests.placement.fleet import MEM20, cluster, deployment, feed_back, fleet, klass, request
from tests.placement.test_properties import fits_after_replay

CLUSTERS, POOLS, EXISTING = 5000, 4, 20000
CLASSES = [klass("one", 1, "24Gi", "0.7"), klass("four", 4, "48Gi", "3.1"),
           klass("eight", 8, "80Gi", "9.5")]
GPUS = {"one": 1, "four": 4, "eight": 8}


def big_fleet(seed: int) -> Fleet:
    """A fleet of CLUSTERS clusters with POOLS pools each and EXISTING one-GPU replicas of
    other deployments packed where they fit (so the ledger itself never overflows)."""
    rnd = random.Random(seed)
    objs, room = [], []
    for i in range(CLUSTERS):
        pools = []
        for j in range(POOLS):
            cls, ceiling = rnd.choice(list(GPUS)), rnd.randint(0, 3)
            pools.append((f"p{j}", cls, ceiling))
            room += [(f"c{i}", f"p{j}")] * (ceiling * GPUS[cls])
        objs.append(cluster(f"c{i}", pools, labels={"region": rnd.choice(["us", "eu", "ap"])},
                            ready=rnd.random() > 0.05))
    f = fleet(objs, CLASSES)
    rnd.shuffle(room)
    others = [Usage("other", f"o-{k}", c, (PodGroup(p, (("gpu", 1),), 1),))
              for k, (c, p) in enumerate(room[:EXISTING])]
    return Fleet(f.clusters, others)


@pytest.mark.parametrize("seed", [1, 2])
def test_at_fleet_scale_placing_never_overcommits_and_is_deterministic_and_stable(
        seed: int) -> None:
    base = big_fleet(seed)
    assert len(base.clusters) == CLUSTERS and len(base.usages) == EXISTING
    rnd = random.Random(seed)
    req = request(deployment(f"big-{seed}", replicas=10, gpus=rnd.choice([1, 2, 4, 8]),
                             selectors=[MEM20],
                             placement={"spreadTopologyKey": rnd.choice(["", "region"])}))

    first = place(req, base, [])
    assert len(first.replicas) == 10  # the fleet has room: all are placed
    after = Fleet(base.clusters, list(base.usages) + [usage(req, r) for r in first.replicas])
    assert fits_after_replay(after)

    assert place(req, Fleet(base.clusters, list(base.usages)), []) == first

    fed, own = feed_back(base, req, first.replicas)
    again = place(req, fed, own)
    assert [(r.name, r.cluster, r.assignments) for r in again.replicas] == \
        [(r.name, r.cluster, r.assignments) for r in first.replicas]
    assert not any(r.new for r in again.replicas) and again.removed == []
