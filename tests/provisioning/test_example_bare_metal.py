"""examples/bare-metal: Existing clusters written the v0.1 way behind a MetalLB gateway."""

from __future__ import annotations

import ipaddress
from typing import Any

from modelplane.validate import validate_paths

from tests.conformance import problems, require_shared
from tests.provisioning.test_render import ROOT, by_kind, composed_by, fleet, ready

POOL = ipaddress.ip_network("172.18.255.200/29")  # holds the example's first addresses


def composed(f: Any) -> list[dict[str, Any]]:
    """Every object a function composed of an upstream kind (our own kinds are the XRDs')."""
    return [o for o in f.objects()
            if "crossplane.io/composite" in ((o.get("metadata") or {}).get("labels") or {})
            and not o["apiVersion"].startswith("modelplane.ai/")]


def test_bare_metal_manifests_validate_as_written() -> None:
    assert validate_paths([str(ROOT / "examples" / "bare-metal")]) == []


def test_existing_racks_are_reached_the_v01_way() -> None:
    f = fleet("bare-metal")
    for name, storage in (("rack-a", "cephfs"), ("rack-b", "nfs-rwx")):
        xr = f.get("InferenceCluster", name)
        assert ready(xr), name
        assert xr is not None and xr["status"]["storageClassName"] == storage
        pcs = by_kind(composed_by(f, name), "ClusterProviderConfig")
        assert {pc["apiVersion"].split("/")[0] for pc in pcs} == {
            "kubernetes.m.crossplane.io", "helm.m.crossplane.io"}
        for pc in pcs:
            assert pc["spec"]["credentials"]["secretRef"] == {
                "name": f"{name}-kubeconfig", "namespace": "modelplane-system",
                "key": "kubeconfig"}
            identity = pc["spec"].get("identity")
            if name == "rack-a":
                assert identity is None
            else:
                assert identity["secretRef"] == {"name": "rack-b-identity",
                                                 "namespace": "modelplane-system",
                                                 "key": "private_key"}
    # Fixed-size pools: nodeCount is the ceiling placement counts against.
    pools = {p["name"]: p["nodeCeiling"]
             for n in ("rack-a", "rack-b")
             for p in f.get("InferenceCluster", n)["status"]["pools"]}  # type: ignore[index]
    assert pools == {"l40s": 3, "a100": 1}


def test_replicas_are_placed_on_the_racks_and_ready() -> None:
    f = fleet("bare-metal")
    replicas = [o for o in f.objects() if o["kind"] == "ModelReplica"]
    assert len(replicas) == 3
    assert all(ready(r) for r in replicas)
    clusters = sorted(r["spec"]["cluster"] for r in replicas)
    assert set(clusters) == {"rack-a", "rack-b"}  # spread across both racks


def test_the_gateway_address_comes_from_the_metallb_pool() -> None:
    f = fleet("bare-metal")
    gw = f.get("InferenceGateway", "default")
    assert ready(gw)
    assert gw is not None
    host = gw["status"]["address"].removeprefix("http://")
    assert ipaddress.ip_address(host) in POOL
    svc = f.get("ModelService", "qwen", "ml-team")
    assert svc is not None and svc["status"]["address"].startswith(gw["status"]["address"])
    objects = [o["spec"]["forProvider"]["manifest"] for o in f.objects()
               if o["kind"] == "Object"]
    [pool] = [m for m in objects if m["kind"] == "IPAddressPool"]
    assert pool["spec"]["addresses"] == ["172.18.255.200-172.18.255.250"]
    [l2] = [m for m in objects if m["kind"] == "L2Advertisement"]
    assert l2["spec"]["ipAddressPools"] == [pool["metadata"]["name"]]


def test_every_composed_object_conforms() -> None:
    require_shared()
    found = [p for o in composed(fleet("bare-metal"))
             for p in problems({k: v for k, v in o.items() if k != "status"})]
    assert found == []
