"""End to end: the example fleets render through the real function server and conform."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from modelplane.render import Fleet, render_fleet

from tests.conformance import problems, require_shared

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def fleet(example: str) -> Fleet:
    return render_fleet([ROOT / "examples" / example])


def composed_by(f: Fleet, cluster: str) -> list[dict[str, Any]]:
    return [o for o in f.objects()
            if (o["metadata"].get("labels") or {}).get("crossplane.io/composite") == cluster
            and (o["metadata"].get("ownerReferences") or [{}])[0].get("kind")
            == "InferenceCluster"]


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def ready(obj: dict[str, Any] | None) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in ((obj or {}).get("status") or {}).get("conditions") or [])


def test_quickstart_provisions_the_seed_cluster_on_gke() -> None:
    f = fleet("quickstart")
    objs = composed_by(f, "starter")
    [gke] = by_kind(objs, "Cluster")
    assert gke["apiVersion"] == "container.gcp.m.upbound.io/v1beta1"
    assert gke["spec"]["forProvider"]["project"] == "my-gcp-project"
    assert gke["spec"]["forProvider"]["location"] == "us-central1"
    [pool] = [p for p in by_kind(objs, "NodePool")
              if p["spec"]["forProvider"]["nodeConfig"].get("labels", {}).get(
                  "modelplane.ai/pool") == "gpu-l4"]
    fp = pool["spec"]["forProvider"]
    assert fp["nodeConfig"]["machineType"] == "g2-standard-8"
    assert [(a["type"], a["count"]) for a in fp["nodeConfig"]["guestAccelerator"]] == [
        ("nvidia-l4", 1)]
    assert (fp["autoscaling"]["totalMinNodeCount"], fp["autoscaling"]["totalMaxNodeCount"]) == (
        1, 2)
    releases = {r["spec"]["forProvider"]["chart"]["name"] for r in by_kind(objs, "Release")}
    assert releases == {"nvidia-dra-driver-gpu", "lws", "gateway-helm"}


def test_quickstart_cluster_becomes_ready_and_publishes_its_pool() -> None:
    starter = fleet("quickstart").get("InferenceCluster", "starter")
    assert starter is not None and ready(starter)
    status = starter["status"]
    [pool] = status["pools"]
    assert pool["name"] == "gpu-l4" and pool["className"] == "gke-l4-1x"
    assert pool["nodeCeiling"] == 2 and pool["ready"] is True
    assert pool["devices"][0]["driver"] == "gpu.nvidia.com"
    assert status["gateway"]["address"]
    assert status["providerConfigRef"]["kubernetes"]["name"] == "modelplane-cluster-starter"
    assert status["storageClassName"] == "standard-rwx"


def test_quickstart_class_is_ready_with_devices() -> None:
    cls = fleet("quickstart").get("InferenceClass", "gke-l4-1x")
    assert ready(cls)
    assert cls is not None and cls["status"]["devices"][0]["deviceClassName"] == "gpu.nvidia.com"


def test_multi_cloud_fleet_renders_ready_and_conformant() -> None:
    require_shared()
    f = fleet("multi-cloud")
    for name in ("gke-us", "eks-eu", "onprem"):
        xr = f.get("InferenceCluster", name)
        assert ready(xr), name
        objs = composed_by(f, name)
        assert objs
        found = [p for o in objs for p in problems({k: v for k, v in o.items()
                                                    if k != "status"})]
        assert found == [], name
    addresses = {f.get("InferenceCluster", n)["status"]["gateway"]["address"]  # type: ignore[index]
                 for n in ("gke-us", "eks-eu", "onprem")}
    assert len(addresses) == 3  # each cluster is reached through its own gateway


def test_byo_example_installs_only_the_stack() -> None:
    f = fleet("byo")
    lab = f.get("InferenceCluster", "lab")
    assert ready(lab)
    kinds = {o["kind"] for o in composed_by(f, "lab")}
    assert kinds <= {"ClusterProviderConfig", "Release", "Object", "Usage", "ClusterUsage",
                     "ConfigMap"}
