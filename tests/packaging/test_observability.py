"""examples/observability: kube-state-metrics' custom-resource configuration covers every
Modelplane kind, and every path it reads exists in that kind's XRD schema."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def config() -> dict[str, Any]:
    cm = yaml.safe_load((REPO / "examples" / "observability" / "kube-state-metrics.yaml")
                        .read_text())
    loaded: dict[str, Any] = yaml.safe_load(cm["data"]["modelplane.yaml"])
    return loaded


def xrds() -> dict[str, dict[str, Any]]:
    out = {}
    for f in (REPO / "apis").glob("*/definition.yaml"):
        d = yaml.safe_load(f.read_text())
        out[d["spec"]["names"]["kind"]] = d
    return out


def schema_at(schema: dict[str, Any], path: list[str]) -> dict[str, Any] | None:
    """The schema node a kube-state-metrics path names (list items are walked into)."""
    node: dict[str, Any] | None = schema
    for part in path:
        if node is None:
            return None
        if node.get("type") == "array":
            node = node.get("items") or {}
        node = (node.get("properties") or {}).get(part)
    return node


def _schema(xrd: dict[str, Any]) -> dict[str, Any]:
    version = xrd["spec"]["versions"][0]
    root: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    # Crossplane adds status.conditions to every XR; metadata is every object's.
    status = root.setdefault("properties", {}).setdefault("status", {"type": "object"})
    status.setdefault("properties", {}).setdefault("conditions", {
        "type": "array", "items": {"type": "object", "properties": {
            k: {"type": "string"} for k in ("type", "status", "reason", "message")}}})
    root["properties"]["metadata"] = {"type": "object", "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"}}}
    return root


def test_every_kind_has_its_conditions_exported() -> None:
    resources = config()["spec"]["resources"]
    by_kind = {r["groupVersionKind"]["kind"]: r for r in resources}
    assert sorted(by_kind) == sorted(xrds())
    for kind, r in by_kind.items():
        xrd = xrds()[kind]
        assert r["groupVersionKind"]["group"] == xrd["spec"]["group"]
        assert r["groupVersionKind"]["version"] in [v["name"] for v in xrd["spec"]["versions"]
                                                    if v.get("served")]
        assert "status_condition" in [m["name"] for m in r["metrics"]]


def test_every_path_exists_in_the_schema() -> None:
    missing = []
    for r in config()["spec"]["resources"]:
        kind = r["groupVersionKind"]["kind"]
        schema = _schema(xrds()[kind])
        for label, path in r.get("labelsFromPath", {}).items():
            if schema_at(schema, path) is None:
                missing.append(f"{kind} label {label}: {path}")
        for m in r["metrics"]:
            gauge = m["each"]["gauge"]
            base = gauge["path"]
            node = schema_at(schema, base)
            if node is None:
                missing.append(f"{kind} {m['name']}: {base}")
                continue
            for extra in [gauge.get("valueFrom") or [], *(gauge.get("labelsFromPath") or {})
                          .values()]:
                if extra and schema_at(node, extra) is None:
                    missing.append(f"{kind} {m['name']}: {base} + {extra}")
    assert missing == []


# -- Prometheus Operator monitors (examples/observability/monitors.yaml) ------------------------

MONITORS = REPO / "examples" / "observability" / "monitors.yaml"


def monitors() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(MONITORS.read_text()) if d}


def test_every_monitor_passes_the_prometheus_operators_own_crds() -> None:
    import jsonschema
    from modelplane.common.openapi import to_jsonschema
    from modelplane.common.output import load_yaml

    from tests.upstream import prometheus_operator_crds

    crds = {}
    for plural in ("podmonitors", "servicemonitors"):
        crd = load_yaml((prometheus_operator_crds() / f"monitoring.coreos.com_{plural}.yaml")
                        .read_text())
        for v in crd["spec"]["versions"]:
            crds[(f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"])] = (
                v["schema"]["openAPIV3Schema"])
    problems = []
    for name, doc in monitors().items():
        schema = crds[(doc["apiVersion"], doc["kind"])]
        problems += [f"{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in
                     jsonschema.Draft7Validator(to_jsonschema(schema)).iter_errors(doc)]
    assert problems == []
    # The schema is closed: a misspelt field would be caught.
    bad = copy.deepcopy(monitors()["modelplane-engines"])
    bad["spec"]["endpoint"] = bad["spec"].pop("endpoints")
    schema = crds[(bad["apiVersion"], bad["kind"])]
    assert list(jsonschema.Draft7Validator(to_jsonschema(schema)).iter_errors(bad))


def _remote(kind: str) -> list[dict[str, Any]]:
    """Manifests of ``kind`` that the quickstart writes to its workload cluster."""
    from modelplane.render import render_fleet

    out = []
    for obj in render_fleet([REPO / "examples" / "quickstart"]).objects():
        manifest = ((obj.get("spec") or {}).get("forProvider") or {}).get("manifest")
        if obj.get("kind") == "Object" and isinstance(manifest, dict) and (
                manifest.get("kind") == kind):
            out.append(manifest)
    return out


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        present = expr["key"] in labels
        if expr["operator"] == "Exists" and not present:
            return False
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def test_the_engine_monitor_scrapes_every_replica_service_on_its_http_port() -> None:
    monitor = monitors()["modelplane-engines"]["spec"]
    services = [s for s in _remote("Service") if "modelplane.ai/replica" in
                (s["metadata"].get("labels") or {})]
    assert services
    for svc in services:
        labels = svc["metadata"]["labels"]
        assert _selects(monitor["selector"], labels), labels
        assert {e["port"] for e in monitor["endpoints"]} <= {p["name"] for p in
                                                             svc["spec"]["ports"]}
        assert set(monitor["targetLabels"]) <= set(labels)
    # Nothing else a cluster runs is scraped as an engine.
    others = [o for o in _remote("Service") if o not in services]
    assert not any(_selects(monitor["selector"], o["metadata"].get("labels") or {})
                   for o in others)


def test_the_function_monitor_selects_the_function_crossplane_installs() -> None:
    from modelplane.package import dependency_name

    meta = yaml.safe_load((REPO / "package" / "configuration" / "crossplane.yaml").read_text())
    function = next(d for d in meta["spec"]["dependsOn"] if d.get("kind") == "Function")
    selector = monitors()["modelplane-function"]["spec"]["selector"]["matchLabels"]
    assert selector == {"pkg.crossplane.io/function": dependency_name(function["package"])}


# -- the Grafana dashboard (examples/observability/grafana-dashboard.yaml) ----------------------

DASHBOARD = REPO / "examples" / "observability" / "grafana-dashboard.yaml"


def dashboard() -> dict[str, Any]:
    cm = yaml.safe_load(DASHBOARD.read_text())
    loaded: dict[str, Any] = json.loads(cm["data"]["modelplane-fleet.json"])
    return loaded

#: Metrics the dashboard reads that other programs export, as their documentation names them:
#: vLLM's production metrics (docs.vllm.ai, "Production Metrics"; kv_cache_usage_perc is the V1
#: engine's name for gpu_cache_usage_perc), Traefik's Prometheus service metrics and Envoy's
#: cluster statistics (as Envoy Gateway's proxies export them on /stats/prometheus).
EXTERNAL = {
    "vllm:num_requests_running", "vllm:num_requests_waiting",
    "vllm:time_to_first_token_seconds_bucket", "vllm:e2e_request_latency_seconds_bucket",
    "vllm:generation_tokens_total", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
    "traefik_service_requests_total", "traefik_service_request_duration_seconds_bucket",
    "envoy_cluster_upstream_rq_xx",
}


def _ours() -> set[str]:
    """Every series name our function and our kube-state-metrics configuration export."""
    from modelplane.metrics import REGISTRY

    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
        if family.type == "histogram":
            names.update(f"{family.name}_{s}" for s in ("bucket", "sum", "count"))
        if family.type == "counter":
            names.add(f"{family.name}_total")
    for r in config()["spec"]["resources"]:
        names.update(f"{r['metricNamePrefix']}_{m['name']}" for m in r["metrics"])
    return names


def _selectors(expr: Any) -> list[Any]:
    import promql_parser

    found: list[Any] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        elif isinstance(node, promql_parser.MatrixSelector):
            stack.append(node.vector_selector)
        elif isinstance(node, promql_parser.Call):
            stack.extend(node.args)
        elif isinstance(node, promql_parser.BinaryExpr):
            stack.extend((node.lhs, node.rhs))
        elif isinstance(node, (promql_parser.AggregateExpr, promql_parser.ParenExpr,
                               promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
            stack.append(node.expr)
    return found


def _queries() -> list[tuple[str, str]]:
    dash = dashboard()
    out = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]
    out += [(v["name"], v["definition"].removeprefix("label_values(").split(",")[0])
            for v in dash["templating"]["list"] if v["type"] == "query"]
    return out


def test_every_dashboard_query_parses_and_reads_a_metric_that_exists() -> None:
    import promql_parser

    known = _ours() | EXTERNAL
    problems = []
    for title, expr in _queries():
        try:
            parsed = promql_parser.parse(expr)
        except Exception as exc:  # the parser raises ValueError-like errors from Rust
            problems.append(f"{title}: {expr}: {exc}")
            continue
        for sel in _selectors(parsed):
            regex = next((m.value for m in sel.matchers.matchers if m.name == "__name__"), None)
            if sel.name is not None and sel.name not in known:
                problems.append(f"{title}: unknown metric {sel.name}")
            elif regex is not None and not any(re.fullmatch(regex, n) for n in known):
                problems.append(f"{title}: no metric matches {regex}")
    assert problems == []


def test_the_dashboard_is_a_grafana_dashboard_with_a_layout_that_does_not_overlap() -> None:
    dash = dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        if p["type"] != "row":
            assert p["targets"] and p["description"], p["title"]
            assert p["datasource"]["uid"] == "${datasource}"
