"""The capacity summaries (contract.capacity): placement reads them instead of every
InferenceCluster, decides exactly as from the clusters themselves, trusts only what an
InferenceCluster composed, and gives nothing new to a pool whose capacity it cannot know."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from modelplane.contract import capacity as contract
from modelplane.contract.inferenceclass import resolve_devices
from modelplane.placement import capacity
from modelplane.placement.compact_ledger import allocation_summary
from modelplane.placement.inputs import cluster_from
from modelplane.step import StepRequest
from modelplane.steps.inferencecluster.compose import capacity_summary

from tests.placement.fleet import MEM20, cluster, deployment, klass
from tests.placement.test_step import observe, run, run_place

CLASSES = [klass("l4", gpus=1, memory="24Gi", cost="0.70"),
           klass("a100", gpus=4, memory="80Gi", cost="8.20")]


def published(name: str, pools: list[tuple[str, str, int]], replicas: list[dict[str, Any]],
              ready: bool = True, labels: dict[str, str] | None = None,
              ledger: bool = True) -> dict[str, Any]:
    """A cluster as compose-cluster publishes it: status.pools with resolved devices."""
    obj = cluster(name, pools, labels=labels, ready=ready)
    by_class = {c["metadata"]["name"]: c for c in CLASSES}
    summary = allocation_summary([r for r in replicas if r["spec"]["cluster"] == name])
    out = []
    for pool, cname, ceiling in pools:
        spec = by_class[cname]["spec"]
        entry: dict[str, Any] = {"name": pool, "className": cname, "nodeCeiling": ceiling,
                                 "devices": resolve_devices(spec), "ready": True,
                                 "costPerNodeHour": spec["costPerNodeHour"]}
        if ledger:
            entry["allocated"] = summary.get(pool, [])
        out.append(entry)
    obj["status"]["pools"] = out
    return obj


def summary_of(ic: dict[str, Any], controller: str = "InferenceCluster",
               owner: str | None = None) -> dict[str, Any]:
    """The ConfigMap compose-cluster composes for ``ic``, with Crossplane's owner reference."""
    ready = ic["status"]["conditions"][0]["status"] == "True"
    req = StepRequest("compose-cluster", {}, ic)
    obj = capacity_summary(req, ic["status"]["pools"], ready).resource
    obj["metadata"]["ownerReferences"] = [{
        "apiVersion": "modelplane.ai/v1alpha1", "kind": controller,
        "name": owner or ic["metadata"]["name"], "uid": "u", "controller": True}]
    return obj


def store(clusters: list[dict[str, Any]], replicas: list[dict[str, Any]],
          summaries: bool = True) -> dict[str, Any]:
    return {"InferenceClass": CLASSES, "InferenceCluster": clusters, "ModelReplica": replicas,
            "ConfigMap": [summary_of(c) for c in clusters] if summaries else []}


def decision(md: dict[str, Any], observed: dict[str, Any], st: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[str, str]]:
    placed, seen = run_place(md, observed, st)
    return placed.context["modelplane.ai/placement"], seen[-1]


