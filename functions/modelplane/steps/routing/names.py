"""Names of routing objects, derived so that composers agree without reading each other."""

from __future__ import annotations

from dataclasses import dataclass

from modelplane.common.names import dns_label

# Where the control-plane gateway runs: the Traefik Release installs into it (and creates it), and
# the Gateway lives beside Traefik's own Service.
CONTROL_PLANE_GATEWAY_NAMESPACE = "modelplane-system"
# Traefik maps a Gateway listener to the entryPoint with the same port; the chart's `web`
# entryPoint listens on 8000 inside the pod and its Service exposes it as port 80.
HTTP_LISTENER = "http"
HTTP_LISTENER_PORT = 8000
HTTP_EXPOSED_PORT = 80


@dataclass(frozen=True)
class GatewayNames:
    """Everything an InferenceGateway composes, by name."""

    namespace: str
    gateway: str
    gateway_class: str
    release: str
    provider_config: str


def gateway_names(inference_gateway: str) -> GatewayNames:
    """Names of the objects composed for the InferenceGateway called ``inference_gateway``.

    One set per InferenceGateway, so two gateways never fight over a shared object.
    """
    return GatewayNames(
        # Every gateway owns a namespace under the reserved prefix `modelplane-gateway-`, so
        # gateways never share one and none takes over (and, on deletion, deletes) a namespace
        # users own -- such as modelplane-system, where kubeconfig Secrets live.
        namespace=dns_label("modelplane-gateway", inference_gateway),
        gateway=dns_label("modelplane", inference_gateway),
        gateway_class=dns_label("modelplane", inference_gateway),
        # The chart names its objects after the release when the release name contains
        # "traefik"; a name starting with it keeps Traefik's Service predictable.
        release=dns_label("traefik", inference_gateway),
        provider_config=dns_label("modelplane-gateway", inference_gateway),
    )


def endpoint_object_name(endpoint: str) -> str:
    """The Service (and EndpointSlice or proxy objects) a ModelEndpoint composes.

    Prefixed with the kind's short name so it never collides with a team's own Services.
    """
    return dns_label("mep", endpoint)


def route_name(service: str) -> str:
    """The HTTPRoute a ModelService composes in its namespace."""
    return dns_label("msvc", service)


def unavailable_service_name(service: str) -> str:
    """The endpoint-less Service a ModelService routes to while nothing is routable."""
    return dns_label("msvc", service, "unavailable")
