"""EKS pools with ``fabric: EFA``: interfaces through the launch template, a security group the
group's members share, the EFA DRA driver on the cluster, and EFA devices placement can count."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelplane.contract.fabric import EFA_DEVICE_CLASS, EFA_DRIVER
from modelplane.step import Resource, StepResult
from modelplane.steps.inferencecluster import compose as inferencecluster

from tests.conformance import problems
from tests.provisioning.helpers import BARE, EKS_H100, cluster, klass, observe, request
from tests.results import condition

CLUSTER_SG = "sg-0c1a55e7000000001"
EFA_DEVICE = {"name": "efa", "driver": EFA_DRIVER, "deviceClassName": EFA_DEVICE_CLASS}


def eks_class(instance_type: str = "p5.48xlarge", efa: int | None = None,
              name: str = "eks-h100-8x") -> Resource:
    spec = copy.deepcopy(EKS_H100)
    spec["provisioning"]["eks"]["instanceType"] = instance_type
    if efa is not None:
        spec["devices"].append({**EFA_DEVICE, "count": efa})
    return klass(name, spec)


def efa_pool(name: str = "h100", **extra: Any) -> dict[str, Any]:
    return {"name": name, "className": "eks-h100-8x", "nodeCount": 2, "fabric": "EFA", **extra}


def observed_healthy(res: StepResult) -> dict[str, Resource]:
    """What provider-aws reports: security group IDs, the cluster's own security group, the
    launch template's version."""
    out = observe(res)
    for rname, obj in out.items():
        if obj["kind"] == "SecurityGroup":
            obj["status"]["atProvider"] = {"id": f"sg-{rname}"}
        if obj["kind"] == "Cluster":
            obj["status"]["atProvider"] = {"vpcConfig": {"clusterSecurityGroupId": CLUSTER_SG}}
        if obj["kind"] == "LaunchTemplate":
            obj["status"]["atProvider"] = {"id": f"lt-{rname}", "latestVersion": 1}
    return out


def reconcile(pools: list[dict[str, Any]], classes: list[Resource] | None = None,
              rounds: int = 3) -> StepResult:
    xr = cluster("EKS", pools)
    classes = classes or [eks_class()]
    res = inferencecluster.compose(request(xr, classes))
    for _ in range(rounds - 1):
        res = inferencecluster.compose(request({**xr, "status": res.status}, classes,
                                               observed=observed_healthy(res)))
    return res


def forp(res: StepResult, rname: str) -> dict[str, Any]:
    fp: dict[str, Any] = res.desired[rname].resource["spec"]["forProvider"]
    return fp


# -- the launch template's interfaces -----------------------------------------------------------

def test_every_network_card_gets_an_efa_interface_with_the_primary_on_card_zero() -> None:
    res = reconcile([efa_pool()])
    interfaces = forp(res, "launch-template-h100")["networkInterfaces"]
    assert len(interfaces) == 32  # p5.48xlarge: 32 network cards
    assert [(i["networkCardIndex"], i["deviceIndex"]) for i in interfaces[:3]] == [
        (0, 0), (1, 1), (2, 1)]
    assert {i["interfaceType"] for i in interfaces} == {"efa"}
    assert problems(res.desired["launch-template-h100"].resource) == []


@pytest.mark.parametrize(("instance_type", "interfaces"), [
    ("p4d.24xlarge", 4), ("p5e.48xlarge", 32), ("p5en.48xlarge", 16)])
def test_the_interface_count_is_the_instance_types(instance_type: str, interfaces: int) -> None:
    res = reconcile([efa_pool()], [eks_class(instance_type)])
    assert len(forp(res, "launch-template-h100")["networkInterfaces"]) == interfaces


def test_the_classes_declared_efa_devices_decide_the_interface_count() -> None:
    res = reconcile([efa_pool()], [eks_class("p5.48xlarge", efa=16)])
    assert len(forp(res, "launch-template-h100")["networkInterfaces"]) == 16
    # An instance type Modelplane has no entry for works when the class says how many.
    res = reconcile([efa_pool()], [eks_class("p6-b200.48xlarge", efa=8)])
    assert len(forp(res, "launch-template-h100")["networkInterfaces"]) == 8


