"""The volume convention between a ModelCache and the pods that read its weights.

A ModelCache stages a repository once per cluster into a ReadWriteMany PVC; a ModelReplica on
that cluster mounts the same PVC read-only at the same path. Both sides derive the names here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.common.names import dns_label
from modelplane.contract.api import API_VERSION, MODEL_CACHE

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


# -- readers hold the cache: a Usage per workload that mounts it --------------------------------

#: Crossplane's Usage API (namespaced in Crossplane v2; ``of`` and ``by`` in its namespace).
USAGE_API_VERSION = "protection.crossplane.io/v1beta1"
#: What Crossplane's usage webhook writes on a resource whose deletion a Usage refused (the
#: propagation policy of the attempt); the ModelCache reads it to say its deletion is held.
DELETION_ATTEMPT_ANNOTATION = "usage.crossplane.io/deletion-attempt-with-policy"


def reader_usage(name: str, namespace: str, labels: Mapping[str, str], cache: str,
                 by_api_version: str, by_kind: str, by_name: str, reason: str) -> dict[str, Any]:
    """The Usage a reader composes: ModelCache ``cache`` is not deleted while ``by`` (the
    Object of a workload that mounts the cache volume, in the same namespace) exists.

    Crossplane's webhook refuses ``kubectl delete modelcache`` (and records the attempt on the
    cache); with ``replayDeletion`` the Usage controller deletes the cache once the last such
    Usage is gone, i.e. once the readers have moved or their deployment is deleted.
    """
    return {"apiVersion": USAGE_API_VERSION, "kind": "Usage",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"of": {"apiVersion": API_VERSION, "kind": MODEL_CACHE,
                            "resourceRef": {"name": cache}},
                     "by": {"apiVersion": by_api_version, "kind": by_kind,
                            "resourceRef": {"name": by_name}},
                     "reason": reason,
                     "replayDeletion": True}}
