"""End to end through the local control plane: examples render into conformant workloads."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from modelplane.render import Fleet, render_fleet

from tests.conformance import problems
from tests.workloads.fixtures import SEED_CEL

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@functools.cache
def _fleet(example: str) -> Fleet:
    return render_fleet([EXAMPLES / example])


def _remote(fleet: Fleet, kind: str) -> list[dict[str, Any]]:
    """Manifests of that kind inside the ModelReplicas' provider-kubernetes Objects."""
    replicas = {r["metadata"]["uid"] for r in fleet.of_kind("ModelReplica")}
    out = []
    for obj in fleet.of_kind("Object"):
        owners = {o.get("uid") for o in obj["metadata"].get("ownerReferences") or []}
        manifest = obj["spec"]["forProvider"]["manifest"]
        if owners & replicas and manifest["kind"] == kind:
            out.append(manifest)
    return out


def _ready(obj: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in obj.get("status", {}).get("conditions", []))


def test_quickstart_renders_a_pinned_deployment_claiming_the_seed_cel() -> None:
    fleet = _fleet("quickstart")
    [deploy] = _remote(fleet, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"modelplane.ai/pool": "gpu-l4"}
    [rct] = _remote(fleet, "ResourceClaimTemplate")
    [request] = rct["spec"]["spec"]["devices"]["requests"]
    assert request["exactly"]["selectors"] == [{"cel": {"expression": SEED_CEL}}]
    assert pod["resourceClaims"][0]["resourceClaimTemplateName"] == rct["metadata"]["name"]
    [replica] = fleet.of_kind("ModelReplica")
    assert _ready(replica)
    assert replica["status"]["address"].endswith(f"/ml-team/{replica['metadata']['name']}")


def test_multi_node_example_renders_a_leaderworkerset() -> None:
    fleet = _fleet("multi-node")
    [lws] = _remote(fleet, "LeaderWorkerSet")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    for key in ("leaderTemplate", "workerTemplate"):
        assert lws["spec"]["leaderWorkerTemplate"][key]["spec"]["nodeSelector"] == {
            "modelplane.ai/pool": "gpu-h100"}
    assert all(_ready(r) for r in fleet.of_kind("ModelReplica"))


def test_disaggregated_example_renders_both_phases_behind_one_inference_pool() -> None:
    fleet = _fleet("disaggregated")
    roles = sorted(d["spec"]["template"]["metadata"]["labels"]["llm-d.ai/role"]
                   for d in _remote(fleet, "Deployment"))
    assert roles == ["decode", "prefill"]
    [pool] = _remote(fleet, "InferencePool")
    [route] = _remote(fleet, "HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"][0]["kind"] == "InferencePool"
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == pool["metadata"]["name"]


@pytest.mark.parametrize("example", ["quickstart", "multi-node", "disaggregated", "frontier"])
def test_every_replica_object_conforms(example: str) -> None:
    fleet = _fleet(example)
    replicas = {r["metadata"]["uid"] for r in fleet.of_kind("ModelReplica")}
    objs = [o for o in fleet.of_kind("Object")
            if {r.get("uid") for r in o["metadata"].get("ownerReferences") or []} & replicas]
    assert objs
    for obj in objs:
        assert problems(obj) == [], obj["metadata"]["name"]
