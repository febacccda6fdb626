"""examples/observability: kube-state-metrics' custom-resource configuration covers every
Modelplane kind, and every path it reads exists in that kind's XRD schema."""

from __future__ import annotations

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
