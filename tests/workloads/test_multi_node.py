"""A Leader + Worker engine becomes one LeaderWorkerSet; each member claims its own devices."""

from __future__ import annotations

from modelplane.step import StepResult
from modelplane.steps.modelreplica.compose import compose

from tests.conformance import problems
from tests.workloads.fixtures import cluster, leader_worker, manifests, replica, request


def _out(nodes: int = 1, copies: int = 1) -> StepResult:
    xr = replica(name="llama-0", deployment="llama", cluster="big",
                 engines=[{"name": "llama", "copies": copies,
                           "members": leader_worker(nodes=nodes)}])
    return compose(request(xr, clusters=[cluster("big")]))


def test_leader_and_worker_become_a_leaderworkerset_of_one_plus_worker_nodes() -> None:
    lws = manifests(_out(nodes=3, copies=2).desired)["workload-llama"]
    assert (lws["apiVersion"], lws["kind"]) == ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
    assert lws["spec"]["replicas"] == 2
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 4


def test_leader_and_worker_each_claim_their_member_devices() -> None:
    out = manifests(_out().desired)
    tmpl = out["workload-llama"]["spec"]["leaderWorkerTemplate"]
    for role, key in (("leader", "leaderTemplate"), ("worker", "workerTemplate")):
        rct = out[f"claims-llama-{role}"]
        assert rct["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] == 8
        assert tmpl[key]["spec"]["resourceClaims"] == [
            {"name": "modelplane-devices",
             "resourceClaimTemplateName": rct["metadata"]["name"]}]
        assert tmpl[key]["spec"]["nodeSelector"] == {"modelplane.ai/pool": "gpu-h100"}


def test_only_the_leader_serves() -> None:
    tmpl = manifests(_out().desired)["workload-llama"]["spec"]["leaderWorkerTemplate"]
    leader, worker = tmpl["leaderTemplate"], tmpl["workerTemplate"]
    assert leader["metadata"]["labels"]["modelplane.ai/serving"] == "true"
    assert "modelplane.ai/serving" not in worker["metadata"]["labels"]
    assert "readinessProbe" in leader["spec"]["containers"][0]
    assert "readinessProbe" not in worker["spec"]["containers"][0]
    assert "ports" not in worker["spec"]["containers"][0]


def test_engine_flags_using_lws_env_pass_through() -> None:
    tmpl = manifests(_out().desired)["workload-llama"]["spec"]["leaderWorkerTemplate"]
    worker = tmpl["workerTemplate"]["spec"]["containers"][0]
    assert worker["command"] == leader_worker()[1]["template"]["spec"]["containers"][0]["command"]
    assert "$LWS_LEADER_ADDRESS" in worker["command"][-1]


def test_every_composed_object_conforms() -> None:
    for name, d in sorted(_out(nodes=2, copies=2).desired.items()):
        assert problems(d.resource) == [], name
