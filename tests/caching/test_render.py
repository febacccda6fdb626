"""End to end: examples/multi-node with a ModelCache, rendered by the local control plane.

Acceptance (issue 9): a PVC and a hydrate Job per matching cluster, the replica mounts the PVC,
and placement keeps replicas on the cache's footprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modelplane.common import conditions, selectors
from modelplane.contract import modelcache

from tests.conformance import problems

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi-node"
OWNER = "crossplane.io/composite"


@pytest.fixture(scope="module")
def fleet() -> Any:
    if not any(EXAMPLE.glob("*.yaml")):
        pytest.skip(f"{EXAMPLE} does not exist yet")
    from modelplane.render import render_fleet

    return render_fleet([EXAMPLE])


def _caches(fleet: Any) -> list[dict[str, Any]]:
    found = fleet.of_kind("ModelCache")
    if not found:
        pytest.fail(f"{EXAMPLE} has no ModelCache")
    return sorted(found, key=lambda c: c["metadata"]["name"])


def _selected(fleet: Any, cache: dict[str, Any]) -> list[dict[str, Any]]:
    sel = (cache.get("spec") or {}).get("clusterSelector")
    return sorted((c for c in fleet.of_kind("InferenceCluster")
                   if selectors.matches(sel, (c.get("metadata") or {}).get("labels"))),
                  key=lambda c: c["metadata"]["name"])


def _composed(fleet: Any, cache: dict[str, Any]) -> list[dict[str, Any]]:
    meta = cache["metadata"]
    return [o for o in fleet.of_kind("Object")
            if (o["metadata"].get("labels") or {}).get(OWNER) == meta["name"]
            and o["metadata"].get("namespace") == meta["namespace"]
            and any(r.get("kind") == "ModelCache"
                    for r in o["metadata"].get("ownerReferences") or [])]


def _manifest(obj: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = obj["spec"]["forProvider"]["manifest"]
    return m


def _require_ready_clusters(fleet: Any, cache: dict[str, Any]) -> list[dict[str, Any]]:
    clusters = _selected(fleet, cache)
    assert clusters, f"ModelCache {cache['metadata']['name']} selects no InferenceCluster"
    not_ready = [c["metadata"]["name"] for c in clusters
                 if not conditions.is_true(c, "Ready")
                 or not ((c.get("status") or {}).get("providerConfigRef") or {}).get("kubernetes")]
    assert not not_ready, f"InferenceClusters {not_ready} did not render Ready with a kubernetes "\
        "providerConfigRef"
    return clusters


def test_a_pvc_and_a_job_per_matching_cluster(fleet: Any) -> None:
    for cache in _caches(fleet):
        clusters = _require_ready_clusters(fleet, cache)
        objects = _composed(fleet, cache)
        for cl in clusters:
            name = cl["metadata"]["name"]
            provider = cl["status"]["providerConfigRef"]["kubernetes"]
            mine = [o for o in objects if o["spec"]["providerConfigRef"] == {
                "kind": provider["kind"], "name": provider["name"]}]
            kinds = sorted(_manifest(o)["kind"] for o in mine)
            assert kinds.count("PersistentVolumeClaim") == 1, (name, kinds)
            assert kinds.count("Job") == 1, (name, kinds)
            pvc = next(m for m in map(_manifest, mine) if m["kind"] == "PersistentVolumeClaim")
            assert pvc["metadata"]["name"] == modelcache.pvc_name(cache["metadata"]["name"])
            assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_cache_reports_every_matching_cluster_ready(fleet: Any) -> None:
    for cache in _caches(fleet):
        clusters = _require_ready_clusters(fleet, cache)
        status = cache.get("status") or {}
        assert sorted(c["name"] for c in status.get("clusters") or []) == sorted(
            c["metadata"]["name"] for c in clusters)
        assert {c["phase"] for c in status["clusters"]} == {"Ready"}
        assert status["summary"] == f"{len(clusters)}/{len(clusters)} Ready"


def test_every_object_the_cache_composes_conforms(fleet: Any) -> None:
    for cache in _caches(fleet):
        for obj in _composed(fleet, cache):
            assert problems(obj) == []


def _replicas_using(fleet: Any, cache: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in fleet.of_kind("ModelReplica")
            if ((r.get("spec") or {}).get("modelCacheRef") or {}).get("name")
            == cache["metadata"]["name"]
            and r["metadata"].get("namespace") == cache["metadata"]["namespace"]]


def test_placement_respects_the_cache_footprint(fleet: Any) -> None:
    for cache in _caches(fleet):
        replicas = _replicas_using(fleet, cache)
        assert replicas, "no ModelReplica references the ModelCache"
        footprint = {c["name"] for c in (cache.get("status") or {}).get("clusters") or []}
        for r in replicas:
            assert r["spec"]["cluster"] in footprint


def _pod_specs(node: Any) -> list[dict[str, Any]]:
    """Every pod spec under a manifest (Deployment, LeaderWorkerSet leader and worker...)."""
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            out.append(node)
        for v in node.values():
            out += _pod_specs(v)
    elif isinstance(node, list):
        for v in node:
            out += _pod_specs(v)
    return out


def test_every_pod_of_the_replica_mounts_the_cache_read_only(fleet: Any) -> None:
    for cache in _caches(fleet):
        claim = modelcache.pvc_name(cache["metadata"]["name"])
        replicas = _replicas_using(fleet, cache)
        assert replicas, "no ModelReplica references the ModelCache"
        for r in replicas:
            # Controlled by the replica (the composite label names the root XR, as Crossplane
            # sets it: the ModelDeployment).
            pods = [p for o in fleet.of_kind("Object")
                    if any(ref.get("uid") == r["metadata"]["uid"]
                           for ref in o["metadata"].get("ownerReferences") or [])
                    for p in _pod_specs(_manifest(o))]
            assert pods, f"ModelReplica {r['metadata']['name']} composes no pods"
            for pod in pods:
                vols = [v["name"] for v in pod.get("volumes") or []
                        if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim]
                assert len(vols) == 1
                for c in pod["containers"]:
                    assert {"name": vols[0], "mountPath": modelcache.MOUNT_PATH,
                            "readOnly": True} in c.get("volumeMounts") or []
