"""What every per-source cluster composer shares: the pool model, MR scaffolding, the result.

InferenceCluster is cluster-scoped but the v2 providers' managed resources are namespaced, so
every composed MR lives in :data:`NAMESPACE` (the namespace Crossplane and its providers run in,
and where connection secrets are conventionally written). Names are prefixed with the cluster's
name so clusters never collide there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelplane.common.fields import path
from modelplane.common.names import dns_label
from modelplane.contract.metadata import ACCELERATOR_LABEL, CLUSTER_LABEL, POOL_LABEL
from modelplane.contract.remote import ProviderConfigRef, remote_object
from modelplane.step import Resource
from modelplane.steps.inferencecluster import charts

NAMESPACE = "crossplane-system"
DEFAULT_PROVIDER_CONFIG = "default"
#: The Kubernetes minor version provisioned clusters get when the spec names none: DRA's
#: resource.k8s.io/v1 is GA from 1.34, which the serving stack relies on. The XRD defaults GKE
#: to 1.35 and EKS to 1.36 (the published v0.1 defaults); this covers AKS and unadmitted input.
DEFAULT_KUBERNETES_VERSION = "1.34"


@dataclass(frozen=True)
class Ctx:
    """The cluster being composed, as every composer needs it."""

    name: str
    spec: Mapping[str, Any]
    # The cloud provider's ProviderConfig every MR names ({kind, name}).
    provider_config: Mapping[str, str]

    @property
    def source(self) -> str:
        return str(path(self.spec, "cluster").get("source", ""))

    def block(self) -> Mapping[str, Any]:
        """The spec.cluster.<source> block (gke, eks, aks or existing)."""
        b = path(self.spec, "cluster").get(self.source.lower())
        return b if isinstance(b, Mapping) else {}

    def kubernetes_version(self, default: str = DEFAULT_KUBERNETES_VERSION) -> str:
        """spec.cluster.<source>.kubernetesVersion: the cluster's and its pools' version."""
        return str(self.block().get("kubernetesVersion") or default)

    def res_name(self, *parts: str, max_len: int = 63) -> str:
        """A composed object's metadata.name: the cluster's name plus parts, a DNS label."""
        return dns_label(self.name, *parts, max_len=max_len)


@dataclass(frozen=True)
class Pool:
    """A node pool of the spec joined with its (valid, matching) InferenceClass."""

    name: str
    class_name: str
    min_nodes: int
    max_nodes: int
    node_count: int
    zones: tuple[str, ...]
    spot: bool | None  # the pool's override; None defers to the class
    class_spec: Mapping[str, Any]
    devices: tuple[Mapping[str, Any], ...]
    # False for a fixed-size pool (no maxNodeCount): node_count is its size and its ceiling.
    autoscaling: bool = True
    fabric: str = "None"  # "EFA": Elastic Fabric Adapter interfaces on every node (EKS)
    capacity_reservation: str | None = None  # an EC2 Capacity Block's reservation ID (EKS)

    @property
    def provisioning(self) -> Mapping[str, Any]:
        p = self.class_spec.get("provisioning")
        return p if isinstance(p, Mapping) else {}

    def shape(self, block: str) -> Mapping[str, Any]:
        """The class's provisioning.<block> (gke, eks or aks)."""
        b = self.provisioning.get(block)
        return b if isinstance(b, Mapping) else {}

    @property
    def has_nvidia_gpu(self) -> bool:
        """Nodes of this class carry NVIDIA GPUs (so: GPU taint, DRA driver labels)."""
        return any(d.get("driver") == charts.NVIDIA_DEVICE_CLASS for d in self.devices) or bool(
            self.shape("gke").get("accelerator")) or str(self.accelerator_type).startswith(
            "nvidia")

    @property
    def accelerator_type(self) -> str | None:
        """The GPU model the class names (provisioning.<cloud>.accelerator.type), if any."""
        for block in ("gke", "eks"):
            acc = self.shape(block).get("accelerator")
            if isinstance(acc, Mapping) and acc.get("type"):
                return str(acc["type"])
        return None

    def node_labels(self) -> dict[str, str]:
        """Labels every node of the pool carries: the scheduler's pin, the GPU marker, and on
        EKS the GPU model (GKE labels nodes with it itself)."""
        labels = {POOL_LABEL: self.name}
        if self.has_nvidia_gpu:
            labels[charts.GPU_PRESENT_LABEL] = "true"
        acc = self.shape("eks").get("accelerator")
        if isinstance(acc, Mapping) and acc.get("type"):
            labels[ACCELERATOR_LABEL] = str(acc["type"])
        return labels


@dataclass
class Infra:
    """What a per-source composer produced for the cluster's infrastructure."""

    # composition-resource-name -> object: network, IAM, the cluster, auth, storage pieces.
    resources: dict[str, Resource] = field(default_factory=dict)
    # composition-resource-name -> node pool / node group, one per resolved pool.
    pools: dict[str, Resource] = field(default_factory=dict)
    # pool name -> its composition-resource-name (for pool readiness).
    pool_resource: dict[str, str] = field(default_factory=dict)
    # Where the cluster's kubeconfig is: {name, namespace, key}.
    kubeconfig: dict[str, str] | None = None
    # The resource whose readiness means the kubeconfig Secret exists (None: it already does).
    kubeconfig_from: str | None = None
    # provider-kubernetes/helm `identity` block, when the kubeconfig needs cloud credentials.
    identity: dict[str, Any] | None = None
    storage_class: str | None = None
    # Resources the serving stack must outlive-proof against (Usage.of): cluster, auth.
    stack_depends_on: list[str] = field(default_factory=list)
    # Bad input found while composing, each naming the field and value. Cluster-wide
    # problems stop composition (everything observed is kept); pool problems skip that pool.
    problems: list[str] = field(default_factory=list)
    pool_problems: dict[str, str] = field(default_factory=dict)
    # Values for the NVIDIA DRA driver chart that depend on the node image.
    dra_values: dict[str, Any] = field(default_factory=dict)
    # Extra stack objects the source needs on the cluster (composition-resource-name -> manifest).
    cluster_objects: dict[str, Resource] = field(default_factory=dict)
    # Some pool of the spec uses EFA: the serving stack gets the EFA DRA driver.
    efa: bool = False
    # Pool name -> EFA interfaces its nodes get, on a source that provisions them (EKS);
    # None where the source does not decide nodes' interfaces.
    efa_interfaces: dict[str, int] | None = None


def pool_resource_name(pool: str) -> str:
    """The composition-resource-name of a pool's node pool / node group (stable per pool)."""
    return f"nodepool-{pool}"


def managed(ctx: Ctx, api_version: str, kind: str, name: str, for_provider: dict[str, Any],
            **spec: Any) -> Resource:
    """A namespaced v2 managed resource in :data:`NAMESPACE` using the cloud ProviderConfig."""
    body: dict[str, Any] = {"forProvider": for_provider,
                            "providerConfigRef": dict(ctx.provider_config)}
    body.update(spec)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {CLUSTER_LABEL: ctx.name}},
        "spec": body,
    }


def ref(name: str) -> dict[str, str]:
    """A same-namespace cross-resource reference (``...Ref``)."""
    return {"name": name}


def object_(ctx: Ctx, name: str, manifest: Resource, provider_config: ProviderConfigRef,
            readiness: str = "DeriveFromObject") -> Resource:
    """A provider-kubernetes Object that applies ``manifest`` on the inference cluster."""
    return remote_object(name, NAMESPACE, {CLUSTER_LABEL: ctx.name}, provider_config, manifest,
                         readiness={"policy": readiness})
