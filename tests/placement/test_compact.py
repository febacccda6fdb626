"""The compact ledger (InferenceCluster status.pools[].allocated): used when complete, never
counting this deployment's own replicas twice, and falling back to every ModelReplica."""

from __future__ import annotations

from typing import Any

from modelplane.placement.compact_ledger import allocation_summary

from tests.placement.fleet import MEM20, cluster, deployment
from tests.placement.test_step import L4, observe, run, run_place


def published(name: str, ceiling: int, replicas: list[dict[str, Any]] | None,
              ready: bool = True) -> dict[str, Any]:
    """A cluster publishing status.pools (with ``allocated`` unless replicas is None)."""
    obj = cluster(name, [("p", "l4", ceiling)], ready=ready)
    pool: dict[str, Any] = {"name": "p", "className": "l4", "nodeCeiling": ceiling,
                            "devices": L4["spec"]["devices"], "costPerNodeHour": "0.70"}
    if replicas is not None:
        pool["allocated"] = allocation_summary(
            [r for r in replicas if r["spec"]["cluster"] == name]).get("p", [])
    obj["status"]["pools"] = [pool]
    return obj


def store(clusters: list[dict[str, Any]], replicas: list[dict[str, Any]]) -> dict[str, Any]:
    return {"InferenceClass": [L4], "InferenceCluster": clusters, "ModelReplica": replicas}


def own_replicas(md: dict[str, Any], clusters: list[dict[str, Any]]) -> dict[str, Any]:
    _, composed, _ = run(md, {}, store(clusters, []))
    return observe(composed)


def test_own_replicas_in_the_summary_are_not_counted_twice() -> None:
    md = deployment("m", replicas=1, selectors=[MEM20])
    observed = own_replicas(md, [published("a", 2, [])])
    mine = list(observed.values())
    # The cluster's summary now lists our replica too (owner team/m), as compose-cluster does.
    fleet = [published("a", 2, mine)]
    md["spec"]["replicas"] = 3
    placed, seen = run_place(md, observed, store(fleet, mine))
    assert "replicas" not in seen[-1]  # compact: no ModelReplica shipped
    decision = placed.context["modelplane.ai/placement"]
    # 2 nodes x 1 GPU: our existing replica takes one, so exactly one more fits.
    assert decision["scheduled"] == 2 and decision["shortfall"] == 1


def test_other_deployments_in_the_summary_consume_capacity() -> None:
    other = deployment("z", replicas=2, selectors=[MEM20], namespace="else")
    theirs = list(own_replicas(other, [published("a", 2, [])]).values())
    md = deployment("m", replicas=1, selectors=[MEM20])
    placed, seen = run_place(md, {}, store([published("a", 2, theirs),
                                            published("b", 2, [])], []))
    assert "replicas" not in seen[-1]
    assert [r["cluster"] for r in placed.context["modelplane.ai/placement"]["replicas"]] == ["b"]


def test_a_candidate_cluster_without_the_summary_falls_back_to_every_replica() -> None:
    md = deployment("m", replicas=1, selectors=[MEM20])
    _, seen = run_place(md, {}, store([published("a", 2, []), published("b", 2, None)], []))
    assert "replicas" in seen[-1]


def test_a_cluster_that_cannot_take_replicas_does_not_force_the_fallback() -> None:
    md = deployment("m", replicas=1, selectors=[MEM20])
    _, seen = run_place(md, {}, store([published("a", 2, []),
                                       published("b", 2, None, ready=False)], []))
    assert "replicas" not in seen[-1]
