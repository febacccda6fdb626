"""Exposure: a Service per replica and its route behind the cluster's in-cluster gateway.

Unified replicas route to the Service. PrefillDecode replicas route to an InferencePool over the
serving pods of both phases, so an endpoint picker can send each request's prefill and decode to
the right pods while clients see one endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
INFERENCE_POOL_API_VERSION = "inference.networking.k8s.io/v1"


@dataclass(frozen=True)
class GatewayRef:
    name: str
    namespace: str


# The contract with cluster provisioning: every InferenceCluster runs this Gateway, whose
# listener admits HTTPRoutes from all namespaces. Replicas attach their routes to it.
CLUSTER_GATEWAY = GatewayRef(name="modelplane", namespace="modelplane-system")
# The port an endpoint picker (e.g. llm-d's inference scheduler) serves its ext-proc gRPC on.
ENDPOINT_PICKER_PORT = 9002


def path_prefix(namespace: str, replica: str) -> str:
    """The replica's path on its cluster gateway; OpenAI paths continue below it."""
    return f"/{namespace}/{replica}/"


def address(gateway_address: str | None, namespace: str, replica: str) -> str | None:
    """``http://<gateway>/<namespace>/<replica>``, or None while the gateway has no address."""
    if not gateway_address:
        return None
    base = gateway_address.rstrip("/")
    if "://" not in base:
        base = f"http://{base}"
    return f"{base}{path_prefix(namespace, replica).rstrip('/')}"


def service(name: str, namespace: str, labels: dict[str, str], selector: dict[str, str],
            port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def inference_pool(name: str, namespace: str, labels: dict[str, str], selector: dict[str, str],
                   port: int, picker: str) -> dict[str, Any]:
    """An InferencePool over both phases' serving pods, picked by an endpoint picker Service.

    FailOpen: while no picker answers, the gateway still sends requests to some pod of the pool,
    so the endpoint degrades to unsplit serving instead of failing.
    """
    return {
        "apiVersion": INFERENCE_POOL_API_VERSION,
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": selector},
            "targetPorts": [{"number": port}],
            "endpointPickerRef": {"kind": "Service", "name": picker,
                                  "port": {"number": ENDPOINT_PICKER_PORT},
                                  "failureMode": "FailOpen"},
        },
    }


def http_route(name: str, namespace: str, labels: dict[str, str], prefix: str,
               backend: dict[str, Any]) -> dict[str, Any]:
    """Attach ``prefix`` on the cluster gateway to ``backend``, stripping the prefix."""
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                            "name": CLUSTER_GATEWAY.name,
                            "namespace": CLUSTER_GATEWAY.namespace}],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
                "filters": [{"type": "URLRewrite", "urlRewrite": {
                    "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
                "backendRefs": [backend],
            }],
        },
    }


def service_backend(name: str, port: int) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": port}


def pool_backend(name: str) -> dict[str, Any]:
    return {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name}
