"""`make package`: the xpkg package roots are assembled, schema-valid, and contain only what a
Configuration / Function package may contain."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane import package

from tests.conformance import CRDS, require_shared

REPO = Path(__file__).resolve().parents[2]
PROVIDERS = [
    "provider-kubernetes", "provider-helm",
    "provider-gcp-container", "provider-gcp-compute", "provider-gcp-cloudplatform",
    "provider-aws-eks", "provider-aws-ec2", "provider-aws-iam", "provider-aws-efs",
    "provider-azure-containerservice",
]
# Masterminds/semver constraints as Crossplane accepts them: comparisons joined by ',' or ' '.
CONSTRAINT = re.compile(r"^\s*(?:[<>=!~^]{0,2}\s*v?\d+(?:\.\d+){0,2}(?:-[0-9A-Za-z.-]+)?"
                        r"(?:\s*,\s*|\s+|\s*$))+$")


def _yaml(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[package.Problem]]:
    require_shared()
    out = tmp_path_factory.mktemp("package")
    return out, package.build(REPO, out, CRDS)


def test_make_package_builds_both_roots_without_problems(
        built: tuple[Path, list[package.Problem]]) -> None:
    out, problems = built
    assert [str(p) for p in problems] == []
    assert (out / "configuration" / "crossplane.yaml").is_file()
    assert (out / "function" / "crossplane.yaml").is_file()


def test_configuration_root_holds_every_xrd_and_composition(
        built: tuple[Path, list[package.Problem]]) -> None:
    out, _ = built
    conf = out / "configuration"
    xrds = sorted(p.relative_to(REPO) for p in (REPO / "apis").glob("*/definition.yaml"))
    assert sorted(p.relative_to(conf) for p in conf.glob("apis/*/definition.yaml")) == xrds
    comps = sorted(p.name for p in (REPO / "compositions").glob("*.yaml"))
    assert sorted(p.name for p in (conf / "compositions").glob("*.yaml")) == comps


def test_assembled_compositions_call_the_function_by_its_dependency_name(
        built: tuple[Path, list[package.Problem]]) -> None:
    out, _ = built
    refs = {step["functionRef"]["name"]
            for f in (out / "configuration" / "compositions").glob("*.yaml")
            for step in _yaml(f)["spec"]["pipeline"]}
    assert refs == {"modelplane-function-modelplane"}


@pytest.mark.parametrize(("package_ref", "name"), [
    ("xpkg.upbound.io/modelplane/function-modelplane", "modelplane-function-modelplane"),
    ("xpkg.crossplane.io/crossplane-contrib/provider-kubernetes:v1.2.0",
     "crossplane-contrib-provider-kubernetes"),
    ("registry.example.com:5000/team/fn@sha256:abc", "team-fn"),
    ("localhost/fn-x", "fn-x"),
])
def test_dependency_name_matches_the_package_managers_dns_label(package_ref: str,
                                                                name: str) -> None:
    assert package.dependency_name(package_ref) == name


@pytest.mark.parametrize("meta", ["configuration", "function"])
def test_meta_file_validates_against_the_upstream_meta_crd(meta: str) -> None:
    require_shared()
    obj = _yaml(REPO / "package" / meta / "crossplane.yaml")
    assert obj["apiVersion"] == "meta.pkg.crossplane.io/v1"
    assert package.schema_for(CRDS, obj["apiVersion"], obj["kind"]) is not None
    assert [str(p) for p in package.schema_problems(CRDS, obj, "crossplane.yaml")] == []


def test_configuration_requires_crossplane_2_3_and_depends_on_function_and_providers() -> None:
    meta = _yaml(REPO / "package" / "configuration" / "crossplane.yaml")
    assert meta["metadata"]["name"] == "modelplane"
    assert meta["spec"]["crossplane"]["version"] == ">=v2.3.0-0"
    deps = meta["spec"]["dependsOn"]
    by_repo = {d["package"].rsplit("/", 1)[-1]: d for d in deps}
    assert by_repo["function-modelplane"]["kind"] == "Function"
    for name in PROVIDERS:
        assert by_repo[name]["kind"] == "Provider", name
    for d in deps:
        assert d["apiVersion"] == "pkg.crossplane.io/v1"
        assert not {"provider", "function", "configuration"} & set(d), "legacy dependency field"
        assert CONSTRAINT.match(d["version"]), d


def test_function_meta_is_named_function_modelplane() -> None:
    meta = _yaml(REPO / "package" / "function" / "crossplane.yaml")
    assert (meta["kind"], meta["metadata"]["name"]) == ("Function", "function-modelplane")


def _copy_configuration(built: tuple[Path, list[package.Problem]], tmp_path: Path) -> Path:
    out, _ = built
    dest = tmp_path / "configuration"
    shutil.copytree(out / "configuration", dest)
    return dest


@pytest.mark.parametrize(("kind_doc", "kind"), [
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "ConfigMap"),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
      "metadata": {"name": "x"}, "rules": []}, "ClusterRole"),
    ({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "metadata": {"name": "x"},
      "spec": {"package": "xpkg.crossplane.io/a/b:v1"}}, "Provider"),
    ({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
      "metadata": {"name": "x"}}, "CustomResourceDefinition"),
])
def test_lint_rejects_a_configuration_with_a_kind_it_may_not_contain(
        built: tuple[Path, list[package.Problem]], tmp_path: Path,
        kind_doc: dict[str, Any], kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    conf = _copy_configuration(built, tmp_path)
    (conf / "extra").mkdir()
    (conf / "extra" / "stray.yaml").write_text(yaml.safe_dump(kind_doc))
    problems = package.check_configuration(conf, CRDS)
    assert [p.file for p in problems] == ["extra/stray.yaml"]
    assert f"kind {kind}" in problems[0].message and "not allowed" in problems[0].message
    rc = package.main(["check", "configuration", str(conf), "--conformance", str(CRDS)])
    err = capsys.readouterr().err
    assert rc == 1 and "extra/stray.yaml" in err and kind in err


def test_lint_rejects_meta_file_that_breaks_the_meta_schema(
        built: tuple[Path, list[package.Problem]], tmp_path: Path) -> None:
    conf = _copy_configuration(built, tmp_path)
    meta = _yaml(conf / "crossplane.yaml")
    meta["spec"]["crossplane"] = {"versions": ">=v2.3.0-0"}  # typo: required `version` missing
    (conf / "crossplane.yaml").write_text(yaml.safe_dump(meta))
    messages = [str(p) for p in package.check_configuration(conf, CRDS)]
    assert any("crossplane.yaml" in m and "version" in m for m in messages), messages


def test_lint_rejects_legacy_or_tagged_dependencies(
        built: tuple[Path, list[package.Problem]], tmp_path: Path) -> None:
    conf = _copy_configuration(built, tmp_path)
    meta = _yaml(conf / "crossplane.yaml")
    meta["spec"]["dependsOn"].append({"provider": "xpkg.crossplane.io/a/provider-x",
                                      "version": ">=v1.0.0"})
    meta["spec"]["dependsOn"].append({"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider",
                                      "package": "xpkg.crossplane.io/a/provider-y:v1.0.0",
                                      "version": ">=v1.0.0"})
    (conf / "crossplane.yaml").write_text(yaml.safe_dump(meta))
    messages = " | ".join(str(p) for p in package.check_configuration(conf, CRDS))
    assert "deprecated field(s) ['provider']" in messages
    assert "without a tag" in messages


def test_lint_rejects_a_composition_calling_a_function_not_installed_as_a_dependency(
        built: tuple[Path, list[package.Problem]], tmp_path: Path) -> None:
    conf = _copy_configuration(built, tmp_path)
    f = sorted((conf / "compositions").glob("*.yaml"))[0]
    comp = _yaml(f)
    comp["spec"]["pipeline"][0]["functionRef"]["name"] = "function-modelplane"
    f.write_text(yaml.safe_dump(comp))
    problems = package.check_configuration(conf, CRDS)
    assert [p.file for p in problems] == [f"compositions/{f.name}"]
    assert "'function-modelplane'" in problems[0].message


def test_every_composition_step_input_validates_against_the_input_crd(
        built: tuple[Path, list[package.Problem]]) -> None:
    out, _ = built
    comps = [_yaml(f) for f in (out / "configuration" / "compositions").glob("*.yaml")]
    assert package.check_function(out / "function", CRDS, comps) == []
    bad = {"metadata": {"name": "x"}, "spec": {"pipeline": [
        {"step": "s", "input": {"apiVersion": "fn.modelplane.ai/v1alpha1", "kind": "Input",
                                "step": "Not A Step"}}]}}
    problems = package.check_function(out / "function", CRDS, [bad])
    assert len(problems) == 1 and "step" in problems[0].message


def test_build_command_exits_zero_and_names_the_package_roots(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_shared()
    rc = package.main(["build", "--root", str(REPO), "--out", str(tmp_path),
                       "--conformance", str(CRDS)])
    assert rc == 0
    assert str(tmp_path / "configuration") in capsys.readouterr().out
