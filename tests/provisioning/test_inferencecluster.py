"""compose-cluster over plain StepRequests: infrastructure, pools, stack, status and safety."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelplane.step import Resource
from modelplane.steps.inferencecluster import charts as stack
from modelplane.steps.inferencecluster import compose as inferencecluster

from tests.conformance import problems
from tests.provisioning.helpers import (
    CLASS_FOR,
    EKS_H100,
    GKE_L4,
    cluster,
    converge,
    klass,
    observe,
    request,
)
from tests.results import condition

SOURCES = ["GKE", "EKS", "AKS", "Existing"]


def one_class(source: str) -> list[Resource]:
    name, spec = CLASS_FOR[source]
    return [klass(name, spec)]


def kinds(res: Any) -> dict[str, str]:
    return {n: d.resource["kind"] for n, d in res.desired.items()}


@pytest.mark.parametrize("source", SOURCES)
def test_every_composed_resource_conforms_to_its_real_schema(source: str) -> None:
    res, _ = converge(cluster(source, credentials={"secretRef": {
        "name": "creds", "namespace": "crossplane-system"}}), one_class(source),
        replicas=[{"metadata": {"name": "r", "namespace": "team"}}])
    assert res.desired
    found = [p for rname, d in sorted(res.desired.items()) for p in problems(d.resource, rname)]
    assert found == []


@pytest.mark.parametrize("source", SOURCES)
def test_cluster_becomes_ready_and_publishes_the_scheduler_contract(source: str) -> None:
    res, _ = converge(cluster(source), one_class(source))
    assert res.composite_ready == "True"
    assert res.status["providerConfigRef"] == {
        # A reserved prefix: never a ProviderConfig the platform team owns (e.g. "default").
        "kubernetes": {"kind": "ClusterProviderConfig", "name": "modelplane-cluster-c1"},
        "helm": {"kind": "ClusterProviderConfig", "name": "modelplane-cluster-c1"}}
    assert res.status["gateway"] == {"address": "34.1.2.3"}
    [pool] = res.status["pools"]
    assert pool["name"] == "gpu" and pool["ready"] is True
    assert pool["nodeCeiling"] == 2 and pool["minNodeCount"] == 1
    assert pool["devices"][0]["deviceClassName"] == "gpu.nvidia.com"
    for type_ in ("ClusterReady", "NodePoolsReady", "StackReady", "ClassesResolved"):
        assert condition(res, type_).status == "True", type_


@pytest.mark.parametrize(("source", "storage"), [
    ("GKE", "standard-rwx"), ("EKS", "efs-sc"), ("AKS", "azurefile-csi")])
def test_each_cloud_publishes_its_rwx_storage_class(source: str, storage: str) -> None:
    res, _ = converge(cluster(source), one_class(source))
    assert res.status["storageClassName"] == storage


def test_existing_cluster_storage_class_comes_from_spec_or_stays_unset() -> None:
    res, _ = converge(cluster("Existing"), one_class("Existing"))
    assert "storageClassName" not in res.status
    xr = cluster("Existing")
    xr["spec"]["cluster"]["existing"]["cache"] = {"storageClassName": "cephfs"}
    res, _ = converge(xr, one_class("Existing"))
    assert res.status["storageClassName"] == "cephfs"


def test_gke_node_pool_combines_cluster_pool_and_class() -> None:
    xr = cluster("GKE", [{"name": "gpu-l4", "className": "gke-l4-1x", "minNodeCount": 1,
                          "maxNodeCount": 2, "zones": ["us-central1-a"]}])
    res, _ = converge(xr, one_class("GKE"))
    np = res.desired["nodepool-gpu-l4"].resource
    fp = np["spec"]["forProvider"]
    assert np["apiVersion"] == "container.gcp.m.upbound.io/v1beta1"
    assert fp["autoscaling"]["totalMinNodeCount"] == 1
    assert fp["autoscaling"]["totalMaxNodeCount"] == 2
    assert fp["nodeLocations"] == ["us-central1-a"]
    assert fp["nodeConfig"]["machineType"] == "g2-standard-8"
    assert fp["nodeConfig"]["guestAccelerator"][0]["type"] == "nvidia-l4"
    assert fp["nodeConfig"]["guestAccelerator"][0]["count"] == 1
    assert fp["nodeConfig"]["labels"]["modelplane.ai/pool"] == "gpu-l4"
    assert fp["nodeConfig"]["taint"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    gke = res.desired["cluster"].resource["spec"]["forProvider"]
    assert gke["project"] == "my-gcp-project" and gke["location"] == "us-central1"
    assert gke["removeDefaultNodePool"] is True and gke["deletionProtection"] is False


def test_eks_node_group_combines_pool_and_class() -> None:
    xr = cluster("EKS", [{"name": "h100", "className": "eks-h100-8x", "minNodeCount": 0,
                          "nodeCount": 1, "maxNodeCount": 3, "spot": True}])
    res, _ = converge(xr, one_class("EKS"))
    fp = res.desired["nodepool-h100"].resource["spec"]["forProvider"]
    assert fp["instanceTypes"] == ["p5.48xlarge"]
    assert fp["amiType"] == "AL2023_x86_64_NVIDIA"
    assert fp["capacityType"] == "SPOT"  # the pool's spot overrides the class
    assert fp["scalingConfig"] == {"minSize": 0, "maxSize": 3, "desiredSize": 1}
    assert fp["labels"]["modelplane.ai/pool"] == "h100"
    assert fp["diskSize"] == 1000
    assert fp["taint"][0]["effect"] == "NO_SCHEDULE"
    assert res.status["pools"][0]["costPerNodeHour"] == "55.04"
    for rname in ("vpc", "subnet-a", "subnet-b", "internet-gateway", "cluster-role",
                  "node-role", "cluster", "cluster-auth", "efs", "storage-class"):
        assert rname in res.desired, rname


def test_existing_cluster_provisions_no_infrastructure() -> None:
    res, _ = converge(cluster("Existing"), one_class("Existing"))
    groups = {d.resource["apiVersion"].split("/")[0] for d in res.desired.values()}
    assert not [g for g in groups if g.endswith("upbound.io")]
    pc = res.desired["provider-config-kubernetes"].resource
    # v0.1's convention: the kubeconfig Secret lives in modelplane-system, under key kubeconfig.
    assert pc["spec"]["credentials"]["secretRef"] == {
        "name": "byo", "namespace": "modelplane-system", "key": "kubeconfig"}
    assert "identity" not in pc["spec"]


def test_existing_cluster_identity_secret_is_the_identity_of_both_provider_configs() -> None:
    xr = cluster("Existing")
    xr["spec"]["cluster"]["existing"]["identitySecretRef"] = {"name": "edge-sa"}
    res, _ = converge(xr, one_class("Existing"))
    for rname in ("provider-config-kubernetes", "provider-config-helm"):
        pc = res.desired[rname].resource
        assert pc["spec"]["identity"] == {
            "type": "GoogleApplicationCredentials", "source": "Secret",
            "secretRef": {"name": "edge-sa", "namespace": "modelplane-system",
                          "key": "private_key"}}
        assert problems(pc) == []


@pytest.mark.parametrize("source", ["GKE", "EKS", "AKS", "Existing"])
def test_a_pool_with_node_count_alone_is_fixed_size_and_that_is_its_ceiling(source: str) -> None:
    cname, _ = CLASS_FOR[source]
    xr = cluster(source, pools=[{"name": "gpu", "className": cname, "nodeCount": 3}])
    res, _ = converge(xr, one_class(source))
    [pool] = res.status["pools"]
    assert (pool["nodeCeiling"], pool["minNodeCount"]) == (3, 3)
    if source == "Existing":
        return
    body = res.desired["nodepool-gpu"].resource["spec"]["forProvider"]
    assert problems(res.desired["nodepool-gpu"].resource) == []
    if source == "GKE":
        assert body["autoscaling"]["totalMinNodeCount"] == body["autoscaling"][
            "totalMaxNodeCount"] == 3
    elif source == "EKS":
        assert body["scalingConfig"] == {"minSize": 3, "maxSize": 3, "desiredSize": 3}
    else:
        assert body["autoScalingEnabled"] is False and body["nodeCount"] == 3
        assert "minCount" not in body and "maxCount" not in body


def test_a_pool_with_max_node_count_autoscales_from_a_clamped_node_count() -> None:
    cname, _ = CLASS_FOR["EKS"]
    # nodeCount's API default (1) lies below minNodeCount: the group starts at the minimum.
    xr = cluster("EKS", pools=[{"name": "gpu", "className": cname, "nodeCount": 1,
                                "minNodeCount": 2, "maxNodeCount": 6}])
    res, _ = converge(xr, one_class("EKS"))
    body = res.desired["nodepool-gpu"].resource["spec"]["forProvider"]
    assert body["scalingConfig"] == {"minSize": 2, "maxSize": 6, "desiredSize": 2}
    assert res.status["pools"][0]["nodeCeiling"] == 6


@pytest.mark.parametrize(("source", "version"), [("GKE", "1.35"), ("EKS", "1.36")])
def test_kubernetes_version_applies_to_the_cluster_and_its_pools(source: str,
                                                                 version: str) -> None:
    xr = cluster(source)
    xr["spec"]["cluster"][source.lower()]["kubernetesVersion"] = version
    res, _ = converge(xr, one_class(source))
    cluster_body = res.desired["cluster"].resource["spec"]["forProvider"]
    assert cluster_body["minMasterVersion" if source == "GKE" else "version"] == version
    assert res.desired["nodepool-gpu"].resource["spec"]["forProvider"]["version"] == version


def test_stack_waits_for_the_kubeconfig_then_installs_pinned_charts() -> None:
    xr = cluster("GKE")
    first = inferencecluster.compose(request(xr, one_class("GKE")))
    assert not [n for n in first.desired if n.startswith("release-")]
    assert condition(first, "StackReady").reason == "WaitingForCluster"
    res, _ = converge(xr, one_class("GKE"))
    charts = {d.resource["spec"]["forProvider"]["chart"]["name"]:
              d.resource["spec"]["forProvider"]["chart"]["version"]
              for d in res.desired.values() if d.resource["kind"] == "Release"}
    assert charts == {c.name: c.version for c in stack.CHARTS}


def test_stack_versions_are_overridable_per_cluster() -> None:
    xr = cluster("Existing", stack={"draDriver": {"version": "25.12.0"}})
    res, _ = converge(xr, one_class("Existing"))
    chart = res.desired["release-draDriver"].resource["spec"]["forProvider"]["chart"]
    assert chart["version"] == "25.12.0"


def test_the_stack_and_its_gateway_outlive_nothing_they_depend_on() -> None:
    res, _ = converge(cluster("EKS"), one_class("EKS"))
    usages = {(d.resource["spec"]["of"]["kind"], d.resource["spec"]["by"]["resourceRef"]["name"])
              for d in res.desired.values() if d.resource["kind"] == "Usage"}
    for rname in ("release-draDriver", "release-gateway", "gateway"):
        by = res.desired[rname].resource["metadata"]["name"]
        assert ("Cluster", by) in usages and ("ClusterAuth", by) in usages
    assert ("Release", res.desired["gateway"].resource["metadata"]["name"]) in usages


def test_cluster_hosting_replicas_is_protected_from_deletion() -> None:
    replica = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
               "metadata": {"name": "r0", "namespace": "team"}}
    res, observed = converge(cluster("GKE"), one_class("GKE"), replicas=[replica])
    usage = res.desired[inferencecluster.PROTECT].resource
    assert usage["kind"] == "ClusterUsage"
    assert usage["spec"]["of"]["resourceRef"] == {"name": "c1"}
    assert condition(res, "DeletionProtected").status == "True"
    # Replicas gone: the protection is released, so deleting the cluster can proceed.
    after = inferencecluster.compose(request(cluster("GKE"), one_class("GKE"), [], observed))
    assert inferencecluster.PROTECT not in after.desired
    # Replicas not yet known (first call): the protection stays.
    unresolved = inferencecluster.compose(request(cluster("GKE"), observed=observed,
                                                  resolve=False))
    assert inferencecluster.PROTECT in unresolved.desired


def test_credentials_compose_a_cloud_provider_config_every_mr_uses() -> None:
    xr = cluster("GKE", credentials={"secretRef": {"name": "gcp", "namespace": "crossplane-system",
                                                   "key": "credentials"}})
    res, _ = converge(xr, one_class("GKE"))
    pc = res.desired["cloud-provider-config"].resource
    assert pc["apiVersion"] == "gcp.m.upbound.io/v1beta1"
    assert pc["spec"]["projectID"] == "my-gcp-project"
    assert res.desired["cluster"].resource["spec"]["providerConfigRef"] == {
        "kind": "ClusterProviderConfig", "name": pc["metadata"]["name"]}
    without, _ = converge(cluster("GKE"), one_class("GKE"))
    assert without.desired["cluster"].resource["spec"]["providerConfigRef"]["name"] == "default"


# -- safety -------------------------------------------------------------------------------------

MISMATCH_CASES = [
    pytest.param(lambda: [klass("eks-h100-8x", GKE_L4)], "is EKS but InferenceClass "
                 "'eks-h100-8x' provisions GKE nodes", id="eks-pool-with-gke-only-class"),
    pytest.param(lambda: [], "InferenceClass 'eks-h100-8x' does not exist", id="missing-class"),
    pytest.param(lambda: [klass("eks-h100-8x", {**EKS_H100, "devices": [
        {"name": "gpu", "driver": "gpu.nvidia.com", "capacity": {"memory": {"value": "x"}}}]})],
        "is invalid", id="invalid-class"),
]


@pytest.mark.parametrize(("classes", "message"), MISMATCH_CASES)
def test_class_mismatch_is_a_condition_and_keeps_provisioned_pools(classes: Any,
                                                                   message: str) -> None:
    xr = cluster("EKS")
    healthy, observed = converge(xr, one_class("EKS"))
    before = healthy.desired["nodepool-gpu"].resource
    res = inferencecluster.compose(request({**xr, "status": healthy.status}, classes(), None,
                                           observed))
    c = condition(res, "ClassesResolved")
    assert c.status == "False" and message in c.message
    assert "spec.nodePools[gpu].className" in c.message
    assert res.desired["nodepool-gpu"].resource == before
    assert set(res.desired) == set(healthy.desired)
    assert res.status["pools"] == healthy.status["pools"]  # last published entry kept


def test_unresolved_classes_keep_everything_and_compose_nothing_new() -> None:
    xr = cluster("GKE")
    healthy, observed = converge(xr, one_class("GKE"))
    res = inferencecluster.compose(request(xr, observed=observed, resolve=False))
    assert set(res.desired) == set(healthy.desired)
    assert condition(res, "ClassesResolved").status == "Unknown"


def test_pool_removed_from_spec_is_deleted_once_no_replica_runs_on_it() -> None:
    xr = cluster("GKE")
    _, observed = converge(xr, one_class("GKE"))
    xr["spec"]["nodePools"] = []
    res = inferencecluster.compose(request(xr, one_class("GKE"), None, observed))
    assert "nodepool-gpu" not in res.desired
    assert "cluster" in res.desired
    assert condition(res, "NodePoolsDrained").status == "True"


def _replica_on(pool: str, name: str = "r0") -> Resource:
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
            "metadata": {"name": name, "namespace": "team",
                         "labels": {"crossplane.io/composite": "m"},
                         "ownerReferences": [{"apiVersion": "modelplane.ai/v1alpha1",
                                              "kind": "ModelDeployment", "name": "m",
                                              "uid": "u-m", "controller": True}]},
            "spec": {"deployment": "m", "cluster": "c1", "engines": [{"name": "e", "members": [
                {"role": "Standalone", "pool": pool,
                 "devices": [{"name": "gpu", "count": 1}]}]}]}}


@pytest.mark.parametrize("source", ["GKE", "EKS", "AKS"])
@pytest.mark.parametrize("edit", ["removed", "renamed"])
def test_a_pool_removed_or_renamed_drains_before_its_cloud_pool_goes(source: str,
                                                                     edit: str) -> None:
    xr = cluster(source)
    replicas = [_replica_on("gpu")]
    healthy, observed = converge(xr, one_class(source), replicas)
    xr = {**xr, "status": healthy.status}
    if edit == "removed":
        xr["spec"]["nodePools"] = []
    else:
        xr["spec"]["nodePools"] = [{**xr["spec"]["nodePools"][0], "name": "gpu-b"}]
    res = inferencecluster.compose(request(xr, one_class(source), replicas, observed))
    # The cloud pool stays while the replica runs there, and placement sees it draining.
    assert "nodepool-gpu" in res.desired
    entry = next(p for p in res.status["pools"] if p["name"] == "gpu")
    assert entry["draining"] is True and entry["allocated"][0]["owner"] == "team/m"
    drained = condition(res, "NodePoolsDrained")
    assert (drained.status, drained.reason) == ("False", "HostsReplicas")
    assert "pool gpu: held by 1 ModelReplica(s) (team/r0)" in drained.message
    assert "nothing to provision" not in condition(res, "NodePoolsReady").message
    assert "draining pool(s) removed from spec.nodePools: gpu" in condition(
        res, "NodePoolsReady").message
    if edit == "renamed":
        assert "nodepool-gpu-b" in res.desired
    # Replicas unknown (first call of the loop): still held.
    first = inferencecluster.compose(request(xr, one_class(source), observed=observed,
                                             resolve=False))
    assert "nodepool-gpu" in first.desired
    # The replica moved elsewhere: the pool is let go.
    moved = [_replica_on("gpu-b")] if edit == "renamed" else []
    after = inferencecluster.compose(request({**xr, "status": res.status}, one_class(source),
                                             moved, observed))
    assert "nodepool-gpu" not in after.desired
    assert all(p["name"] != "gpu" for p in after.status["pools"])
    assert condition(after, "NodePoolsDrained").status == "True"


@pytest.mark.parametrize(("mutate", "message"), [
    pytest.param(lambda s: s["cluster"].pop("gke"), "spec.cluster.gke is required",
                 id="source-block-missing"),
    pytest.param(lambda s: s["cluster"].update(source="OnPrem"), "spec.cluster.source 'OnPrem'",
                 id="unknown-source"),
])
def test_invalid_cluster_spec_keeps_what_runs(mutate: Any, message: str) -> None:
    xr = cluster("GKE")
    healthy, observed = converge(xr, one_class("GKE"))
    bad = copy.deepcopy(xr)
    mutate(bad["spec"])
    res = inferencecluster.compose(request(bad, one_class("GKE"), None, observed))
    assert set(res.desired) == set(healthy.desired)
    c = condition(res, "ClusterReady")
    assert c.status == "False" and message in c.message


def test_invalid_eks_vpc_cidr_is_a_condition_naming_it() -> None:
    xr = cluster("EKS")
    xr["spec"]["cluster"]["eks"]["vpcCidr"] = "10.0.0.1/16"
    res = inferencecluster.compose(request(xr, one_class("EKS")))
    assert "spec.cluster.eks.vpcCidr '10.0.0.1/16'" in condition(res, "ClusterReady").message
    # Nothing is provisioned; only the capacity summary, which says the cluster is not Ready.
    assert list(res.desired) == ["capacity-summary"]
    assert '"ready":false' in res.desired["capacity-summary"].resource["data"]["summary"]


def test_unready_parts_are_named_in_conditions() -> None:
    xr = cluster("GKE")
    res, _ = converge(xr, one_class("GKE"))
    sick = observe(res, ready=False)
    res = inferencecluster.compose(request(xr, one_class("GKE"), None, sick))
    assert res.composite_ready == "False"
    assert "cluster" in condition(res, "ClusterReady").message
    assert "nodepool-gpu" in condition(res, "NodePoolsReady").message
    assert res.status["pools"][0]["ready"] is False


def test_output_is_deterministic() -> None:
    a, _ = converge(cluster("EKS"), one_class("EKS"))
    b, _ = converge(cluster("EKS"), one_class("EKS"))
    assert [(n, d.resource) for n, d in a.desired.items()] == [
        (n, d.resource) for n, d in b.desired.items()]


@pytest.mark.parametrize("ceiling", [1, 0])
def test_a_ceiling_below_what_runs_is_reported(ceiling: int) -> None:
    xr = cluster("GKE", pools=[{"name": "gpu", "className": CLASS_FOR["GKE"][0],
                                "minNodeCount": 0, "maxNodeCount": 4}])
    gpus = {d["name"]: d.get("count", 1) for d in one_class("GKE")[0]["spec"]["devices"]}
    name, per_node = next(iter(gpus.items()))
    replicas = [_replica_on("gpu", f"r{i}") for i in range(2)]
    for r in replicas:
        r["spec"]["engines"][0]["members"][0]["devices"] = [{"name": name, "count": per_node}]
    healthy, observed = converge(xr, one_class("GKE"), replicas)
    assert condition(healthy, "PoolCapacity").status == "True"
    xr = {**xr, "status": healthy.status}
    xr["spec"]["nodePools"][0]["maxNodeCount"] = ceiling
    res = inferencecluster.compose(request(xr, one_class("GKE"), replicas, observed))
    c = condition(res, "PoolCapacity")
    assert (c.status, c.reason) == ("False", "CeilingBelowAllocation")
    assert f"pool gpu: nodeCeiling {ceiling} but its replicas need 2 node(s)" in c.message
    assert f"{2 - ceiling} pod(s) do not fit" in c.message and "team/r0, team/r1" in c.message
    assert "nodepool-gpu" in res.desired  # nothing is removed because of it
