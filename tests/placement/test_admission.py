"""DRA admission closes the stale-ledger window: nothing is overcommitted, losers are re-placed.

Placement reads a ledger that can be stale (the compact per-pool summary is as fresh as each
cluster's last reconcile), so deployments placing in the same round can claim the same devices.
The render simulation admits pods first-come onto whole nodes like DRA on the cluster; a replica
whose pods cannot be admitted is reported Unschedulable and re-placed by its deployment.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.common import conditions
from modelplane.placement.core import decide_steady, place, usage
from modelplane.placement.inputs import clusters_from, usage_from
from modelplane.placement.ledger import Ledger
from modelplane.placement.model import Fleet, Replica, Request
from modelplane.render import Fleet as Rendered
from modelplane.render import providers, render_fleet

from tests.placement.fleet import cluster, deployment, fleet, klass, request

REPO = Path(__file__).resolve().parents[2]


def _of(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("kind") == kind
            and str(o.get("apiVersion", "")).startswith("modelplane.ai/")]


def assert_no_node_overcommitted(fleet: Rendered) -> None:
    """Both views agree: the simulation's per-node allocation, and the ModelReplicas' ledger."""
    shapes = providers._node_shapes(fleet.store)
    used: dict[tuple[str, str, int], dict[str, int]] = {}
    for wl in providers.admit(fleet.store).values():
        pc = str(fleet.store.get(wl.key)["spec"]["providerConfigRef"]["name"])
        for pod in wl.pods:
            if pod.node:
                pool, idx = pod.node.rsplit("/", 1)
                node = used.setdefault((pc, pool, int(idx)), {})
                for dc, n in pod.demand.items():
                    node[dc] = node.get(dc, 0) + n
    for (pc, pool, idx), devices in sorted(used.items()):
        nodes, per_node = shapes[pc][pool]
        assert idx < nodes, f"{pc}/{pool}: pod on node {idx} of {nodes}"
        for dc, n in devices.items():
            assert n <= per_node.get(dc, 0), f"{pc}/{pool} node {idx}: {n} {dc} claimed"
    objs = fleet.objects()
    clusters = clusters_from(_of(objs, "InferenceCluster"), _of(objs, "InferenceClass"))
    ledger = Ledger(Fleet(clusters, [usage_from(o) for o in _of(objs, "ModelReplica")]))
    for name, c in sorted(clusters.items()):
        for p in c.pools:
            led = ledger.pool(name, p.name)
            assert led is not None
            led.used_nodes()
            assert led.overflow == 0, f"{name}/{p.name}: {led.overflow} pod(s) do not fit"


def assert_every_replica_admitted_or_explained(fleet: Rendered) -> None:
    for r in fleet.of_kind("ModelReplica"):
        if conditions.is_true(r, "Ready"):
            continue
        wr = conditions.get(r, "WorkloadsReady") or {}
        assert wr.get("reason") == "Unschedulable" and "pods scheduled" in wr.get("message", ""), r


@pytest.fixture(scope="module")
def multi_cloud() -> Rendered:
    return render_fleet([REPO / "examples" / "multi-cloud"])


def test_multi_cloud_overcommits_no_node(multi_cloud: Rendered) -> None:
    assert_no_node_overcommitted(multi_cloud)
    assert_every_replica_admitted_or_explained(multi_cloud)


def test_multi_cloud_every_placed_replica_is_admitted_and_shortfall_is_explained(
        multi_cloud: Rendered) -> None:
    for md in multi_cloud.of_kind("ModelDeployment"):
        st = md["status"]
        assert st["readyReplicas"] == st["scheduledReplicas"] == len(st["placements"]), md
        if st["scheduledReplicas"] < st["desiredReplicas"]:
            assert st["unschedulable"], md["metadata"]["name"]
    # onprem h100 (4 x 8 GPUs) holds chat-small's 1-GPU pod, so only three 8-GPU pods.
    on_onprem = [r for r in multi_cloud.of_kind("ModelReplica") if r["spec"]["cluster"] == "onprem"
                 and r["spec"]["deployment"] in ("eu-llama", "big-batch")]
    assert len(on_onprem) == 3


# -- two deployments racing for one scarce pool ------------------------------------------------

def _race_fleet(tmp_path: Path) -> Path:
    """onprem alone, one 8-GPU node; alpha and beta each want one whole node."""
    docs = [d for d in yaml.safe_load_all((REPO / "examples/multi-cloud/platform.yaml").read_text())
            if d]
    keep: list[dict[str, Any]] = []
    for d in docs:
        name = d["metadata"]["name"]
        if d["kind"] == "InferenceCluster" and name != "onprem":
            continue
        if d["kind"] == "InferenceClass" and name != "onprem-h100-8x":
            continue
        if d["kind"] == "Secret" and name != "onprem-kubeconfig":
            continue
        if d["kind"] == "InferenceCluster":
            d["spec"]["nodePools"][0].update(minNodeCount=1, maxNodeCount=1)
        keep.append(d)
    models = (REPO / "examples/multi-cloud/models.yaml").read_text()
    big = next(d for d in yaml.safe_load_all(models) if d and d["metadata"]["name"] == "big-batch")
    for name, ns in (("alpha", "team-a"), ("beta", "team-b")):
        md = copy.deepcopy(big)
        md["metadata"] = {"name": name, "namespace": ns}
        md["spec"]["replicas"] = 1
        keep.append(md)
    out = tmp_path / "race.yaml"
    out.write_text(yaml.safe_dump_all(keep, sort_keys=False))
    return out


def test_two_deployments_racing_for_one_node_end_with_one_admitted_and_one_explained(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    placed: set[str] = set()  # deployments with a replica at the same time
    real = providers.admit

    def spy(store: Any) -> Any:
        got = real(store)
        now = {str(o["spec"].get("deployment")) for k, o in store.items()
               if k[1] == "ModelReplica"}
        if len(now) > len(placed):
            placed.clear()
            placed.update(now)
        return got

    monkeypatch.setattr(providers, "admit", spy)
    fleet = render_fleet([_race_fleet(tmp_path)])
    # The race happened: both were placed against the stale summary; then DRA admission refused
    # one pod, or the cluster saw its ceiling below what was placed and evicted one
    # (placement/eviction.py) before admission had to ...
    assert placed == {"alpha", "beta"}, "expected both deployments to claim the node"
    # ... and it is resolved: one replica runs, the other deployment explains its shortfall.
    assert_no_node_overcommitted(fleet)
    reps = fleet.of_kind("ModelReplica")
    assert len(reps) == 1 and conditions.is_true(reps[0], "Ready")
    winner = reps[0]["spec"]["deployment"]
    loser = {"alpha": ("beta", "team-b"), "beta": ("alpha", "team-a")}[winner]
    md = fleet.get("ModelDeployment", *loser)
    assert md is not None
    st = md["status"]
    assert st["scheduledReplicas"] == 0
    assert [u["reason"] for u in st["unschedulable"]] == ["InsufficientCapacity"]
    assert conditions.get(md, "ReplicasScheduled")["reason"] == "Unschedulable"


def test_first_come_wins_the_race_by_creation_time_then_name(tmp_path: Path) -> None:
    fleet = render_fleet([_race_fleet(tmp_path)])
    (rep,) = fleet.of_kind("ModelReplica")
    assert rep["spec"]["deployment"] == "alpha"  # same round: the earlier name wins


# -- the placement rule, pure --------------------------------------------------------------------

GPU8 = [klass("gpu8", gpus=8, memory="80Gi")]


def _placed(names: list[str]) -> tuple[Request, Fleet, Replica]:
    """One 8-GPU replica placed on a fleet of one-node clusters, its usage in the ledger."""
    req = request(deployment(replicas=1, gpus=8))
    f = fleet([cluster(n, pools=[("p", "gpu8", 1)]) for n in names], GPU8)
    (placed,) = place(req, f, []).replicas
    f.usages.append(usage(req, placed))
    return req, f, placed


def _observed(r: Replica, *, ready: bool = False, why: str = "0/1 pods scheduled") -> Replica:
    return Replica(r.name, r.ordinal, r.cluster, r.assignments, ready=ready, not_admitted=why)


def test_a_replica_its_cluster_refused_is_replaced_elsewhere_and_removed_at_once() -> None:
    req, f, placed = _placed(["a", "b"])
    d = place(req, f, [_observed(placed)])
    assert d.removed == [placed.name]
    assert [r.cluster for r in d.replicas] == [{"a": "b", "b": "a"}[placed.cluster]]
    assert d.evicted == [(placed.name, placed.cluster, "0/1 pods scheduled")]


def test_a_ready_replica_is_never_removed_for_a_refusal() -> None:
    req, f, placed = _placed(["a", "b"])
    d = place(req, f, [_observed(placed, ready=True, why="stale")])
    assert d.removed == [] and [r.name for r in d.replicas] == [placed.name]


def test_a_refused_replica_waits_when_nowhere_else_has_room_but_its_pool_should() -> None:
    """Removing it would place it on the same pool again: it waits instead (no flapping)."""
    req, f, placed = _placed(["a"])
    d = place(req, f, [_observed(placed)])
    assert d.removed == [] and [r.waiting for r in d.replicas] == ["0/1 pods scheduled"]
    assert d.shortfall == 0


def test_a_refused_replica_is_removed_when_the_ledger_agrees_it_cannot_fit() -> None:
    req, f, placed = _placed(["a"])
    f.usages.append(usage_from({"metadata": {"namespace": "x", "name": "winner"}, "spec": {
        "cluster": "a", "engines": [{"name": "e", "members": [
            {"role": "Standalone", "pool": "p", "devices": [{"name": "gpu", "count": 8}]}]}]}}))
    d = place(req, f, [_observed(placed)])
    assert d.removed == [placed.name] and d.replicas == [] and d.shortfall == 1


def test_steady_reconcile_reads_the_fleet_while_a_replica_is_refused() -> None:
    req, f, placed = _placed(["a"])
    assert decide_steady(req, f.clusters, [_observed(placed)]) is None
