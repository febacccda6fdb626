"""examples/gitops: the Argo CD health check (run with a real Lua), sync options, sync waves and
ignoreDifferences for autoscaled replicas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime
from modelplane.render.summary import INFORMATIONAL

REPO = Path(__file__).resolve().parents[2]
GITOPS = REPO / "examples" / "gitops"
GROUP_KEY = "modelplane.ai/*"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def our_kinds() -> list[str]:
    return sorted(yaml.safe_load(f.read_text())["spec"]["names"]["kind"]
                  for f in (REPO / "apis").glob("*/definition.yaml"))


def customizations() -> dict[str, Any]:
    cm = _docs(GITOPS / "argocd-cm.yaml")[0]
    parsed: dict[str, Any] = yaml.safe_load(cm["data"]["resource.customizations"])
    return parsed


def health_script() -> str:
    return str(customizations()[GROUP_KEY]["health.lua"])


def to_lua(lua: Any, value: Any) -> Any:
    """JSON-like Python data -> Lua tables, as Argo CD hands `obj` to a health script."""
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def run_health(obj: dict[str, Any], script: str | None = None) -> dict[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, obj)
    hs = lua.execute(script or health_script())
    return {"status": hs["status"], "message": hs["message"]}


def xr(kind: str, conditions: list[dict[str, str]] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "modelplane.ai/v1alpha1", "kind": kind,
                           "metadata": {"name": "x"}, "spec": {}}
    if conditions is not None:
        obj["status"] = {"conditions": conditions}
    return obj


def cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


READY = cond("Ready", "True", "Available")
UNREADY = cond("Ready", "False", "Creating")
SYNCED = cond("Synced", "True", "ReconcileSuccess")
CASES = [
    # (name, conditions, expected status, text the message must contain)
    ("ready_is_healthy", [SYNCED, READY], "Healthy", "Ready"),
    ("synced_false_is_degraded", [
        cond("Synced", "False", "ReconcileError", "cannot compose resources"), READY],
     "Degraded", "ReconcileError"),
    ("no_conditions_is_progressing", None, "Progressing", "Waiting"),
    ("empty_status_is_progressing", [], "Progressing", "Waiting"),
    ("ready_false_is_progressing_with_its_reason", [
        SYNCED, cond("Ready", "False", "Creating", "Unready resources: \"cluster\"")],
     "Progressing", "Ready=False (Creating): Unready resources"),
    ("ready_with_an_unmet_modelplane_condition_says_so", [
        SYNCED, READY, cond("ReplicasScheduled", "False", "Unschedulable",
                            "1 replica does not fit")],
     "Healthy", "ReplicasScheduled=False (Unschedulable)"),
    ("unknown_ready_is_progressing", [SYNCED, cond("Ready", "Unknown", "Creating")],
     "Progressing", "Ready=Unknown"),
    # The cases the issue names: never Healthy, and Degraded when someone has to act.
    ("partly_placed_is_degraded", [
        SYNCED, UNREADY, cond("ReplicasReady", "False", "NotReady", "3/10 replicas Ready"),
        cond("ReplicasScheduled", "False", "Unschedulable", "3/10 replicas scheduled")],
     "Degraded", "ReplicasScheduled=False (Unschedulable): 3/10"),
    ("broken_selector_is_degraded", [
        SYNCED, UNREADY, cond("ReplicasScheduled", "False", "InvalidSelector",
                              "selectors[0].cel '1' is invalid")],
     "Degraded", "InvalidSelector"),
    ("missing_cache_is_degraded", [
        SYNCED, UNREADY, cond("ReplicasScheduled", "False", "ModelCacheMissing", "no cache")],
     "Degraded", "ModelCacheMissing"),
    ("placed_but_starting_is_progressing", [
        SYNCED, UNREADY, cond("ReplicasScheduled", "True", "AllScheduled"),
        cond("ReplicasReady", "False", "NotReady", "0/1 replicas Ready")],
     "Progressing", "ReplicasReady=False (NotReady): 0/1"),
    ("waiting_for_inputs_is_progressing", [
        SYNCED, UNREADY, cond("ReplicasScheduled", "False", "WaitingForInputs", "classes")],
     "Progressing", "WaitingForInputs"),
    ("serving_from_fallback_is_degraded_though_serving", [
        SYNCED, UNREADY, cond("Address", "True", "Published"),
        cond("Routing", "False", "ServingFromFallback", "primary not ready"),
        cond("Serving", "True", "ServingFromFallback", "primary not ready")],
     "Degraded", "ServingFromFallback"),
    ("an_endpoint_out_of_rotation_is_suspended", [
        SYNCED, UNREADY, cond("Routable", "False", "MarkedNotReady", "annotation")],
     "Suspended", "MarkedNotReady"),
    ("an_informational_condition_is_not_the_reason", [
        SYNCED, UNREADY, cond("DeletionProtected", "False", "NoReplicas"),
        cond("StackReady", "False", "Creating", "not ready yet: release-lws")],
     "Progressing", "StackReady=False (Creating)"),
]


def test_one_health_check_covers_the_whole_group() -> None:
    cm = _docs(GITOPS / "argocd-cm.yaml")[0]
    assert not [k for k in cm["data"] if k.startswith("resource.customizations.health.")]
    assert list(customizations()) == [GROUP_KEY]
    assert {k.split("/")[0] for k in customizations()} == {"modelplane.ai"}


@pytest.mark.parametrize("kind", our_kinds())
@pytest.mark.parametrize(("name", "conditions", "status", "text"), CASES,
                         ids=[c[0] for c in CASES])
def test_health_check(kind: str, name: str, conditions: list[dict[str, str]] | None,
                      status: str, text: str) -> None:
    hs = run_health(xr(kind, conditions))
    assert hs["status"] == status
    assert text in hs["message"]


def _lua_set(name: str) -> set[str]:
    """The reasons a named table of the script lists (read by running that part in Lua)."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    script = health_script()
    # Everything before the object is read: the tables of reasons.
    prelude = script.split("local hs =")[0]
    table = lua.execute(prelude + f"\nreturn {name}")
    return {str(k) for k in table}  # iterating a Lua table yields its keys


