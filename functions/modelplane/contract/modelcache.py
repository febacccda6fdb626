"""The volume convention between a ModelCache and the pods that read its weights.

A ModelCache stages a repository once per cluster into a ReadWriteMany PVC; a ModelReplica on
that cluster mounts the same PVC read-only at the same path. Both sides derive the names here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.common.names import dns_label

#: Where the cache volume is mounted in every pod that reads it.
MOUNT_PATH = "/models"


def pvc_name(cache: str) -> str:
    """The PVC holding a cache's weights on every cluster, in the cache's namespace."""
    return dns_label("modelcache", cache)


def model_path(repo: str) -> str:
    """Where a repository's files are inside the mounted volume, e.g. /models/Qwen/Qwen2.5-0.5B."""
    return f"{MOUNT_PATH}/{repo}"


def namespace_object_name(kind: str, composite: str, cluster: str) -> str:
    """The provider-kubernetes Object that ensures a composite's remote Namespace on a cluster.

    ``<kind>-<composite>-<cluster>-namespace`` (a DNS label), with
    :data:`modelplane.contract.remote.SHARED_POLICIES`, so every composite of a namespace
    (caches and replicas alike) may ensure the same remote Namespace and none removes it.
    """
    return dns_label(kind.lower(), composite, cluster, "namespace")


def cached_repo(cache: Mapping[str, Any]) -> str | None:
    """The Hugging Face repository a ModelCache stages (spec.huggingFace.repo), if it names one."""
    spec = cache.get("spec")
    hf = spec.get("huggingFace") if isinstance(spec, Mapping) else None
    repo = hf.get("repo") if isinstance(hf, Mapping) else None
    return str(repo) if repo else None
