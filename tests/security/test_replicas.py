"""Only ModelReplicas a ModelDeployment of their namespace composed count (docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.placement.compact_ledger import allocation_summary, honoured
from modelplane.steps.modelreplica.compose import compose

from tests.placement.fleet import MEM20, deployment
from tests.placement.test_step import fleet_store, other_replica, run
from tests.results import condition
from tests.workloads.fixtures import replica, request

REPO = Path(__file__).resolve().parents[2]


def _forge(change: str) -> dict[str, Any]:
    """The replica fixture (composed by ModelDeployment qwen-demo) with one forgery."""
    mr = replica()
    meta = mr["metadata"]
    ref = meta["ownerReferences"][0]
    if change == "hand-made":
        del meta["ownerReferences"]
        del meta["labels"]["crossplane.io/composite"]
    elif change == "not controller":
        ref["controller"] = False
    elif change == "owned by another kind":
        ref["kind"] = "ModelService"
    elif change == "owned by another group":
        ref["apiVersion"] = "example.com/v1"
    elif change == "no composite label":
        del meta["labels"]["crossplane.io/composite"]
    elif change == "spec.deployment names another deployment":
        mr["spec"]["deployment"] = "other"
    return mr


FORGERIES = ["hand-made", "not controller", "owned by another kind", "owned by another group",
             "no composite label",
             "spec.deployment names another deployment"]


def test_a_composed_replica_is_honoured() -> None:
    assert honoured(replica()) is None
    assert "workload-qwen" in compose(request(replica())).desired


@pytest.mark.parametrize("change", FORGERIES)
def test_a_replica_not_composed_by_its_deployment_composes_nothing(change: str) -> None:
    mr = _forge(change)
    # Even a 64-GPU claim on a pool that has 3: nothing reaches the cluster.
    mr["spec"]["engines"][0]["members"][0]["devices"] = [
        {"name": "gpu", "deviceClassName": "gpu.nvidia.com", "count": 64}]
    res = compose(request(mr))
    assert res.desired == {}
    cond = condition(res, "Resolved")
    assert (cond.status, cond.reason) == ("False", "NotComposed")


@pytest.mark.parametrize("change", FORGERIES)
def test_a_forged_replica_never_enters_the_compact_ledger(change: str) -> None:
    assert allocation_summary([_forge(change)]) == {}
    assert allocation_summary([replica()]) != {}


def test_a_hand_made_replica_never_enters_the_full_ledger() -> None:
    md = deployment("m", replicas=4, selectors=[MEM20])
    squatters = [other_replica(f"z-{i}", composed=False, gpus=1) for i in range(2)]
    _, composed, _ = run(md, {}, fleet_store(squatters))
    assert composed.status["scheduledReplicas"] == 4  # the squatters took nothing
    honest = [other_replica(f"z-{i}", composed=True) for i in range(2)]
    _, composed, _ = run(md, {}, fleet_store(honest))
    assert composed.status["scheduledReplicas"] == 2


def test_tenants_can_read_but_not_write_modelreplicas() -> None:
    roles = list(yaml.safe_load_all((REPO / "package" / "tenant-rbac.yaml").read_text()))
    for role in roles:
        for rule in role["rules"]:
            if "modelreplicas" in rule["resources"]:
                assert set(rule["verbs"]) == {"get", "list", "watch"}, role["metadata"]["name"]
            assert not any(r.endswith("/status") for r in rule["resources"])
    edit = next(r for r in roles if r["metadata"]["name"] == "modelplane:aggregate-to-edit")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    writable = {res for rule in edit["rules"] if "create" in rule["verbs"]
                for res in rule["resources"]}
    assert writable == {"modeldeployments", "modelservices", "modelendpoints", "modelcaches"}


def test_a_replica_of_a_nested_deployment_carries_the_roots_label_and_counts() -> None:
    # Crossplane copies the root composite's name down the tree: a ModelDeployment composed by
    # an InferenceTicket gives its ModelReplicas the ticket's name in crossplane.io/composite.
    from modelplane.contract.ownership import not_composed_by

    replica = {"metadata": {"name": "r", "namespace": "team",
                            "labels": {"crossplane.io/composite": "coder-ticket"},
                            "ownerReferences": [{"apiVersion": "modelplane.ai/v1alpha1",
                                                 "kind": "ModelDeployment", "name": "coder",
                                                 "uid": "u", "controller": True}]}}
    assert not_composed_by(replica, "ModelDeployment") is None

