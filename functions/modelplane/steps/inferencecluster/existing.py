"""Existing clusters: no infrastructure, only access through the referenced kubeconfig Secret.

The nodes already exist, so the pool/node mapping is the platform team's: every node of pool P
must carry the label ``modelplane.ai/pool=P`` (replicas are pinned with that nodeSelector), and
GPU nodes should carry the NVIDIA taint and ``nvidia.com/gpu.present=true`` like provisioned
ones. The serving stack is still installed by Modelplane.

``existing.secretRef`` and ``existing.identitySecretRef`` name Secrets in
:data:`SECRET_NAMESPACE` unless they say otherwise (the published v0.1 convention); the identity
becomes the ``identity`` of the kubernetes and helm ProviderConfigs that reach the cluster, for
kubeconfigs that authenticate through a cloud identity. ``existing.cache.storageClassName`` is
the cluster's ReadWriteMany StorageClass, published on status for ModelCache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.step import Resource
from modelplane.steps.inferencecluster.common import Ctx, Infra, Pool

#: Where v0.1 keeps the Secrets of existing clusters when a reference names no namespace.
SECRET_NAMESPACE = "modelplane-system"
KUBECONFIG_KEY = "kubeconfig"
IDENTITY_KEY = "private_key"
IDENTITY_TYPE = "GoogleApplicationCredentials"


def secret_ref(ref: Mapping[str, Any], default_key: str) -> dict[str, str]:
    """A Secret reference with the v0.1 defaults (namespace, key) applied."""
    return {"name": str(ref.get("name") or ""),
            "namespace": str(ref.get("namespace") or SECRET_NAMESPACE),
            "key": str(ref.get("key") or default_key)}


def compose(ctx: Ctx, pools: list[Pool], observed: Mapping[str, Resource]) -> Infra:
    del pools, observed  # nothing is provisioned for an existing cluster's pools
    block = ctx.block()
    secret = block.get("secretRef")
    out = Infra(dra_values={"nvidiaDriverRoot": "/"})
    if not isinstance(secret, Mapping) or not secret.get("name"):
        out.problems.append(
            f"spec.cluster.existing.secretRef {secret!r} needs the name of the kubeconfig Secret")
        return out
    out.kubeconfig = secret_ref(secret, KUBECONFIG_KEY)
    identity = block.get("identitySecretRef")
    if isinstance(identity, Mapping):
        if not identity.get("name"):
            out.problems.append(f"spec.cluster.existing.identitySecretRef {dict(identity)!r} "
                                "needs the name of the identity Secret")
            return out
        out.identity = {"type": str(identity.get("type") or IDENTITY_TYPE), "source": "Secret",
                        "secretRef": secret_ref(identity, IDENTITY_KEY)}
    cache = block.get("cache")
    if isinstance(cache, Mapping) and cache.get("storageClassName"):
        out.storage_class = str(cache["storageClassName"])
    return out
