"""Regression tests for what the fault matrix and the fuzzer found, one per rule.

Each test replays one XR of a converged example fleet with one fault and pins the fix. Tests
marked xfail pin gaps in code another change owns (the `place` step); they turn green when
that is fixed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from modelplane.render import Fleet, render_fleet

from tests.reliability.harness import Outcome, Resolver, replay, store_resolver
from tests.reliability.test_fault_matrix import answer_altered, answer_empty, not_ready

REPO = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def fleets() -> dict[str, Fleet]:
    return {n: render_fleet([REPO / "examples" / n])
            for n in ("quickstart", "canary-fallback", "multi-node")}


def first(fleet: Fleet, kind: str) -> Obj:
    return copy.deepcopy(fleet.of_kind(kind)[0])


def run(fleet: Fleet, xr: Obj, resolve: Resolver | None = None,
        step: str | None = None) -> Outcome:
    out = replay(fleet, xr, resolve or store_resolver(fleet), only_step=step)
    assert out.fatal is None
    assert out.dropped == []
    return out


def reported(out: Outcome) -> str:
    return "\n".join(out.problems())


# -- fixed -----------------------------------------------------------------------------------------


def test_replica_pinned_to_an_unknown_pool_keeps_its_workloads_and_names_the_pool(
        fleets: dict[str, Fleet]) -> None:
    fleet = fleets["quickstart"]
    xr = first(fleet, "ModelReplica")
    xr["spec"]["engines"][0]["members"][0]["pool"] = "no-such-pool"
    out = run(fleet, xr)
    # The running Deployment keeps its old nodeSelector instead of going Pending.
    manifest = out.desired["workload-qwen"].resource["spec"]["forProvider"]["manifest"]
    selector = manifest["spec"]["template"]["spec"].get("nodeSelector", {})
    assert "no-such-pool" not in selector.values()
    assert "PoolNotFound" in reported(out)
    assert "spec.engines[0].members[0].pool 'no-such-pool'" in reported(out)


def test_replica_on_a_not_ready_cluster_says_so_and_keeps_running(
        fleets: dict[str, Fleet]) -> None:
    fleet = fleets["quickstart"]
    xr = first(fleet, "ModelReplica")
    out = run(fleet, xr, answer_altered("InferenceCluster", not_ready, store_resolver(fleet)))
    assert "InferenceCluster 'starter' (spec.cluster) is not Ready" in reported(out)
    assert sorted(out.desired) == sorted(out.observed)


def test_cache_copy_on_a_not_ready_cluster_is_kept_with_a_warning(
        fleets: dict[str, Fleet]) -> None:
    fleet = fleets["multi-node"]
    xr = first(fleet, "ModelCache")
    out = run(fleet, xr, answer_altered("InferenceCluster", not_ready, store_resolver(fleet)))
    assert "InferenceCluster 'h100-central': InferenceCluster is not Ready; its copy is kept" \
        in reported(out)


def test_cache_copy_on_a_vanished_cluster_is_kept_with_a_warning(
        fleets: dict[str, Fleet]) -> None:
    fleet = fleets["multi-node"]
    xr = first(fleet, "ModelCache")
    out = run(fleet, xr, answer_empty({"clusters"}, store_resolver(fleet)))
    assert "InferenceCluster 'h100-central' holds a copy of this cache but was not found" \
        in reported(out)


@pytest.mark.parametrize("group", [0, 1, 2])
def test_service_names_the_endpoint_group_that_selects_nothing(
        fleets: dict[str, Fleet], group: int) -> None:
    fleet = fleets["canary-fallback"]
    xr = first(fleet, "ModelService")
    out = run(fleet, xr, answer_empty({f"endpoints-{group}"}, store_resolver(fleet)))
    assert f"spec.endpoints[{group}].selector" in reported(out)
    assert "selects no ModelEndpoint in namespace 'ml-team'" in reported(out)


# -- gaps in the `place` step (owned by the placement change in flight) -------------------------


def _place(fleet: Fleet, resolve: Resolver) -> Outcome:
    return run(fleet, first(fleet, "ModelDeployment"), resolve, step="place")


def test_a_vanished_inference_class_is_reported_where_it_is_used(
        fleets: dict[str, Fleet]) -> None:
    # Placement reads the devices a cluster publishes for each pool, so a running deployment
    # does not depend on the class object; the InferenceCluster that names it reports it.
    fleet = fleets["quickstart"]
    vanish = answer_altered("InferenceClass", lambda _: None, store_resolver(fleet))
    assert _place(fleet, vanish).dropped == []
    out = run(fleet, first(fleet, "InferenceCluster"), vanish)
    assert out.dropped == []
    assert "gke-l4-1x" in reported(out) and "does not exist" in reported(out)


def test_deployment_reports_a_vanished_hosting_cluster(fleets: dict[str, Fleet]) -> None:
    fleet = fleets["quickstart"]
    out = _place(fleet, answer_empty({"cluster.starter"}, store_resolver(fleet)))
    assert "starter" in reported(out)


def test_deployment_reports_a_not_ready_hosting_cluster(fleets: dict[str, Fleet]) -> None:
    fleet = fleets["quickstart"]
    out = _place(fleet, answer_altered("InferenceCluster", not_ready, store_resolver(fleet)))
    assert "starter" in reported(out) and "ready" in reported(out).lower()

