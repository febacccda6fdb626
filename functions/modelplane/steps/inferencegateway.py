"""InferenceGateway composition (step `compose-gateway`): the fleet's one entry point.

Composes, on the control plane itself (Crossplane applies these directly, except Traefik which
provider-helm installs):

- the gateway's Namespace (``modelplane-gateway-<name>``: a reserved prefix, never a namespace
  users own); the objects inside it are composed once it exists, because Crossplane applies in
  no particular order and a create in a missing namespace fails the whole pass,
- a provider-helm ClusterProviderConfig with ``InjectedIdentity`` credentials (provider-helm's
  own service account on the control plane; the platform grants it rights to install Traefik),
- a Release of the Traefik chart at ``spec.traefik.version`` with the Gateway API provider on,
- a GatewayClass for Traefik's controller and a Gateway whose HTTP listener admits routes from
  every namespace. Tenancy is enforced by the ModelService composer (each route only ever
  points at its own namespace's endpoints), not by the listener.

``status.address`` is ``http://`` plus the first address Traefik publishes on the Gateway.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from modelplane.common import conditions
from modelplane.contract.api import INFERENCE_GATEWAY
from modelplane.contract.metadata import GATEWAY_LABEL
from modelplane.step import Desired, StepRequest, StepResult, mark_ready_from_observed, step
from modelplane.steps.routing import HTTP_LISTENER, HTTP_LISTENER_PORT, gateway_names
from modelplane.steps.routing.names import HTTP_EXPOSED_PORT

CONTROLLER_NAME = "traefik.io/gateway-controller"
CHART_REPOSITORY = "https://traefik.github.io/charts"
CHART_NAME = "traefik"
_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge Helm values: the user's ``spec.traefik.values`` win, map by map."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def traefik_values(user: dict[str, Any]) -> dict[str, Any]:
    """Chart values: the Gateway API provider on, the chart's own Gateway objects off."""
    base: dict[str, Any] = {
        "providers": {"kubernetesGateway": {"enabled": True}},
        # We compose the GatewayClass and Gateway ourselves (so we can read their status).
        "gatewayClass": {"enabled": False},
        "gateway": {"enabled": False},
        # The listener port must equal the entryPoint's port; the Service exposes it as 80.
        "ports": {"web": {"port": HTTP_LISTENER_PORT}},
    }
    return _merge(base, user)


def gateway_address(gateway: dict[str, Any] | None) -> str | None:
    """``http://<address>`` from an observed Gateway's status, or None while unassigned."""
    for a in ((gateway or {}).get("status") or {}).get("addresses") or []:
        value = str((a or {}).get("value") or "")
        if not value:
            continue
        host = f"[{value}]" if ":" in value else value
        port = "" if HTTP_EXPOSED_PORT == 80 else f":{HTTP_EXPOSED_PORT}"
        return f"http://{host}{port}"
    return None


def _invalid(req: StepRequest, reason: str, message: str) -> StepResult:
    res = StepResult(desired=req.keep_observed())
    mark_ready_from_observed(req, res.desired)
    # Status is Crossplane's full intent: the kept Gateway still serves at its address, and
    # ModelServices build their URLs from it.
    if req.status.get("address"):
        res.status["address"] = req.status["address"]
    res.condition("Gateway", "False", reason, message)
    res.event("Warning", message, reason)
    res.composite_ready = "False"
    return res


