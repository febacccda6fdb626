"""The serving stack every InferenceCluster gets: charts, versions and fixed names, pinned once.

Everything that says *which* software runs on an inference cluster lives here, so an upgrade
of the fleet is a one-line change reviewed in one place. A cluster can still override a chart
version through ``spec.stack.<component>.version`` (see :func:`charts`).

Fixed names (the in-cluster Gateway, its namespace and class) are contracts with the steps that
expose replicas through the gateway, so they are constants here rather than literals there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

#: The Gateway API Gateway on every inference cluster that replicas are exposed through.
GATEWAY_NAME = "modelplane"
#: Its namespace; the gateway controller is installed into the same namespace.
CLUSTER_GATEWAY_NAMESPACE = "modelplane-system"
#: The GatewayClass the Gateway uses (served by the gateway controller chart below).
GATEWAY_CLASS_NAME = "modelplane"
#: Envoy Gateway's controller name, which a GatewayClass must name to be served by it.
GATEWAY_CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
#: The HTTP listener replicas' routes attach to.
GATEWAY_LISTENER = "http"
GATEWAY_PORT = 80

#: The DeviceClass the NVIDIA DRA driver chart installs; classes name it as their driver.
NVIDIA_DEVICE_CLASS = "gpu.nvidia.com"
#: The taint every provisioned GPU node carries, so only GPU workloads land there.
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"

#: Node label the NVIDIA DRA driver's kubelet plugin selects GPU nodes by.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"


@dataclass(frozen=True)
class Chart:
    """One Helm chart of the serving stack, as a provider-helm Release installs it."""

    component: str  # the key under spec.stack that overrides its version
    release: str  # the Helm release name on the cluster
    name: str
    repository: str
    version: str
    namespace: str


#: The pinned charts. ``component`` matches the XRD's spec.stack keys.
DRA_DRIVER = Chart(
    component="draDriver",
    release="nvidia-dra-driver-gpu",
    name="nvidia-dra-driver-gpu",
    repository="https://helm.ngc.nvidia.com/nvidia",
    # 25.12.0: its README says GPU allocation through DRA is not yet officially supported
    # (ComputeDomains are); docs/provisioning.md carries that caveat.
    version="25.12.0",
    namespace="nvidia-dra-driver-gpu",
)
LEADER_WORKER_SET = Chart(
    component="leaderWorkerSet",
    release="lws",
    name="lws",
    repository="oci://registry.k8s.io/lws/charts",
    version="0.10.0",
    namespace="lws-system",
)
GATEWAY = Chart(
    component="gateway",
    release="envoy-gateway",
    name="gateway-helm",
    repository="oci://docker.io/envoyproxy",
    # v1.9 supports Kubernetes 1.33-1.36 (DRA needs 1.34); v1.5 reached end of life 2026-02-13.
    version="v1.9.0",
    namespace=CLUSTER_GATEWAY_NAMESPACE,
)

#: AWS's DRA network driver (DRANET) for Elastic Fabric Adapter: publishes each node's EFA
#: interfaces as DRA devices and creates the ``efa.networking.k8s.aws`` DeviceClass. Installed
#: only on a cluster where some pool has ``fabric: EFA``; preferred over the EFA device plugin
#: so EFA devices are allocated through DRA like the GPUs.
EFA_DRIVER = Chart(
    component="efaDriver",
    release="aws-dranet",
    name="aws-dranet",
    repository="https://aws.github.io/eks-charts",
    version="1.0.0",
    namespace="kube-system",
)

CHARTS: tuple[Chart, ...] = (DRA_DRIVER, LEADER_WORKER_SET, GATEWAY)


def charts(overrides: Mapping[str, Any] | None = None, efa: bool = False) -> tuple[Chart, ...]:
    """The stack's charts with the cluster's ``spec.stack`` version overrides applied.

    ``efa``: some pool of the cluster uses EFA, so the EFA DRA driver is part of the stack.
    """
    overrides = overrides or {}
    out: list[Chart] = []
    for chart in CHARTS + ((EFA_DRIVER,) if efa else ()):
        o = overrides.get(chart.component)
        version = o.get("version") if isinstance(o, Mapping) else None
        out.append(replace(chart, version=str(version)) if version else chart)
    return tuple(out)
