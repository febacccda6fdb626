"""MetalLB for gateways on control planes without a cloud load balancer (kind, bare metal)."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.step import StepRequest, StepResult
from modelplane.steps import inferencegateway
from modelplane.steps.inferencegateway import parse_address_pool

from tests.conformance import problems
from tests.results import condition

API = "modelplane.ai/v1alpha1"
READY = {"conditions": [{"type": "Ready", "status": "True"}]}
METALLB_OBJECTS = ["metallb-address-pool", "metallb-l2-advertisement",
                   "usage-metallb-address-pool", "usage-metallb-l2-advertisement"]


def gateway(pool: str = "172.18.255.200-172.18.255.250") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "InferenceGateway", "metadata": {"name": "default"},
            "spec": {"backend": "Traefik", "traefik": {
                "version": "40.2.0", "loadBalancer": "MetalLB",
                "metallb": {"addressPool": pool}}}}


NAMESPACE = {"namespace": {"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": "modelplane-gateway-default"}}}


def compose(observed: dict[str, Any] | None = None, pool: str = "172.18.255.200-172.18.255.250"
            ) -> StepResult:
    """A reconcile once the gateway's Namespace exists (objects inside it wait for it)."""
    return inferencegateway.compose(
        StepRequest("compose-gateway", {}, gateway(pool), observed={**NAMESPACE,
                                                                    **(observed or {})}))


def with_status(res: StepResult, status: dict[str, Any]) -> dict[str, Any]:
    return {n: {**d.resource, "status": status} for n, d in res.desired.items()}


def installed(pool: str = "172.18.255.200-172.18.255.250") -> StepResult:
    """The second reconcile: the MetalLB Release has been observed Ready."""
    return compose(with_status(compose(pool=pool), READY), pool)


def test_metallb_is_installed_on_the_control_plane_with_traefik_asking_for_its_pool() -> None:
    res = compose()
    release = res.desired["metallb-release"].resource
    assert release["spec"]["forProvider"]["chart"] == {
        "repository": "https://metallb.github.io/metallb", "name": "metallb",
        "version": inferencegateway.METALLB_CHART_VERSION}
    assert release["spec"]["forProvider"]["namespace"] == "metallb-system"
    traefik = res.desired["release"].resource["spec"]["forProvider"]["values"]
    assert traefik["service"]["annotations"] == {"metallb.io/address-pool": "modelplane-default"}
    for name, d in sorted(res.desired.items()):
        assert problems(d.resource, name) == []


def test_the_pool_waits_for_the_metallb_release_whose_crds_it_needs() -> None:
    res = compose()
    assert not set(METALLB_OBJECTS) & set(res.desired)
    assert condition(res, "LoadBalancer")[:2] == ("False", "InstallingMetalLB")


def test_a_ready_release_brings_the_address_pool_and_its_l2_advertisement() -> None:
    res = installed()
    assert set(METALLB_OBJECTS) <= set(res.desired)
    pool = res.desired["metallb-address-pool"].resource
    l2 = res.desired["metallb-l2-advertisement"].resource
    pool_manifest = pool["spec"]["forProvider"]["manifest"]
    assert pool_manifest["kind"] == "IPAddressPool"
    assert pool_manifest["metadata"] == {"name": "modelplane-default",
                                         "namespace": "metallb-system"}
    assert pool_manifest["spec"]["addresses"] == ["172.18.255.200-172.18.255.250"]
    assert l2["spec"]["forProvider"]["manifest"]["spec"]["ipAddressPools"] == [
        "modelplane-default"]
    # Both reach the control plane itself, through provider-kubernetes' injected identity.
    pc = res.desired["metallb-provider-config"].resource
    assert pool["spec"]["providerConfigRef"] == {"kind": pc["kind"],
                                                 "name": pc["metadata"]["name"]}
    assert pc["spec"]["credentials"] == {"source": "InjectedIdentity"}
    # Deleted before the chart whose CRDs and webhook they need.
    for rname in ("metallb-address-pool", "metallb-l2-advertisement"):
        usage = res.desired[f"usage-{rname}"].resource["spec"]
        assert usage["of"]["kind"] == "Release"
        assert usage["of"]["resourceRef"]["name"] == res.desired["metallb-release"].resource[
            "metadata"]["name"]
        assert usage["by"]["resourceRef"]["name"] == res.desired[rname].resource[
            "metadata"]["name"]
    assert condition(res, "LoadBalancer")[:2] == ("True", "AddressPoolConfigured")
    for name, d in sorted(res.desired.items()):
        assert problems(d.resource, name) == []


def test_without_a_load_balancer_nothing_of_metallb_is_composed() -> None:
    spec = {"backend": "Traefik", "traefik": {"version": "40.2.0"}}
    xr = {"apiVersion": API, "kind": "InferenceGateway", "metadata": {"name": "default"},
          "spec": spec}
    res = inferencegateway.compose(StepRequest("compose-gateway", {}, xr, observed=NAMESPACE))
    assert not [n for n in res.desired if "metallb" in n]
    assert "service" not in res.desired["release"].resource["spec"]["forProvider"]["values"]


@pytest.mark.parametrize("pool", [
    "10.0.0.9-10.0.0.1",  # start after end
    "10.0.0.1-fd00::1",  # two families
    "10.0.0.300-10.0.0.310",  # not addresses
    "10.0.0.0/40",  # prefix too long
    "10.0.0.1",  # neither a range nor a CIDR
])
def test_a_malformed_range_is_named_and_composes_no_pool(pool: str) -> None:
    res = installed(pool)
    assert not set(METALLB_OBJECTS) & set(res.desired)
    status, reason, message = condition(res, "LoadBalancer")
    assert (status, reason) == ("False", "InvalidAddressPool")
    assert f"spec.traefik.metallb.addressPool {pool!r}" in message
    assert "release" in res.desired  # the gateway itself is still composed


def test_a_malformed_range_keeps_the_pool_that_exists() -> None:
    good = installed()
    res = compose(with_status(good, READY), "10.0.0.9-10.0.0.1")
    assert set(METALLB_OBJECTS) <= set(res.desired)
    assert res.desired["metallb-address-pool"].resource["spec"]["forProvider"]["manifest"][
        "spec"]["addresses"] == ["172.18.255.200-172.18.255.250"]
    assert "keeping the address pool that exists" in condition(res, "LoadBalancer")[2]


@pytest.mark.parametrize(("raw", "parsed"), [
    ("172.18.255.200-172.18.255.250", "172.18.255.200-172.18.255.250"),
    ("172.18.255.200 - 172.18.255.250", "172.18.255.200-172.18.255.250"),
    ("10.0.0.1-10.0.0.1", "10.0.0.1-10.0.0.1"),
    ("172.18.255.0/28", "172.18.255.0/28"),
    ("fd00::10-fd00::20", "fd00::10-fd00::20"),
    ("fd00::/120", "fd00::/120"),
])
def test_ranges_metallb_accepts(raw: str, parsed: str) -> None:
    assert parse_address_pool(raw) == parsed
