"""The three routing steps over plain StepRequests, and their output against the real CRDs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from modelplane.step import StepRequest, StepResult
from modelplane.steps import inferencegateway, modelendpoint, modelservice

from tests.conformance import problems
from tests.results import condition
from tests.routing.fixtures import (
    API,
    NS,
    canary_spec,
    deployment_endpoint,
    provider_endpoint,
    select,
)

# -- helpers ---------------------------------------------------------------------------------


def xr(kind: str, name: str, spec: dict[str, Any], ns: str | None = None,
       **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **meta}
    if ns:
        metadata["namespace"] = ns
    return {"apiVersion": API, "kind": kind, "metadata": metadata, "spec": spec}


def conformant(res: StepResult) -> None:
    for name, d in sorted(res.desired.items()):
        assert problems(d.resource, name) == []


def observed(obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "status": status}


# -- InferenceGateway -------------------------------------------------------------------------

SEED_GATEWAY = xr("InferenceGateway", "default",
                  {"backend": "Traefik", "traefik": {"version": "40.2.0"}})


def gateway_req(observed_: dict[str, Any] | None = None,
                spec: dict[str, Any] | None = None, namespace: bool = True) -> StepRequest:
    """A gateway reconcile; its namespace already exists unless ``namespace=False``."""
    comp = xr("InferenceGateway", "default", spec) if spec else SEED_GATEWAY
    seen = {"namespace": {"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": "modelplane-gateway-default"}}} if namespace else {}
    return StepRequest("compose-gateway", {}, comp, observed={**seen, **(observed_ or {})})


def test_objects_in_the_gateway_namespace_wait_for_it_so_no_pass_fails_on_order() -> None:
    res = inferencegateway.compose(gateway_req(namespace=False))
    assert sorted(res.desired) == ["gateway-class", "namespace", "provider-config"]
    assert res.desired["namespace"].resource["metadata"]["name"] == "modelplane-gateway-default"


def test_the_gateway_never_owns_modelplane_system_where_users_keep_kubeconfigs() -> None:
    res = inferencegateway.compose(gateway_req())
    assert all(d.resource["metadata"].get("namespace") != "modelplane-system"
               and d.resource["metadata"]["name"] != "modelplane-system"
               for d in res.desired.values())


def test_gateway_composes_traefik_gatewayclass_and_gateway_that_conform() -> None:
    res = inferencegateway.compose(gateway_req())
    assert sorted(res.desired) == ["gateway", "gateway-class", "namespace", "provider-config",
                                   "release"]
    conformant(res)
    release = res.desired["release"].resource
    assert release["metadata"]["namespace"] == "modelplane-gateway-default"
    assert release["spec"]["forProvider"]["chart"] == {
        "repository": "https://traefik.github.io/charts", "name": "traefik",
        "version": "40.2.0"}
    assert release["spec"]["forProvider"]["values"]["providers"]["kubernetesGateway"] == {
        "enabled": True}
    assert release["spec"]["providerConfigRef"] == {
        "kind": "ClusterProviderConfig", "name": "modelplane-gateway-default"}
    assert res.desired["provider-config"].resource["spec"]["credentials"] == {
        "source": "InjectedIdentity"}
    assert res.desired["gateway-class"].resource["spec"]["controllerName"] == \
        "traefik.io/gateway-controller"
    listener = res.desired["gateway"].resource["spec"]["listeners"][0]
    assert listener["protocol"] == "HTTP"
    assert listener["allowedRoutes"]["namespaces"] == {"from": "All"}


def test_gateway_listener_port_matches_the_traefik_entrypoint_port() -> None:
    res = inferencegateway.compose(gateway_req())
    values = res.desired["release"].resource["spec"]["forProvider"]["values"]
    port = res.desired["gateway"].resource["spec"]["listeners"][0]["port"]
    assert values["ports"]["web"]["port"] == port


def test_user_values_are_merged_over_the_defaults() -> None:
    spec = {"backend": "Traefik", "traefik": {"version": "40.2.0", "values": {
        "deployment": {"replicas": 3}, "providers": {"kubernetesGateway": {"foo": 1}}}}}
    values = inferencegateway.compose(gateway_req(spec=spec)).desired["release"].resource[
        "spec"]["forProvider"]["values"]
    assert values["deployment"] == {"replicas": 3}
    assert values["providers"]["kubernetesGateway"] == {"enabled": True, "foo": 1}


def test_gateway_is_not_ready_and_has_no_address_until_programmed() -> None:
    res = inferencegateway.compose(gateway_req())
    assert "address" not in res.status
    assert all(d.ready == "False" for n, d in res.desired.items() if n != "namespace")
    assert condition(res, "Gateway")[:2] == ("False", "AddressPending")


def test_gateway_address_comes_from_the_programmed_gateway() -> None:
    first = inferencegateway.compose(gateway_req())
    ok = {"conditions": [{"type": "Ready", "status": "True"}]}
    obs = {
        "namespace": first.desired["namespace"].resource,
        "provider-config": first.desired["provider-config"].resource,
        "release": observed(first.desired["release"].resource, ok),
        "gateway-class": observed(first.desired["gateway-class"].resource,
                                  {"conditions": [{"type": "Accepted", "status": "True"}]}),
        "gateway": observed(first.desired["gateway"].resource, {
            "addresses": [{"type": "IPAddress", "value": "34.1.2.3"}],
            "conditions": [{"type": "Programmed", "status": "True"}]}),
    }
    res = inferencegateway.compose(gateway_req(obs))
    assert res.status["address"] == "http://34.1.2.3"
    assert all(d.ready == "True" for d in res.desired.values())
    assert condition(res, "Gateway")[:2] == ("True", "Programmed")


@pytest.mark.parametrize(("spec", "field"), [
    ({"backend": "Envoy"}, "spec.backend 'Envoy'"),
    ({"backend": "Traefik", "traefik": {}}, "spec.traefik.version None"),
    ({"backend": "Traefik", "traefik": {"version": "latest"}}, "spec.traefik.version 'latest'"),
])
def test_bad_gateway_input_keeps_what_exists_and_names_the_field(spec: dict[str, Any],
                                                                 field: str) -> None:
    existing = inferencegateway.compose(gateway_req()).desired
    obs = {n: d.resource for n, d in existing.items()}
    res = inferencegateway.compose(gateway_req(obs, spec))
    assert sorted(res.desired) == sorted(obs)
    status, _, message = condition(res, "Gateway")
    assert status == "False" and field in message


def test_a_second_gateway_gets_its_own_namespace_and_names() -> None:
    other = xr("InferenceGateway", "eu", {"backend": "Traefik", "traefik": {"version": "40.2.0"}})
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "modelplane-gateway-eu"}}
    res = inferencegateway.compose(StepRequest("compose-gateway", {}, other,
                                               observed={"namespace": ns}))
    assert res.desired["namespace"].resource["metadata"]["name"] == "modelplane-gateway-eu"
    assert res.desired["gateway"].resource["metadata"]["namespace"] == "modelplane-gateway-eu"


# -- ModelEndpoint ----------------------------------------------------------------------------


def endpoint_req(ep: dict[str, Any], observed_: dict[str, Any] | None = None) -> StepRequest:
    comp = {k: v for k, v in ep.items() if k != "status"}
    return StepRequest("compose-endpoint", {}, comp, observed=observed_ or {})


def test_replica_endpoint_is_a_service_and_an_endpointslice_with_the_ip() -> None:
    res = modelendpoint.compose(endpoint_req(deployment_endpoint("qwen-0", "qwen")))
    assert sorted(res.desired) == ["endpointslice", "service"]
    conformant(res)
    svc = res.desired["service"].resource
    eps = res.desired["endpointslice"].resource
    assert svc["metadata"]["name"] == "mep-qwen-0" and "selector" not in svc["spec"]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "mep-qwen-0"
    assert eps["addressType"] == "IPv4"
    assert eps["endpoints"][0]["addresses"] == ["34.1.2.3"]
    assert res.status["ready"] is False  # nothing observed yet


def test_endpoint_is_ready_once_its_objects_exist() -> None:
    ep = deployment_endpoint("qwen-0", "qwen")
    first = modelendpoint.compose(endpoint_req(ep))
    res = modelendpoint.compose(endpoint_req(ep, {n: d.resource for n, d in first.desired.items()}))
    assert res.status["ready"] is True
    assert condition(res, "Routable")[:2] == ("True", "BackendReady")


def test_an_endpoint_marked_not_ready_leaves_rotation_but_keeps_its_objects() -> None:
    ep = deployment_endpoint("qwen-0", "qwen")
    ep["metadata"]["annotations"] = {"modelplane.ai/ready": "False"}
    first = modelendpoint.compose(endpoint_req(ep))
    res = modelendpoint.compose(endpoint_req(ep, {n: d.resource for n, d in first.desired.items()}))
    assert sorted(res.desired) == ["endpointslice", "service"]
    assert res.status["ready"] is False
    assert condition(res, "Routable")[:2] == ("False", "MarkedNotReady")


def test_external_provider_key_comes_from_the_secret_and_is_never_inlined() -> None:
    ep = provider_endpoint("together")
    res = modelendpoint.compose(endpoint_req(ep))
    assert sorted(res.desired) == ["proxy", "proxy-config", "service"]
    conformant(res)
    container = res.desired["proxy"].resource["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "MODELPLANE_UPSTREAM_API_KEY", "valueFrom": {
        "secretKeyRef": {"name": "together-key", "key": "api-key"}}}]
    config = res.desired["proxy-config"].resource["data"]["default.conf.template"]
    assert 'Authorization "Bearer ${MODELPLANE_UPSTREAM_API_KEY}"' in config
    # Nothing composed carries anything but the Secret's name.
    assert "sk-" not in json.dumps([d.resource for d in res.desired.values()])
    assert not any(d.resource["kind"] == "Secret" for d in res.desired.values())


def test_https_upstream_originates_verified_tls_with_sni() -> None:
    ep = provider_endpoint("together")
    ep["spec"]["url"] = "https://api.groq.com/openai"
    config = modelendpoint.compose(endpoint_req(ep)).desired["proxy-config"].resource["data"][
        "default.conf.template"]
    # Resolved as an absolute name (no search domains); SNI and Host keep the name as written.
    assert "proxy_pass https://api.groq.com./openai/;" in config
    assert "proxy_set_header Host api.groq.com;" in config
    assert "proxy_ssl_verify on;" in config
    assert "proxy_ssl_server_name on;" in config
    assert "proxy_ssl_name api.groq.com;" in config


def test_insecure_skip_verify_is_explicit_in_the_config() -> None:
    ep = provider_endpoint("together")
    ep["spec"]["tls"] = {"insecureSkipVerify": True}
    config = modelendpoint.compose(endpoint_req(ep)).desired["proxy-config"].resource["data"][
        "default.conf.template"]
    assert "proxy_ssl_verify off;" in config


def test_a_config_change_rolls_the_proxy_pods() -> None:
    a = provider_endpoint("together")
    b = provider_endpoint("together")
    b["spec"]["url"] = "https://api.groq.com/openai"

    def stamp(ep: dict[str, Any]) -> str:
        proxy = modelendpoint.compose(endpoint_req(ep)).desired["proxy"].resource
        return str(proxy["spec"]["template"]["metadata"]["annotations"][
            "modelplane.ai/config-hash"])

    assert stamp(a) != stamp(b)


def test_proxy_endpoint_is_ready_only_when_the_deployment_is_available() -> None:
    ep = provider_endpoint("together")
    first = modelendpoint.compose(endpoint_req(ep))
    obs = {n: d.resource for n, d in first.desired.items()}
    obs["proxy"] = observed(obs["proxy"], {"conditions": [
        {"type": "Available", "status": "False"}]})
    assert modelendpoint.compose(endpoint_req(ep, obs)).status["ready"] is False
    obs["proxy"]["status"]["conditions"][0]["status"] = "True"
    assert modelendpoint.compose(endpoint_req(ep, obs)).status["ready"] is True


def test_bad_url_keeps_existing_objects_and_names_the_field() -> None:
    ep = deployment_endpoint("qwen-0", "qwen")
    first = modelendpoint.compose(endpoint_req(ep))
    obs = {n: d.resource for n, d in first.desired.items()}
    ep["spec"]["url"] = "http://"
    res = modelendpoint.compose(endpoint_req(ep, obs))
    assert sorted(res.desired) == sorted(obs)
    status, reason, message = condition(res, "Routable")
    assert (status, reason) == ("False", "InvalidSpec") and "spec.url 'http://'" in message
    assert res.status["ready"] is False


# -- ModelService -----------------------------------------------------------------------------

GATEWAY_XR = {**SEED_GATEWAY, "status": {"address": "http://34.9.9.9"}}
POOL = [deployment_endpoint("stable-0", "qwen-stable"),
        deployment_endpoint("canary-0", "qwen-canary"),
        provider_endpoint("together"),
        provider_endpoint("groq", jurisdiction="global"),
        deployment_endpoint("stolen", "qwen-stable", ns="other-team")]


def service_req(spec: dict[str, Any], pool: list[dict[str, Any]] | None = None, *,
                resolved: bool = True, gateways: list[dict[str, Any]] | None = None,
                observed_: dict[str, Any] | None = None) -> StepRequest:
    required: dict[str, list[dict[str, Any]]] = {}
    if resolved:
        required["gateway"] = [GATEWAY_XR] if gateways is None else gateways
        for i, got in enumerate(select(spec, POOL if pool is None else pool, NS)):
            required[f"endpoints-{i}"] = got
    return StepRequest("compose-service", {}, xr("ModelService", "qwen", spec, NS),
                       observed=observed_ or {}, required=required)


def backend_refs(res: StepResult) -> list[tuple[str, int]]:
    rule = res.desired["route"].resource["spec"]["rules"][0]
    return [(r["name"], r["weight"]) for r in rule["backendRefs"]]


def test_service_requires_the_gateway_and_only_its_own_namespace_endpoints() -> None:
    res = modelservice.compose(service_req(canary_spec(), resolved=False))
    assert res.requirements["gateway"].match_name == "default"
    for i in range(3):
        sel = res.requirements[f"endpoints-{i}"]
        assert sel.kind == "ModelEndpoint" and sel.namespace == NS
    assert res.requirements["endpoints-0"].match_labels == (
        ("modelplane.ai/deployment", "qwen-stable"),)


def test_service_route_carries_the_90_10_canary_and_conforms() -> None:
    res = modelservice.compose(service_req(canary_spec(boundary=True)))
    conformant(res)
    assert backend_refs(res) == [("mep-stable-0", 90), ("mep-canary-0", 10)]
    route = res.desired["route"].resource
    assert route["metadata"]["name"] == "msvc-qwen"
    assert route["spec"]["parentRefs"] == [{
        "group": "gateway.networking.k8s.io", "kind": "Gateway",
        "namespace": "modelplane-gateway-default", "name": "modelplane-default",
        "sectionName": "http"}]
    assert route["spec"]["rules"][0]["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/ml-team/qwen"}}]
    assert res.status["address"] == "http://34.9.9.9/ml-team/qwen"
    assert condition(res, "Routing")[:2] == ("True", "ServingFromPrimary")
    assert res.status["excluded"] == [{
        "endpoint": "groq", "reason": "outside the data boundary: label "
        "modelplane.ai/jurisdiction='global' does not equal 'us'"}]


def test_each_backend_path_is_rewritten_below_the_service_prefix() -> None:
    res = modelservice.compose(service_req(canary_spec()))
    refs = res.desired["route"].resource["spec"]["rules"][0]["backendRefs"]
    rewrites = {r["name"]: r["filters"][0]["urlRewrite"]["path"]["replacePrefixMatch"]
                for r in refs}
    assert rewrites == {"mep-stable-0": "/ml-team/stable-0", "mep-canary-0": "/ml-team/canary-0"}


def test_a_shared_backend_path_is_one_rule_level_rewrite() -> None:
    res = modelservice.compose(service_req(canary_spec(), [provider_endpoint("together")]))
    rule = res.desired["route"].resource["spec"]["rules"][0]
    assert rule["filters"] == [{"type": "URLRewrite", "urlRewrite": {"path": {
        "type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": "mep-together",
                                    "port": 80, "weight": 1}]


def test_fallback_serves_but_is_not_ready() -> None:
    # Ready means serving the primary; the fallback answering is its own condition.
    pool = [deployment_endpoint("stable-0", "qwen-stable", ready=False),
            provider_endpoint("together")]
    res = modelservice.compose(service_req(canary_spec(), pool))
    assert backend_refs(res) == [("mep-together", 1)]
    assert condition(res, "Routing")[:2] == ("False", "ServingFromFallback")
    assert condition(res, "Serving")[:2] == ("True", "ServingFromFallback")
    assert res.composite_ready == "False"


def test_a_ready_primary_behind_an_accepted_route_is_ready() -> None:
    req = service_req(canary_spec())
    first = modelservice.compose(req)
    assert first.composite_ready == "False"  # the route is not accepted yet
    accepted = {"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]}
    req.observed = {n: {**d.resource, "status": accepted} for n, d in first.desired.items()}
    res = modelservice.compose(req)
    assert condition(res, "Serving")[:2] == ("True", "ServingFromPrimary")
    assert res.composite_ready == "True"


def test_nothing_routable_keeps_the_route_pointing_at_a_503_service() -> None:
    pool = [deployment_endpoint("stable-0", "qwen-stable", ready=False)]
    res = modelservice.compose(service_req(canary_spec(), pool))
    conformant(res)
    assert backend_refs(res) == [("msvc-qwen-unavailable", 1)]
    unavailable = res.desired["unavailable"].resource
    assert "selector" not in unavailable["spec"]
    assert condition(res, "Routing")[:2] == ("False", "NoRoutableEndpoints")
    assert res.composite_ready == "False"


def test_another_namespaces_endpoint_is_never_in_the_route_or_status() -> None:
    # Even if a resolver handed it over, the plan drops it without naming it.
    spec = canary_spec()
    req = service_req(spec)
    req.required["endpoints-0"] = req.required["endpoints-0"] + [POOL[-1]]
    res = modelservice.compose(req)
    text = json.dumps([res.status, [d.resource for d in res.desired.values()]])
    assert "stolen" not in text and "other-team" not in text


def test_owner_is_recorded_on_the_route() -> None:
    spec = {**canary_spec(), "owner": {"team": "ml-platform", "contact": "#ml-oncall"}}
    route = modelservice.compose(service_req(spec)).desired["route"].resource
    assert route["metadata"]["annotations"] == {
        "modelplane.ai/service": "ml-team/qwen", "modelplane.ai/owner-team": "ml-platform",
        "modelplane.ai/owner-contact": "#ml-oncall"}


def _existing_route() -> dict[str, Any]:
    res = modelservice.compose(service_req(canary_spec()))
    return {"route": observed(res.desired["route"].resource, {"parents": [{"conditions": [
        {"type": "Accepted", "status": "True"}]}]})}


@pytest.mark.parametrize(("label", "kw", "reason"), [
    ("unresolved", {"resolved": False}, "Resolving"),
    ("gateway_missing", {"gateways": []}, "GatewayNotFound"),
])
def test_existing_route_is_kept_while_inputs_are_missing(label: str, kw: dict[str, Any],
                                                         reason: str) -> None:
    obs = _existing_route()
    res = modelservice.compose(service_req(canary_spec(), observed_=obs, **kw))
    assert backend_refs(res) == [("mep-stable-0", 90), ("mep-canary-0", 10)]
    assert res.desired["route"].ready == "True"
    assert condition(res, "Routing")[1] == reason


@pytest.mark.parametrize(("spec", "field"), [
    ({"endpoints": []}, "spec.endpoints"),
    ({"endpoints": [{"selector": {}}]}, "spec.endpoints[0].selector"),
    ({"endpoints": [{"selector": {"matchLabels": {"a": "b"}}, "role": "Fallback"}]},
     "at least one Primary"),
    ({"endpoints": [{"selector": {"matchLabels": {"a": "b"}}, "weight": -1}]},
     "spec.endpoints[0].weight -1"),
    ({**canary_spec(), "dataBoundary": {"selector": {"matchExpressions": [
        {"key": "x", "operator": "Near"}]}}}, "spec.dataBoundary.selector.matchExpressions[0]"),
])
def test_bad_service_input_keeps_the_route_and_names_the_field(spec: dict[str, Any],
                                                               field: str) -> None:
    obs = _existing_route()
    res = modelservice.compose(service_req(spec, observed_=obs))
    assert sorted(res.desired) == ["route"]
    status, reason, message = condition(res, "Routing")
    assert (status, reason) == ("False", "InvalidSpec") and field in message


def test_service_output_is_deterministic() -> None:
    a = modelservice.compose(service_req(canary_spec(boundary=True)))
    b = modelservice.compose(service_req(canary_spec(boundary=True), list(reversed(POOL))))
    assert json.dumps([a.status, {n: d.resource for n, d in a.desired.items()}],
                      sort_keys=True) == json.dumps(
        [b.status, {n: d.resource for n, d in b.desired.items()}], sort_keys=True)