def test_each_interface_carries_the_efa_group_and_the_clusters_security_group() -> None:
    res = reconcile([efa_pool()])
    groups = {tuple(i["securityGroups"])
              for i in forp(res, "launch-template-h100")["networkInterfaces"]}
    assert groups == {tuple(sorted([CLUSTER_SG, "sg-efa-security-group-h100"]))}


def test_the_node_group_launches_from_the_template_and_keeps_its_disk_there() -> None:
    res = reconcile([efa_pool()])
    fp = forp(res, "nodepool-h100")
    assert fp["launchTemplate"] == {"name": forp(res, "launch-template-h100")["name"],
                                    "version": "1"}
    assert "diskSize" not in fp
    assert forp(res, "launch-template-h100")["blockDeviceMappings"][0]["ebs"][
        "volumeSize"] == 1000
    assert fp["capacityType"] == "ON_DEMAND"  # EFA alone does not change how it is bought
    assert problems(res.desired["nodepool-h100"].resource) == []


def test_efa_and_a_capacity_block_share_one_template() -> None:
    res = reconcile([efa_pool(zones=["us-east-1a"],
                              capacityBlock={"capacityReservationId": "cr-0123456789abcdef0"})])
    fp = forp(res, "launch-template-h100")
    assert fp["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert len(fp["networkInterfaces"]) == 32
    assert forp(res, "nodepool-h100")["capacityType"] == "CAPACITY_BLOCK"


def test_the_template_waits_for_the_security_group_ids() -> None:
    first = reconcile([efa_pool()], rounds=1)
    assert "efa-security-group-h100" in first.desired
    assert "launch-template-h100" not in first.desired
    assert "nodepool-h100" not in first.desired
    assert first.status["pools"][0]["ready"] is False


# -- the security group ------------------------------------------------------------------------

def test_the_groups_members_may_send_each_other_all_traffic() -> None:
    res = reconcile([efa_pool()])
    sg = res.desired["efa-security-group-h100"].resource
    name = sg["metadata"]["name"]
    assert forp(res, "efa-security-group-h100")["vpcIdRef"] == {"name": "c1-vpc"}
    for direction, kind in (("ingress", "SecurityGroupIngressRule"),
                            ("egress", "SecurityGroupEgressRule")):
        rule = res.desired[f"efa-{direction}-h100"].resource
        assert rule["kind"] == kind
        fp = rule["spec"]["forProvider"]
        assert fp["ipProtocol"] == "-1"  # every protocol and port
        assert fp["securityGroupIdRef"] == fp["referencedSecurityGroupIdRef"] == {"name": name}
        assert problems(rule) == []
    assert problems(sg) == []


def test_pools_without_efa_get_no_efa_group_or_template() -> None:
    res = reconcile([{"name": "h100", "className": "eks-h100-8x", "nodeCount": 1}])
    assert not [n for n in res.desired if n.startswith(("efa-", "launch-template"))]
    assert "release-efaDriver" not in res.desired


# -- the EFA DRA driver ------------------------------------------------------------------------

def test_the_cluster_gets_the_efa_dra_driver_tolerating_the_gpu_taint() -> None:
    res = reconcile([efa_pool(), {"name": "plain", "className": "eks-h100-8x", "nodeCount": 1}])
    release = res.desired["release-efaDriver"].resource["spec"]["forProvider"]
    assert release["chart"] == {"name": "aws-dranet", "repository":
                                "https://aws.github.io/eks-charts", "version": "1.0.0"}
    assert release["namespace"] == "kube-system"
    assert release["values"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert problems(res.desired["release-efaDriver"].resource) == []


def test_the_driver_version_can_be_overridden_like_the_other_charts() -> None:
    xr = cluster("EKS", [efa_pool()], stack={"efaDriver": {"version": "1.0.1"}})
    res = inferencecluster.compose(request(xr, [eks_class()]))
    res = inferencecluster.compose(request(xr, [eks_class()], observed=observed_healthy(res)))
    assert forp(res, "release-efaDriver")["chart"]["version"] == "1.0.1"


def test_the_driver_goes_once_no_pool_asks_for_efa_and_stays_while_one_does() -> None:
    res = reconcile([efa_pool()])
    observed = observed_healthy(res)
    plain = [{"name": "h100", "className": "eks-h100-8x", "nodeCount": 2}]
    gone = inferencecluster.compose(request(cluster("EKS", plain), [eks_class()],
                                            observed=observed))
    assert "release-efaDriver" not in gone.desired
    # A class that is still loading does not take the driver away from an EFA pool.
    waiting = inferencecluster.compose(request(cluster("EKS", [efa_pool()]), [],
                                               observed=observed, resolve=False))
    assert "release-efaDriver" in waiting.desired


# -- what placement sees -----------------------------------------------------------------------

def pool_devices(res: StepResult, name: str = "h100") -> dict[str, dict[str, Any]]:
    [entry] = [p for p in res.status["pools"] if p["name"] == name]
    return {d["name"]: d for d in entry["devices"]}


def test_an_efa_pool_publishes_its_interfaces_as_efa_devices_when_the_class_names_none() -> None:
    devices = pool_devices(reconcile([efa_pool()]))
    assert devices["efa"] == {"name": "efa", "driver": EFA_DRIVER, "claim": "DRA",
                              "deviceClassName": EFA_DEVICE_CLASS, "count": 32}
    assert devices["gpu"]["count"] == 8


def test_the_classes_efa_devices_are_published_as_declared_on_an_efa_pool() -> None:
    devices = pool_devices(reconcile([efa_pool()], [eks_class(efa=32)]))
    assert devices["efa"]["count"] == 32 and len(devices) == 2


def test_an_eks_pool_without_efa_does_not_offer_the_classes_efa_devices() -> None:
    res = reconcile([{"name": "h100", "className": "eks-h100-8x", "nodeCount": 1}],
                    [eks_class(efa=32)])
    assert set(pool_devices(res)) == {"gpu"}  # its nodes have no EFA interfaces


def test_an_existing_clusters_pool_offers_the_class_devices_as_its_admin_declared_them() -> None:
    spec = copy.deepcopy(BARE)
    spec["devices"].append({**EFA_DEVICE, "count": 4})
    xr = cluster("Existing", [{"name": "gpu", "className": "bare-4x", "nodeCount": 2}])
    res = inferencecluster.compose(request(xr, [klass("bare-4x", spec)]))
    assert {d["name"] for d in res.status["pools"][0]["devices"]} == {"gpu", "efa"}


# -- what cannot have EFA ----------------------------------------------------------------------

def test_an_instance_type_without_efa_gets_a_condition_naming_field_value_and_type() -> None:
    res = reconcile([efa_pool()], [eks_class("g6.2xlarge")])
    got = condition(res, "ClassesResolved")
    assert got.status == "False"
    assert "spec.nodePools[h100].fabric 'EFA'" in (got.message or "")
    assert "'g6.2xlarge'" in (got.message or "")
    assert "nodepool-h100" not in res.desired


def test_more_efa_devices_than_the_instance_type_has_get_a_condition() -> None:
    res = reconcile([efa_pool()], [eks_class("p4d.24xlarge", efa=32)])
    got = condition(res, "ClassesResolved")
    assert got.status == "False"
    assert "declares 32 EFA devices" in (got.message or "")
    assert "at most 4" in (got.message or "")


def test_a_running_node_group_is_kept_when_its_efa_pool_becomes_invalid() -> None:
    res = reconcile([efa_pool()])
    observed = observed_healthy(res)
    bad = inferencecluster.compose(request(cluster("EKS", [efa_pool()]),
                                           [eks_class("g6.2xlarge")], observed=observed))
    kept = bad.desired["nodepool-h100"].resource["spec"]
    assert kept == observed["nodepool-h100"]["spec"]
    assert "launch-template-h100" in bad.desired
