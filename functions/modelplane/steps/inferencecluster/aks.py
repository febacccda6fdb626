"""AKS: a resource group (unless given), the cluster with a system pool, one GPU pool per pool.

Kinds (namespaced v2 provider-upjet-azure): azure ResourceGroup, containerservice
KubernetesCluster (system-assigned identity, kubeconfig connection secret) and
KubernetesClusterNodePools. AKS installs the NVIDIA driver on GPU VM sizes; the pools carry the
scheduler's pin label and the NVIDIA taint. Model caches use the built-in ``azurefile-csi``
(ReadWriteMany) StorageClass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from modelplane.common.names import short_hash
from modelplane.contract.metadata import CLUSTER_LABEL
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

AZURE = "azure.m.upbound.io/v1beta1"
CONTAINERSERVICE = "containerservice.azure.m.upbound.io/v1beta1"
SYSTEM_VM_SIZE = "Standard_D4s_v5"
SYSTEM_MIN, SYSTEM_MAX = 1, 3
STORAGE_CLASS = "azurefile-csi"


def agent_pool_name(pool: str) -> str:
    """An AKS agent pool name: lowercase alphanumeric, starts with a letter, at most 12 chars."""
    plain = re.sub(r"[^a-z0-9]", "", pool.lower())
    if plain == pool and plain[:1].isalpha() and len(plain) <= 12 and plain != "system":
        return plain
    return "mp" + short_hash(pool, length=10)


def compose(ctx: Ctx, pools: list[Pool], observed: Mapping[str, Resource]) -> Infra:
    del observed  # AKS needs nothing observed to compose
    aks = ctx.block()
    location = str(aks.get("location", ""))
    out = Infra(stack_depends_on=["cluster"], kubeconfig_from="cluster",
                storage_class=STORAGE_CLASS, dra_values={"nvidiaDriverRoot": "/"})
    rg = str(aks.get("resourceGroup") or "")
    cluster: dict[str, Any] = {
        "location": location,
        "dnsPrefix": ctx.res_name(max_len=54),
        "kubernetesVersion": ctx.kubernetes_version(),
        "identity": {"type": "SystemAssigned"},
        "defaultNodePool": {"name": "system", "vmSize": SYSTEM_VM_SIZE,
                            "autoScalingEnabled": True, "minCount": SYSTEM_MIN,
                            "maxCount": SYSTEM_MAX, "nodeCount": SYSTEM_MIN},
        "oidcIssuerEnabled": True,
        "tags": {CLUSTER_LABEL: ctx.name},
    }
    if rg:
        cluster["resourceGroupName"] = rg
    else:
        rg_name = ctx.res_name("rg")
        out.resources["resource-group"] = managed(ctx, AZURE, "ResourceGroup", rg_name, {
            "location": location, "tags": {CLUSTER_LABEL: ctx.name}})
        cluster["resourceGroupNameRef"] = ref(rg_name)
    cname = ctx.res_name("cluster")
    out.resources["cluster"] = managed(
        ctx, CONTAINERSERVICE, "KubernetesCluster", cname, cluster,
        writeConnectionSecretToRef={"name": ctx.res_name("kubeconfig")})
    out.kubeconfig = {"name": ctx.res_name("kubeconfig"), "namespace": "crossplane-system",
                      "key": "kubeconfig"}
    for pool in pools:
        rname = pool_resource_name(pool.name)
        out.pools[rname] = node_pool(ctx, pool, cname)
        out.pool_resource[pool.name] = rname
    return out


def node_pool(ctx: Ctx, pool: Pool, cluster: str) -> Resource:
    shape = pool.shape("aks")
    body: dict[str, Any] = {
        "kubernetesClusterIdRef": ref(cluster),
        "vmSize": str(shape.get("vmSize", "")),
        "mode": "User",
        "autoScalingEnabled": pool.autoscaling,
        "nodeCount": pool.node_count,
        "nodeLabels": dict(sorted(pool.node_labels().items())),
    }
    if pool.autoscaling:  # a fixed-size pool is nodeCount nodes, without autoscaler bounds
        body.update(minCount=pool.min_nodes, maxCount=pool.max_nodes)
    if pool.zones:
        body["zones"] = list(pool.zones)
    if shape.get("osDiskSizeGb"):
        body["osDiskSizeGb"] = int(shape["osDiskSizeGb"])
    spot = pool.spot if pool.spot is not None else shape.get("priority") == "Spot"
    if spot:
        body.update({"priority": "Spot", "evictionPolicy": "Delete", "spotMaxPrice": -1})
    if pool.has_nvidia_gpu:
        body["nodeTaints"] = [f"{charts.GPU_TAINT_KEY}={charts.GPU_TAINT_VALUE}:NoSchedule"]
    np = managed(ctx, CONTAINERSERVICE, "KubernetesClusterNodePool",
                 ctx.res_name("pool", pool.name), body)
    np["metadata"]["annotations"] = {"crossplane.io/external-name": agent_pool_name(pool.name)}
    return np
