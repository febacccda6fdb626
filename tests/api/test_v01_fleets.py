"""Fleets written for the published v0.1.0 API validate unchanged, render, and place."""

from __future__ import annotations

from pathlib import Path

from modelplane.render import render_fleet
from modelplane.validate import validate_paths

from tests.conformance import problems

V01 = Path(__file__).resolve().parent / "v01"


def test_a_v01_edge_fleet_validates_renders_and_places_on_the_fixed_pool() -> None:
    assert validate_paths([str(V01 / "edge")]) == []
    fleet = render_fleet([V01 / "edge"])
    colo = fleet.get("InferenceCluster", "colo")
    assert colo is not None
    # nodeCount alone: a fixed pool of 2 nodes, which is the ceiling placement counts against.
    assert [(p["name"], p["nodeCeiling"]) for p in colo["status"]["pools"]] == [("l40s", 2)]
    assert colo["status"]["storageClassName"] == "cephfs"  # existing.cache.storageClassName
    deployment = fleet.get("ModelDeployment", "qwen", "ml-team")
    assert deployment is not None and deployment["status"]["replicas"] == 2
    replicas = [o for o in fleet.objects() if o["kind"] == "ModelReplica"]
    assert sorted(r["spec"]["cluster"] for r in replicas) == ["colo", "colo"]
    pvcs = [o["spec"]["forProvider"]["manifest"] for o in fleet.objects()
            if o["kind"] == "Object"
            and o["spec"]["forProvider"]["manifest"]["kind"] == "PersistentVolumeClaim"]
    assert [(p["spec"]["storageClassName"], p["spec"]["resources"]["requests"]["storage"])
            for p in pvcs] == [("cephfs", "30Gi")]
    for obj in fleet.objects():
        if not obj["apiVersion"].startswith("modelplane.ai/") and obj["kind"] != "Secret":
            assert problems(obj) == [], obj["metadata"]["name"]
