"""GKE: a VPC-native regional cluster, a small system pool, and one GPU node pool per pool.

Kinds (namespaced v2 provider-upjet-gcp): compute Network + Subnetwork, a node ServiceAccount
with the minimal node role, container Cluster (default pool removed, kubeconfig connection
secret) and NodePools. GPU pools carry the scheduler's pin label, the NVIDIA taint, and the
labels GKE documents for handing GPUs to the NVIDIA DRA driver instead of its device plugin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from modelplane.common.fields import path
from modelplane.step import Resource
from modelplane.steps.inferencecluster import charts
from modelplane.steps.inferencecluster.common import (
    Ctx,
    Infra,
    Pool,
    managed,
    pool_resource_name,
    ref,
)

CONTAINER = "container.gcp.m.upbound.io/v1beta1"
COMPUTE = "compute.gcp.m.upbound.io/v1beta1"
CLOUDPLATFORM = "cloudplatform.gcp.m.upbound.io/v1beta1"

SUBNET_CIDR = "10.0.0.0/20"
#: Netmask-only secondary ranges: GKE picks free ranges of these sizes (VPC-native).
POD_RANGE = "/17"
SERVICE_RANGE = "/22"
#: The role GKE documents as the minimum for a node service account.
NODE_ROLE = "roles/container.defaultNodeServiceAccount"
#: Where GKE's driver installer puts the NVIDIA driver on COS nodes.
GKE_DRIVER_ROOT = "/home/kubernetes/bin/nvidia"
#: GKE node label that turns off GKE's own GPU device plugin, so DRA owns the GPUs.
NO_DEVICE_PLUGIN_LABEL = "gke-no-default-nvidia-gpu-device-plugin"
#: The untainted pool the serving stack's controllers and cluster add-ons run on.
SYSTEM_MACHINE_TYPE = "e2-standard-4"
SYSTEM_MIN, SYSTEM_MAX = 1, 3


def service_account_id(ctx: Ctx) -> str:
    """A GCP service account ID (6-30 chars, starts with a letter) for the cluster's nodes."""
    return ctx.res_name("nodes", max_len=30) if ctx.name[:1].isalpha() else (
        "mp-" + ctx.res_name("nodes", max_len=27))


def compose(ctx: Ctx, pools: list[Pool], observed: Mapping[str, Resource]) -> Infra:
    del observed  # GKE needs nothing observed to compose
    gke = ctx.block()
    project, region = str(gke.get("project", "")), str(gke.get("region", ""))
    zones = [str(z) for z in gke.get("zones") or []]
    out = Infra(stack_depends_on=["cluster"], kubeconfig_from="cluster",
                storage_class="standard-rwx",
                dra_values={"nvidiaDriverRoot": GKE_DRIVER_ROOT})
    names = {k: ctx.res_name(k) for k in ("network", "subnet", "nodes", "cluster", "system")}
    cluster_name = ctx.res_name(max_len=40)
    sa_id = service_account_id(ctx)
    sa_email = f"{sa_id}@{project}.iam.gserviceaccount.com"

    out.resources["network"] = managed(ctx, COMPUTE, "Network", names["network"], {
        "project": project, "autoCreateSubnetworks": False, "routingMode": "REGIONAL"})
    out.resources["subnetwork"] = managed(ctx, COMPUTE, "Subnetwork", names["subnet"], {
        "project": project, "region": region, "ipCidrRange": SUBNET_CIDR,
        "networkRef": ref(names["network"]), "privateIpGoogleAccess": True})
    sa = managed(ctx, CLOUDPLATFORM, "ServiceAccount", names["nodes"], {
        "project": project, "displayName": f"Modelplane nodes of {ctx.name}"})
    sa["metadata"]["annotations"] = {"crossplane.io/external-name": sa_id}
    out.resources["node-service-account"] = sa
    out.resources["node-service-account-role"] = managed(
        ctx, CLOUDPLATFORM, "ProjectIAMMember", ctx.res_name("nodes", "role"), {
            "project": project, "role": NODE_ROLE, "member": f"serviceAccount:{sa_email}"})

    cluster: dict[str, Any] = {
        "project": project,
        "location": region,
        "networkRef": ref(names["network"]),
        "subnetworkRef": ref(names["subnet"]),
        "ipAllocationPolicy": {"clusterIpv4CidrBlock": POD_RANGE,
                               "servicesIpv4CidrBlock": SERVICE_RANGE},
        # GKE requires a default pool at creation; ours are managed as NodePools instead.
        "initialNodeCount": 1,
        "removeDefaultNodePool": True,
        "releaseChannel": {"channel": "REGULAR"},
        "minMasterVersion": ctx.kubernetes_version(),
        "workloadIdentityConfig": {"workloadPool": f"{project}.svc.id.goog"},
        # Filestore CSI backs the standard-rwx StorageClass model caches use.
        "addonsConfig": {"gcpFilestoreCsiDriverConfig": {"enabled": True}},
        # Crossplane, not a console click, decides when the cluster goes away.
        "deletionProtection": False,
    }
    if zones:
        cluster["nodeLocations"] = zones
    c = managed(ctx, CONTAINER, "Cluster", names["cluster"], cluster,
                writeConnectionSecretToRef={"name": ctx.res_name("kubeconfig")})
    c["metadata"]["annotations"] = {"crossplane.io/external-name": cluster_name}
    out.resources["cluster"] = c
    out.kubeconfig = {"name": ctx.res_name("kubeconfig"), "namespace": c["metadata"]["namespace"],
                      "key": "kubeconfig"}
    # GKE's kubeconfig carries no credentials: providers authenticate as a Google identity,
    # the cluster's credentials Secret when given, else the provider pod's own (Workload
    # Identity).
    creds = path(ctx.spec, "credentials").get("secretRef")
    out.identity = ({"type": "GoogleApplicationCredentials", "source": "Secret",
                     "secretRef": {"name": str(creds.get("name", "")),
                                   "namespace": str(creds.get("namespace", "")),
                                   "key": str(creds.get("key") or "credentials")}}
                    if isinstance(creds, Mapping) else
                    {"type": "GoogleApplicationCredentials", "source": "InjectedIdentity"})
    # GKE admits system-node-critical pods (the DRA kubelet plugin) outside kube-system only
    # under a ResourceQuota that names the priority class.
    out.cluster_objects["dra-critical-pods-quota"] = {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "nvidia-dra-driver-gpu-critical-pods",
                     "namespace": charts.DRA_DRIVER.namespace},
        "spec": {"hard": {"pods": "100"}, "scopeSelector": {"matchExpressions": [{
            "operator": "In", "scopeName": "PriorityClass",
            "values": ["system-cluster-critical", "system-node-critical"]}]}},
    }

    out.resources["system-pool"] = managed(ctx, CONTAINER, "NodePool", names["system"], {
        "project": project, "location": region, "clusterRef": ref(names["cluster"]),
        "initialNodeCount": 1,
        "autoscaling": {"totalMinNodeCount": SYSTEM_MIN, "totalMaxNodeCount": SYSTEM_MAX,
                        "locationPolicy": "BALANCED"},
        "management": {"autoRepair": True, "autoUpgrade": True},
        "nodeConfig": {"machineType": SYSTEM_MACHINE_TYPE, "serviceAccountRef": ref(names["nodes"]),
                       "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"]},
    })

    for pool in pools:
        rname = pool_resource_name(pool.name)
        out.pools[rname] = node_pool(ctx, pool, project, region, zones, names)
        out.pool_resource[pool.name] = rname
    return out


