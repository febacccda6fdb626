"""EFA devices in placement: the pods of a multi-node engine claim their node's EFA devices
beside their GPUs, and the ledger counts them like any other device."""

from __future__ import annotations

from typing import Any

from modelplane.contract.fabric import EFA_DEVICE_CLASS, EFA_DRIVER
from modelplane.placement.core import place
from modelplane.placement.model import ResolvedDevice

from tests.placement.fleet import cluster, deployment, fleet, klass, request


def efa_class(efa: int | None = 32) -> dict[str, Any]:
    cls = klass("p5", gpus=8, memory="80Gi")
    if efa is not None:
        cls["spec"]["devices"].append({"name": "efa", "driver": EFA_DRIVER,
                                       "deviceClassName": EFA_DEVICE_CLASS, "count": efa})
    return cls


def gpus(n: int) -> dict[str, Any]:
    return {"devices": [{"name": "gpu", "count": n}]}


def multi_node(name: str = "big", replicas: int = 1, gpu: int = 4,
               extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    md = deployment(name=name, replicas=replicas)
    selector = {"devices": [{"name": "gpu", "count": gpu}, *(extra or [])]}
    md["spec"]["engines"][0]["members"] = [
        {"role": "Leader", "template": {"spec": {}}, "nodeSelector": selector},
        {"role": "Worker", "worker": {"nodes": 1}, "template": {"spec": {}},
         "nodeSelector": selector}]
    return md


def claims(decision: Any) -> dict[str, tuple[ResolvedDevice, ...]]:
    return {a.member: a.devices for a in decision.replicas[0].assignments}


def test_leader_and_worker_pods_claim_all_of_their_nodes_efa_devices_beside_the_gpus() -> None:
    d = place(request(multi_node()), fleet([cluster("a", [("p", "p5", 2)])], [efa_class()]), [])
    got = claims(d)
    for role in ("Leader", "Worker"):
        assert ResolvedDevice("efa", EFA_DEVICE_CLASS, 32) in got[role]
        assert [x.name for x in got[role]] == ["gpu", "efa"]


def test_a_single_node_engine_claims_no_efa() -> None:
    d = place(request(deployment(gpus=8)),
              fleet([cluster("a", [("p", "p5", 1)])], [efa_class()]), [])
    assert [x.name for x in d.replicas[0].assignments[0].devices] == ["gpu"]


def test_efa_devices_are_counted_so_two_groups_cannot_share_a_nodes_fabric() -> None:
    # Two nodes of 8 GPUs hold four 4-GPU pods, but each pod takes its node's 32 EFA devices:
    # only one leader + worker group fits.
    two_nodes = [cluster("a", [("p", "p5", 2)])]
    with_efa = place(request(multi_node(replicas=2)), fleet(two_nodes, [efa_class()]), [])
    assert len(with_efa.replicas) == 1 and with_efa.shortfall == 1
    assert "efa" in with_efa.unschedulable[0].message
    without = place(request(multi_node(replicas=2)), fleet(two_nodes, [efa_class(None)]), [])
    assert len(without.replicas) == 2


def test_a_member_that_requests_efa_by_name_gets_what_it_asked_for() -> None:
    md = multi_node(replicas=2, extra=[{"name": "efa", "count": 16}])
    d = place(request(md), fleet([cluster("a", [("p", "p5", 2)])], [efa_class()]), [])
    assert len(d.replicas) == 2  # 16 + 16 EFA devices per node
    assert ResolvedDevice("efa", EFA_DEVICE_CLASS, 16) in claims(d)["Leader"]
