"""examples/gitops: Argo CD health checks (run with a real Lua), sync options, sync waves and
ignoreDifferences for autoscaled replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "examples" / "gitops"
HEALTH_PREFIX = "resource.customizations.health.modelplane.ai_"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def our_kinds() -> list[str]:
    return sorted(yaml.safe_load(f.read_text())["spec"]["names"]["kind"]
                  for f in (REPO / "apis").glob("*/definition.yaml"))


def health_scripts() -> dict[str, str]:
    cm = _docs(GITOPS / "argocd-cm.yaml")[0]
    return {k.removeprefix(HEALTH_PREFIX): v for k, v in cm["data"].items()
            if k.startswith(HEALTH_PREFIX)}


def to_lua(lua: Any, value: Any) -> Any:
    """JSON-like Python data -> Lua tables, as Argo CD hands `obj` to a health script."""
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def run_health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, obj)
    hs = lua.execute(script)
    return {"status": hs["status"], "message": hs["message"]}


def xr(kind: str, conditions: list[dict[str, str]] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "modelplane.ai/v1alpha1", "kind": kind,
                           "metadata": {"name": "x"}, "spec": {}}
    if conditions is not None:
        obj["status"] = {"conditions": conditions}
    return obj


READY = {"type": "Ready", "status": "True", "reason": "Available"}
SYNCED = {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"}
CASES = [
    # (name, conditions, expected status, text the message must contain)
    ("ready_is_healthy", [SYNCED, READY], "Healthy", "Ready"),
    ("synced_false_is_degraded", [
        {"type": "Synced", "status": "False", "reason": "ReconcileError",
         "message": "cannot compose resources"}, READY],
     "Degraded", "ReconcileError"),
    ("no_conditions_is_progressing", None, "Progressing", "Waiting"),
    ("empty_status_is_progressing", [], "Progressing", "Waiting"),
    ("ready_false_is_progressing_with_its_reason", [
        SYNCED, {"type": "Ready", "status": "False", "reason": "Creating",
                 "message": "Unready resources: \"cluster\""}],
     "Progressing", "Ready=False (Creating): Unready resources"),
    ("ready_with_an_unmet_modelplane_condition_says_so", [
        SYNCED, READY, {"type": "Scheduled", "status": "False", "reason": "Unschedulable",
                        "message": "1 replica does not fit"}],
     "Healthy", "Scheduled=False (Unschedulable)"),
    ("unknown_ready_is_progressing", [
        SYNCED, {"type": "Ready", "status": "Unknown", "reason": "Creating"}],
     "Progressing", "Ready=Unknown"),
]


def test_there_is_a_health_check_for_every_modelplane_kind() -> None:
    assert sorted(health_scripts()) == our_kinds()


@pytest.mark.parametrize("kind", our_kinds())
@pytest.mark.parametrize(("name", "conditions", "status", "text"), CASES,
                         ids=[c[0] for c in CASES])
def test_health_check(kind: str, name: str, conditions: list[dict[str, str]] | None,
                      status: str, text: str) -> None:
    hs = run_health(health_scripts()[kind], xr(kind, conditions))
    assert hs["status"] == status
    assert text in hs["message"]


def test_argocd_cm_tracks_by_annotation() -> None:
    cm = _docs(GITOPS / "argocd-cm.yaml")[0]
    assert (cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("argocd-cm", "argocd")
    assert cm["data"]["application.resourceTrackingMethod"] == "annotation"


def application() -> dict[str, Any]:
    return next(d for d in _docs(GITOPS / "application.yaml") if d["kind"] == "Application")


def test_application_skips_dry_run_for_kinds_the_configuration_installs() -> None:
    options = application()["spec"]["syncPolicy"]["syncOptions"]
    assert "SkipDryRunOnMissingResource=true" in options


def test_application_leaves_autoscaled_replicas_alone_on_diff_and_sync() -> None:
    app = application()["spec"]
    assert {"group": "modelplane.ai", "kind": "ModelDeployment",
            "jsonPointers": ["/spec/replicas"]} in app["ignoreDifferences"]
    assert "RespectIgnoreDifferences=true" in app["syncPolicy"]["syncOptions"]


def test_application_points_at_the_fleet_directory() -> None:
    assert (REPO / application()["spec"]["source"]["path"]).is_dir()


PLATFORM = {"InferenceClass", "InferenceCluster", "InferenceGateway"}


def test_sync_waves_put_every_platform_kind_before_every_model_kind() -> None:
    waves: dict[str, list[int]] = {}
    for f in sorted((GITOPS / "fleet").glob("*.yaml")):
        for d in _docs(f):
            if d["apiVersion"].startswith("modelplane.ai/"):
                wave = int(d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
                waves.setdefault(d["kind"], []).append(wave)
    platform = [w for k, ws in waves.items() if k in PLATFORM for w in ws]
    models = [w for k, ws in waves.items() if k not in PLATFORM for w in ws]
    assert platform and models
    assert max(platform) < min(models)
    assert max(waves["InferenceClass"]) < min(waves["InferenceCluster"])


def test_the_configuration_syncs_before_any_modelplane_object() -> None:
    docs = [d for f in sorted((GITOPS / "fleet").glob("*.yaml")) for d in _docs(f)]
    conf = next(d for d in docs if d["kind"] == "Configuration")
    first = int(conf["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    ours = [int(d["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for d in docs
            if d["apiVersion"].startswith("modelplane.ai/")]
    assert first < min(ours)
