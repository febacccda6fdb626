"""A platform team edits a live fleet: nothing that serves is lost before its replacement serves.

Each case edits a converged example fleet, then renders it round by round (``scenario``) and
checks after every round: no deployment has fewer Ready replicas than before the edit, no cloud
node pool is deleted under a Ready replica, no ModelService that routed stops routing, and no
composed resource is deleted unless the edit asked for it (here: only the ones named in the
case's ``may_delete``). The counts are reported in docs/reliability.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from modelplane.render import Fleet, render_fleet

from tests.reliability.scenario import (
    Obj,
    Scenario,
    condition,
    converged,
    find,
    nothing_serving_lost,
    ready,
    snapshot,
)

REPO = Path(__file__).resolve().parents[2]
Edit = Callable[[list[Obj]], None]


@pytest.fixture(scope="module")
def fleets() -> dict[str, Fleet]:
    return {n: render_fleet([REPO / "examples" / n])
            for n in ("quickstart", "multi-cloud", "canary-fallback", "multi-node")}


def pools_of(objs: list[Obj], cluster: str) -> list[dict[str, Any]]:
    pools: list[dict[str, Any]] = find(objs, "InferenceCluster", cluster)["spec"]["nodePools"]
    return pools


def rename(cluster: str, *names: str) -> Edit:
    def edit(objs: list[Obj]) -> None:
        for p in pools_of(objs, cluster):
            if p["name"] in names:
                p["name"] = p["name"] + "-v2"
    return edit


def remove_pools(cluster: str, *names: str) -> Edit:
    def edit(objs: list[Obj]) -> None:
        spec = find(objs, "InferenceCluster", cluster)["spec"]
        spec["nodePools"] = [p for p in spec["nodePools"] if names and p["name"] not in names]
    return edit


def replicas(deployment: str, n: int) -> Edit:
    def edit(objs: list[Obj]) -> None:
        find(objs, "ModelDeployment", deployment)["spec"]["replicas"] = n
    return edit


def twin_cluster(source: str, name: str, labels: dict[str, str]) -> Edit:
    """A second InferenceCluster like ``source`` (spec only), with other labels."""
    def edit(objs: list[Obj]) -> None:
        ic = find(objs, "InferenceCluster", source)
        objs.append({"apiVersion": ic["apiVersion"], "kind": ic["kind"],
                     "metadata": {"name": name, "labels": labels},
                     "spec": copy.deepcopy(ic["spec"])})
    return edit


def both(*edits: Edit) -> Edit:
    def edit(objs: list[Obj]) -> None:
        for e in edits:
            e(objs)
    return edit


def cache_selector(labels: dict[str, str]) -> Edit:
    def edit(objs: list[Obj]) -> None:
        find(objs, "ModelCache")["spec"]["clusterSelector"] = {"matchLabels": labels}
    return edit


def relabel(cluster: str, labels: dict[str, str]) -> Edit:
    def edit(objs: list[Obj]) -> None:
        find(objs, "InferenceCluster", cluster)["metadata"]["labels"] = labels
    return edit


def strip_status(every: int = 1) -> Edit:
    """Every ``every``-th object loses its status (a backup restored without status)."""
    def edit(objs: list[Obj]) -> None:
        for i, o in enumerate(objs):
            if i % every == 0:
                o.pop("status", None)
    return edit


def composed_keys(objs: list[Obj]) -> set[tuple[str, str, str]]:
    return {(str(o.get("kind")), str(o["metadata"].get("namespace", "")), o["metadata"]["name"])
            for o in objs if (o.get("metadata") or {}).get("ownerReferences")}


# What moving a replica off a cluster removes: the replica, its endpoint and their objects,
# and the ClusterUsage that protected the cluster while it hosted the replica.
MOVE = {"ModelReplica", "ModelEndpoint", "Object", "Service", "EndpointSlice", "ClusterUsage",
        "Usage"}
EAST, CENTRAL = {"modelplane.ai/region": "us-east"}, {"modelplane.ai/region": "us-central"}
FLEETS = ["quickstart", "multi-cloud", "canary-fallback", "multi-node"]

# (fleet, case, edit, kinds the edit may delete once their replacement serves)
CASES: list[tuple[str, str, Edit, set[str]]] = [
    ("multi-node", "cache selector narrowed (to a new cluster)",
     both(twin_cluster("h100-central", "h100-east", EAST), cache_selector(EAST)), MOVE),
    ("multi-node", "cache selector narrowed (to nothing)", cache_selector({"x": "none"}),
     set()),
    ("multi-node", "cluster relabelled out of the cache's selector",
     both(twin_cluster("h100-central", "h100-central-2", CENTRAL),
          relabel("h100-central", EAST)), MOVE),
    *[(f, "all status stripped", strip_status(), set()) for f in FLEETS],
    *[(f, "status of half the objects stripped", strip_status(2), set()) for f in FLEETS],
    ("quickstart", "pool renamed", rename("starter", "gpu-l4"),
     {"NodePool", "ModelReplica", "ModelEndpoint", "Object", "Service", "EndpointSlice"}),
    ("quickstart", "pool removed (nodePools emptied)", remove_pools("starter"), set()),
    ("multi-cloud", "two pools renamed at once", rename("eks-eu", "h100", "l4"),
     {"NodeGroup", "ModelReplica", "ModelEndpoint", "Object", "Service", "EndpointSlice"}),
    ("multi-cloud", "pool removed", remove_pools("gke-us", "l4"),
     {"NodePool", "ModelReplica", "ModelEndpoint", "Object", "Service", "EndpointSlice"}),
    ("multi-cloud", "scale-down under contention (big-batch 10 -> 5)",
     replicas("big-batch", 5), set()),
    ("multi-cloud", "scale-down under contention (big-batch 10 -> 2)",
     replicas("big-batch", 2), {"ModelReplica", "ModelEndpoint", "Object", "Service",
                                "EndpointSlice"}),
]


@pytest.mark.parametrize(("fleet_name", "case", "edit", "may_delete"), CASES,
                         ids=[f"{f}:{c}" for f, c, _, _ in CASES])
def test_a_live_edit_loses_nothing_before_its_replacement_serves(
        fleets: dict[str, Fleet], fleet_name: str, case: str, edit: Edit,
        may_delete: set[str]) -> None:
    objs = converged(fleets[fleet_name])
    first = snapshot(objs)
    before = composed_keys(objs)
    edited = copy.deepcopy(objs)
    edit(edited)
    problems: list[str] = []
    last: list[Obj] = edited
    for i, now in enumerate(Scenario(edited).rounds()):
        problems += [f"round {i}: {p}" for p in nothing_serving_lost(first, snapshot(now), i)]
        gone = before - composed_keys(now)
        problems += [f"round {i}: {k} deleted" for k in sorted(gone) if k[0] not in may_delete]
        last = now
    assert problems == [], f"{case}: " + "; ".join(problems[:5])
    assert last is not edited


def test_an_emptied_cluster_holds_its_pool_and_says_by_whom(fleets: dict[str, Fleet]) -> None:
    objs = converged(fleets["quickstart"])
    remove_pools("starter")(objs)
    *_, last = Scenario(objs).rounds()
    ic = find(last, "InferenceCluster", "starter")
    drained = condition(ic, "NodePoolsDrained")
    assert drained["status"] == "False" and "pool gpu-l4: held by 1 ModelReplica" in \
        drained["message"]
    assert "nothing to provision" not in condition(ic, "NodePoolsReady")["message"]
    assert [p["name"] for p in ic["status"]["pools"] if p.get("draining")] == ["gpu-l4"]
    md = find(last, "ModelDeployment", "qwen-demo")
    assert "draining" in condition(md, "ReplicasScheduled")["message"]


def test_a_copy_no_longer_selected_is_held_for_its_reader(fleets: dict[str, Fleet]) -> None:
    objs = converged(fleets["multi-node"])
    cache_selector({"x": "none"})(objs)
    *_, last = Scenario(objs).rounds()
    held = condition(find(last, "ModelCache"), "CopiesHeld")
    assert held["status"] == "True" and "h100-central (mounted by ModelReplica llama-405b-" \
        in held["message"]
    md = find(last, "ModelDeployment")
    assert "no longer holds a copy of spec.modelCacheRef" in condition(
        md, "ReplicasScheduled")["message"]


def shrink(cluster: str, pool: str, ceiling: int) -> Edit:
    def edit(objs: list[Obj]) -> None:
        for p in pools_of(objs, cluster):
            if p["name"] == pool:
                p["maxNodeCount"] = ceiling
                p["minNodeCount"] = min(int(p.get("minNodeCount", 0)), ceiling)
                if "nodeCount" in p:
                    p["nodeCount"] = min(int(p["nodeCount"]), ceiling)
    return edit


SHRINK_CASES = [("quickstart", "starter", "gpu-l4", 0), ("multi-cloud", "gke-us", "l4", 0),
                ("multi-cloud", "eks-eu", "h100", 1),
                ("canary-fallback", "us-central", "gpu-l4", 2)]


@pytest.mark.parametrize(("fleet_name", "cluster", "pool", "ceiling"), SHRINK_CASES,
                         ids=[f"{f}:{c}/{p}->{n}" for f, c, p, n in SHRINK_CASES])
def test_a_ceiling_shrunk_below_what_runs_is_reported_and_deletes_nothing_else(
        fleets: dict[str, Fleet], fleet_name: str, cluster: str, pool: str,
        ceiling: int) -> None:
    # The spec asks for fewer nodes than run: the capacity goes (the cloud removes nodes), so
    # Ready replicas may drop; what must hold is that it is reported, and that nothing but the
    # replicas that lost their nodes (re-placed where there is room) is deleted.
    objs = converged(fleets[fleet_name])
    before = composed_keys(objs)
    shrink(cluster, pool, ceiling)(objs)
    rounds = list(Scenario(objs).rounds())
    capacity = condition(find(rounds[0], "InferenceCluster", cluster), "PoolCapacity")
    assert capacity["status"] == "False" and f"pool {pool}: nodeCeiling {ceiling}" in \
        capacity["message"]
    for now in rounds:
        gone = {k for k in before - composed_keys(now) if k[0] not in MOVE}
        assert gone == set()


def test_a_shrunk_ceiling_evicts_the_canary_before_the_stable(fleets: dict[str, Fleet]) -> None:
    # canary-fallback: 2 stable replicas (weight 90) and 1 canary (weight 10), one GPU node
    # each on us-central/gpu-l4. With room for two, the canary loses its place whichever node
    # the cloud removes: the stable keeps both replicas Ready in every round, and routes.
    objs = converged(fleets["canary-fallback"])
    stable = {o["metadata"]["name"] for o in objs if o.get("kind") == "ModelReplica"
              and o["spec"]["deployment"] == "qwen-stable"}
    canary = next(o["metadata"]["name"] for o in objs if o.get("kind") == "ModelReplica"
                  and o["spec"]["deployment"] == "qwen-canary")
    before = composed_keys(objs)
    shrink("us-central", "gpu-l4", 2)(objs)
    rounds = list(Scenario(objs).rounds())
    capacity = condition(find(rounds[0], "InferenceCluster", "us-central"), "PoolCapacity")
    assert f"losing their place (smallest traffic share first, then newest): ml-team/{canary} " \
           "(10% of its traffic)" in capacity["message"]
    for i, now in enumerate(rounds):
        ready_stable = {o["metadata"]["name"] for o in now if o.get("kind") == "ModelReplica"
                        and o["spec"]["deployment"] == "qwen-stable" and ready(o)}
        assert ready_stable == stable, f"round {i}: stable Ready {sorted(ready_stable)}"
        assert condition(find(now, "ModelService", "qwen"), "Routing")["status"] == "True"
        gone = {k for k in before - composed_keys(now) if k[0] not in MOVE}
        assert gone == set(), f"round {i}: {sorted(gone)} deleted"
    last = rounds[-1]
    assert canary not in {o["metadata"]["name"] for o in last if o.get("kind") == "ModelReplica"}
    assert condition(find(last, "ModelDeployment", "qwen-canary"), "ReplicasScheduled")[
        "status"] == "False"
    pools = find(last, "InferenceCluster", "us-central")["status"]["pools"]
    assert all(not p.get("evicting") for p in pools)  # nothing left to evict
