"""examples/frontier: a frontier-model fleet written the v0.1 way -- EKS p5 nodes on a Capacity
Block with EFA, a multi-node engine reading a ModelCache, a ModelService routing it."""

from __future__ import annotations

from typing import Any

from modelplane.contract.fabric import EFA_DEVICE_CLASS
from modelplane.validate import validate_paths

from tests.conformance import problems, require_shared
from tests.provisioning.test_example_bare_metal import composed
from tests.provisioning.test_render import ROOT, by_kind, composed_by, fleet, ready


def remote(f: Any, kind: str) -> list[dict[str, Any]]:
    return [o["spec"]["forProvider"]["manifest"] for o in f.objects()
            if o["kind"] == "Object" and o["spec"]["forProvider"]["manifest"]["kind"] == kind]


def test_frontier_manifests_validate_as_written() -> None:
    assert validate_paths([str(ROOT / "examples" / "frontier")]) == []


def test_the_pool_runs_on_the_capacity_block_with_efa_interfaces() -> None:
    f = fleet("frontier")
    assert ready(f.get("InferenceCluster", "frontier-east"))
    objs = composed_by(f, "frontier-east")
    [lt] = by_kind(objs, "LaunchTemplate")
    fp = lt["spec"]["forProvider"]
    assert fp["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert len(fp["networkInterfaces"]) == 32
    [ng] = [o for o in by_kind(objs, "NodeGroup") if "launchTemplate" in o["spec"]["forProvider"]]
    assert ng["spec"]["forProvider"]["capacityType"] == "CAPACITY_BLOCK"
    [release] = [r for r in by_kind(objs, "Release")
                 if r["spec"]["forProvider"]["chart"]["name"] == "aws-dranet"]
    assert release["spec"]["forProvider"]["namespace"] == "kube-system"


def test_both_replicas_are_placed_and_every_pod_claims_its_nodes_efa_devices() -> None:
    f = fleet("frontier")
    replicas = f.of_kind("ModelReplica")
    assert len(replicas) == 2 and all(ready(r) for r in replicas)
    lws = remote(f, "LeaderWorkerSet")
    assert len(lws) == 2 and {w["spec"]["leaderWorkerTemplate"]["size"] for w in lws} == {2}
    templates = remote(f, "ResourceClaimTemplate")
    assert len(templates) == 4  # leader and worker of each replica
    for t in templates:
        asked = {r["exactly"]["deviceClassName"]: r["exactly"]["count"]
                 for r in t["spec"]["spec"]["devices"]["requests"]}
        assert asked == {"gpu.nvidia.com": 8, EFA_DEVICE_CLASS: 32}
    # Four reserved nodes, four pods: the Capacity Block is used up.
    [pool] = f.get("InferenceCluster", "frontier-east")["status"]["pools"]  # type: ignore[index]
    assert pool["nodeCeiling"] == 4


def test_the_service_routes_to_the_multi_node_engine_reading_the_cache() -> None:
    f = fleet("frontier")
    svc = f.get("ModelService", "deepseek", "ml-team")
    assert ready(svc)
    cache = f.get("ModelCache", "deepseek-v3", "ml-team")
    assert ready(cache)
    for w in remote(f, "LeaderWorkerSet"):
        for key in ("leaderTemplate", "workerTemplate"):
            volumes = w["spec"]["leaderWorkerTemplate"][key]["spec"]["volumes"]
            assert any((v.get("persistentVolumeClaim") or {}).get("claimName")
                       == "modelcache-deepseek-v3" for v in volumes)


def test_every_composed_object_conforms() -> None:
    require_shared()
    found = [p for o in composed(fleet("frontier"))
             for p in problems({k: v for k, v in o.items() if k != "status"})]
    assert found == []
