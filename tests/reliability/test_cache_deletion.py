"""Deleting a ModelCache never deletes a copy that a Ready replica still mounts.

Each ModelReplica that mounts a ModelCache composes a Usage of it (by its workload's Object), so
Crossplane's usage webhook refuses ``kubectl delete modelcache`` while the workload exists, and
records the attempt; with ``replayDeletion`` the deletion goes through once the last reader has
gone (docs/caching.md). The multi-node fleet has one Ready replica mounting its cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from modelplane.render import Fleet, render_fleet

from tests.reliability.scenario import (
    Obj,
    Scenario,
    condition,
    converged,
    find,
    nothing_serving_lost,
    snapshot,
)

REPO = Path(__file__).resolve().parents[2]
NS, CACHE, DEPLOYMENT = "ml-team", "llama-405b", "llama-405b"


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return render_fleet([REPO / "examples" / "multi-node"])


def caches(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if o.get("kind") == "ModelCache"]


def copies(objs: list[Obj]) -> list[str]:
    """The cache's composed Objects (namespace, PVC, token, hydrate Job per cluster)."""
    return sorted(o["metadata"]["name"] for o in objs if o.get("kind") == "Object"
                  and (o["metadata"].get("labels") or {}).get("modelplane.ai/cache") == CACHE
                  and (o["metadata"].get("labels") or {}).get("crossplane.io/composite") == CACHE)


def test_each_reader_composes_a_usage_of_the_cache_by_its_workload(fleet: Fleet) -> None:
    objs = converged(fleet)
    usages = [o for o in objs if o.get("kind") == "Usage" and o["metadata"]["namespace"] == NS]
    replica = find(objs, "ModelReplica")
    assert [(u["spec"]["of"], u["spec"]["by"]["kind"], u["spec"]["replayDeletion"])
            for u in usages] == [({"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelCache",
                                   "resourceRef": {"name": CACHE}}, "Object", True)]
    assert usages[0]["spec"]["by"]["resourceRef"]["name"] == \
        f"{replica['metadata']['name']}-workload-vllm"
    protected = condition(find(objs, "ModelCache"), "DeletionProtected")
    assert (protected["status"], protected["reason"]) == ("True", "MountedByReplicas")
    assert f"{replica['metadata']['name']} on h100-central" in protected["message"]


def test_deleting_a_mounted_cache_is_refused_and_nothing_that_serves_goes(fleet: Fleet) -> None:
    objs = converged(fleet)
    first, before = snapshot(objs), copies(objs)
    sc = Scenario(objs)
    refusal = sc.delete("ModelCache", CACHE, NS)
    assert "in use by 1 usage(s)" in refusal and "by Object" in refusal
    last = objs
    for i, now in enumerate(sc.rounds()):
        assert nothing_serving_lost(first, snapshot(now), i) == []
        assert copies(now) == before, f"round {i}: a copy of the cache was deleted"
        last = now
    held = condition(find(last, "ModelCache"), "DeletionProtected")
    assert (held["status"], held["reason"]) == ("True", "DeletionHeld")
    assert "deletion requested and held: ModelReplica llama-405b-" in held["message"]
    assert all(o["metadata"]["name"] for o in last if o.get("kind") == "ModelReplica")


def test_the_held_deletion_goes_through_once_the_deployment_is_gone(fleet: Fleet) -> None:
    objs = converged(fleet)
    sc = Scenario(objs)
    assert sc.delete("ModelCache", CACHE, NS) != ""
    assert sc.delete("ModelDeployment", DEPLOYMENT, NS) == ""
    *_, last = sc.rounds()
    assert caches(last) == [] and copies(last) == []
    assert [o for o in last if o.get("kind") == "ModelReplica"] == []


def test_the_held_deletion_goes_through_once_the_deployment_scales_to_zero(
        fleet: Fleet) -> None:
    objs = converged(fleet)
    find(objs, "ModelDeployment")["spec"]["replicas"] = 0
    sc = Scenario(objs)
    assert sc.delete("ModelCache", CACHE, NS) != ""
    *_, last = sc.rounds()
    assert caches(last) == [] and copies(last) == []
    assert find(last, "ModelDeployment")["metadata"]["name"] == DEPLOYMENT


def test_an_unmounted_cache_is_deleted_at_once(fleet: Fleet) -> None:
    objs = [o for o in converged(fleet) if o.get("kind") != "ModelDeployment"
            and (o["metadata"].get("labels") or {}).get("modelplane.ai/deployment") is None]
    sc = Scenario(objs)
    *_, settled = sc.rounds()
    assert condition(find(settled, "ModelCache"), "DeletionProtected")["reason"] == "NoReplicas"
    sc2 = Scenario(settled)
    assert sc2.delete("ModelCache", CACHE, NS) == ""
    *_, last = sc2.rounds()
    assert caches(last) == [] and copies(last) == []
