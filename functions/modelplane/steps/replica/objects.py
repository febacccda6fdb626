"""The provider-kubernetes Object every remote manifest travels in."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

OBJECT_API_VERSION = "kubernetes.m.crossplane.io/v1alpha1"


def available_query() -> str:
    """Ready when the remote workload reports Available=True (Deployment and LeaderWorkerSet).

    provider-kubernetes' DeriveFromObject policy only looks for a ``Ready`` condition, which
    neither a Deployment nor a LeaderWorkerSet has, so workloads derive readiness from a CEL query.
    """
    return ("has(object.status) && has(object.status.conditions) && "
            "object.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')")


def route_accepted_query() -> str:
    """Ready when every parent gateway accepted the route and resolved its backends."""
    return ("has(object.status) && has(object.status.parents) && "
            "object.status.parents.size() > 0 && object.status.parents.all(p, "
            "p.conditions.exists(c, c.type == 'Accepted' && c.status == 'True') && "
            "p.conditions.exists(c, c.type == 'ResolvedRefs' && c.status == 'True'))")


@dataclass(frozen=True)
class ProviderConfigRef:
    kind: str
    name: str


def wrap(name: str, namespace: str, labels: dict[str, str], pc: ProviderConfigRef,
         manifest: dict[str, Any], *, ready_query: str | None = None,
         management_policies: list[str] | None = None) -> dict[str, Any]:
    """A namespaced Object applying ``manifest`` to the cluster behind ``pc``."""
    spec: dict[str, Any] = {
        "forProvider": {"manifest": copy.deepcopy(manifest)},  # no aliasing between objects
        "providerConfigRef": {"kind": pc.kind, "name": pc.name},
    }
    if ready_query is not None:
        spec["readiness"] = {"policy": "DeriveFromCelQuery", "celQuery": ready_query}
    if management_policies is not None:
        spec["managementPolicies"] = list(management_policies)
    return {
        "apiVersion": OBJECT_API_VERSION,
        "kind": "Object",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(sorted(labels.items()))},
        "spec": spec,
    }


def remote_manifest(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The remote object as provider-kubernetes last observed it (empty when unknown)."""
    at = ((obj or {}).get("status") or {}).get("atProvider") or {}
    manifest = at.get("manifest")
    return manifest if isinstance(manifest, dict) else {}