@step("compose-gateway", kinds=[INFERENCE_GATEWAY])
def compose(req: StepRequest) -> StepResult:
    spec = req.spec
    backend = spec.get("backend")
    if backend != "Traefik":
        return _invalid(req, "UnsupportedBackend",
                        f"spec.backend {backend!r} is not supported (supported: Traefik); "
                        "keeping what exists")
    traefik = spec.get("traefik") or {}
    if not isinstance(traefik, dict):
        return _invalid(req, "InvalidSpec", f"spec.traefik must be an object, got {traefik!r}; "
                        "keeping what exists")
    version = traefik.get("version")
    if not isinstance(version, str) or not _VERSION.match(version):
        return _invalid(req, "InvalidTraefikVersion",
                        f"spec.traefik.version {version!r} is not a chart version like "
                        "\"40.2.0\"; keeping what exists")
    user_values = traefik.get("values") or {}
    if not isinstance(user_values, dict):
        return _invalid(req, "InvalidTraefikValues",
                        f"spec.traefik.values must be a map, got {user_values!r}")

    names = gateway_names(req.name)
    ns = names.namespace
    labels = {GATEWAY_LABEL: names.gateway}
    res = StepResult()
    res.desired["namespace"] = Desired({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": dict(labels)},
    })
    res.desired["provider-config"] = Desired({
        "apiVersion": "helm.m.crossplane.io/v1beta1", "kind": "ClusterProviderConfig",
        "metadata": {"name": names.provider_config, "labels": dict(labels)},
        "spec": {"credentials": {"source": "InjectedIdentity"}},
    })
    res.desired["release"] = Desired({
        "apiVersion": "helm.m.crossplane.io/v1beta1", "kind": "Release",
        "metadata": {"name": names.release, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "forProvider": {
                "chart": {"repository": CHART_REPOSITORY, "name": CHART_NAME,
                          "version": version},
                "namespace": ns,
                "values": traefik_values(user_values),
            },
            "providerConfigRef": {"kind": "ClusterProviderConfig",
                                  "name": names.provider_config},
        },
    })
    res.desired["gateway-class"] = Desired({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": names.gateway_class, "labels": dict(labels)},
        "spec": {"controllerName": CONTROLLER_NAME,
                 "description": f"Traefik for the InferenceGateway {req.name}"},
    })
    res.desired["gateway"] = Desired({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": names.gateway, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "gatewayClassName": names.gateway_class,
            "listeners": [{
                "name": HTTP_LISTENER, "protocol": "HTTP", "port": HTTP_LISTENER_PORT,
                "allowedRoutes": {"namespaces": {"from": "All"},
                                  "kinds": [{"group": "gateway.networking.k8s.io",
                                             "kind": "HTTPRoute"}]},
            }],
        },
    })

    # Objects in the namespace wait for it: applying them first would fail every pass until the
    # Namespace happened to be applied first. What already exists is always kept.
    if "namespace" not in req.observed:
        for rname in ("release", "gateway"):
            if rname not in req.observed:
                del res.desired[rname]
    observed_gateway = req.observed.get("gateway")
    for rname in ("namespace", "provider-config"):
        # Neither reports readiness: existing is all they do.
        res.desired[rname].ready = "True" if rname in req.observed else "False"
    res.desired["gateway-class"].ready = (
        "True" if conditions.is_true(req.observed.get("gateway-class"), "Accepted") else "False")
    programmed = conditions.is_true(observed_gateway, "Programmed")
    if "gateway" in res.desired:
        res.desired["gateway"].ready = "True" if programmed else "False"
    if "release" in res.desired:
        res.desired["release"].ready = (  # provider-helm's Ready: the chart is deployed
            "True" if conditions.is_true(req.observed.get("release")) else "False")

    address = gateway_address(observed_gateway) if programmed else None
    if address:
        res.status["address"] = address
        res.condition("Gateway", "True", "Programmed",
                      f"Gateway {ns}/{names.gateway} is programmed at {address}")
    else:
        why = (conditions.get(observed_gateway, "Programmed") or {}).get("message") or (
            "waiting for Traefik to program the Gateway and publish its address")
        res.condition("Gateway", "False", "AddressPending",
                      f"Gateway {ns}/{names.gateway}: {why}")
    # Ready: every part is up and the Gateway has an address to publish.
    everything = all(d.ready == "True" for d in res.desired.values())
    res.composite_ready = "True" if (address and everything) else "False"
    return res
