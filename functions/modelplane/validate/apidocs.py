"""Generate docs/api-reference.md from the XRDs, so the reference cannot drift from the API.

Run ``python -m modelplane.validate.apidocs > docs/api-reference.md``; tests/api fails when the
committed file differs from this output.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from modelplane.validate.registry import Registry, default_registry

Schema = dict[str, Any]

_HEADER = """\
# API reference

<!-- Generated from apis/*/definition.yaml by `python -m modelplane.validate.apidocs`.
     Do not edit by hand: tests/api fails when this file is stale. -->

Every kind is in group `modelplane.ai`, version `v1alpha1`. Platform teams own the
cluster-scoped kinds; ML teams write the namespaced ones in their own namespaces (ModelReplica is
composed by Modelplane). Check manifests offline with `modelplane validate PATH...`: it applies
the same schema, defaults and validation rules as the API server.

Crossplane adds `spec.crossplane` (composition selection) and `status.conditions` (`Synced`,
`Ready` and the conditions the function sets) to every kind, and the printer columns `SYNCED`,
`READY`, `COMPOSITION` and `AGE` before the ones listed here.
"""


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _type_of(node: Schema) -> str:
    if node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties"):
        return "object (free-form)"
    kind = str(node.get("type", "any"))
    if kind == "array":
        items = node.get("items") or {}
        return f"[]{_type_of(items)}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type_of(node['additionalProperties'])}"
    if kind == "integer" and node.get("format"):
        return f"integer ({node['format']})"
    return kind


def _constraints(node: Schema) -> str:
    parts: list[str] = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    for key, label in (("minimum", "≥"), ("maximum", "≤")):
        if key in node:
            parts.append(f"{label} {node[key]}")
    for key, label in (("minLength", "min length"), ("maxLength", "max length"),
                       ("minItems", "min items"), ("maxItems", "max items"),
                       ("maxProperties", "max entries")):
        if key in node:
            parts.append(f"{label} {node[key]}")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    if node.get("x-kubernetes-list-type") == "map":
        keys = ", ".join(node.get("x-kubernetes-list-map-keys") or [])
        parts.append(f"unique by {keys}")
    return "; ".join(parts)


def _rows(node: Schema, path: str, required: bool, rows: list[str],
          rules: list[tuple[str, dict[str, Any]]]) -> None:
    default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
    req = "yes" if required else ""
    rows.append(f"| `{path}` | {_cell(_type_of(node))} | {req} | {default} | "
                f"{_cell(_constraints(node))} | {_cell(node.get('description', ''))} |")
    for rule in node.get("x-kubernetes-validations") or []:
        rules.append((path + str(rule.get("fieldPath", "")), rule))
    needed = set(node.get("required") or [])
    for key, child in (node.get("properties") or {}).items():
        _rows(child, f"{path}.{key}", key in needed, rows, rules)
    if isinstance(node.get("additionalProperties"), dict):
        _rows_children(node["additionalProperties"], f"{path}[name]", rows, rules)
    if isinstance(node.get("items"), dict):
        _rows_children(node["items"], f"{path}[]", rows, rules)


def _rows_children(node: Schema, path: str, rows: list[str],
                   rules: list[tuple[str, dict[str, Any]]]) -> None:
    """An item or map value: list its fields (or its rules) without a row of its own."""
    for rule in node.get("x-kubernetes-validations") or []:
        rules.append((path + str(rule.get("fieldPath", "")), rule))
    needed = set(node.get("required") or [])
    for key, child in (node.get("properties") or {}).items():
        _rows(child, f"{path}.{key}", key in needed, rows, rules)
    if isinstance(node.get("items"), dict):
        _rows_children(node["items"], f"{path}[]", rows, rules)


def _table(root: Schema, name: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    rows = ["| Field | Type | Required | Default | Constraints | Description |",
            "|---|---|---|---|---|---|"]
    rules: list[tuple[str, dict[str, Any]]] = []
    node = (root.get("properties") or {}).get(name)
    if isinstance(node, dict):
        needed = set(node.get("required") or [])
        for rule in node.get("x-kubernetes-validations") or []:
            rules.append((name + str(rule.get("fieldPath", "")), rule))
        for key, child in (node.get("properties") or {}).items():
            _rows(child, f"{name}.{key}", key in needed, rows, rules)
    return rows, rules


def _kind_section(xrd: dict[str, Any]) -> list[str]:
    spec = xrd["spec"]
    names = spec["names"]
    lines: list[str] = []
    for version in spec.get("versions") or []:
        schema = version["schema"]["openAPIV3Schema"]
        scope = "cluster-scoped" if spec.get("scope") == "Cluster" else "namespaced"
        lines += [
            f"## {names['kind']}",
            "",
            _cell(schema.get("description", "")),
            "",
            f"- API: `{spec['group']}/{version['name']}`, {scope}",
            f"- Names: `{names['plural']}`, short names "
            + ", ".join(f"`{s}`" for s in names.get("shortNames") or [])
            + "; categories " + ", ".join(f"`{c}`" for c in names.get("categories") or []),
        ]
        scale = (version.get("subresources") or {}).get("scale")
        if scale:
            lines.append(f"- Scale subresource: replicas `{scale['specReplicasPath']}` / "
                         f"`{scale['statusReplicasPath']}`, selector "
                         f"`{scale.get('labelSelectorPath', '')}`")
        columns = version.get("additionalPrinterColumns") or []
        if columns:
            lines.append("- Columns: " + ", ".join(
                f"`{c['name']}` (`{c['jsonPath']}`{', wide' if c.get('priority') else ''})"
                for c in columns))
        lines.append("")
        for part in ("spec", "status"):
            rows, rules = _table(schema, part)
            lines += [f"### {names['kind']} {part}", ""]
            lines += rows
            lines.append("")
            if rules:
                lines += [f"Validation rules ({part}):", ""]
                for path, rule in rules:
                    lines.append(f"- `{path}`: {_cell(rule.get('message', ''))} "
                                 f"(CEL `{_cell(rule['rule'])}`)")
                lines.append("")
    return lines


def render(registry: Registry | None = None) -> str:
    """The whole reference as Markdown."""
    registry = registry or default_registry()
    xrds = sorted(registry.xrds(), key=lambda x: (x["spec"].get("scope") != "Cluster",
                                                  x["spec"]["names"]["kind"]))
    lines = [_HEADER, "| Kind | Scope | Short names | Summary |", "|---|---|---|---|"]
    for xrd in xrds:
        spec = xrd["spec"]
        summary = spec["versions"][0]["schema"]["openAPIV3Schema"].get("description", "")
        lines.append(f"| [{spec['names']['kind']}](#{spec['names']['kind'].lower()}) | "
                     f"{spec.get('scope')} | {', '.join(spec['names'].get('shortNames') or [])} "
                     f"| {_cell(summary)} |")
    lines.append("")
    for xrd in xrds:
        lines += _kind_section(xrd)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
