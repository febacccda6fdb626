"""Single-XR mode matches the classic `crossplane render` arguments and output rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from modelplane.cli import main

from tests.render import test_steps  # noqa: F401  (registers the test-only steps)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    docs = list(yaml.safe_load_all((FIXTURES / "xrds.yaml").read_text()))
    comp = next(d for d in docs if d["kind"] == "Composition"
                and d["spec"]["compositeTypeRef"]["kind"] == "Parent")
    xr = {"apiVersion": "test.modelplane.ai/v1", "kind": "Parent",
          "metadata": {"name": "p", "namespace": "team"},
          "spec": {"children": ["b", "a"]}}
    picked = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "chosen", "namespace": "x", "labels": {"pick": "me"}}}
    observed = {"apiVersion": "test.modelplane.ai/v1", "kind": "Child",
                "metadata": {"name": "p-a", "namespace": "team",
                             "annotations": {"crossplane.io/composition-resource-name":
                                             "child-a"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    out = {}
    for name, doc in [("xr", xr), ("comp", comp), ("required", picked), ("observed", observed)]:
        out[name] = tmp_path / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump(doc))
    out["ctx"] = tmp_path / "ctx.json"
    out["ctx"].write_text(json.dumps({"k": "v"}))
    return out


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict]:
    assert main(argv) == 0
    return list(yaml.safe_load_all(capsys.readouterr().out))


def test_documents_come_xr_first_then_composed_sorted_by_resource_name(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    docs = run(capsys, ["render", str(files["xr"]), str(files["comp"])])
    assert docs[0]["kind"] == "Parent"
    names = [d["metadata"]["annotations"]["crossplane.io/composition-resource-name"]
             for d in docs[1:]]
    assert names == ["child-a", "child-b"]
    assert "spec" not in docs[0]


def test_readiness_comes_from_observed_resources(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    docs = run(capsys, ["render", str(files["xr"]), str(files["comp"]),
                        "--observed-resources", str(files["observed"])])
    ready = docs[0]["status"]["conditions"][0]
    assert ready["type"] == "Ready" and ready["status"] == "False"
    assert ready["message"] == 'Unready resources: "child-b"'
    assert ready["lastTransitionTime"] == "2024-01-01T00:00:00Z"


def test_required_resources_and_results_and_full_xr(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    docs = run(capsys, ["render", str(files["xr"]), str(files["comp"]),
                        "--required-resources", str(files["required"]),
                        "--context-files", f"k={files['ctx']}",
                        "--include-full-xr", "--include-function-results"])
    assert docs[0]["spec"] == {"children": ["b", "a"]}
    assert docs[0]["status"]["picked"] == ["chosen"]
    assert docs[0]["status"]["fromContext"] == 2


def test_go_style_quoting_keeps_types(capsys: pytest.CaptureFixture[str],
                                      files: dict[str, Path]) -> None:
    main(["render", str(files["xr"]), str(files["comp"])])
    text = capsys.readouterr().out
    assert 'status: "False"' in text and 'uid: ""' in text