def random_fleet(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Clusters with other deployments' replicas already placed (by placement itself)."""
    rng = random.Random(seed)
    shapes = [[("p", "l4", rng.randint(0, 3))], [("p", "l4", 2), ("q", "a100", 1)],
              [("q", "a100", rng.randint(1, 2))]]
    names = [f"c{i}" for i in range(rng.randint(2, 6))]
    specs = {n: (rng.choice(shapes), rng.random() > 0.2, {"region": rng.choice("ab")})
             for n in names}
    replicas: list[dict[str, Any]] = []
    for k in range(rng.randint(0, 4)):
        other = deployment(f"o{k}", replicas=rng.randint(1, 3), selectors=[MEM20],
                           namespace="else", gpus=rng.choice([1, 1, 4]))
        clusters = [published(n, p, replicas, r, lab) for n, (p, r, lab) in specs.items()]
        _, composed, _ = run(other, {}, store(clusters, replicas, summaries=False))
        replicas += list(observe(composed).values())
    return [published(n, p, replicas, r, lab) for n, (p, r, lab) in specs.items()], replicas


@pytest.mark.parametrize("seed", range(12))
def test_placing_from_summaries_decides_as_from_the_clusters(seed: int) -> None:
    clusters, replicas = random_fleet(seed)
    rng = random.Random(seed)
    md = deployment("m", replicas=rng.randint(1, 5), selectors=[MEM20],
                    gpus=rng.choice([1, 4]), placement={"spreadTopologyKey":
                                                        rng.choice(["", "region"])})
    from_clusters, seen_full = decision(md, {}, store(clusters, replicas, summaries=False))
    from_summaries, seen = decision(md, {}, store(clusters, replicas))
    assert from_summaries == from_clusters
    assert "capacity" in seen and "clusters" not in seen and "replicas" not in seen
    assert "clusters" in seen_full


def test_the_summary_reads_back_as_the_cluster_placement_sees() -> None:
    clusters, _ = random_fleet(3)
    for ic in clusters:
        text = summary_of(ic)["data"][contract.DATA_KEY]
        got = capacity.read([(ic["metadata"]["name"], text)], CLASSES).clusters
        want = cluster_from(ic, {c["metadata"]["name"]: c for c in CLASSES})
        mine = got[ic["metadata"]["name"]]
        assert (mine.name, dict(mine.labels), mine.ready, mine.taints) == \
            (want.name, dict(want.labels), want.ready, want.taints)
        assert [(p.name, p.class_name, p.node_ceiling, p.cost, p.ready, p.draining,
                 p.capacity, p.problem) for p in mine.pools] == \
            [(p.name, p.class_name, p.node_ceiling, p.cost, p.ready, p.draining,
              p.capacity, p.problem) for p in want.pools]


def test_a_summary_is_a_few_hundred_bytes() -> None:
    ic = published("c0", [("p", "l4", 8), ("q", "a100", 4)], [])
    assert len(summary_of(ic)["data"][contract.DATA_KEY]) < 600


@pytest.mark.parametrize("forgery", ["not an InferenceCluster", "speaks for another cluster"])
def test_a_forged_summary_is_ignored(forgery: str) -> None:
    real = published("a", [("p", "l4", 1)], [])
    fake = published("b", [("p", "l4", 8)], [])
    st = store([real], [])
    st["ConfigMap"].append(summary_of(fake, controller="ModelDeployment")
                           if forgery == "not an InferenceCluster" else
                           summary_of(fake, owner="a"))
    md = deployment("m", replicas=3, selectors=[MEM20])
    got, _ = decision(md, {}, st)
    assert {r["cluster"] for r in got["replicas"]} == {"a"}
    assert got["scheduled"] == 1


def test_a_pool_whose_class_changed_since_it_published_takes_nothing_new() -> None:
    ic = published("a", [("p", "l4", 4)], [])
    st = store([ic], [])
    changed = json.loads(json.dumps(CLASSES))
    changed[0]["spec"]["devices"][0]["capacity"]["memory"]["value"] = "48Gi"
    st["InferenceClass"] = changed
    got, _ = decision(deployment("m", replicas=1, selectors=[MEM20]), {}, st)
    assert got["scheduled"] == 0


def test_a_candidate_without_a_published_ledger_takes_nothing_new_and_ships_no_replicas() -> None:
    md = deployment("m", replicas=2, selectors=[MEM20])
    st = store([published("a", [("p", "l4", 1)], []),
                published("b", [("p", "l4", 8)], [], ledger=False)], [])
    got, seen = decision(md, {}, st)
    assert [r["cluster"] for r in got["replicas"]] == ["a"]
    assert "replicas" not in seen and "clusters" not in seen


def test_what_other_deployments_run_counts_against_a_summarised_pool() -> None:
    other = deployment("z", replicas=2, selectors=[MEM20], namespace="else")
    _, composed, _ = run(other, {}, store([published("a", [("p", "l4", 2)], [])], []))
    theirs = list(observe(composed).values())
    md = deployment("m", replicas=1, selectors=[MEM20])
    got, _ = decision(md, {}, store([published("a", [("p", "l4", 2)], theirs),
                                     published("b", [("p", "l4", 2)], theirs)], theirs))
    assert [r["cluster"] for r in got["replicas"]] == ["b"]


def test_own_replicas_are_judged_by_their_cluster_not_its_summary() -> None:
    md = deployment("m", replicas=1, selectors=[MEM20])
    _, composed, _ = run(md, {}, store([published("a", [("p", "l4", 2)], [])], []))
    observed = observe(composed)
    mine = [o for o in observed.values() if o["kind"] == "ModelReplica"]
    # The summary is a round older (it does not list our replica yet); scaling to 3 places
    # exactly one more: our replica is counted once, from what we observe.
    md["spec"]["replicas"] = 3
    st = store([published("a", [("p", "l4", 2)], mine)], mine)
    st["ConfigMap"] = [summary_of(published("a", [("p", "l4", 2)], []))]
    got, _ = decision(md, observed, st)
    assert got["scheduled"] == 2 and got["shortfall"] == 1


def test_every_rendered_cluster_publishes_a_summary_that_reads_as_the_cluster() -> None:
    from pathlib import Path

    from modelplane.render import render_fleet

    fleet = render_fleet([Path(__file__).resolve().parents[2] / "examples" / "multi-cloud"])
    objs = fleet.objects()
    classes = [o for o in objs if o["kind"] == "InferenceClass"]
    by_name = {o["metadata"]["name"]: o for o in classes}
    summaries = {o["metadata"]["ownerReferences"][0]["name"]: o for o in objs
                 if o["kind"] == "ConfigMap"
                 and contract.LABEL in (o["metadata"].get("labels") or {})}
    clusters = [o for o in objs if o["kind"] == "InferenceCluster"]
    assert clusters and set(summaries) == {c["metadata"]["name"] for c in clusters}
    for ic in clusters:
        name = ic["metadata"]["name"]
        cm = summaries[name]
        assert cm["metadata"]["namespace"] == contract.NAMESPACE
        mine = capacity.read([(name, cm["data"][contract.DATA_KEY])], classes).clusters[name]
        want = cluster_from(ic, by_name)
        assert (mine.ready, dict(mine.labels), mine.taints) == \
            (want.ready, dict(want.labels), want.taints)
        assert [(p.name, p.node_ceiling, p.capacity, p.ready, p.draining) for p in mine.pools] \
            == [(p.name, p.node_ceiling, p.capacity, p.ready, p.draining) for p in want.pools]