def conditions_table() -> list[dict[str, str]]:
    """docs/conditions.md's reason table: kind, condition, reason, Argo CD."""
    rows = []
    for line in (REPO / "docs" / "conditions.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2].startswith("`"):
            rows.append({"kind": cells[0], "condition": cells[1],
                         "reason": cells[2].strip("`"), "argo": cells[3]})
    return rows


def test_the_scripts_degraded_reasons_are_the_documented_ones() -> None:
    documented = {r["reason"] for r in conditions_table() if r["argo"] == "Degraded"}
    documented.discard("ReconcileError")  # Synced=False: handled before any reason
    assert _lua_set("degraded") == documented
    informational = {r["reason"] for r in conditions_table() if r["argo"] == "informational"}
    assert _lua_set("informational") == informational
    # `modelplane render`'s summary and views leave out the same conditions.
    assert informational == set(INFORMATIONAL)


def test_every_failure_reason_the_steps_set_has_an_argo_cd_row() -> None:
    from tests.packaging.test_docs import failure_reasons

    documented = {r["reason"] for r in conditions_table()}
    missing = sorted({f"{r.reason} ({r.where})" for r in failure_reasons()
                      if r.reason not in documented})
    assert missing == [], f"add a row to docs/conditions.md for each: {missing}"


def test_a_reason_is_degraded_for_one_kind_only_if_for_every_kind() -> None:
    # The script reads reasons, not kinds: a reason must mean the same everywhere.
    by_reason: dict[str, set[str]] = {}
    for r in conditions_table():
        by_reason.setdefault(r["reason"], set()).add(r["argo"])
    assert {k: v for k, v in by_reason.items() if len(v) > 1} == {}


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
