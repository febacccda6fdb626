"""A hand-made ModelEndpoint cannot route the shared gateway inside a cluster, the control plane
or a metadata service (docs/security.md, Endpoint policy)."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.step import StepRequest, StepResult
from modelplane.steps import modelendpoint
from modelplane.steps.routing import endpointpolicy, plan_routes

from tests.results import condition
from tests.routing.fixtures import NS, endpoint, select

REFUSED = [
    "http://169.254.169.254/latest/meta-data",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://metadata/computeMetadata/v1",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/latest",
    "https://kubernetes.default.svc",
    "https://kubernetes.default",
    "https://kubernetes",
    "http://other-model.other-team.svc.cluster.local:8000",
    "http://other-model.other-team.svc",
    "http://gateway.cluster.local",
    "http://printer.local",
    "http://10.96.0.1",
    "http://10.100.5.5:8080",
    "http://127.0.0.1:8080",
    "http://127.1.2.3",
    "http://localhost:8000",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[2002:a9fe:a9fe::]/",  # 6to4 embedding 169.254.169.254
    "http://[64:ff9b::7f00:1]/",  # NAT64 embedding 127.0.0.1
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://192.168.1.10/",
    "http://172.16.0.5/",
    "http://100.64.0.1/",
    "http://[fc00::1]/",
    "http://single-label/",
    "http://foo.localhost/",
]
FIELDS_NAMED = ("spec.url",)


def _loop(ep: dict[str, Any], gateways: list[dict[str, Any]] | None = None,
          clusters: list[dict[str, Any]] | None = None,
          observed: dict[str, Any] | None = None) -> StepResult:
    """compose-endpoint through Crossplane's requirements loop."""
    comp = {k: v for k, v in ep.items() if k != "status"}
    required: dict[str, list[dict[str, Any]]] = {}
    for _ in range(4):
        res = modelendpoint.compose(StepRequest("compose-endpoint", {}, comp,
                                                observed=observed or {}, required=required))
        wanted = {n: (gateways or []) if s.kind == "InferenceGateway" else (clusters or [])
                  for n, s in res.requirements.items()}
        if wanted.keys() == required.keys():
            return res
        required = wanted
    raise AssertionError("requirements never stabilised")


@pytest.mark.parametrize("url", REFUSED)
def test_a_hand_made_endpoint_to_an_internal_address_is_refused_and_composes_nothing(
        url: str) -> None:
    res = _loop(endpoint("evil", url=url))
    assert res.desired == {}
    cond = condition(res, "Routable")
    assert cond.status == "False"
    assert cond.reason in ("EndpointRefused", "InvalidSpec")
    assert "spec.url" in cond.message
    assert res.status["ready"] is False


@pytest.mark.parametrize("url", ["http://localhost./", "http://%6c%6fcalhost/",
                                 "http://user@127.0.0.1/"])
def test_other_encodings_of_internal_hosts_are_not_routable(url: str) -> None:
    res = _loop(endpoint("evil", url=url))
    assert res.desired == {}
    assert condition(res, "Routable").status == "False"


@pytest.mark.parametrize("url", ["https://api.together.xyz/v1", "http://34.1.2.3:8000",
                                 "https://[2606:4700::1111]/"])
def test_public_endpoints_are_composed(url: str) -> None:
    res = _loop(endpoint("ok", url=url))
    assert res.desired != {}
    assert condition(res, "Routable").reason != "EndpointRefused"


def _gateway(**policy: Any) -> dict[str, Any]:
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceGateway",
            "metadata": {"name": "default"},
            "spec": {"backend": "Traefik", "endpointPolicy": policy}}


def test_the_platform_allowlist_admits_a_private_range_and_a_name() -> None:
    gw = _gateway(allow=["10.20.0.0/16", "models.corp.internal"])
    assert _loop(endpoint("onprem", url="http://10.20.1.2:8000"), [gw]).desired != {}
    assert _loop(endpoint("named", url="https://models.corp.internal"), [gw]).desired != {}
    assert _loop(endpoint("other", url="http://10.21.1.2:8000"), [gw]).desired == {}


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://169.254.169.254/",
                                 "http://[::ffff:127.0.0.1]/"])
def test_no_allowlist_reaches_loopback_link_local_or_metadata(url: str) -> None:
    gw = _gateway(allow=["0.0.0.0/0", "::/0"])
    assert _loop(endpoint("evil", url=url), [gw]).desired == {}


def test_configured_service_ranges_are_refused() -> None:
    policy = endpointpolicy.policy_from([_gateway(serviceCIDRs=["34.118.224.0/20"])])
    assert endpointpolicy.refusal("34.118.230.1", policy) is not None
    assert endpointpolicy.refusal("34.1.2.3", policy) is None


def test_a_refused_edit_keeps_what_exists_and_routes_nothing_new() -> None:
    good = _loop(endpoint("ep", url="https://api.together.xyz"))
    observed = {n: d.resource for n, d in good.desired.items()}
    res = _loop(endpoint("ep", url="http://169.254.169.254/"), observed=observed)
    assert set(res.desired) == set(observed)
    assert condition(res, "Routable").reason == "EndpointRefused"


def _composed(url: str, gateway_address: str | None = "34.1.2.3") -> tuple[
        dict[str, Any], list[dict[str, Any]]]:
    ep = endpoint("qwen-0", {"modelplane.ai/deployment": "qwen",
                             "modelplane.ai/cluster": "starter",
                             "crossplane.io/composite": "qwen"}, url=url)
    ep["metadata"]["ownerReferences"] = [{"apiVersion": "modelplane.ai/v1alpha1",
                                          "kind": "ModelDeployment", "name": "qwen",
                                          "uid": "u", "controller": True}]
    cluster = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
               "metadata": {"name": "starter"},
               "status": {"gateway": {"address": gateway_address}}}
    return ep, [cluster]


def test_an_endpoint_composed_for_a_replica_behind_a_private_gateway_stays_as_it_is() -> None:
    ep, clusters = _composed("http://10.0.0.7/ml-team/qwen-0", "10.0.0.7")
    res = _loop(ep, clusters=clusters)
    assert sorted(res.desired) == ["endpointslice", "service"]


@pytest.mark.parametrize("url", ["http://10.96.0.1/", "http://10.0.0.7/other-team/their-0",
                                 "http://169.254.169.254/ml-team/qwen-0"])
def test_a_forged_composed_endpoint_is_judged_as_hand_made(url: str) -> None:
    ep, clusters = _composed(url, "10.0.0.7")
    assert _loop(ep, clusters=clusters).desired == {}


def test_a_model_service_never_routes_to_a_refused_endpoint() -> None:
    spec = {"endpoints": [{"selector": {"matchLabels": {"app": "x"}}}]}
    pool = [endpoint("good", {"app": "x"}), endpoint("evil", {"app": "x"},
                                                      url="http://10.96.0.1/")]
    plan = plan_routes(spec, NS, select(spec, pool, NS))
    assert [b.endpoint for b in plan.backends] == ["good"]
    assert [e.endpoint for e in plan.excluded] == ["evil"]
    assert "endpoint policy" in plan.excluded[0].reason


def test_a_model_service_never_routes_to_another_namespaces_endpoint() -> None:
    spec = {"endpoints": [{"selector": {"matchLabels": {"app": "x"}}}]}
    theirs = endpoint("theirs", {"app": "x"}, ns="other-team")
    plan = plan_routes(spec, NS, [[theirs]])
    assert plan.backends == [] and plan.excluded == []
