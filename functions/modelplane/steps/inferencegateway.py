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

With ``spec.traefik.loadBalancer: MetalLB`` (control planes without a cloud load balancer: kind,
bare metal) it also composes MetalLB so Traefik's LoadBalancer Service gets an address:

- a Release of the MetalLB chart into ``metallb-system``,
- once that Release is Ready (its CRDs exist), an ``IPAddressPool`` holding
  ``spec.traefik.metallb.addressPool`` and an ``L2Advertisement`` naming it, as
  provider-kubernetes Objects through a control-plane ClusterProviderConfig (InjectedIdentity),
- Usages so the pool and advertisement are deleted before the chart whose CRDs they need.

Traefik's Service asks for that pool by MetalLB's ``metallb.io/address-pool`` annotation. A range
that is neither a CIDR nor ``start-end`` (same family, start <= end) gets the ``LoadBalancer``
condition naming it, and no pool is composed (a pool that already exists is kept).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from modelplane.common import conditions
from modelplane.common.fields import coalesced
from modelplane.common.names import dns_label
from modelplane.contract.api import INFERENCE_GATEWAY
from modelplane.contract.metadata import GATEWAY_LABEL
from modelplane.contract.remote import (
    KUBERNETES_PROVIDER_API,
    PROVIDER_CONFIG_KIND,
    ProviderConfigRef,
    remote_object,
)
from modelplane.step import Desired, StepRequest, StepResult, mark_ready_from_observed, step
from modelplane.steps.routing import HTTP_LISTENER, HTTP_LISTENER_PORT, gateway_names
from modelplane.steps.routing.names import HTTP_EXPOSED_PORT

CONTROLLER_NAME = "traefik.io/gateway-controller"
CHART_REPOSITORY = "https://traefik.github.io/charts"
CHART_NAME = "traefik"
_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$")

#: MetalLB's chart, pinned to the release whose CRDs (metallb.io/v1beta1) we compose against.
METALLB_CHART_REPOSITORY = "https://metallb.github.io/metallb"
METALLB_CHART_NAME = "metallb"
METALLB_CHART_VERSION = "0.16.1"
METALLB_NAMESPACE = "metallb-system"
METALLB_API = "metallb.io/v1beta1"
#: The Service annotation MetalLB (>= 0.14) reads to allocate from one named pool.
METALLB_POOL_ANNOTATION = "metallb.io/address-pool"
USAGE_API = "protection.crossplane.io/v1beta1"
#: Composition-resource names of the MetalLB objects (the pool's two depend on the Release).
METALLB_RELEASE = "metallb-release"
METALLB_PROVIDER_CONFIG = "metallb-provider-config"
METALLB_REMOTE = ("metallb-address-pool", "metallb-l2-advertisement")


