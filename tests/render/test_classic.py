"""`modelplane render-xr` takes `crossplane render`'s arguments and flags and follows its output
rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from modelplane.cli import main

from tests.render import test_steps  # noqa: F401  (registers the test-only steps)

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


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
    docs = run(capsys, ["render-xr", str(files["xr"]), str(files["comp"])])
    assert docs[0]["kind"] == "Parent"
    names = [d["metadata"]["annotations"]["crossplane.io/composition-resource-name"]
             for d in docs[1:]]
    assert names == ["child-a", "child-b"]
    assert "spec" not in docs[0]


def test_readiness_comes_from_observed_resources(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    docs = run(capsys, ["render-xr", str(files["xr"]), str(files["comp"]),
                        "-o", str(files["observed"])])
    ready = docs[0]["status"]["conditions"][0]
    assert ready["type"] == "Ready" and ready["status"] == "False"
    assert ready["message"] == "Unready resources: child-b"
    assert ready["lastTransitionTime"] == "2024-01-01T00:00:00Z"


def test_required_resources_and_results_and_full_xr(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    docs = run(capsys, ["render-xr", str(files["xr"]), str(files["comp"]),
                        "-e", str(files["required"]),
                        "--context-files", f"k={files['ctx']}", "-x", "-r"])
    assert docs[0]["spec"] == {"children": ["b", "a"]}
    assert docs[0]["status"]["picked"] == ["chosen"]
    assert docs[0]["status"]["fromContext"] == 2


def test_go_style_quoting_keeps_types(capsys: pytest.CaptureFixture[str],
                                      files: dict[str, Path]) -> None:
    main(["render-xr", str(files["xr"]), str(files["comp"])])
    text = capsys.readouterr().out
    assert 'status: "False"' in text and 'uid: ""' in text


def test_short_flags_mean_what_they_mean_to_crossplane_render() -> None:
    from modelplane.cli import parser

    sub = parser()._subparsers._group_actions[0].choices["render-xr"]  # type: ignore[union-attr]
    flags = {o: a.dest for a in sub._actions for o in a.option_strings}
    assert flags["-r"] == flags["--include-function-results"] == "include_function_results"
    assert flags["-x"] == flags["--include-full-xr"] == "include_full_xr"
    assert flags["-o"] == flags["--observed-resources"] == "observed_resources"
    assert flags["-e"] == flags["--required-resources"] == flags["--extra-resources"]


def test_a_functions_file_must_define_the_pipelines_function(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fns = tmp_path / "functions.yaml"
    fns.write_text(yaml.safe_dump({"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "Function",
                                   "metadata": {"name": "function-modelplane"}}))
    assert main(["render-xr", str(files["xr"]), str(files["comp"]), str(fns)]) == 0
    capsys.readouterr()
    fns.write_text(yaml.safe_dump({"apiVersion": "pkg.crossplane.io/v1beta1", "kind": "Function",
                                   "metadata": {"name": "function-other"}}))
    assert main(["render-xr", str(files["xr"]), str(files["comp"]), str(fns)]) == 1
    assert "no Function named function-modelplane" in capsys.readouterr().err


def test_a_pipeline_with_another_function_is_refused(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    comp = yaml.safe_load(files["comp"].read_text())
    comp["spec"]["pipeline"].append({"step": "auto-ready",
                                     "functionRef": {"name": "function-auto-ready"}})
    files["comp"].write_text(yaml.safe_dump(comp))
    assert main(["render-xr", str(files["xr"]), str(files["comp"])]) == 1
    assert "use `crossplane render`" in capsys.readouterr().err


def test_our_function_under_its_installed_dependency_name_is_still_ours(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # A Configuration's dependency installs the Function as <org>-<package>; the Compositions
    # then name it so. Its steps still carry our input, so render-xr runs them.
    comp = yaml.safe_load(files["comp"].read_text())
    for step in comp["spec"]["pipeline"]:
        step["functionRef"]["name"] = "modelplane-function-modelplane"
    files["comp"].write_text(yaml.safe_dump(comp))
    out = run(capsys, ["render-xr", str(files["xr"]), str(files["comp"])])
    assert out[0]["kind"] == "Parent" and len(out) > 1


def test_the_functions_readiness_of_the_xr_wins(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # ModelDeployment with nothing placeable composes nothing; Crossplane would call that
    # ready, the function says it is not.
    xr = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelDeployment",
          "metadata": {"name": "qwen", "namespace": "ml"},
          "spec": {"replicas": 1, "engines": [{"name": "e", "members": [
              {"role": "Standalone", "template": {"spec": {"containers": [
                  {"name": "engine", "image": "vllm/vllm-openai:v0.10.1"}]}}}]}]}}
    files["xr"].write_text(yaml.safe_dump(xr))
    comp = REPO / "compositions" / "modeldeployments.yaml"
    docs = run(capsys, ["render-xr", str(files["xr"]), str(comp)])
    ready = next(c for c in docs[0]["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
