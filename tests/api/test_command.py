"""`modelplane validate`: one line per problem, exit 0 only when everything is valid."""

from __future__ import annotations

import io
import shutil
import textwrap
from pathlib import Path

import pytest
from modelplane.validate import validate_command
from modelplane.validate.apidocs import render

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO.parent / "shared" / "seeds" / "manifests"


def _run(*paths: Path | str) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = validate_command([str(p) for p in paths], out=out)
    return code, out.getvalue().splitlines()


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
    code, lines = _run(manifest)
    assert code == 1
    assert lines == [f"{manifest}:1: ModelService/qwen: spec.endpoints[0].weight: invalid value "
                     "5000: must be less than or equal to 1000"]


def test_other_projects_kinds_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert _run(tmp_path) == (0, [])


def test_malformed_yaml_and_missing_paths_fail(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("kind: [unclosed\n")
    code, lines = _run(tmp_path, tmp_path / "absent")
    assert code == 1
    assert len(lines) == 2
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
