"""Fixed-size pools: a pool written with nodeCount alone is that many nodes, and that is the
ceiling placement counts capacity against (before the cluster publishes status.pools)."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.placement.inputs import cluster_from

from tests.placement.fleet import cluster, klass


@pytest.mark.parametrize(("pool", "ceiling"), [
    ({"nodeCount": 3}, 3),                       # fixed-size: nodeCount is the ceiling
    ({}, 1),                                     # nodeCount's API default
    ({"nodeCount": 1, "maxNodeCount": 5}, 5),    # autoscaling: maxNodeCount is the ceiling
    ({"nodeCount": 0}, 0),                       # a fixed pool scaled to nothing
])
def test_the_spec_ceiling_is_max_node_count_else_node_count(pool: dict[str, Any],
                                                            ceiling: int) -> None:
    obj = cluster("c1", [("gpu", "l4", 9)])
    obj["spec"]["nodePools"] = [{"name": "gpu", "className": "l4", **pool}]
    [placed] = cluster_from(obj, {"l4": klass("l4")}).pools
    assert placed.node_ceiling == ceiling
