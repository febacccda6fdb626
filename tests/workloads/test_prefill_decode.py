"""PrefillDecode: two engines by phase behind one InferencePool, one route, one address."""

from __future__ import annotations

from typing import Any

from modelplane.steps.modelreplica.compose import compose

from tests.conformance import problems
from tests.workloads.fixtures import engine_container, manifests, replica, request, standalone


def _pd() -> dict[str, Any]:
    prefill = standalone(container=engine_container(args=[
        "--model=Qwen/Qwen2.5-7B-Instruct", "--kv-transfer-config",
        '{"kv_connector":"NixlConnector","kv_role":"kv_both"}']))
    decode = standalone(container=engine_container(args=[
        "--model=Qwen/Qwen2.5-7B-Instruct", "--kv-transfer-config",
        '{"kv_connector":"NixlConnector","kv_role":"kv_both"}']))
    return replica(name="qwen-pd-0", deployment="qwen-pd", serving={"mode": "PrefillDecode"},
                   engines=[{"name": "prefill", "phase": "Prefill", "copies": 2,
                             "members": [prefill]},
                            {"name": "decode", "phase": "Decode", "members": [decode]}])


def _out() -> dict[str, dict[str, Any]]:
    return manifests(compose(request(_pd())).desired)


def test_each_phase_is_its_own_workload_labelled_for_the_endpoint_picker() -> None:
    out = _out()
    for engine, role in (("prefill", "prefill"), ("decode", "decode")):
        labels = out[f"workload-{engine}"]["spec"]["template"]["metadata"]["labels"]
        assert labels["llm-d.ai/role"] == role
        assert labels["modelplane.ai/inference-pool"] == out["inference-pool"]["metadata"]["name"]
    assert out["workload-prefill"]["spec"]["replicas"] == 2


def test_inference_pool_selects_both_phases() -> None:
    out = _out()
    pool = out["inference-pool"]
    assert (pool["apiVersion"], pool["kind"]) == ("inference.networking.k8s.io/v1",
                                                  "InferencePool")
    sel = pool["spec"]["selector"]["matchLabels"]
    for engine in ("prefill", "decode"):
        labels = out[f"workload-{engine}"]["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in sel.items()), engine
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"]["failureMode"] == "FailOpen"


def test_the_route_sends_clients_to_the_pool_at_one_address() -> None:
    res = compose(request(_pd()))
    route = manifests(res.desired)["route"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{
        "group": "inference.networking.k8s.io", "kind": "InferencePool",
        "name": manifests(res.desired)["inference-pool"]["metadata"]["name"]}]
    assert res.status["address"] == "http://34.1.2.3/ml-team/qwen-pd-0"


def test_unified_replicas_have_no_inference_pool() -> None:
    assert "inference-pool" not in compose(request(replica())).desired


def test_every_composed_object_conforms() -> None:
    for name, d in sorted(compose(request(_pd())).desired.items()):
        assert problems(d.resource) == [], name
