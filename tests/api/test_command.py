"""`modelplane validate`: one line per problem (file:line), a summary, exit 0 only when everything
is valid; Lists unwrapped, selectors compiled, pod templates checked, references followed."""

from __future__ import annotations

import io
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from modelplane.validate import validate_command
from modelplane.validate.apidocs import render

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO.parent / "shared" / "seeds" / "manifests"


def _run_all(*paths: Path | str, strict: bool = False) -> tuple[int, list[str]]:
    """Exit code and every printed line, the summary last."""
    out = io.StringIO()
    code = validate_command([str(p) for p in paths], out=out, strict=strict)
    return code, out.getvalue().splitlines()


def _run(*paths: Path | str) -> tuple[int, list[str]]:
    """Exit code and the problem lines (without the summary)."""
    code, lines = _run_all(*paths)
    return code, lines[:-1]


def _json(*paths: Path | str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = validate_command([str(p) for p in paths], out=out, output="json")
    return code, json.loads(out.getvalue())


def test_the_seed_manifests_validate() -> None:
    if not SEEDS.is_dir():
        pytest.skip(f"seed manifests not found at {SEEDS} (clone ../shared beside the repo)")
    assert _run(SEEDS) == (0, [])


def test_the_project_package_validates() -> None:
    assert _run(REPO / "apis", REPO / "compositions") == (0, [])


def test_each_error_is_one_line_naming_file_document_object_and_field(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: not-ours}
        data: {anything: goes}
        ---
        apiVersion: modelplane.ai/v1alpha1
        kind: ModelService
        metadata: {name: qwen, namespace: ml}
        spec:
          endpoints:
          - selector: {matchLabels: {app: qwen}}
            weight: 5000
        """))
    code, lines = _run_all(manifest)
    assert code == 1
    assert lines == [f"{manifest}:9: warning: ModelService/qwen: spec.gatewayRef.name: "
                     "InferenceGateway 'default' is not among the validated objects",
                     f"{manifest}:12: ModelService/qwen: spec.endpoints[0].weight: invalid value "
                     "5000: must be less than or equal to 1000",
                     "1 file(s), 2 document(s): 0 valid, 1 invalid (1 error(s)), 1 skipped (not "
                     "Modelplane kinds: ConfigMap 1); 1 warning(s)"]


def test_other_projects_kinds_are_counted_as_skipped(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, lines = _run_all(tmp_path)
    assert code == 0
    assert lines == ["1 file(s), 1 document(s): 0 valid, 0 invalid (0 error(s)), 1 skipped "
                     "(not Modelplane kinds: ConfigMap 1); 0 warning(s)"]
    assert _json(tmp_path)[1]["skipped"] == [{"file": str(tmp_path / "cm.yaml"), "line": 1,
                                              "apiVersion": "v1", "kind": "ConfigMap",
                                              "name": "x"}]


def test_success_prints_a_summary_with_counts() -> None:
    code, lines = _run_all(REPO / "examples" / "quickstart")
    assert code == 0
    assert lines == ["2 file(s), 5 document(s): 5 valid, 0 invalid (0 error(s)); 0 warning(s)"]


DEPLOYMENT = """\
apiVersion: modelplane.ai/v1alpha1
kind: ModelDeployment
metadata: {name: qwen, namespace: ml}
spec:
  replicas: 1
  engines:
  - name: qwen
    members:
    - role: Standalone
      nodeSelector:
        devices:
        - name: gpu
          count: 1
          selectors:
          - cel: SELECTOR
      template:
        spec:
          containers:
          - name: engine
            image: vllm/vllm-openai:v0.10.1
"""


def _deployment(tmp_path: Path, selector: str = 'device.driver == "gpu.nvidia.com"',
                container: str = "") -> Path:
    text = DEPLOYMENT.replace("SELECTOR", json.dumps(selector)) + container
    path = tmp_path / "md.yaml"
    path.write_text(text)
    return path


def test_a_valid_deployment_passes(tmp_path: Path) -> None:
    assert _run(_deployment(tmp_path)) == (0, [])


@pytest.mark.parametrize(("selector", "why"), [
    ("1", "must evaluate to bool or the unknown type, not int"),
    ('device.capacity["gpu.nvidia.com"].memory >', "compilation failed"),
    ("device.driver > 3", "no matching overload"),
    ('device.attributes["gpu.nvidia.com"].productName.split("a").all(x, x.split("b").all('
     'y, y.split("c").all(z, z.matches("q.*"))))', "cost limit exceeded"),
], ids=["not_bool", "syntax", "type", "cost"])
def test_a_selector_placement_would_reject_is_an_error_at_its_line(
        tmp_path: Path, selector: str, why: str) -> None:
    path = _deployment(tmp_path, selector)
    code, lines = _run(path)
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:15: ModelDeployment/qwen: spec.engines[0].members[0]."
                               "nodeSelector.devices[0].selectors[0].cel: invalid selector")
    assert why in lines[0]


def test_a_container_without_an_image_is_an_error(tmp_path: Path) -> None:
    path = _deployment(tmp_path)
    path.write_text(path.read_text().replace("            image: vllm/vllm-openai:v0.10.1\n",
                                             ""))
    code, lines = _run(path)
    assert code == 1
    assert lines == [f"{path}:19: ModelDeployment/qwen: spec.engines[0].members[0].template.spec."
                     "containers[0].image: container 'engine' has no image"]


def test_pod_template_fields_are_checked_against_kubernetes(tmp_path: Path) -> None:
    path = _deployment(tmp_path, container="            args: --model=x\n"
                                           "            ports: [{containerPort: '8000'}]\n"
                                           "            imagePullPolcy: Always\n")
    code, lines = _run(path)
    assert code == 1
    where = f"{path}:{{}}: ModelDeployment/qwen: spec.engines[0].members[0].template"
    assert [line.split(" (Kubernetes")[0] for line in lines] == [
        where.format(19) + ".spec.containers[0]: Additional properties are not allowed "
        "('imagePullPolcy' was unexpected)",
        where.format(21) + ".spec.containers[0].args: '--model=x' is not of type 'array', "
        "'null'",
        where.format(22) + ".spec.containers[0].ports[0].containerPort: '8000' is not of type "
        "'integer'",
    ]


def test_the_items_of_a_list_are_validated(tmp_path: Path) -> None:
    # What `kubectl get modeldeployments -o yaml` prints: a List with a typo inside.
    item = DEPLOYMENT.replace("SELECTOR", '"true"').replace("replicas: 1", "replicas: one")
    listed = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        ("- " if i == 0 else "  ") + line + "\n" for i, line in enumerate(item.splitlines()))
    path = tmp_path / "list.yaml"
    path.write_text(listed)
    code, lines = _run(path)
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}:8: items[0] ModelDeployment/qwen: spec.replicas: ")


def test_references_outside_the_set_are_warnings_and_fail_only_when_strict(
        tmp_path: Path) -> None:
    path = _deployment(tmp_path)
    path.write_text(path.read_text().replace("  replicas: 1\n",
                                             "  replicas: 1\n  modelCacheRef: {name: weights}\n"))
    code, lines = _run(path)
    assert code == 0
    assert lines == [f"{path}:6: warning: ModelDeployment/qwen: spec.modelCacheRef.name: "
                     "ModelCache 'weights' in namespace ml is not among the validated objects"]
    assert _run_all(path, strict=True)[0] == 1
    (tmp_path / "cache.yaml").write_text(
        "apiVersion: modelplane.ai/v1alpha1\nkind: ModelCache\n"
        "metadata: {name: weights, namespace: ml}\n"
        "spec: {source: HuggingFace,\n"
        "       huggingFace: {repo: Qwen/Qwen2.5-0.5B-Instruct, sizeGiB: 10}}\n")
    assert _run_all(tmp_path, strict=True)[0] == 0


def test_every_example_validates_with_its_references_resolved() -> None:
    for example in sorted(p for p in (REPO / "examples").iterdir() if p.is_dir()):
        code, lines = _run_all(example, strict=True)
        assert (code, lines[:-1]) == (0, []), example.name


def test_json_output_has_the_summary_and_every_problem(tmp_path: Path) -> None:
    code, doc = _json(_deployment(tmp_path, "1"))
    assert code == 1
    assert doc["summary"] == {"files": 1, "documents": 1, "valid": 0, "invalid": 1,
                              "skipped": 0, "errors": 1, "warnings": 0}
    [problem] = doc["problems"]
    assert (problem["line"], problem["severity"], problem["object"]) == (
        15, "error", "ModelDeployment/qwen")
    assert problem["field"].endswith("selectors[0].cel")


def test_malformed_yaml_and_missing_paths_fail(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("kind: [unclosed\n")
    code, lines = _run(tmp_path, tmp_path / "absent")
    assert code == 1
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'broken.yml'}:2: ")  # where the parser stopped
    assert "not valid YAML" in lines[0]
    assert "no such file or directory" in lines[1]


def test_a_definition_without_a_composition_is_reported(tmp_path: Path) -> None:
    shutil.copytree(REPO / "apis", tmp_path / "apis")
    shutil.copytree(REPO / "compositions", tmp_path / "compositions")
    (tmp_path / "compositions" / "modelcaches.yaml").unlink()
    code, lines = _run(tmp_path)
    assert code == 1
    assert len(lines) == 1
    assert "ModelCache" in lines[0]
    assert "no Composition has compositeTypeRef modelplane.ai/v1alpha1 ModelCache" in lines[0]


def test_a_composition_step_must_be_a_known_step_of_the_function(tmp_path: Path) -> None:
    text = (REPO / "compositions" / "modelservices.yaml").read_text()
    bad = tmp_path / "modelservices.yaml"
    bad.write_text(text.replace("compose-service", "compose-svc"))
    code, lines = _run(bad)
    assert code == 1
    assert lines and all("spec.pipeline[0].input.step: unknown step 'compose-svc'" in line
                         for line in lines)


def test_a_composition_step_must_serve_the_composite_kind(tmp_path: Path) -> None:
    text = (REPO / "compositions" / "modelservices.yaml").read_text()
    bad = tmp_path / "modelservices.yaml"
    bad.write_text(text.replace("compose-service", "compose-cache"))
    code, lines = _run(bad)
    assert code == 1
    assert any("step 'compose-cache' serves ModelCache, not ModelService" in line
               for line in lines)


def test_a_definition_field_without_description_is_reported(tmp_path: Path) -> None:
    text = (REPO / "apis" / "modelendpoints" / "definition.yaml").read_text()
    bad = tmp_path / "definition.yaml"
    bad.write_text(text.replace("description: The upstream's base URL (http or https).", ""))
    code, lines = _run(bad)
    assert code == 1
    assert any("properties.url: every field needs a description" in line for line in lines)


def test_api_reference_is_generated_from_the_definitions() -> None:
    committed = (REPO / "docs" / "api-reference.md").read_text()
    assert committed == render(), (
        "docs/api-reference.md is stale: regenerate it with "
        "`python -m modelplane.validate.apidocs > docs/api-reference.md`")


def test_the_v01_secret_references_are_checked_where_the_steps_read_them(
        tmp_path: Path) -> None:
    # An Existing cluster's kubeconfig and identity Secrets default to modelplane-system; a
    # cache's Hub token is in the cache's namespace (docs/migration-v0.1.md).
    (tmp_path / "fleet.yaml").write_text(
        "apiVersion: modelplane.ai/v1alpha1\nkind: InferenceCluster\n"
        "metadata: {name: lab}\n"
        "spec:\n  cluster:\n    source: Existing\n"
        "    existing: {secretRef: {name: lab-kubeconfig}, identitySecretRef: {name: lab-sa}}\n"
        "  nodePools: []\n"
        "---\napiVersion: modelplane.ai/v1alpha1\nkind: ModelCache\n"
        "metadata: {name: weights, namespace: ml}\n"
        "spec: {source: HuggingFace, huggingFace: {repo: meta-llama/Llama-3.1-8B, sizeGiB: 20,\n"
        "       authSecret: {name: hf-token}}}\n")
    code, lines = _run_all(tmp_path)
    assert code == 0, lines
    warnings = sorted(line.split("warning: ", 1)[1] for line in lines if "warning: " in line)
    assert warnings == [
        "InferenceCluster/lab: spec.cluster.existing.identitySecretRef.name: Secret 'lab-sa' "
        "in namespace modelplane-system is not among the validated objects",
        "InferenceCluster/lab: spec.cluster.existing.secretRef.name: Secret 'lab-kubeconfig' "
        "in namespace modelplane-system is not among the validated objects",
        "ModelCache/weights: spec.huggingFace.authSecret.name: Secret 'hf-token' in namespace "
        "ml is not among the validated objects"]
