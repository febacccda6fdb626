"""examples/autoscaling: a KEDA ScaledObject on a ModelDeployment that validates against KEDA's
CRD, the XRD's scale subresource, and `kubectl scale` semantics shown through render
(spec.replicas -> replicas placed -> status.replicas), down to zero."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from modelplane.common.openapi import to_jsonschema
from modelplane.common.output import to_json
from modelplane.render import Fleet, render_fleet

from tests.conformance import CRDS, SHARED, problems, require_shared

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "autoscaling"
KEDA_PATCH = SHARED / "conformance" / "patches" / "keda.sh" / "scaledobject_patch.yaml"
SCALED_OBJECT_FILES = [EXAMPLE / "scaledobject.yaml", REPO / "examples/gitops/fleet/models.yaml"]


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def scaled_objects() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{f.relative_to(REPO)}:{d['metadata']['name']}", d) for f in SCALED_OBJECT_FILES
            for d in _docs(f) if d["kind"] == "ScaledObject"]


def patched_keda_schema() -> dict[str, Any]:
    """KEDA's ScaledObject CRD as a KEDA release installs it: the base CRD plus the kustomize
    JSON patch (bounds on stabilizationWindowSeconds)."""
    crd = yaml.safe_load((CRDS / "keda.sh" / "keda.sh_scaledobjects.yaml").read_text())
    for op in yaml.safe_load(KEDA_PATCH.read_text()):
        assert op["op"] == "add", op
        *parents, leaf = op["path"].strip("/").split("/")
        node: Any = crd
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[leaf] = op["value"]
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(("where", "obj"), scaled_objects(),
                         ids=[w for w, _ in scaled_objects()])
def test_scaled_object_validates_against_the_keda_crd(where: str, obj: dict[str, Any]) -> None:
    assert problems(obj, where) == []
    body = {k: v for k, v in obj.items() if k != "status"}
    errors = list(jsonschema.Draft7Validator(to_jsonschema(patched_keda_schema()))
                  .iter_errors(body))
    assert [e.message for e in errors] == []


def test_keda_patch_bounds_are_enforced() -> None:
    require_shared()
    obj = copy.deepcopy(dict(scaled_objects()[0][1]))
    obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
        "stabilizationWindowSeconds"] = 7200
    validator = jsonschema.Draft7Validator(to_jsonschema(patched_keda_schema()))
    assert any("3600" in e.message for e in validator.iter_errors(obj))


@pytest.mark.parametrize(("where", "obj"), scaled_objects(),
                         ids=[w for w, _ in scaled_objects()])
def test_scaled_object_targets_a_model_deployment_in_its_namespace(
        where: str, obj: dict[str, Any]) -> None:
    ref = obj["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"]) == ("modelplane.ai/v1alpha1", "ModelDeployment")
    siblings = [d for f in Path(REPO / where.split(":")[0]).parent.rglob("*.yaml")
                for d in _docs(f)]
    assert any(d["kind"] == "ModelDeployment" and d["metadata"]["name"] == ref["name"]
               and d["metadata"].get("namespace") == obj["metadata"]["namespace"]
               for d in siblings), f"{where}: no ModelDeployment {ref['name']} beside it"


def test_autoscaling_example_scales_to_zero_when_idle() -> None:
    obj = dict(scaled_objects()[0][1])
    assert obj["spec"]["minReplicaCount"] == 0


def test_model_deployment_scales_to_zero() -> None:
    # The scale subresource itself is pinned in tests/api/test_definitions.py.
    xrd = yaml.safe_load((REPO / "apis/modeldeployments/definition.yaml").read_text())
    version = next(v for v in xrd["spec"]["versions"] if v["name"] == "v1alpha1")
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["replicas"]["minimum"] == 0


# -- kubectl scale, shown in render ---------------------------------------------------------------

def _deployment(fleet: Fleet) -> dict[str, Any]:
    md = fleet.get("ModelDeployment", "qwen", "ml-team")
    assert md is not None
    return md


def _replicas_of(fleet: Fleet) -> list[dict[str, Any]]:
    return [r for r in fleet.of_kind("ModelReplica")
            if ((r.get("metadata") or {}).get("labels") or {}).get("modelplane.ai/deployment")
            == "qwen"]


def _selects(selector: str, labels: dict[str, str]) -> bool:
    pairs = [p.split("=", 1) for p in selector.split(",") if p]
    return bool(pairs) and all(labels.get(k.strip()) == v.strip() for k, v in pairs)


def _scale(tmp_path: Path, fleet: Fleet, replicas: int) -> Fleet:
    """`kubectl scale modeldeployment/qwen --replicas=N` on a rendered fleet: edit spec.replicas
    in render's own JSON output and render it again."""
    objs = json.loads(to_json(fleet.objects()))
    for o in objs:
        if o["kind"] == "ModelDeployment" and o["metadata"]["name"] == "qwen":
            o["spec"]["replicas"] = replicas
    f = tmp_path / f"scaled-{replicas}.json"
    f.write_text(json.dumps(objs))
    return render_fleet([f])


def _assert_scaled(fleet: Fleet, n: int) -> None:
    md = _deployment(fleet)
    status = md.get("status") or {}
    replicas = _replicas_of(fleet)
    assert md["spec"]["replicas"] == n
    assert status.get("replicas") == n, status
    assert len(replicas) == n
    selector = status.get("labelSelector")
    assert selector, "status.labelSelector is what the HPA behind KEDA requires"
    for r in replicas:
        assert _selects(selector, r["metadata"]["labels"]), (selector, r["metadata"]["labels"])
    synced = next(c for c in status["conditions"] if c["type"] == "Synced")
    assert synced["status"] == "True"


def test_kubectl_scale_places_replicas_and_status_follows_down_to_zero(tmp_path: Path) -> None:
    fleet = render_fleet([EXAMPLE])
    _assert_scaled(fleet, 1)
    up = _scale(tmp_path, fleet, 3)
    _assert_scaled(up, 3)
    zero = _scale(tmp_path, up, 0)
    _assert_scaled(zero, 0)
    # Scaling to zero removes the deployment's replicas and nothing else of the fleet.
    assert zero.get("InferenceCluster", "autoscale-central") is not None
    assert zero.get("ModelService", "qwen", "ml-team") is not None
    back = _scale(tmp_path, zero, 1)
    _assert_scaled(back, 1)
