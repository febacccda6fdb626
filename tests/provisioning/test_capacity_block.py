"""EKS pools on an EC2 Capacity Block for ML: the node group runs on the reservation."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.step import Resource, StepResult
from modelplane.steps.inferencecluster import compose as inferencecluster

from tests.conformance import problems
from tests.provisioning.helpers import EKS_H100, cluster, klass, observe, request

RESERVATION = "cr-0123456789abcdef0"
CLASSES = [klass("eks-h100-8x", EKS_H100)]


def block_pool(zones: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    pool: dict[str, Any] = {"name": "h100", "className": "eks-h100-8x", "nodeCount": 2,
                            "capacityBlock": {"capacityReservationId": RESERVATION}, **extra}
    if zones is not None:
        pool["zones"] = zones
    return pool


def observed_with_template(res: StepResult, version: int = 3) -> dict[str, Resource]:
    """Healthy observation; provider-aws reports the launch template's latest version."""
    out = observe(res)
    for rname, obj in out.items():
        if obj["kind"] == "LaunchTemplate":
            obj["status"]["atProvider"] = {"id": f"lt-{rname}", "latestVersion": version}
    return out


def reconcile(pool: dict[str, Any]) -> tuple[StepResult, StepResult]:
    xr = cluster("EKS", [pool])
    first = inferencecluster.compose(request(xr, CLASSES))
    second = inferencecluster.compose(request(xr, CLASSES, observed=observed_with_template(first)))
    return first, second


def test_the_launch_template_targets_the_reservation_with_the_capacity_block_market() -> None:
    _, res = reconcile(block_pool(["us-east-1a"]))
    lt = res.desired["launch-template-h100"].resource
    fp = lt["spec"]["forProvider"]
    assert fp["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert fp["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": RESERVATION}}
    # The class's disk moves into the template: a node group with a template sets no diskSize.
    assert fp["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 1000
    assert "imageId" not in fp  # the node group's amiType bootstraps the nodes
    assert problems(lt) == []


def test_the_node_group_runs_on_the_block_through_the_template_version() -> None:
    _, res = reconcile(block_pool(["us-east-1a"]))
    ng = res.desired["nodepool-h100"].resource
    fp = ng["spec"]["forProvider"]
    assert fp["capacityType"] == "CAPACITY_BLOCK"
    lt = res.desired["launch-template-h100"].resource
    assert fp["launchTemplate"] == {"name": lt["spec"]["forProvider"]["name"], "version": "3"}
    assert "diskSize" not in fp
    # Only the reservation's zone's subnet.
    assert [r["name"] for r in fp["subnetIdRefs"]] == ["c1-subnet-a"]
    assert problems(ng) == []


def test_the_node_group_waits_for_the_template_version_and_is_not_ready_meanwhile() -> None:
    first, _ = reconcile(block_pool(["us-east-1a"]))
    assert "launch-template-h100" in first.desired
    assert "nodepool-h100" not in first.desired
    [pool] = first.status["pools"]
    assert pool["ready"] is False


def test_pools_without_a_block_keep_their_capacity_type_and_disk() -> None:
    _, res = reconcile({"name": "h100", "className": "eks-h100-8x", "nodeCount": 1})
    fp = res.desired["nodepool-h100"].resource["spec"]["forProvider"]
    assert fp["capacityType"] == "ON_DEMAND" and fp["diskSize"] == 1000
    assert "launchTemplate" not in fp
    assert not [n for n in res.desired if n.startswith("launch-template")]


@pytest.mark.parametrize(("zones", "named"), [
    (None, "zones []"),
    (["us-east-1a", "us-east-1b"], "zones ['us-east-1a', 'us-east-1b']"),
    (["us-east-1c"], "zones ['us-east-1c']"),
])
def test_zones_that_cannot_be_the_reservation_zone_get_a_condition(zones: list[str] | None,
                                                                    named: str) -> None:
    _, res = reconcile(block_pool(zones))
    assert "nodepool-h100" not in res.desired
    assert "launch-template-h100" not in res.desired
    found = [c for c in res.conditions if c.message and "spec.nodePools[h100]." + named
             in c.message]
    assert found, [c.message for c in res.conditions]
    assert RESERVATION in found[0].message


def test_a_running_block_node_group_is_kept_when_its_zones_go_wrong() -> None:
    _, good = reconcile(block_pool(["us-east-1a"]))
    observed = observed_with_template(good)
    bad = inferencecluster.compose(request(cluster("EKS", [block_pool(["us-east-1c"])]),
                                           CLASSES, observed=observed))
    assert bad.desired["nodepool-h100"].resource["spec"]["forProvider"]["capacityType"] == \
        "CAPACITY_BLOCK"