def parse_address_pool(value: Any) -> str | None:
    """The range MetalLB gets (``start-end`` or a CIDR), or None when ``value`` is not one.

    MetalLB accepts a CIDR (host bits allowed) or two addresses of one family joined by ``-``,
    start not after end.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if "-" in text:
            first, _, last = (p.strip() for p in text.partition("-"))
            start, end = ipaddress.ip_address(first), ipaddress.ip_address(last)
            if start.version != end.version or int(start) > int(end):
                return None
            return f"{start}-{end}"
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
            return text
    except ValueError:
        return None
    return None


def traefik_values(user: dict[str, Any], address_pool: str | None = None) -> dict[str, Any]:
    """Chart values: the Gateway API provider on, the chart's own Gateway objects off.

    With ``address_pool``, Traefik's Service asks MetalLB for an address from that pool.
    """
    base: dict[str, Any] = {
        "providers": {"kubernetesGateway": {"enabled": True}},
        # We compose the GatewayClass and Gateway ourselves (so we can read their status).
        "gatewayClass": {"enabled": False},
        "gateway": {"enabled": False},
        # The listener port must equal the entryPoint's port; the Service exposes it as 80.
        "ports": {"web": {"port": HTTP_LISTENER_PORT}},
    }
    if address_pool:
        base["service"] = {"annotations": {METALLB_POOL_ANNOTATION: address_pool}}
    return coalesced(base, user)  # the user's spec.traefik.values win, map by map


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


def _usage(name: str, namespace: str, labels: dict[str, str], of: dict[str, Any],
           by: dict[str, Any]) -> dict[str, Any]:
    """A Usage: ``of`` is not deleted while ``by`` exists (both in ``namespace``)."""
    def target(o: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": o["apiVersion"], "kind": o["kind"],
                "resourceRef": {"name": o["metadata"]["name"]}}
    return {"apiVersion": USAGE_API, "kind": "Usage",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            # replayDeletion: a delete of `of` blocked by this Usage is retried once it is gone.
            "spec": {"of": target(of), "by": target(by), "replayDeletion": True}}


def _metallb(req: StepRequest, res: StepResult, raw_pool: Any, labels: dict[str, str]) -> None:
    """MetalLB on the control plane, and the pool Traefik's Service draws its address from."""
    names = gateway_names(req.name)
    ns = names.namespace
    pool_name = names.gateway
    release_name = dns_label("metallb", req.name)
    release: dict[str, Any] = {
        "apiVersion": "helm.m.crossplane.io/v1beta1", "kind": "Release",
        "metadata": {"name": release_name, "namespace": ns,
                     "labels": dict(labels)},
        "spec": {
            "forProvider": {
                "chart": {"repository": METALLB_CHART_REPOSITORY, "name": METALLB_CHART_NAME,
                          "version": METALLB_CHART_VERSION},
                "namespace": METALLB_NAMESPACE,
                # The pool and advertisement need the chart's CRDs and webhook serving.
                "wait": True,
                "waitTimeout": "10m",
            },
            "providerConfigRef": {"kind": "ClusterProviderConfig",
                                  "name": names.provider_config},
        },
    }
    res.desired[METALLB_RELEASE] = Desired(release)
    res.desired[METALLB_PROVIDER_CONFIG] = Desired({
        "apiVersion": KUBERNETES_PROVIDER_API, "kind": PROVIDER_CONFIG_KIND,
        "metadata": {"name": names.provider_config, "labels": dict(labels)},
        "spec": {"credentials": {"source": "InjectedIdentity"}},
    })
    release_ready = conditions.is_true(req.observed.get(METALLB_RELEASE))
    res.desired[METALLB_RELEASE].ready = "True" if release_ready else "False"
    res.desired[METALLB_PROVIDER_CONFIG].ready = (
        "True" if METALLB_PROVIDER_CONFIG in req.observed else "False")

    addresses = parse_address_pool(raw_pool)
    existing = [r for r in METALLB_REMOTE if r in req.observed]
    if addresses is None:
        kept = req.keep_observed([*METALLB_REMOTE, *(f"usage-{r}" for r in METALLB_REMOTE)])
        res.desired.update(kept)
        mark_ready_from_observed(req, kept)
        message = (f"spec.traefik.metallb.addressPool {raw_pool!r} is not a CIDR or a "
                   "start-end range of one address family with start <= end; "
                   + ("keeping the address pool that exists" if existing
                      else "no address pool composed"))
        res.condition("LoadBalancer", "False", "InvalidAddressPool", message)
        res.event("Warning", message, "InvalidAddressPool")
        return
    if not release_ready and not existing:
        res.condition("LoadBalancer", "False", "InstallingMetalLB",
                      f"waiting for the MetalLB Release {ns}/{release_name} to "
                      f"be Ready before composing address pool {addresses}")
        return
    pc = ProviderConfigRef(PROVIDER_CONFIG_KIND, names.provider_config)
    manifests = {
        "metallb-address-pool": {
            "apiVersion": METALLB_API, "kind": "IPAddressPool",
            "metadata": {"name": pool_name, "namespace": METALLB_NAMESPACE},
            "spec": {"addresses": [addresses]},
        },
        "metallb-l2-advertisement": {
            "apiVersion": METALLB_API, "kind": "L2Advertisement",
            "metadata": {"name": pool_name, "namespace": METALLB_NAMESPACE},
            "spec": {"ipAddressPools": [pool_name]},
        },
    }
    for rname, manifest in manifests.items():
        obj = remote_object(dns_label(rname.removeprefix("metallb-"), req.name), ns, labels,
                            pc, manifest, readiness={"policy": "SuccessfulCreate"})
        res.desired[rname] = Desired(obj)
        res.desired[f"usage-{rname}"] = Desired(_usage(
            dns_label(rname.removeprefix("metallb-"), req.name, "needs-metallb"), ns, labels,
            release, obj))
        res.desired[f"usage-{rname}"].ready = (
            "True" if f"usage-{rname}" in req.observed else "False")
        mark_ready_from_observed(req, {rname: res.desired[rname]})
        if res.desired[rname].ready == "Unspecified":
            res.desired[rname].ready = "False"
    res.condition("LoadBalancer", "True", "AddressPoolConfigured",
                  f"MetalLB hands out {addresses} (IPAddressPool {METALLB_NAMESPACE}/{pool_name}, "
                  "L2 advertisement) to the gateway's Service")


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
                        "\"41.6.0\"; keeping what exists")
    user_values = traefik.get("values") or {}
    if not isinstance(user_values, dict):
        return _invalid(req, "InvalidTraefikValues",
                        f"spec.traefik.values must be a map, got {user_values!r}")

    load_balancer = traefik.get("loadBalancer")
    if load_balancer not in (None, "MetalLB"):
        return _invalid(req, "UnsupportedLoadBalancer",
                        f"spec.traefik.loadBalancer {load_balancer!r} is not supported "
                        "(supported: MetalLB, or omit it on clouds); keeping what exists")
    metallb = traefik.get("metallb") or {}
    raw_pool = metallb.get("addressPool") if isinstance(metallb, dict) else None
    use_metallb = load_balancer == "MetalLB"

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
                "values": traefik_values(
                    user_values, names.gateway if use_metallb else None),
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

    if use_metallb:
        _metallb(req, res, raw_pool, labels)
        if "namespace" not in req.observed and METALLB_RELEASE not in req.observed:
            del res.desired[METALLB_RELEASE]  # it lives in the gateway's namespace: wait for it

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
