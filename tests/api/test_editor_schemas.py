"""schemas/: the JSON Schemas editors use are generated from the XRDs, accept every manifest the
API accepts (an editor must never underline a valid manifest), and catch the mistakes a schema
can express: unknown fields, wrong types, values outside an enum."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from modelplane.validate import editorschema
from modelplane.validate.registry import yaml_files
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
SEEDS = REPO.parent / "shared" / "seeds" / "manifests"


def _validator() -> jsonschema.Draft7Validator:
    files = {name: json.loads(text) for name, text in editorschema.generate().items()}
    # The index refers to the kinds' files by name, as an editor resolves them beside it.
    registry: Registry = Registry().with_resources(
        (name, Resource.from_contents(body, default_specification=DRAFT7))
        for name, body in files.items())
    return jsonschema.Draft7Validator(files[editorschema.INDEX], registry=registry)


def _modelplane_docs(root: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in yaml_files(root):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(
                    "modelplane.ai/"):
                out.append((f"{path.relative_to(root.parent)}:{doc['kind']}", doc))
    return out


def _errors(doc: dict[str, Any]) -> list[str]:
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
                  for e in _validator().iter_errors(doc))


def test_the_committed_schemas_are_the_generated_ones() -> None:
    committed = {p.name: p.read_text() for p in SCHEMAS.glob("*.json")}
    assert committed == editorschema.generate(), (
        "schemas/ is stale: regenerate it with `make schemas`")


@pytest.mark.parametrize("root", [REPO / "examples", SEEDS, REPO / "tests" / "api" / "v01"],
                         ids=["examples", "seeds", "v01"])
def test_every_manifest_the_api_accepts_passes_the_editor_schema(root: Path) -> None:
    docs = _modelplane_docs(root)
    assert docs, f"no Modelplane manifests under {root}"
    for where, doc in docs:
        assert _errors(doc) == [], where


def _deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "chat", "namespace": "ml"},
        "spec": {"replicas": 1, "serving": {"mode": "Unified"}, "engines": [{
            "name": "vllm", "members": [{"role": "Standalone", "template": {"spec": {
                "containers": [{"name": "engine", "image": "vllm/vllm-openai:v0.10.1"}]}}}]}]}}
    base["spec"].update(spec)
    return base


def test_a_typo_in_a_field_name_is_flagged_with_its_path() -> None:
    doc = _deployment(replcas=2)
    assert any(e.startswith("spec: Additional properties are not allowed ('replcas'")
               for e in _errors(doc)), _errors(doc)


def test_a_wrong_type_and_an_unknown_enum_value_are_flagged() -> None:
    errors = _errors(_deployment(replicas="two", serving={"mode": "Split"}))
    assert "spec.replicas: 'two' is not of type 'integer'" in errors
    assert any(e.startswith("spec.serving.mode: 'Split' is not one of") for e in errors)


def test_free_form_fields_stay_open() -> None:
    # A pod template is Kubernetes' PodTemplateSpec, preserved as written: the editor schema
    # must not close it, or every real container field would be underlined.
    doc = _deployment()
    doc["spec"]["engines"][0]["members"][0]["template"]["spec"]["containers"][0]["args"] = [
        "--max-model-len", "4096"]
    assert _errors(doc) == []


def test_other_kinds_in_the_same_file_are_left_alone() -> None:
    assert _errors({"apiVersion": "v1", "kind": "Secret", "whatever": 1}) == []


def test_openapi_keywords_without_a_json_schema_equivalent_are_translated() -> None:
    assert editorschema.convert({"x-kubernetes-int-or-string": True}) == {
        "anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert editorschema.convert({"type": "string", "nullable": True}) == {
        "type": ["string", "null"]}
    closed = editorschema.convert({"type": "object", "properties": {"a": {"type": "string"}},
                                   "x-kubernetes-validations": [{"rule": "true"}]})
    assert closed == {"type": "object", "properties": {"a": {"type": "string"}},
                      "additionalProperties": False}
    assert "additionalProperties" not in editorschema.convert(
        {"type": "object", "properties": {"a": {}}, "x-kubernetes-preserve-unknown-fields": True})
