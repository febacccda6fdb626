"""Routing logic shared by InferenceGateway, ModelEndpoint and ModelService.

The three composers agree on names without reading each other's composed objects: the
Gateway an InferenceGateway composes, and the backend Service a ModelEndpoint composes, are pure
functions of the XR's name (and, for endpoints, of its spec). A ModelService therefore needs only
the InferenceGateway and the ModelEndpoints themselves as required resources.
"""

from modelplane.steps.routing.names import (
    CONTROL_PLANE_GATEWAY_NAMESPACE,
    HTTP_LISTENER,
    HTTP_LISTENER_PORT,
    GatewayNames,
    endpoint_object_name,
    gateway_names,
    route_name,
    unavailable_service_name,
)
from modelplane.steps.routing.plan import Backend, Excluded, Plan, plan_routes, selector_problem
from modelplane.steps.routing.upstream import Upstream, UpstreamError, parse_upstream
from modelplane.steps.routing.weights import split_weights

__all__ = [
    "CONTROL_PLANE_GATEWAY_NAMESPACE",
    "HTTP_LISTENER",
    "HTTP_LISTENER_PORT",
    "Backend",
    "Excluded",
    "GatewayNames",
    "Plan",
    "Upstream",
    "UpstreamError",
    "endpoint_object_name",
    "gateway_names",
    "parse_upstream",
    "plan_routes",
    "route_name",
    "selector_problem",
    "split_weights",
    "unavailable_service_name",
]
