"""Readiness: from the remote objects; conditions say which part is not ready."""

from __future__ import annotations

from modelplane.steps.modelreplica.compose import compose

from tests.results import condition
from tests.workloads.fixtures import cluster, observed_from, replica, request


def test_workloads_derive_readiness_from_the_remote_available_condition() -> None:
    res = compose(request(replica()))
    readiness = res.desired["workload-qwen"].resource["spec"]["readiness"]
    assert readiness["policy"] == "DeriveFromCelQuery"
    assert "Available" in readiness["celQuery"]


def test_everything_ready_marks_every_object_ready() -> None:
    observed = observed_from(compose(request(replica())).desired, ready=True)
    res = compose(request(replica(), observed=observed))
    assert {n: d.ready for n, d in res.desired.items()} == dict.fromkeys(res.desired, "True")
    assert condition(res, "WorkloadsReady")[0] == "True"
    assert condition(res, "ExposureReady")[0] == "True"
    assert res.composite_ready == "True"


def test_unavailable_workload_is_named_in_workloads_ready() -> None:
    desired = compose(request(replica())).desired
    observed = observed_from(desired, ready=True)
    observed.update({"workload-qwen": observed_from(
        {"workload-qwen": desired["workload-qwen"]}, ready=False)["workload-qwen"]})
    res = compose(request(replica(), observed=observed))
    status, _, message = condition(res, "WorkloadsReady")
    assert status == "False"
    assert "engine qwen" in message and "not Available" in message and "0/1" in message
    assert condition(res, "ExposureReady")[0] == "True"
    assert res.desired["workload-qwen"].ready == "False"


def test_unknown_gateway_address_leaves_exposure_and_the_replica_unready() -> None:
    observed = observed_from(compose(request(replica())).desired, ready=True)
    # The cluster's status says nothing about its gateway yet (not Ready, no status.gateway):
    # unknown, not false -- but never Ready either.
    res = compose(request(replica(), clusters=[cluster(address=None)], observed=observed))
    status, _, message = condition(res, "ExposureReady")
    assert status == "Unknown" and "status.gateway.address" in message
    assert "address" not in res.status
    assert res.composite_ready == "False"
    # A Ready cluster without a gateway address is evidence: False.
    ready = cluster(address=None)
    ready["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "x"}]
    res = compose(request(replica(), clusters=[ready], observed=observed))
    status, _, message = condition(res, "ExposureReady")
    assert status == "False" and "status.gateway.address" in message
    assert res.composite_ready == "False"


def test_address_is_the_gateway_plus_namespace_and_replica() -> None:
    res = compose(request(replica(), clusters=[cluster(address="https://gw.example.com/")]))
    assert res.status["address"] == "https://gw.example.com/ml-team/qwen-demo-0"
    route = res.desired["route"].resource["spec"]["forProvider"]["manifest"]["spec"]
    assert route["rules"][0]["matches"] == [{"path": {"type": "PathPrefix",
                                                      "value": "/ml-team/qwen-demo-0/"}}]
    assert route["rules"][0]["filters"][0]["urlRewrite"]["path"] == {
        "type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}
    assert route["parentRefs"][0]["name"] == "modelplane"
    assert route["parentRefs"][0]["namespace"] == "modelplane-system"
