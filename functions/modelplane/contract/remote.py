"""The provider-kubernetes ``Object``: how every manifest reaches an inference cluster.

Workloads, cache volumes and the serving stack's objects all travel to their cluster wrapped in
an Object that names the cluster's ProviderConfig; provider-kubernetes applies the manifest
there and reports what it observed under ``status.atProvider.manifest``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: provider-kubernetes' namespaced API: its Objects and its (Cluster)ProviderConfigs.
KUBERNETES_PROVIDER_API = "kubernetes.m.crossplane.io/v1alpha1"
OBJECT_API_VERSION = KUBERNETES_PROVIDER_API
OBJECT_KIND = "Object"
#: The ProviderConfig kind an InferenceCluster publishes for reaching it.
PROVIDER_CONFIG_KIND = "ClusterProviderConfig"
#: managementPolicies without Delete: any number of composites may ensure the same remote
#: object (a Namespace) and none of them removes it.
SHARED_POLICIES = ("Observe", "Create", "Update", "LateInitialize")


@dataclass(frozen=True)
class ProviderConfigRef:
    """Which ProviderConfig an Object uses: ``{kind, name}`` on the wire."""

    kind: str
    name: str

    def as_ref(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}


def cel_readiness(query: str) -> dict[str, str]:
    """Readiness derived from a CEL query over the observed remote object."""
    return {"policy": "DeriveFromCelQuery", "celQuery": query}


def remote_object(name: str, namespace: str, labels: Mapping[str, str],
                  provider_config: ProviderConfigRef, manifest: Mapping[str, Any], *,
                  readiness: Mapping[str, str] | None = None,
                  management_policies: Sequence[str] | None = None,
                  references: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A namespaced Object applying ``manifest`` to the cluster behind ``provider_config``."""
    spec: dict[str, Any] = {
        "forProvider": {"manifest": copy.deepcopy(dict(manifest))},  # no aliasing
        "providerConfigRef": provider_config.as_ref(),
    }
    if readiness is not None:
        spec["readiness"] = dict(readiness)
    if management_policies is not None:
        spec["managementPolicies"] = list(management_policies)
    if references is not None:
        spec["references"] = [dict(r) for r in references]
    return {
        "apiVersion": OBJECT_API_VERSION,
        "kind": OBJECT_KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(sorted(labels.items()))},
        "spec": spec,
    }


def observed_manifest(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """The remote object as provider-kubernetes last observed it (empty when unknown)."""
    at = ((obj or {}).get("status") or {}).get("atProvider") or {}
    manifest = at.get("manifest") if isinstance(at, dict) else None
    return manifest if isinstance(manifest, dict) else {}


def applied_manifest(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """The manifest an observed Object asks to apply (``spec.forProvider.manifest``)."""
    spec = (obj or {}).get("spec") or {}
    manifest = (spec.get("forProvider") or {}).get("manifest") if isinstance(spec, dict) else None
    return manifest if isinstance(manifest, dict) else {}
