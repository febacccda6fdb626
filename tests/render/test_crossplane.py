"""Render follows Crossplane v2's composite reconciler where it differs from a naive one.

Each test pins one behaviour of Crossplane v2.3 (internal/controller/apiextensions/composite and
the API server it writes to) that render once modelled differently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.render import render_fleet

from tests.render import test_steps  # noqa: F401  (registers the test-only steps)
from tests.render.test_engine import FIXTURES, write_fleet

XRDS = FIXTURES / "xrds.yaml"


def rerender(tmp_path: Path, objects: list[dict[str, Any]], **kw: Any) -> Any:
    state = [o for o in objects if o["kind"] != "CompositeResourceDefinition"]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(state))
    return render_fleet([edited], extra=[XRDS], **kw)


def edit(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def synced(obj: dict[str, Any] | None) -> dict[str, Any]:
    assert obj is not None
    found = [c for c in obj["status"]["conditions"] if c["type"] == "Synced"]
    assert found, f"no Synced condition on {obj['metadata']['name']}"
    return found[0]


def test_status_is_the_pipelines_full_intent_so_a_field_no_step_writes_disappears(
        tmp_path: Path) -> None:
    fleet = render_fleet([write_fleet(tmp_path, {"children": [], "extraStatus": "here"})],
                         extra=[XRDS])
    assert fleet.get("Parent", "p", "team")["status"]["extra"] == "here"  # type: ignore[index]
    state = fleet.objects()
    del edit(state, "Parent", "p")["spec"]["extraStatus"]
    parent = rerender(tmp_path, state).get("Parent", "p", "team")
    assert "extra" not in parent["status"]
    assert parent["status"]["picked"] == ["chosen"]  # what the pipeline still writes stays


def test_composed_objects_are_merged_by_field_ownership_so_others_labels_survive(
        tmp_path: Path) -> None:
    fleet = render_fleet([write_fleet(tmp_path, {"children": ["a"]})], extra=[XRDS])
    state = fleet.objects()
    edit(state, "Child", "p-a")["metadata"]["labels"]["team.example.com/cost-center"] = "42"
    child = rerender(tmp_path, state).get("Child", "p-a", "team")
    assert child["metadata"]["labels"]["team.example.com/cost-center"] == "42"
    assert child["spec"] == {"value": "a"}


def test_a_delete_refused_by_a_usage_fails_that_xrs_reconcile(tmp_path: Path) -> None:
    fleet = render_fleet([write_fleet(tmp_path, {"children": ["a", "b"], "protect": ["a"]})],
                         extra=[XRDS])
    state = fleet.objects()
    edit(state, "Parent", "p")["spec"]["children"] = ["b"]
    again = rerender(tmp_path, state)
    assert again.get("Child", "p-a", "team") is not None  # the webhook refused the delete
    cond = synced(again.get("Parent", "p", "team"))
    assert cond["status"] == "False" and cond["reason"] == "ReconcileError"
    assert "cannot delete composed resource 'child-a'" in cond["message"]
    assert "Usage 'p-protects-a'" in cond["message"]


def test_a_delete_goes_through_once_the_usage_is_gone(tmp_path: Path) -> None:
    fleet = render_fleet([write_fleet(tmp_path, {"children": ["a", "b"], "protect": ["a"]})],
                         extra=[XRDS])
    state = fleet.objects()
    spec = edit(state, "Parent", "p")["spec"]
    spec["children"], spec["protect"] = ["b"], []
    again = rerender(tmp_path, state)
    assert again.get("Child", "p-a", "team") is None
    assert synced(again.get("Parent", "p", "team"))["status"] == "True"


def test_a_composed_object_in_a_missing_namespace_fails_the_pass(tmp_path: Path) -> None:
    d = tmp_path / "fleet"
    d.mkdir()
    (d / "root.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "test.modelplane.ai/v1", "kind": "Root", "metadata": {"name": "r"},
         "spec": {"namespace": "absent"}}))
    fleet = render_fleet([d], extra=[XRDS])
    assert fleet.get("ConfigMap", "r", "absent") is None
    cond = synced(fleet.get("Root", "r"))
    assert cond["status"] == "False"
    assert 'cannot apply composed resource \'config\': namespaces "absent" not found' in (
        cond["message"])


def test_a_namespace_composed_alongside_lets_a_later_pass_succeed(tmp_path: Path) -> None:
    d = tmp_path / "fleet"
    d.mkdir()
    (d / "root.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "test.modelplane.ai/v1", "kind": "Root", "metadata": {"name": "r"},
         "spec": {"namespace": "made", "createNamespace": True}}))
    fleet = render_fleet([d], extra=[XRDS], seed=3)
    assert fleet.get("ConfigMap", "r", "made") is not None
    assert synced(fleet.get("Root", "r"))["status"] == "True"


def test_a_namespaced_xr_cannot_compose_a_cluster_scoped_kind(tmp_path: Path) -> None:
    fleet = render_fleet([write_fleet(tmp_path, {"children": ["a"], "clusterScoped": True})],
                         extra=[XRDS])
    assert fleet.get("Namespace", "p-ns", "team") is None
    assert fleet.get("Namespace", "p-ns") is None
    assert fleet.get("Child", "p-a", "team") is None  # the whole reconcile failed
    cond = synced(fleet.get("Parent", "p", "team"))
    assert cond["status"] == "False"
    assert ("cannot apply cluster scoped composed resource 'namespace' (a Namespace named "
            "p-ns) for a namespaced composite resource") in cond["message"]


def test_nested_composed_resources_carry_the_root_xrs_name_as_crossplane_sets_it(
        tmp_path: Path) -> None:
    fleet = render_fleet([write_fleet(tmp_path, {"children": ["a"]})], extra=[XRDS])
    parent, child = fleet.get("Parent", "p", "team"), fleet.get("Child", "p-a", "team")
    config = fleet.get("ConfigMap", "p-a-config", "team")
    assert parent["metadata"]["labels"]["crossplane.io/composite"] == "p"  # type: ignore[index]
    assert child["metadata"]["labels"]["crossplane.io/composite"] == "p"  # type: ignore[index]
    assert config["metadata"]["labels"]["crossplane.io/composite"] == "p"  # type: ignore[index]
    # ...while the controller reference names the XR that composed it.
    assert config["metadata"]["ownerReferences"][0]["name"] == "p-a"  # type: ignore[index]
    assert not any(k.startswith("crossplane.io/claim-")
                   for k in config["metadata"]["labels"])  # type: ignore[index]


def test_a_response_over_4_mib_fails_the_reconcile_as_crossplanes_client_refuses_it(
        tmp_path: Path) -> None:
    fleet = render_fleet([write_fleet(tmp_path, {"children": [], "blobBytes": 5 * 2**20})],
                         extra=[XRDS])
    parent = fleet.get("Parent", "p", "team")
    cond = synced(parent)
    assert cond["status"] == "False"
    assert "RESOURCE_EXHAUSTED" in cond["message"]
    assert "blob" not in (parent or {}).get("status", {})


def test_a_response_under_4_mib_is_accepted(tmp_path: Path) -> None:
    fleet = render_fleet([write_fleet(tmp_path, {"children": [], "blobBytes": 3 * 2**20})],
                         extra=[XRDS])
    assert synced(fleet.get("Parent", "p", "team"))["status"] == "True"


def _two_parents(tmp_path: Path) -> Path:
    d = write_fleet(tmp_path, {"children": [], "offer": True}, extra=[
        {"apiVersion": "test.modelplane.ai/v1", "kind": "Parent",
         "metadata": {"name": "q", "namespace": "team"}, "spec": {"children": []}}])
    return d


def test_reconciles_in_one_wave_read_the_rounds_snapshot_not_each_others_writes(
        tmp_path: Path) -> None:
    d = _two_parents(tmp_path)
    serial = render_fleet([d], extra=[XRDS])
    concurrent = render_fleet([d], extra=[XRDS], concurrency=2)
    # Serially, q runs after p in round 1 and reads the ConfigMap p just composed; reconciled
    # concurrently from one snapshot (Crossplane's cache), it does not see it that round.
    assert serial.get("Parent", "q", "team")["status"]["firstPicked"] == [  # type: ignore[index]
        "chosen", "p-offer"]
    assert concurrent.get("Parent", "q", "team")["status"]["firstPicked"] == [  # type: ignore[index]
        "chosen"]
    # Both converge to the same state once the requeue refreshes the required resources.
    assert concurrent.get("Parent", "q", "team")["status"]["picked"] == [  # type: ignore[index]
        "chosen", "p-offer"]


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _outcome(fleet: Any) -> tuple[dict[str, str], list[Any]]:
    placements = {f"{r['metadata']['namespace']}/{r['metadata']['name']}": r["spec"]["cluster"]
                  for r in fleet.of_kind("ModelReplica")}
    routes = sorted((r["metadata"]["namespace"], r["metadata"]["name"], json.dumps(
        r["spec"], sort_keys=True)) for r in fleet.of_kind("HTTPRoute"))
    return placements, routes


@pytest.mark.parametrize("example", ["quickstart", "canary-fallback"])
def test_examples_converge_alike_when_reconciled_concurrently_in_shuffled_order(
        example: str) -> None:
    serial = render_fleet([EXAMPLES / example])
    concurrent = render_fleet([EXAMPLES / example], concurrency=4, seed=11, max_rounds=60)
    assert _outcome(concurrent) == _outcome(serial)
    unsynced = [o["metadata"]["name"] for o in concurrent.objects()
                for c in (o.get("status") or {}).get("conditions") or []
                if c["type"] == "Synced" and c["status"] != "True"]
    assert unsynced == []


@pytest.mark.parametrize("seed", [1, 2])
def test_dra_admission_closes_the_stale_ledger_race_under_concurrent_reconciles(
        tmp_path: Path, seed: int) -> None:
    """Two deployments placed from one snapshot both claim the last node; admission refuses
    one pod, and the loser explains its shortfall instead of overcommitting the node."""
    from modelplane.common import conditions

    from tests.placement.test_admission import _race_fleet, assert_no_node_overcommitted

    fleet = render_fleet([_race_fleet(tmp_path)], concurrency=4, seed=seed, max_rounds=60)
    assert_no_node_overcommitted(fleet)
    (rep,) = fleet.of_kind("ModelReplica")
    assert conditions.is_true(rep, "Ready")
    loser = next(md for md in fleet.of_kind("ModelDeployment")
                 if md["metadata"]["name"] != rep["spec"]["deployment"])
    assert loser["status"]["scheduledReplicas"] == 0
    assert conditions.get(loser, "ReplicasScheduled")["reason"] == "Unschedulable"  # type: ignore[index]
