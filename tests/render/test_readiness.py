"""Ready means serving, end to end: each fleet is reconciled like Crossplane would (which derives
an XR's readiness from its composed resources unless the function sets it) and read the way a
user reads it: the Ready condition and the Argo CD health check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.render import Fleet, render_fleet

from tests.packaging.test_argocd import run_health

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"
Doc = dict[str, Any]


def ready(obj: Doc | None) -> str:
    assert obj is not None
    return next(c["status"] for c in obj["status"]["conditions"] if c["type"] == "Ready")


def reason(obj: Doc | None, type_: str) -> str:
    assert obj is not None
    return str(next(c["reason"] for c in obj["status"]["conditions"] if c["type"] == type_))


def quickstart_with(tmp_path: Path, edit: Callable[[Doc], None]) -> Fleet:
    """The quickstart with its ModelDeployment edited before anything is created."""
    docs = [d for d in yaml.safe_load_all((QUICKSTART / "model.yaml").read_text()) if d]
    for d in docs:
        if d["kind"] == "ModelDeployment":
            edit(d)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump_all(docs))
    return render_fleet([QUICKSTART / "platform.yaml", tmp_path / "model.yaml"])


def deployment(fleet: Fleet) -> Doc | None:
    return fleet.get("ModelDeployment", "qwen-demo", "ml-team")


def test_the_quickstart_is_ready_everywhere_and_argo_says_healthy() -> None:
    fleet = render_fleet([QUICKSTART])
    ours = [o for o in fleet.objects() if o["apiVersion"].startswith("modelplane.ai/")]
    assert {o["kind"] for o in ours} >= {"ModelDeployment", "ModelReplica", "ModelService",
                                         "InferenceCluster", "InferenceGateway"}
    assert {f"{o['kind']}/{o['metadata']['name']}": ready(o) for o in ours} == {
        f"{o['kind']}/{o['metadata']['name']}": "True" for o in ours}
    assert {run_health(o)["status"] for o in ours} == {"Healthy"}


def test_a_deployment_not_fully_placed_is_not_ready(tmp_path: Path) -> None:
    # The starter pool has room for 2 single-GPU replicas: 2 of 5 run and are Ready.
    fleet = quickstart_with(tmp_path, lambda d: d["spec"].update(replicas=5))
    md = deployment(fleet)
    assert md is not None and md["status"]["readyReplicas"] == 2
    assert ready(md) == "False"
    assert reason(md, "ReplicasScheduled") == "Unschedulable"
    hs = run_health(md)
    assert hs["status"] == "Degraded" and "2/5 replicas scheduled" in hs["message"]
    # What does run still serves: the service routes to its ready primaries.
    assert ready(fleet.get("ModelService", "qwen", "ml-team")) == "True"


def _selector(cel: str) -> Callable[[Doc], None]:
    def edit(d: Doc) -> None:
        d["spec"]["engines"][0]["members"][0]["nodeSelector"]["devices"][0]["selectors"] = [
            {"cel": cel}]
    return edit


@pytest.mark.parametrize("cel", ["1", 'device.capacity["gpu.nvidia.com"].memory >'],
                         ids=["not_bool", "syntax"])
def test_a_broken_selector_is_never_ready(tmp_path: Path, cel: str) -> None:
    fleet = quickstart_with(tmp_path, _selector(cel))
    md = deployment(fleet)
    assert fleet.of_kind("ModelReplica") == []
    assert ready(md) == "False"
    assert reason(md, "ReplicasScheduled") == "InvalidSelector"
    assert run_health(md)["status"] == "Degraded"  # type: ignore[arg-type]
    # Nothing to route to yet: the service is waiting, not broken.
    svc = fleet.get("ModelService", "qwen", "ml-team")
    assert ready(svc) == "False"
    assert run_health(svc)["status"] == "Progressing"  # type: ignore[arg-type]


def test_a_missing_cache_is_never_ready(tmp_path: Path) -> None:
    fleet = quickstart_with(tmp_path, lambda d: d["spec"].update(
        modelCacheRef={"name": "no-such-cache"}))
    md = deployment(fleet)
    assert ready(md) == "False"
    assert reason(md, "ReplicasScheduled") == "ModelCacheMissing"
    hs = run_health(md)  # type: ignore[arg-type]
    assert hs["status"] == "Degraded" and "no-such-cache" in hs["message"]


def test_zero_replicas_is_ready_by_request(tmp_path: Path) -> None:
    fleet = quickstart_with(tmp_path, lambda d: d["spec"].update(replicas=0))
    md = deployment(fleet)
    assert ready(md) == "True"
    assert reason(md, "ReplicasReady") == "ScaledToZero"
    assert run_health(md)["status"] == "Healthy"  # type: ignore[arg-type]


def test_serving_from_fallback_is_serving_but_not_ready(tmp_path: Path) -> None:
    src = REPO / "examples" / "canary-fallback"
    docs = [d for d in yaml.safe_load_all((src / "model.yaml").read_text()) if d]
    for d in docs:
        if d["kind"] == "ModelDeployment":
            d["spec"]["replicas"] = 0  # no primary replica at all
    (tmp_path / "model.yaml").write_text(yaml.safe_dump_all(docs))
    fleet = render_fleet([src / "platform.yaml", src / "fallback.yaml", tmp_path / "model.yaml"])
    services = fleet.of_kind("ModelService")
    assert services
    for svc in services:
        assert reason(svc, "Serving") == "ServingFromFallback"
        assert ready(svc) == "False"
        assert run_health(svc)["status"] == "Degraded"