def node_pool(ctx: Ctx, pool: Pool, project: str, region: str, cluster_zones: list[str],
              names: Mapping[str, str]) -> Resource:
    """One GKE NodePool: the pool's counts and zones combined with the class's machine shape."""
    shape = pool.shape("gke")
    zones = list(pool.zones) or cluster_zones
    labels = pool.node_labels()
    config: dict[str, Any] = {
        "machineType": str(shape.get("machineType", "")),
        "imageType": str(shape.get("imageType") or "COS_CONTAINERD"),
        "serviceAccountRef": ref(names["nodes"]),
        "oauthScopes": ["https://www.googleapis.com/auth/cloud-platform"],
    }
    if shape.get("diskSizeGb"):
        config["diskSizeGb"] = int(shape["diskSizeGb"])
    spot = pool.spot if pool.spot is not None else bool(shape.get("spot"))
    if spot:
        config["spot"] = True
    acc = shape.get("accelerator")
    if isinstance(acc, Mapping):
        config["guestAccelerator"] = [{
            "type": str(acc.get("type", "")), "count": int(acc.get("count", 1)),
            # GKE installs the driver; the DRA driver (not GKE's device plugin) exposes GPUs.
            "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]
    if pool.has_nvidia_gpu:
        labels[NO_DEVICE_PLUGIN_LABEL] = "true"
        config["taint"] = [{"key": charts.GPU_TAINT_KEY, "value": charts.GPU_TAINT_VALUE,
                            "effect": "NO_SCHEDULE"}]
    config["labels"] = dict(sorted(labels.items()))
    body: dict[str, Any] = {
        "project": project,
        "location": region,
        "clusterRef": ref(names["cluster"]),
        "version": ctx.kubernetes_version(),
        "management": {"autoRepair": True, "autoUpgrade": True},
        "nodeConfig": config,
    }
    # Per-zone at creation; the autoscaler then keeps the pool within the total bounds. A
    # fixed-size pool has equal bounds: GKE's nodeCount is per zone, the total bounds are exact.
    body["initialNodeCount"] = (math.ceil(pool.node_count / len(zones)) if zones
                                else min(pool.node_count, 1))
    body["autoscaling"] = {"totalMinNodeCount": pool.min_nodes,
                           "totalMaxNodeCount": pool.max_nodes, "locationPolicy": "ANY"}
    if zones:
        body["nodeLocations"] = zones
    return managed(ctx, CONTAINER, "NodePool", ctx.res_name("pool", pool.name, max_len=40), body)
