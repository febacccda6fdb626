"""The XRDs and Compositions: conformant to Crossplane's CRDs, complete, and admissible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from modelplane.validate import Registry, validate_paths
from modelplane.validate.admission import compile_error

REPO = Path(__file__).resolve().parents[2]
CROSSPLANE_CRDS = REPO.parent / "shared" / "conformance" / "crds" / "apiextensions.crossplane.io"

XRD_FILES = sorted((REPO / "apis").glob("*/definition.yaml"))
COMPOSITION_FILES = sorted((REPO / "compositions").glob("*.yaml"))

EXPECTED = {
    # kind: (plural, scope, pipeline steps)
    "InferenceClass": ("inferenceclasses", "Cluster", ["compose-class"]),
    "InferenceCluster": ("inferenceclusters", "Cluster", ["compose-cluster"]),
    "InferenceGateway": ("inferencegateways", "Cluster", ["compose-gateway"]),
    "ModelDeployment": ("modeldeployments", "Namespaced", ["place", "compose-deployment"]),
    "ModelReplica": ("modelreplicas", "Namespaced", ["compose-replica"]),
    "ModelService": ("modelservices", "Namespaced", ["compose-service"]),
    "ModelEndpoint": ("modelendpoints", "Namespaced", ["compose-endpoint"]),
    "ModelCache": ("modelcaches", "Namespaced", ["compose-cache"]),
    "InferenceTicket": ("inferencetickets", "Namespaced", ["compose-ticket"]),
}


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def _crossplane_schema(filename: str, version: str) -> dict[str, Any]:
    if not CROSSPLANE_CRDS.is_dir():
        pytest.skip(f"Crossplane CRDs not found at {CROSSPLANE_CRDS} (clone ../shared beside "
                    "the repo)")
    crd = _load(CROSSPLANE_CRDS / filename)
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"{filename} does not serve {version}")


def test_one_definition_and_one_composition_per_kind() -> None:
    kinds = {_load(f)["spec"]["names"]["kind"] for f in XRD_FILES}
    assert kinds == set(EXPECTED)
    assert len(COMPOSITION_FILES) == len(XRD_FILES)


@pytest.mark.parametrize("path", XRD_FILES, ids=lambda p: p.parent.name)
def test_definition_conforms_to_the_crossplane_xrd_crd(path: Path) -> None:
    schema = _crossplane_schema("apiextensions.crossplane.io_compositeresourcedefinitions.yaml",
                                "v2")
    xrd = _load(path)
    assert xrd["apiVersion"] == "apiextensions.crossplane.io/v2"
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(xrd)]
    assert errors == []


@pytest.mark.parametrize("path", COMPOSITION_FILES, ids=lambda p: p.stem)
def test_composition_conforms_to_the_crossplane_composition_crd(path: Path) -> None:
    schema = _crossplane_schema("apiextensions.crossplane.io_compositions.yaml", "v1")
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(_load(path))]
    assert errors == []


@pytest.mark.parametrize("path", XRD_FILES, ids=lambda p: p.parent.name)
def test_definition_names_scope_and_version_follow_the_api_contract(path: Path) -> None:
    xrd = _load(path)
    spec = xrd["spec"]
    plural, scope, _ = EXPECTED[spec["names"]["kind"]]
    assert path.parent.name == plural
    assert xrd["metadata"]["name"] == f"{plural}.modelplane.ai"
    assert spec["group"] == "modelplane.ai"
    assert spec["scope"] == scope
    assert spec["names"]["categories"] == ["crossplane", "modelplane"]
    assert spec["names"]["shortNames"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["referenceable"]) == (
        "v1alpha1", True, True)
    assert version["additionalPrinterColumns"]


@pytest.mark.parametrize("path", COMPOSITION_FILES, ids=lambda p: p.stem)
def test_composition_runs_the_kinds_steps_on_function_modelplane(path: Path) -> None:
    comp = _load(path)
    kind = comp["spec"]["compositeTypeRef"]["kind"]
    plural, _, steps = EXPECTED[kind]
    assert path.stem == plural
    assert comp["metadata"]["name"] == f"{plural}.modelplane.ai"
    assert comp["spec"]["compositeTypeRef"]["apiVersion"] == "modelplane.ai/v1alpha1"
    assert comp["spec"]["mode"] == "Pipeline"
    assert [s["step"] for s in comp["spec"]["pipeline"]] == steps
    for s in comp["spec"]["pipeline"]:
        assert s["functionRef"] == {"name": "function-modelplane"}
        assert s["input"] == {"apiVersion": "fn.modelplane.ai/v1alpha1", "kind": "Input",
                              "step": s["step"]}


def test_model_deployment_serves_the_scale_subresource() -> None:
    xrd = _load(REPO / "apis" / "modeldeployments" / "definition.yaml")
    version = xrd["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.labelSelector",
    }
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["replicas"]["type"] == "integer"
    assert status["labelSelector"]["type"] == "string"


def _nodes(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for key, child in (node.get("properties") or {}).items():
        out += _nodes(child, f"{path}.{key}")
    if isinstance(node.get("additionalProperties"), dict):
        out += _nodes(node["additionalProperties"], f"{path}[*]")
    if isinstance(node.get("items"), dict):
        out += _nodes(node["items"], f"{path}[]")
    return out


def _schema(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = _load(path)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("path", XRD_FILES, ids=lambda p: p.parent.name)
def test_every_field_has_a_description_for_kubectl_explain(path: Path) -> None:
    missing = [p for p, node in _nodes(_schema(path), "") if not node.get("description")]
    assert missing == []


@pytest.mark.parametrize("path", XRD_FILES, ids=lambda p: p.parent.name)
def test_every_cel_rule_compiles(path: Path) -> None:
    bad = {}
    for where, node in _nodes(_schema(path), ""):
        for rule in node.get("x-kubernetes-validations") or []:
            if why := compile_error(rule["rule"]):
                bad[where] = why
    assert bad == {}


@pytest.mark.parametrize("path", XRD_FILES, ids=lambda p: p.parent.name)
def test_everything_a_cel_rule_can_reach_is_bounded(path: Path) -> None:
    """The API server's CEL cost estimate needs maxLength/maxItems/maxProperties below rules."""
    unbounded = []
    for where, node in _nodes(_schema(path), ""):
        if not node.get("x-kubernetes-validations"):
            continue
        for sub, child in _nodes(node, where):
            if child.get("x-kubernetes-preserve-unknown-fields") and not child.get("properties"):
                continue  # free-form values are not visible to CEL
            kind = child.get("type")
            is_map = kind == "object" and isinstance(child.get("additionalProperties"), dict)
            bounds = {"string": ("maxLength", "enum"), "array": ("maxItems",)}.get(
                str(kind), ("maxProperties",) if is_map else ())
            if bounds and not any(b in child for b in bounds):
                unbounded.append(sub)
    assert sorted(set(unbounded)) == []


def test_package_check_passes_on_the_project_apis_and_compositions() -> None:
    assert validate_paths([str(REPO / "apis"), str(REPO / "compositions")]) == []


def test_registry_serves_every_kind_once() -> None:
    registry = Registry.load([REPO / "apis"])
    assert registry.kinds() == sorted(("modelplane.ai/v1alpha1", k) for k in EXPECTED)
    assert registry.xrd_for("modelplane.ai/v1alpha1", "ModelDeployment") is not None
    assert registry.xrd_for("modelplane.ai/v1", "ModelDeployment") is None


@pytest.mark.parametrize("path", XRD_FILES, ids=lambda p: p.parent.name)
def test_no_printer_column_is_a_list_wildcard(path: Path) -> None:
    """kubectl prints only the first match of a printer column's JSONPath: a `[*]` column
    would show one pool or device of many as if it were all of them."""
    columns = _load(path)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns if "[*]" in c["jsonPath"]] == []
