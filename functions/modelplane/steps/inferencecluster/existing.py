"""Existing clusters: no infrastructure, only access through the referenced kubeconfig Secret.

The nodes already exist, so the pool/node mapping is the platform team's: every node of pool P
must carry the label ``modelplane.ai/pool=P`` (replicas are pinned with that nodeSelector), and
GPU nodes should carry the NVIDIA taint and ``nvidia.com/gpu.present=true`` like provisioned
ones. The serving stack is still installed by Modelplane.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelplane.step import Resource
from modelplane.steps.inferencecluster.common import Ctx, Infra, Pool


def compose(ctx: Ctx, pools: list[Pool], observed: Mapping[str, Resource]) -> Infra:
    del pools, observed  # nothing is provisioned for an existing cluster's pools
    block = ctx.block()
    secret = block.get("kubeconfigSecretRef") or {}
    out = Infra(dra_values={"nvidiaDriverRoot": "/"})
    if not secret.get("name") or not secret.get("namespace"):
        out.problems.append(
            f"spec.cluster.existing.kubeconfigSecretRef {dict(secret)!r} needs name and namespace")
        return out
    out.kubeconfig = {"name": str(secret["name"]), "namespace": str(secret["namespace"]),
                      "key": str(secret.get("key") or "kubeconfig")}
    if block.get("storageClassName"):
        out.storage_class = str(block["storageClassName"])
    return out
