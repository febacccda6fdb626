"""Every Helm chart Modelplane installs gets values its own chart accepts: the values each
example composes into a provider-helm Release are merged over the chart's defaults and validated
against the chart's values.schema.json, as `helm install` does, and where a chart has no schema,
every key we set must be one the chart's values.yaml defines (an unknown key is silently ignored
by Helm: the setting would never take effect).

The charts' sources come from the Go module proxy (tests/upstream.py). A chart whose source the
proxy does not serve is listed in UNCHECKED with the reason, so a new chart or version cannot
slip through unchecked: the test fails until it is added to one of the two tables."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from modelplane.common.fields import coalesced
from modelplane.render import render_fleet

from tests.upstream import go_module

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())

#: (repository, chart) -> version -> (Go module, module version, chart directory in it).
SOURCES: dict[tuple[str, str], Callable[[str], tuple[str, str, str]]] = {
    ("https://traefik.github.io/charts", "traefik"):
        lambda v: ("github.com/traefik/traefik-helm-chart", f"v{v}+incompatible", "traefik"),
    ("https://metallb.github.io/metallb", "metallb"):
        lambda v: ("go.universe.tf/metallb", f"v{v}", "charts/metallb"),
    ("oci://docker.io/envoyproxy", "gateway-helm"):
        lambda v: ("github.com/envoyproxy/gateway", v, "charts/gateway-helm"),
    # eks-charts tags no releases: its charts are versioned inside the repository, so the
    # module version is the commit whose Chart.yaml has that chart version (checked below).
    ("https://aws.github.io/eks-charts", "aws-dranet"):
        lambda v: ("github.com/aws/eks-charts", {"1.0.0": EKS_CHARTS_1_0_0}.get(v, v),
                   "stable/aws-dranet"),
}
EKS_CHARTS_1_0_0 = "v0.0.243-0.20260821194545-743f98a89b5b"
#: Charts whose sources the Go module proxy does not serve: their values are documented in
#: docs/provisioning.md ("Chart values") from the charts' own documentation instead.
UNCHECKED: dict[tuple[str, str], str] = {
    ("https://helm.ngc.nvidia.com/nvidia", "nvidia-dra-driver-gpu"):
        "github.com/NVIDIA/k8s-dra-driver-gpu tags v25.x without a /v25 module path, so the "
        "proxy serves none of its releases",
    ("oci://registry.k8s.io/lws/charts", "lws"):
        "the proxy serves no version of sigs.k8s.io/lws",
}


@functools.cache
def releases() -> tuple[tuple[str, str, str, str, str], ...]:
    """(example, repository, chart, version, values as JSON) of every Release composed."""
    out = set()
    for example in EXAMPLES:
        for obj in render_fleet([example]).objects():
            if obj.get("kind") != "Release" or "helm" not in str(obj.get("apiVersion")):
                continue
            fp = (obj.get("spec") or {}).get("forProvider") or {}
            chart = fp.get("chart") or {}
            out.add((example.name, str(chart.get("repository")), str(chart.get("name")),
                     str(chart.get("version")), json.dumps(fp.get("values") or {},
                                                           sort_keys=True)))
    return tuple(sorted(out))


def chart_dir(repository: str, name: str, version: str) -> Path:
    module, module_version, sub = SOURCES[(repository, name)](version)
    root = go_module(module, module_version) / sub
    chart = yaml.safe_load((root / "Chart.yaml").read_text())
    # Envoy Gateway stamps the version into Chart.yaml at release time; its source says
    # v0.0.0-latest, and the module tag is the release.
    found = str(chart["version"]).lstrip("v").replace("0.0.0-latest", version.lstrip("v"))
    assert (chart["name"], found) == (name, version.lstrip("v")), (
        f"{module}@{module_version}/{sub} holds {chart['name']} {chart['version']}, "
        f"not {name} {version}")
    return root


def leaf_paths(values: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for k, v in values.items():
        if isinstance(v, dict) and v:
            yield from leaf_paths(v, (*prefix, k))
        else:
            yield (*prefix, k)


def problems(repository: str, name: str, version: str, values: dict[str, Any]) -> list[str]:
    """What the chart would refuse or ignore in ``values`` (empty: it accepts them all)."""
    root = chart_dir(repository, name, version)
    defaults_file = next(p for p in (root / "values.yaml", root / "values.tmpl.yaml")
                         if p.exists())
    defaults = yaml.safe_load(defaults_file.read_text()) or {}
    schema_file = root / "values.schema.json"
    if schema_file.exists():
        schema = json.loads(schema_file.read_text())
        # Charts write the draft's URI with https (MetalLB), which jsonschema does not know.
        draft = {"$schema": str(schema.get("$schema", "")).replace("https://", "http://")}
        cls = jsonschema.validators.validator_for(draft, default=jsonschema.Draft7Validator)
        validator = cls(schema)
        return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                      for e in validator.iter_errors(coalesced(defaults, values)))
    unknown = []
    for path in leaf_paths(values):
        node: Any = defaults
        for part in path:
            if not isinstance(node, dict) or part not in node:
                unknown.append(".".join(path) + f": not a value of chart {name} {version}")
                break
            node = node[part]
    return unknown


def test_every_chart_composed_has_its_values_checked_or_a_reason() -> None:
    charts = {(repo, name) for _, repo, name, _, _ in releases()}
    assert charts, "no example composes a Helm Release"
    assert charts <= set(SOURCES) | set(UNCHECKED), sorted(charts - set(SOURCES) -
                                                            set(UNCHECKED))


@pytest.mark.parametrize("release", releases(), ids=lambda r: f"{r[0]}:{r[2]}-{r[3]}")
def test_the_chart_accepts_the_values_we_compose(release: tuple[str, ...]) -> None:
    example, repository, name, version, values = release
    if (repository, name) in UNCHECKED:
        pytest.skip(f"{name}: {UNCHECKED[(repository, name)]}")
    assert problems(repository, name, version, json.loads(values)) == [], example


def test_a_misspelt_or_mistyped_value_is_refused() -> None:
    traefik = ("https://traefik.github.io/charts", "traefik")
    version = next(v for _, r, n, v, _ in releases() if (r, n) == traefik)
    typo = problems(*traefik, version, {"providers": {"kubernetesGatway": {"enabled": True}}})
    assert any("kubernetesGatway" in p for p in typo), typo
    wrong = problems(*traefik, version, {"ports": {"web": {"port": "eight thousand"}}})
    assert any(p.startswith("ports.web.port") for p in wrong), wrong
    # A chart without a schema: an unknown key would be ignored by Helm, so it is reported.
    envoy = ("oci://docker.io/envoyproxy", "gateway-helm")
    version = next(v for _, r, n, v, _ in releases() if (r, n) == envoy)
    assert problems(*envoy, version, {"config": {"envoyGatway": {}}}) == [
        f"config.envoyGatway: not a value of chart gateway-helm {version}"]
