"""End to end through `modelplane render`: the quickstart places, an invalid edit keeps running."""

from __future__ import annotations

import json
from pathlib import Path

from modelplane.render import render_fleet

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_places_qwen_demo_on_starter_gpu_l4() -> None:
    fleet = render_fleet([REPO / "examples" / "quickstart"])
    md = fleet.get("ModelDeployment", "qwen-demo", "ml-team")
    assert md is not None
    st = md["status"]
    assert st["scheduledReplicas"] == 1 and st["replicas"] == 1
    assert st["placements"][0]["cluster"] == "starter"
    assert st["placements"][0]["pools"] == [{"engine": "qwen", "member": "Standalone",
                                             "pool": "gpu-l4"}]
    reps = fleet.of_kind("ModelReplica")
    assert [r["spec"]["cluster"] for r in reps] == ["starter"]
    cond = {c["type"]: c for c in st["conditions"]}
    assert cond["ReplicasScheduled"]["status"] == "True"


def test_invalid_cel_edit_in_a_rendered_fleet_keeps_running_replicas(tmp_path: Path) -> None:
    fleet = render_fleet([REPO / "examples" / "quickstart"])
    before = sorted(r["metadata"]["name"] for r in fleet.of_kind("ModelReplica"))
    state = [o for o in fleet.objects() if o["kind"] != "CompositeResourceDefinition"]
    for o in state:
        if o["kind"] == "ModelDeployment":
            dev = o["spec"]["engines"][0]["members"][0]["nodeSelector"]["devices"][0]
            dev["selectors"] = [{"cel": 'device.capacity["gpu.nvidia.com"].memory >'}]
            o["spec"]["replicas"] = 2
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(state))
    again = render_fleet([edited])
    assert sorted(r["metadata"]["name"] for r in again.of_kind("ModelReplica")) == before
    md = again.get("ModelDeployment", "qwen-demo", "ml-team")
    cond = {c["type"]: c for c in md["status"]["conditions"]}  # type: ignore[index]
    assert cond["ReplicasScheduled"]["reason"] == "InvalidSelector"
    assert "selectors[0].cel" in cond["ReplicasScheduled"]["message"]


def test_multi_cloud_chat_small_ends_up_spread_across_regions() -> None:
    """chat-small first lands where a cluster is Ready first; rebalancing then spreads it."""
    fleet = render_fleet([REPO / "examples" / "multi-cloud"])
    md = fleet.get("ModelDeployment", "chat-small", "ml-team")
    assert md is not None
    clusters = sorted(p["cluster"] for p in md["status"]["placements"])
    assert clusters == ["eks-eu", "gke-us", "onprem"]  # one per modelplane.ai/region
    reps = [r for r in fleet.of_kind("ModelReplica") if r["spec"]["deployment"] == "chat-small"]
    assert sorted(r["spec"]["cluster"] for r in reps) == clusters  # the movers are gone
